package hub

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Option configures [Resolve].
type Option func(*config)

type config struct {
	endpoint string
	revision string
	token    string
	cacheDir string
	progress io.Writer
	client   *http.Client
	offline  bool
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
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithCacheDir sets the hub cache directory (default [DefaultCacheDir];
// "" keeps the default).
func WithCacheDir(dir string) Option {
	return func(c *config) {
		if dir != "" {
			c.cacheDir = dir
		}
	}
}

// WithProgress sets where download progress bars go (default os.Stderr);
// nil shows none.
func WithProgress(w io.Writer) Option { return func(c *config) { c.progress = w } }

// WithHTTPClient sets the client for hub requests (default
// http.DefaultClient). Its redirect policy is not used: Resolve follows
// redirects itself to keep the token on the hub's host.
func WithHTTPClient(client *http.Client) Option { return func(c *config) { c.client = client } }

// WithOffline forbids (or, with false, allows) network access, overriding
// HF_HUB_OFFLINE.
func WithOffline(offline bool) Option { return func(c *config) { c.offline = offline } }

// newConfig reads the environment at call time, so that a process (or a
// test) that sets HF_* variables sees them, then applies opts.
func newConfig(opts []Option) config {
	c := config{
		endpoint: strings.TrimRight(envOr("HF_ENDPOINT", "https://huggingface.co"), "/"),
		revision: "main",
		token:    defaultToken(),
		cacheDir: DefaultCacheDir(),
		progress: os.Stderr,
		client:   http.DefaultClient,
		offline:  isTrue(os.Getenv("HF_HUB_OFFLINE")) || isTrue(os.Getenv("TRANSFORMERS_OFFLINE")),
	}
	for _, o := range opts {
		o(&c)
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	return c
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
// $HF_HOME/token).
func defaultToken() string {
	for _, v := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := strings.TrimSpace(os.Getenv(v)); t != "" {
			return t
		}
	}
	path := expand(envOr("HF_TOKEN_PATH", filepath.Join(hfHome(), "token")))
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
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
