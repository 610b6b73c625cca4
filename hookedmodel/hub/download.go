package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

const (
	maxRedirects = 10
	maxAttempts  = 3 // tries per download when the connection breaks
)

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// fileMeta is what the hub says about one file before it is downloaded.
type fileMeta struct {
	commit   string
	etag     string // blob name: git sha1, or sha256 for LFS files
	size     int64  // -1 when unknown
	location *url.URL
}

// online prepares the HTTP side; it runs only when something is missing.
func (r *resolver) online() error {
	u, err := url.Parse(r.cfg.endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bad hub endpoint %q: want http(s)://host", r.cfg.endpoint)
	}
	r.endpoint = u
	c := *r.cfg.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.client = &c
	return nil
}

// fetch makes sure the snapshot of the revision's commit holds name,
// downloading its blob unless the cache has it already, and returns the
// commit.
func (r *resolver) fetch(ctx context.Context, name, rev string) (string, error) {
	meta, err := r.head(ctx, name, rev)
	if err != nil {
		return "", err
	}
	pointer := filepath.Join(r.snapshot(meta.commit), filepath.FromSlash(name))
	if isFile(pointer) {
		return meta.commit, nil
	}
	blob := filepath.Join(r.repoDir, "blobs", meta.etag)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return "", err
	}
	// Python locks the same file, so that neither writes a blob the other
	// is writing; a waiter then finds the blob done.
	unlock, err := lockFile(ctx, filepath.Join(r.cfg.cacheDir, ".locks", r.folder, meta.etag+".lock"))
	if err != nil {
		return "", fmt.Errorf("download %q: %w", name, err)
	}
	defer unlock()
	if !isFile(blob) {
		if err := r.download(ctx, name, meta, blob); err != nil {
			return "", fmt.Errorf("download %q: %w", name, err)
		}
	}
	if err := link(blob, pointer); err != nil {
		return "", fmt.Errorf("link %q into snapshot: %w", name, err)
	}
	return meta.commit, nil
}

// head asks the hub for a file's commit, etag, size and location, as
// huggingface_hub's get_hf_file_metadata does: redirects on the hub's own
// host (a renamed repository) are followed, the one to a CDN is not.
func (r *resolver) head(ctx context.Context, name, rev string) (fileMeta, error) {
	u := r.cfg.endpoint + "/" + r.repo + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(name)
	resp, err := r.send(ctx, http.MethodHead, u, nil, false)
	if err != nil {
		return fileMeta{}, fmt.Errorf("%q is not cached and the hub is out of reach: %w", name, err)
	}
	resp.Body.Close()
	redirected := isRedirect(resp.StatusCode)
	if resp.StatusCode/100 != 2 && !redirected {
		return fileMeta{}, r.statusError(resp, name)
	}

	h := resp.Header
	meta := fileMeta{commit: h.Get("X-Repo-Commit"), size: -1, location: resp.Request.URL}
	meta.etag = h.Get("X-Linked-Etag")
	if meta.etag == "" {
		meta.etag = h.Get("ETag")
	}
	meta.etag = strings.Trim(strings.TrimPrefix(meta.etag, "W/"), `"`)
	if s, err := strconv.ParseInt(h.Get("X-Linked-Size"), 10, 64); err == nil {
		meta.size = s
	} else if !redirected {
		meta.size = resp.ContentLength // a redirect's length is its own body's
	}
	if redirected {
		if meta.location, err = resp.Location(); err != nil {
			return fileMeta{}, fmt.Errorf("%s: redirect without a location: %w", u, err)
		}
	}
	if !isName(meta.commit) || !isName(meta.etag) {
		return fileMeta{}, fmt.Errorf("%s: the answer lacks a usable X-Repo-Commit or ETag header: is %s a Hugging Face hub?", u, r.cfg.endpoint)
	}
	return meta, nil
}

// send issues a request and follows redirects itself: the token goes only
// to the endpoint's own host (Go's client would pass it to another port of
// the same host), and head needs the hub's last answer rather than the
// CDN's. With followAway false it stops at a redirect to another host.
func (r *resolver) send(ctx context.Context, method, rawURL string, header http.Header, followAway bool) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		// identity: sizes and ranges then count the file's own bytes.
		req.Header.Set("Accept-Encoding", "identity")
		req.Header.Set("User-Agent", "golens-hub")
		if r.cfg.token != "" && sameOrigin(u, r.endpoint) {
			req.Header.Set("Authorization", "Bearer "+r.cfg.token)
		}
		resp, err := r.client.Do(req)
		if err != nil {
			return nil, err
		}
		if !isRedirect(resp.StatusCode) {
			return resp, nil
		}
		next, err := resp.Location()
		if err != nil || (!followAway && !sameOrigin(next, u)) {
			return resp, nil // the caller reports or reads the redirect
		}
		resp.Body.Close()
		if hops == maxRedirects {
			return nil, fmt.Errorf("%s: more than %d redirects", rawURL, maxRedirects)
		}
		u = next
	}
}

// download fetches a blob into blobs/{etag}.incomplete, resuming what an
// earlier run left there, and renames it into place once it is whole and,
// for LFS files, its sha256 matches the etag.
func (r *resolver) download(ctx context.Context, name string, meta fileMeta, blob string) error {
	part := blob + ".incomplete"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // after the explicit Close below, a no-op
	var sum []byte
	for attempt := 1; ; attempt++ {
		sum, err = r.get(ctx, name, meta, f)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%s kept for resuming)", ctx.Err(), part)
		}
		var broken *brokenError
		if !errors.As(err, &broken) || attempt == maxAttempts {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if sum != nil {
		if got := hex.EncodeToString(sum); got != meta.etag {
			os.Remove(part)
			return fmt.Errorf("%w: want sha256 %s, got %s (download deleted)", ErrChecksum, meta.etag, got)
		}
	}
	return os.Rename(part, blob)
}

// brokenError is a transport failure worth retrying from where it stopped.
type brokenError struct{ err error }

func (e *brokenError) Error() string { return "connection broken: " + e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// brokenReader marks read errors of a response body as broken.
type brokenReader struct{ r io.Reader }

func (b brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &brokenError{err}
	}
	return n, err
}

// get appends the rest of the file to f with one GET from where f ends, and
// returns the sha256 of all of f when the etag is one.
func (r *resolver) get(ctx context.Context, name string, meta fileMeta, f *os.File) ([]byte, error) {
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if meta.size >= 0 && have > meta.size {
		have = 0 // not a prefix of this file: start over
	}
	var h hash.Hash
	if sha256RE.MatchString(meta.etag) {
		h = sha256.New()
	}
	if have > 0 && have == meta.size { // whole already; a run stopped before the rename
		return hashPrefix(h, f, have)
	}

	header := http.Header{}
	if have > 0 {
		header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := r.send(ctx, http.MethodGet, meta.location.String(), header, true)
	if err != nil {
		return nil, &brokenError{err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start := rangeStart(resp.Header.Get("Content-Range")); start != have {
			return nil, fmt.Errorf("resume: server sent bytes from %d, want %d", start, have)
		}
	case resp.StatusCode == http.StatusOK:
		have = 0 // the server ignored Range: start over
	default:
		return nil, r.statusError(resp, name)
	}
	if err := f.Truncate(have); err != nil {
		return nil, err
	}
	if _, err := hashPrefix(h, f, have); err != nil {
		return nil, err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return nil, err
	}

	total := meta.size
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	bar := r.progressBar(name, total, have)
	writers := []io.Writer{f, bar}
	if h != nil {
		writers = append(writers, h)
	}
	n, err := io.Copy(io.MultiWriter(writers...), brokenReader{resp.Body})
	have += n
	if err == nil && meta.size >= 0 && have != meta.size {
		err = &brokenError{fmt.Errorf("got %d bytes, want %d", have, meta.size)}
	}
	bar.end(err == nil)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, nil
	}
	return h.Sum(nil), nil
}

// hashPrefix feeds the first n bytes of f to h (when there is one) and
// returns h's sum.
func hashPrefix(h hash.Hash, f *os.File, n int64) ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// rangeStart parses the first byte of "bytes first-last/size", or -1.
func rangeStart(contentRange string) int64 {
	spec, ok := strings.CutPrefix(contentRange, "bytes ")
	first, _, ok2 := strings.Cut(spec, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	if !ok || !ok2 || err != nil {
		return -1
	}
	return n
}

// statusError explains a failed answer, using the hub's X-Error-Code when
// it sends one.
func (r *resolver) statusError(resp *http.Response, name string) error {
	hint := "if it is gated or private, set HF_TOKEN to a token with access"
	if r.cfg.token != "" {
		hint = "the token in use has no access to it; for a gated model, accept its terms on the hub"
	}
	if msg := resp.Header.Get("X-Error-Message"); msg != "" {
		hint += "; the hub says: " + msg
	}
	switch code := resp.Header.Get("X-Error-Code"); {
	case code == "RepoNotFound":
		return fmt.Errorf("repository %s on %s: %w (%s)", r.repo, r.cfg.endpoint, ErrNotFound, hint)
	case code == "RevisionNotFound":
		return fmt.Errorf("revision %q of %s: %w", r.cfg.revision, r.repo, ErrNotFound)
	case resp.StatusCode == http.StatusNotFound && resp.Request.Method == http.MethodHead:
		return errNoFile
	case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) &&
		sameOrigin(resp.Request.URL, r.endpoint): // a CDN's refusal is no token matter
		return fmt.Errorf("%s (%s): %w: %s", r.repo, resp.Status, ErrAccess, hint)
	}
	return fmt.Errorf("%s %s: %s", resp.Request.Method, resp.Request.URL.Redacted(), resp.Status)
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// escapePath escapes each segment of a slash-separated file name.
func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// progress is a download's progress bar; it never fails a download.
type progress struct{ bar *progressbar.ProgressBar }

func (r *resolver) progressBar(name string, total, done int64) progress {
	if r.cfg.progress == nil || total == 0 {
		return progress{}
	}
	w := r.cfg.progress
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetSpinnerChangeInterval(0), // no goroutine for unknown sizes
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	_ = bar.Set64(done)
	return progress{bar}
}

func (p progress) Write(b []byte) (int, error) {
	if p.bar != nil {
		_ = p.bar.Add(len(b))
	}
	return len(b), nil
}

// end completes the bar, or leaves it where it stopped.
func (p progress) end(ok bool) {
	switch {
	case p.bar == nil:
	case ok:
		_ = p.bar.Finish()
	default:
		_ = p.bar.Exit()
	}
}
