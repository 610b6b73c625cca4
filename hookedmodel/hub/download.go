package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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
	// minProgress is what a download must receive within each idle timeout;
	// a trickle of a few bytes a second is a stall.
	minProgress = 1 << 10
	// maxGitBlob bounds the cached git blobs checked on every Resolve; the
	// hub keeps larger files in LFS.
	maxGitBlob = 10 << 20
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
	var errMeta, errIdle error
	r.cfg.metaTimeout, errMeta = envTimeout(r.cfg.metaTimeout, "HF_HUB_ETAG_TIMEOUT")
	r.cfg.idleTimeout, errIdle = envTimeout(r.cfg.idleTimeout, "HF_HUB_DOWNLOAD_TIMEOUT")
	if err := errors.Join(errMeta, errIdle); err != nil {
		return err
	}
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
	var resp *http.Response
	err := r.retry(ctx, func() error {
		reqCtx, _, stop := watchdog(ctx, r.cfg.metaTimeout, "HF_HUB_ETAG_TIMEOUT")
		defer stop()
		var err error
		if resp, err = r.send(reqCtx, http.MethodHead, u, nil, false); err != nil {
			return netError(ctx, fmt.Errorf("%q is not cached and the hub is out of reach: %w", name, err))
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 && !isRedirect(resp.StatusCode) {
			return r.statusError(resp, name)
		}
		return nil
	})
	if err != nil {
		return fileMeta{}, err
	}
	redirected := isRedirect(resp.StatusCode)

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

// download fetches a blob into blobs/{etag}.incomplete and renames it into
// place once it has the announced size and the checksum its etag names. An
// interrupted download (cancelled, or out of tries on a failing connection)
// leaves the .incomplete file, a prefix of the blob, for the next run to
// resume, as Python does; any other failure removes it.
func (r *resolver) download(ctx context.Context, name string, meta fileMeta, blob string) (err error) {
	part := blob + ".incomplete"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		f.Close() // after the explicit Close below, a no-op
		var t *transientError
		switch {
		case err == nil:
		case ctx.Err() != nil || errors.As(err, &t):
			err = fmt.Errorf("%w (%s kept for resuming)", err, part)
		default:
			os.Remove(part)
		}
	}()
	if err := r.retry(ctx, func() error { return r.get(ctx, name, meta, f) }); err != nil {
		return err
	}
	if err := checkBlob(f, meta.etag); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(part, blob)
}

// get appends the rest of the file to f with one GET from where f ends. It
// reads no more than the announced size, so that a server sending too much
// cannot fill the disk.
func (r *resolver) get(ctx context.Context, name string, meta fileMeta, f *os.File) error {
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if meta.size >= 0 && have > meta.size {
		have = 0 // not a prefix of this file: start over
	}
	if have > 0 && have == meta.size { // whole already; a run stopped before the rename
		return nil
	}

	reqCtx, kick, stop := watchdog(ctx, r.cfg.idleTimeout, "HF_HUB_DOWNLOAD_TIMEOUT")
	defer stop()
	header := http.Header{}
	if have > 0 {
		header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := r.send(reqCtx, http.MethodGet, meta.location.String(), header, true)
	if err != nil {
		return netError(ctx, err)
	}
	defer resp.Body.Close()
	kick() // the answer came; now its bytes must
	u := resp.Request.URL.Redacted()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start := rangeStart(resp.Header.Get("Content-Range")); start != have {
			return fmt.Errorf("GET %s: resumed from byte %d, want %d", u, start, have)
		}
	case resp.StatusCode == http.StatusOK:
		have = 0 // the server ignored Range: start over
	default:
		return r.statusError(resp, name)
	}
	size := meta.size
	if resp.ContentLength >= 0 {
		if size >= 0 && have+resp.ContentLength != size {
			return fmt.Errorf("GET %s: the download is %d bytes, the hub announced %d", u, have+resp.ContentLength, size)
		}
		size = have + resp.ContentLength
	}
	if err := f.Truncate(have); err != nil {
		return err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}

	bar := r.progressBar(name, size, have)
	body := &watchReader{r: resp.Body, kick: kick}
	var src io.Reader = body
	if size >= 0 {
		src = io.LimitReader(body, size-have+1) // one byte more shows a server sending too much
	}
	n, err := io.Copy(io.MultiWriter(f, bar), src)
	have += n
	bar.end(err == nil && (size < 0 || have == size))
	switch {
	case body.err != nil:
		return netError(ctx, fmt.Errorf("GET %s: connection broken after %d bytes: %w", u, have, body.err))
	case err != nil:
		return err // writing the file
	case size >= 0 && have > size:
		return fmt.Errorf("GET %s: the server sent more than the %d bytes announced (stopped at %d)", u, size, have)
	case size >= 0 && have < size:
		return &transientError{err: fmt.Errorf("GET %s: connection closed after %d of %d bytes", u, have, size)}
	}
	return nil
}

// watchReader reads a response body, kicking the download's watchdog each
// time minProgress more bytes have come, and keeps the read error apart
// from the file's write errors.
type watchReader struct {
	r    io.Reader
	kick func()
	n    int
	err  error
}

func (w *watchReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if w.n += n; w.n >= minProgress {
		w.n = 0
		w.kick()
	}
	if err != nil && err != io.EOF {
		w.err = err
	}
	return n, err
}

// watchdog returns a context that ends, with a timeout error naming the
// setting env, when d passes without a call of kick; stop releases it.
func watchdog(ctx context.Context, d time.Duration, env string) (_ context.Context, kick, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(d, func() {
		cancel(fmt.Errorf("timeout: nothing received for %s (%s, or hub.WithTimeouts)", d, env))
	})
	return ctx, func() { t.Reset(d) }, func() { t.Stop(); cancel(nil) }
}

// transientError is a failure that another try may not meet: a dropped or
// silent connection, a 5xx or a 429 answer. after is the wait the server asked
// for with Retry-After, or 0.
type transientError struct {
	err   error
	after time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// netError classifies a failed request or body read. The caller's
// cancellation ends the work, as do a host that does not exist and a
// certificate that fails; anything else on the wire, a watchdog's timeout
// included, may pass on another try.
func netError(ctx context.Context, err error) error {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	if ctx.Err() != nil || errors.As(err, &dns) && dns.IsNotFound || errors.As(err, &cert) {
		return err
	}
	return &transientError{err: err}
}

// retry calls try until it succeeds, fails for good, or has failed
// cfg.attempts times. Between tries it waits as a Retry-After header asks,
// else cfg.backoff doubled after each failure up to maxWait, less a random
// part of up to half. ctx ends the waits at once.
func (r *resolver) retry(ctx context.Context, try func() error) error {
	wait := r.cfg.backoff
	for attempt := 1; ; attempt++ {
		err := try()
		var t *transientError
		if err == nil || !errors.As(err, &t) {
			return err
		}
		if attempt >= r.cfg.attempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		d := wait/2 + rand.N(wait/2+1)
		if t.after > maxWait {
			return fmt.Errorf("the server asks to retry after %s (Retry-After), more than the %s this waits: %w", t.after, maxWait, err)
		} else if t.after > 0 {
			d = t.after
		}
		if err := r.cfg.sleep(ctx, d); err != nil {
			return err
		}
		wait = min(2*wait, maxWait)
	}
}

// checkBlob verifies f against the checksum its etag names: the sha256 of
// the content for an LFS file (64 hex digits), git's blob sha1 for another
// (40). An etag of another form, as a mirror may send, is not checked.
func checkBlob(f *os.File, etag string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	kind, h := "sha256", sha256.New()
	switch {
	case sha256RE.MatchString(etag):
	case sha1RE.MatchString(etag):
		kind, h = "git blob sha1", sha1.New()
		fmt.Fprintf(h, "blob %d\x00", fi.Size())
	default:
		return nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != etag {
		return fmt.Errorf("%w: want %s %s, got %s", ErrChecksum, kind, etag, got)
	}
	return nil
}

// retryAfter reads a Retry-After header, in seconds or as a date; 0 when
// there is none.
func retryAfter(v string) time.Duration {
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
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
// it sends one. It names where the token came from, never the token.
func (r *resolver) statusError(resp *http.Response, name string) error {
	page := r.cfg.endpoint + "/" + r.repo
	hint := fmt.Sprintf("if it is gated or private, set HF_TOKEN to an access token (%s/settings/tokens) of an account with access, or run `huggingface-cli login`", r.cfg.endpoint)
	if r.cfg.token != "" {
		hint = fmt.Sprintf("the token in use (from %s) has no access to it; for a gated model, accept its terms at %s with that token's account", r.cfg.tokenSrc, page)
	} else if resp.Header.Get("X-Error-Code") == "GatedRepo" {
		hint = fmt.Sprintf("accept its terms at %s, then set HF_TOKEN to an access token of that account (%s/settings/tokens), or run `huggingface-cli login`", page, r.cfg.endpoint)
	}
	if msg := resp.Header.Get("X-Error-Message"); msg != "" {
		hint += "; the hub says: " + msg
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return &transientError{
			err:   fmt.Errorf("%s %s: %s", resp.Request.Method, resp.Request.URL.Redacted(), resp.Status),
			after: retryAfter(resp.Header.Get("Retry-After")),
		}
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
		what := r.repo
		if code == "GatedRepo" {
			what = "repository " + r.repo + " is gated"
		}
		return fmt.Errorf("%s (%s): %w: %s", what, resp.Status, ErrAccess, hint)
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
