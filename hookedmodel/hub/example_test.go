package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/golens/golens/hookedmodel/hub"
)

func ExampleResolve() {
	// A stand-in for huggingface.co serving one commit of "acme/tiny-gpt",
	// which has a pytorch_model.bin and no model.safetensors.
	const commit = "0123456789abcdef0123456789abcdef01234567"
	files := map[string]string{
		"config.json":       `{"n_layer": 1}`,
		"pytorch_model.bin": "weights",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		body, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Repo-Commit", commit)
		w.Header().Set("ETag", `"etag-of-`+name+`"`)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()

	cache, err := os.MkdirTemp("", "hub-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(cache)

	dir, err := hub.Resolve(context.Background(), "acme/tiny-gpt",
		[]hub.Want{{"config.json"}, {"model.safetensors", "pytorch_model.bin"}},
		hub.WithEndpoint(srv.URL), hub.WithCacheDir(cache), hub.WithProgress(nil))
	if err != nil {
		log.Fatal(err)
	}
	rel, _ := filepath.Rel(cache, dir)
	fmt.Println(filepath.ToSlash(rel))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// models--acme--tiny-gpt/snapshots/0123456789abcdef0123456789abcdef01234567
	// config.json
	// pytorch_model.bin
}
