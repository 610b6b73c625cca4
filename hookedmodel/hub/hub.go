package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Want is one file a caller needs, as alternatives in order of preference:
// Want{"model.safetensors", "pytorch_model.bin"} is satisfied by whichever of
// the two the repository has, the first if it has both.
type Want []string

var (
	// ErrNotFound: the repository, revision or file does not exist on the hub.
	ErrNotFound = errors.New("not found")
	// ErrAccess: the hub refused access (401 or 403): a gated or private
	// repository, and no token or a token without access.
	ErrAccess = errors.New("access denied")
	// ErrOffline: network access is off and a wanted file is not cached.
	ErrOffline = errors.New("offline mode")
	// ErrChecksum: a file does not match the checksum its ETag names: the
	// sha256 of an LFS file, the git blob sha1 of another.
	ErrChecksum = errors.New("checksum mismatch")
)

// errNoFile marks a 404 for one file, so that the next alternative is tried.
var errNoFile = fmt.Errorf("file %w", ErrNotFound)

// Resolve returns the snapshot directory of repo (such as "gpt2" or
// "EleutherAI/pythia-70m") that holds every wanted file, downloading the
// missing ones into the cache. The directory is the same one Python's
// huggingface_hub returns: files are named as in the repository.
//
// Which alternative of a Want was found is seen by looking in the directory.
// The shards of a sharded checkpoint, which its index file names, are
// wanted by a second call once the index is resolved.
func Resolve(ctx context.Context, repo string, want []Want, opts ...Option) (string, error) {
	dir, err := resolve(ctx, repo, want, newConfig(opts))
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", repo, err)
	}
	return dir, nil
}

type resolver struct {
	cfg      config
	repo     string
	folder   string // models--{org}--{name}
	repoDir  string
	endpoint *url.URL
	client   *http.Client
}

func resolve(ctx context.Context, repo string, want []Want, cfg config) (string, error) {
	if err := validate(repo, want, cfg.revision); err != nil {
		return "", err
	}
	folder := "models--" + strings.ReplaceAll(repo, "/", "--")
	r := &resolver{
		cfg:     cfg,
		repo:    repo,
		folder:  folder,
		repoDir: filepath.Join(cfg.cacheDir, folder),
	}

	commit := r.cachedCommit()
	missing := want
	if commit != "" {
		var err error
		if missing, err = r.missing(commit, want); err != nil {
			return "", err
		}
	}
	if len(missing) == 0 {
		return r.snapshot(commit), nil
	}
	if cfg.offline {
		return "", r.offlineError(commit, missing[0])
	}
	if err := r.online(); err != nil {
		return "", err
	}

	// Every file after the first comes from the commit the first one named,
	// so that a branch moving during the downloads cannot mix two snapshots.
	rev, got := cfg.revision, ""
	for _, w := range missing {
		c, err := r.fetchWant(ctx, w, rev)
		if err != nil {
			return "", err
		}
		if got == "" {
			got, rev = c, c
		} else if c != got {
			return "", fmt.Errorf("hub answered commit %s for %s, want %s", c, describe(w), got)
		}
	}
	// The revision moved since it was cached: the new snapshot needs the
	// files that were cached under the old commit as well.
	rest, err := r.missing(got, want)
	if err != nil {
		return "", err
	}
	for _, w := range rest {
		if _, err := r.fetchWant(ctx, w, got); err != nil {
			return "", err
		}
	}
	// The ref goes last, so that an interrupted run leaves it on a
	// complete snapshot.
	if err := r.writeRef(got); err != nil {
		return "", err
	}
	return r.snapshot(got), nil
}

// fetchWant downloads the first alternative of w the hub has and returns
// the commit it came from.
func (r *resolver) fetchWant(ctx context.Context, w Want, rev string) (string, error) {
	for _, name := range w {
		commit, err := r.fetch(ctx, name, rev)
		if !errors.Is(err, errNoFile) {
			return commit, err
		}
	}
	return "", fmt.Errorf("%s at revision %q has no %s: %w", r.repo, r.cfg.revision, describe(w), ErrNotFound)
}

var (
	repoRE = regexp.MustCompile(`^(?:[\w.-]+/)?[\w.-]+$`)
	sha1RE = regexp.MustCompile(`^[0-9a-f]{40}$`) // a commit, or a git blob's name
)

func validate(repo string, want []Want, rev string) error {
	if len(repo) > 96 || !repoRE.MatchString(repo) || strings.Contains(repo, "--") || strings.Contains(repo, "..") {
		return errors.New(`bad repository name: want "name" or "org/name" of letters, digits, '-', '_' and '.'`)
	}
	if !isRelPath(rev) {
		return fmt.Errorf("bad revision %q", rev)
	}
	if len(want) == 0 {
		return errors.New("no file wanted")
	}
	for _, w := range want {
		if len(w) == 0 {
			return errors.New("empty Want: name at least one file")
		}
		for _, name := range w {
			if !isRelPath(name) {
				return fmt.Errorf("bad file name %q: want a relative path inside the repository", name)
			}
		}
	}
	return nil
}

// isRelPath reports whether p is a clean slash-separated path that stays
// inside the directory it is joined to.
func isRelPath(p string) bool {
	return p != "" && path.Clean(p) == p && !strings.Contains(p, `\`) && filepath.IsLocal(filepath.FromSlash(p))
}

// cachedCommit returns the commit the revision names in the cache, or "".
func (r *resolver) cachedCommit() string {
	if sha1RE.MatchString(r.cfg.revision) {
		return r.cfg.revision
	}
	b, err := os.ReadFile(filepath.Join(r.repoDir, "refs", filepath.FromSlash(r.cfg.revision)))
	if err != nil {
		return ""
	}
	if c := strings.TrimSpace(string(b)); isName(c) {
		return c
	}
	return ""
}

func (r *resolver) snapshot(commit string) string {
	return filepath.Join(r.repoDir, "snapshots", commit)
}

// missing returns the wants that the snapshot of commit lacks.
func (r *resolver) missing(commit string, want []Want) ([]Want, error) {
	var out []Want
	for _, w := range want {
		ok, err := r.cached(commit, w)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, w)
		}
	}
	return out, nil
}

// cached reports whether the snapshot of commit holds an alternative of w.
// Stat follows the symlink, so a link to a missing blob is not cached. A
// git blob (a config or tokenizer file: the hub keeps large files in LFS)
// is checked against its name each time, which costs little; a blob that
// changed after its download is an error. LFS blobs are trusted, as Python
// trusts them: hashing gigabytes on every load would cost seconds.
func (r *resolver) cached(commit string, w Want) (bool, error) {
	for _, name := range w {
		pointer := filepath.Join(r.snapshot(commit), filepath.FromSlash(name))
		if !isFile(pointer) {
			continue
		}
		if err := checkCached(pointer); err != nil {
			return false, fmt.Errorf("cached %q: %w", name, err)
		}
		return true, nil
	}
	return false, nil
}

// checkCached verifies the git blob a snapshot entry links to; plain copies
// (which name no blob) and LFS blobs pass unchecked.
func checkCached(pointer string) error {
	target, err := os.Readlink(pointer)
	if err != nil || !sha1RE.MatchString(filepath.Base(target)) {
		return nil
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(pointer), target)
	}
	f, err := os.Open(target)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() > maxGitBlob {
		return err // nil for a blob too large to be a git file
	}
	if err := checkBlob(f, filepath.Base(target)); err != nil {
		return fmt.Errorf("%w: %s changed after its download; delete it to download it again", err, target)
	}
	return nil
}

func (r *resolver) offlineError(commit string, w Want) error {
	where := r.snapshot(commit)
	if commit == "" {
		where = fmt.Sprintf("%s (no ref %q)", r.repoDir, r.cfg.revision)
	}
	return fmt.Errorf("%w (HF_HUB_OFFLINE): %s is not in the cache at %s", ErrOffline, describe(w), where)
}

// writeRef records the commit a branch or tag resolved to, as Python does.
func (r *resolver) writeRef(commit string) error {
	if r.cfg.revision == commit {
		return nil
	}
	ref := filepath.Join(r.repoDir, "refs", filepath.FromSlash(r.cfg.revision))
	if b, err := os.ReadFile(ref); err == nil && string(b) == commit {
		return nil
	}
	err := writeAtomic(ref, func(w io.Writer) error {
		_, err := io.WriteString(w, commit)
		return err
	})
	if err != nil {
		return fmt.Errorf("write ref: %w", err)
	}
	return nil
}

// describe names the alternatives of w for messages.
func describe(w Want) string {
	q := make([]string, len(w))
	for i, name := range w {
		q[i] = fmt.Sprintf("%q", name)
	}
	return strings.Join(q, " or ")
}

// isName reports whether s can name one entry of a directory; commit hashes
// and etags come from the server and become paths.
func isName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
