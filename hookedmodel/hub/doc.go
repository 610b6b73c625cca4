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
// answer names so that every file comes from one snapshot, and downloads
// with a progress bar into blobs/{etag}.incomplete, renamed into place
// atomically once whole and verified. HF_HUB_OFFLINE=1 forbids the network.
//
// Downloads are guarded against a failing network or server:
//   - A metadata request must be answered within HF_HUB_ETAG_TIMEOUT
//     seconds, and a download must bring each further KiB within
//     HF_HUB_DOWNLOAD_TIMEOUT seconds (both 10 by default; see
//     [WithTimeouts]), so a silent server or a trickle cannot hang a load.
//   - A dropped connection, a timeout, a 5xx or a 429 answer is tried again,
//     up to 5 times in all, after waits that double from 1 s with jitter or
//     that a Retry-After header asks for (see [WithRetries]); a download
//     resumes with an HTTP Range from where it stopped. Cancelling the
//     context ends the wait at once.
//   - A download stops at the size the hub announced (X-Linked-Size, else
//     Content-Length); a server that sends more fails it.
//   - A download must match the checksum its ETag names: the sha256 of an
//     LFS file (X-Linked-Etag), git's blob sha1 ("blob {size}\x00" then the
//     content) of another. An ETag of neither form, as a mirror may send,
//     is not checked.
//   - A failed download leaves nothing that passes for the file: when
//     interrupted (cancelled, or out of tries), the .incomplete file stays
//     for the next run to resume, as Python's does; otherwise it is removed.
//
// What the cache holds is trusted, as Python trusts it, with one cheap
// check: a git blob (config and tokenizer files; the hub keeps larger files
// in LFS) is hashed against its name whenever it is resolved, and one that
// changed after its download is an [ErrChecksum] error naming the blob to
// delete. A truncated or edited LFS blob is returned as it is: hashing
// gigabytes on every load would cost seconds, and the cache records no size
// to compare it with.
//
// HF_TOKEN (else HUGGING_FACE_HUB_TOKEN, else the token file that
// `huggingface-cli login` writes, $HF_HOME/token) authorises gated and
// private repositories; it is sent to the endpoint's host only, never to
// the CDN the hub redirects large files to, and never shown: a refusal
// (401, 403: an [ErrAccess] error) says that the repository is gated when
// the hub says so, where the token in use came from, and how to get access.
// Concurrent downloads of one blob, by goroutines or by processes (Python's
// included, on Unix), take the same lock file under .locks/ that Python does.
package hub
