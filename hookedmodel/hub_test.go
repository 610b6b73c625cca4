package hookedmodel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/hub"
)

// fakeHub serves testdata/gpt2-tiny-bin as the repository "gpt2", the way
// the Hugging Face hub answers resolve requests, and counts requests.
func fakeHub(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var requests atomic.Int64
	const commit = "0123456789abcdef0123456789abcdef01234567"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		file, ok := strings.CutPrefix(r.URL.Path, "/gpt2/resolve/")
		if ok {
			_, file, ok = strings.Cut(file, "/")
		}
		b, err := os.ReadFile(filepath.Join("testdata/gpt2-tiny-bin", file))
		if !ok || err != nil {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("X-Repo-Commit", commit)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

func TestCheckpointName(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"/c/hub/models--openai-community--gpt2/snapshots/607a30d783dfa663caf39e06633721c8d4cfcd7e", "openai-community/gpt2"},
		{"/c/hub/models--gpt2/snapshots/abc/", "gpt2"},
		{"models--gpt2/snapshots/abc", "gpt2"},
		{"/data/my-gpt2", "my-gpt2"},
		{"/data/snapshots/abc", "abc"},       // not under models--*
		{"/c/models--gpt2/blobs/abc", "abc"}, // not a snapshot
		{"checkpoints/gpt2-finetuned", "gpt2-finetuned"},
	} {
		if got := checkpointName(tc.dir); got != tc.want {
			t.Errorf("checkpointName(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}

func TestLoadKnownNameThroughHub(t *testing.T) {
	gotchtest.CheckLeaks(t)
	srv, requests := fakeHub(t)
	cache := t.TempDir()
	opts := []Option{OnDevice(gotchtest.Device(t)), WithHub(hub.WithEndpoint(srv.URL), hub.WithCacheDir(cache), hub.WithProgress(io.Discard))}

	m, err := Load(context.Background(), "gpt2", opts...)
	if err != nil {
		t.Fatal(err)
	}
	// Named by its repository, as TransformerLens names it, not by the
	// snapshot's commit hash that the cache directory carries.
	if m.Cfg.ModelName != "gpt2" {
		t.Errorf("model name %q, want the repository id gpt2", m.Cfg.ModelName)
	}
	m.Free()
	if requests.Load() == 0 {
		t.Fatal("the first load made no request")
	}
	if _, err := os.Stat(filepath.Join(cache, "models--gpt2", "refs", "main")); err != nil {
		t.Errorf("no Python-layout cache after the download: %v", err)
	}

	before := requests.Load()
	m, err = Load(context.Background(), "gpt2-small", opts...) // an alias of the same repository
	if err != nil {
		t.Fatal(err)
	}
	m.Free()
	if requests.Load() != before {
		t.Errorf("loading a cached model made %d requests, want none", requests.Load()-before)
	}

	if _, err := Load(context.Background(), "gpt2-medium", append(opts, WithHub(hub.WithOffline(true)))...); err == nil || !strings.Contains(err.Error(), "gpt2-medium") {
		t.Errorf("an uncached model offline: %v, want an error naming it", err)
	}
}
