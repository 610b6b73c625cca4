package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of [WithTimeouts] and [WithRetries]; a wait between tries never
// exceeds maxWait.
const (
	defaultTimeout  = 10 * time.Second // huggingface_hub's DEFAULT_ETAG_TIMEOUT and DEFAULT_DOWNLOAD_TIMEOUT
	defaultAttempts = 5
	defaultBackoff  = time.Second
	maxWait         = time.Minute
)

// Option configures [Resolve].
type Option func(*config)

type config struct {
	endpoint string
	revision string
	token    string
	tokenSrc string // where token came from, for messages (never the token itself)
	cacheDir string
	progress io.Writer
	client   *http.Client
	offline  bool

	metaTimeout, idleTimeout time.Duration // 0: from the environment, see envTimeout
	attempts                 int
	backoff                  time.Duration
	sleep                    func(context.Context, time.Duration) error // tests record the waits
}

// WithEndpoint sets the hub's base URL (default HF_ENDPOINT, else
// https://huggingface.co; "" keeps the default).
func WithEndpoint(url string) Option {
	return func(c *config) {
		if url != "" {
			c.endpoint = strings.TrimRight(url, "/")
		}
	}
}

// WithRevision sets the branch, tag or commit hash to resolve (default
// "main"; "" keeps the default).
func WithRevision(rev string) Option {
	return func(c *config) {
		if rev != "" {
			c.revision = rev
		}
	}
}

// WithToken sets the access token for gated and private repositories
// (default HF_TOKEN, else the token file of `huggingface-cli login`); "" sends
// none.
func WithToken(token string) Option {
	return func(c *config) { c.token, c.tokenSrc = token, "hub.WithToken" }
}

// WithCacheDir sets the hub cache directory (default [DefaultCacheDir];
// "" keeps the default).
func WithCacheDir(dir string) Option {
	return func(c *config) {
		if dir != "" {
			c.cacheDir = dir
		}
	}
}

// WithProgress draws download progress bars on w (default os.Stderr); nil
// draws none.
func WithProgress(w io.Writer) Option { return func(c *config) { c.progress = w } }

// WithHTTPClient sets the client for hub requests (default
// http.DefaultClient). Its redirect policy is not used: Resolve follows
// redirects itself to keep the token on the hub's host.
func WithHTTPClient(client *http.Client) Option { return func(c *config) { c.client = client } }

// WithOffline forbids (or, with false, allows) network access, overriding
// HF_HUB_OFFLINE.
func WithOffline(offline bool) Option { return func(c *config) { c.offline = offline } }

// WithTimeouts bounds how long Resolve waits on the network: metadata for
// the answer to a metadata request, connecting included (default
// HF_HUB_ETAG_TIMEOUT seconds, else 10 s), and idle for a download's answer
// and then for each further KiB of it, so that a trickle of a few bytes a
// second counts as stalled (default HF_HUB_DOWNLOAD_TIMEOUT seconds, else
// 10 s). A value ≤ 0 keeps its default. A request that runs out of time is
// tried again, as a dropped connection is (see [WithRetries]).
func WithTimeouts(metadata, idle time.Duration) Option {
	return func(c *config) {
		c.metaTimeout, c.idleTimeout = max(metadata, 0), max(idle, 0)
	}
}

// WithRetries sets how often a request that failed in a way that may pass
// (a dropped or silent connection, a 5xx or 429 answer) is tried: attempts
// in all (default 5), waiting backoff after the first failure (default 1 s)
// and twice as long after each next one, up to a minute, less a random part
// of up to half so that many clients do not come back at once. A download
// resumes where the failed try stopped. A Retry-After header sets the wait
// instead; one over a minute ends the tries. A value ≤ 0 keeps its default.
func WithRetries(attempts int, backoff time.Duration) Option {
	return func(c *config) {
		if attempts > 0 {
			c.attempts = attempts
		}
		if backoff > 0 {
			c.backoff = backoff
		}
	}
}

// newConfig reads the environment at call time, so that a process (or a
// test) that sets HF_* variables sees them, then applies opts.
func newConfig(opts []Option) config {
	token, src := defaultToken()
	c := config{
		endpoint: strings.TrimRight(envOr("HF_ENDPOINT", "https://huggingface.co"), "/"),
		revision: "main",
		token:    token,
		tokenSrc: src,
		cacheDir: DefaultCacheDir(),
		progress: os.Stderr,
		client:   http.DefaultClient,
		offline:  isTrue(os.Getenv("HF_HUB_OFFLINE")) || isTrue(os.Getenv("TRANSFORMERS_OFFLINE")),
		attempts: defaultAttempts,
		backoff:  defaultBackoff,
		sleep:    sleep,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	return c
}

// envTimeout returns set where an option set it, else the environment
// variable key read as huggingface_hub reads it: whole seconds, with unset
// or 0 meaning the default. It is read only when the network is needed, so
// that a bad value does not stop resolving what is cached.
func envTimeout(set time.Duration, key string) (time.Duration, error) {
	if set > 0 {
		return set, nil
	}
	v := os.Getenv(key)
	if v == "" {
		return defaultTimeout, nil
	}
	s, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad %s=%q: want a whole number of seconds", key, v)
	}
	if s == 0 {
		return defaultTimeout, nil
	}
	return time.Duration(s) * time.Second, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DefaultCacheDir returns the hub cache directory huggingface_hub uses:
// HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, with "~"
// and $VARS expanded as Python expands them.
func DefaultCacheDir() string {
	if dir := os.Getenv("HF_HUB_CACHE"); dir != "" {
		return expand(dir)
	}
	if dir := os.Getenv("HUGGINGFACE_HUB_CACHE"); dir != "" {
		return expand(dir)
	}
	return filepath.Join(hfHome(), "hub")
}

func hfHome() string {
	if home := os.Getenv("HF_HOME"); home != "" {
		return expand(home)
	}
	if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
		return filepath.Join(expand(xdg), "huggingface")
	}
	return filepath.Join(expand("~"), ".cache", "huggingface")
}

// defaultToken follows huggingface_hub's get_token: HF_TOKEN, the legacy
// HUGGING_FACE_HUB_TOKEN, then the file HF_TOKEN_PATH (default
// $HF_HOME/token, which `huggingface-cli login` writes). It returns the
// token and where it came from.
func defaultToken() (token, source string) {
	for _, v := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := strings.TrimSpace(os.Getenv(v)); t != "" {
			return t, v
		}
	}
	path := expand(envOr("HF_TOKEN_PATH", filepath.Join(hfHome(), "token")))
	b, err := os.ReadFile(path)
	if t := strings.TrimSpace(string(b)); err == nil && t != "" {
		return t, "the token file " + path
	}
	return "", ""
}

func expand(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = home + p[1:]
		}
	}
	return os.ExpandEnv(p)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// isTrue reads a boolean environment variable as huggingface_hub does.
func isTrue(v string) bool {
	switch strings.ToUpper(v) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}
