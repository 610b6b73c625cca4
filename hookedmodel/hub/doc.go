// Package hub resolves a Hugging Face model name to a local snapshot
// directory, through the same cache that Python's huggingface_hub keeps, and
// downloads into that cache when a file is missing and a network exists.
//
// The cache lives in HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub (see [DefaultCacheDir]). Inside it each model
// repository has Python's layout:
//
//	models--{org}--{name}/
//	    refs/{revision}              the commit hash a branch or tag pointed to
//	    blobs/{etag}                 file contents, named by git sha1 or LFS sha256
//	    snapshots/{commit}/{file}    relative symlink to ../../blobs/{etag}
//
// Snapshots written by Python (symlinks, or plain files where the filesystem
// has none) are read as they are, and what this package writes Python reads.
//
// [Resolve] works offline first: when the revision's ref and every wanted
// file are cached it touches no network, so a cached ref is not checked for
// newer commits. Otherwise it asks the hub (HF_ENDPOINT, default
// https://huggingface.co) for the missing files, pins the commit the first
// answer names so that every file comes from one snapshot, and downloads:
// resumable with HTTP ranges, verified against the sha256 of LFS files,
// renamed into place atomically, with a progress bar. HF_HUB_OFFLINE=1
// forbids the network. HF_TOKEN (or the token file that `huggingface-cli
// login` writes) authorises gated and private repositories; it is sent to the
// endpoint's host only, never to the CDN the hub redirects large files to.
// Concurrent downloads of one blob, by goroutines or by processes (Python's
// included, on Unix), take the same lock file under .locks/ that Python does.
package hub
