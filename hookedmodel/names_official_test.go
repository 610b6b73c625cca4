package hookedmodel

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/golens/golens/hookedmodel/hftest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/hub"
	"github.com/golens/golens/hookedmodel/tokenizer"
	"github.com/golens/golens/hookedmodel/weights"
)

// TestOfficialNames resolves names as TransformerLens's
// get_official_model_name does (supported_models.py: official names and
// aliases, any case), the expectations copied from that file by hand.
func TestOfficialNames(t *testing.T) {
	for _, tc := range []struct{ name, want, modelType string }{
		{"gpt2-small", "gpt2", "gpt2"},
		{"distil-gpt2", "distilgpt2", "gpt2"},
		{"stanford-gpt2-medium-c", "stanford-crfm/celebrimbor-gpt2-medium-x81", "gpt2"},
		{"pythia", "EleutherAI/pythia-70m", "gpt_neox"},
		{"PYTHIA-70M", "EleutherAI/pythia-70m", "gpt_neox"},
		{"EleutherAI/pythia-19m", "EleutherAI/pythia-70m", "gpt_neox"}, // renamed by EleutherAI
		{"pythia-12b-deduped-v0", "EleutherAI/pythia-12b-deduped-v0", "gpt_neox"},
		{"EleutherAI/pythia-14m", "EleutherAI/pythia-14m", "gpt_neox"},
		{"neox", "EleutherAI/gpt-neox-20b", "gpt_neox"},
		{"meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B", "llama"},
		{"meta-llama/llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "llama"},
		{"Llama-2-7b", "meta-llama/Llama-2-7b-hf", "llama"},
		{"mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.1", "mistral"},
		{"qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "qwen2"},
		{"Qwen/Qwen2-7B-Instruct", "Qwen/Qwen2-7B-Instruct", "qwen2"},
		{"gemma-2b", "google/gemma-2b", "gemma"},
		{"gemma-2-2b", "google/gemma-2-2b", "gemma2"},
		{"google/gemma-2-9b-it", "google/gemma-2-9b-it", "gemma2"},
	} {
		m, ok := official(tc.name)
		if !ok || m.name != tc.want || m.modelType != tc.modelType {
			t.Errorf("official(%q) = %v, want %s (%s)", tc.name, m, tc.want, tc.modelType)
		}
	}
	for _, name := range []string{"pythia-71m", "facebook/opt-125m", "google/gemma-3-1b-pt", "Qwen/Qwen3-8B", "", "gpt2/"} {
		if m, ok := official(name); ok {
			t.Errorf("official(%q) = %s, want none (not a model_type golens reads, or no name)", name, m.name)
		}
	}
	// Every name and alias is one entry's, whatever its case.
	seen := map[string]string{}
	for _, m := range officialModels {
		for _, n := range append([]string{m.name}, m.aliases...) {
			if other, dup := seen[strings.ToLower(n)]; dup {
				t.Errorf("%q names both %s and %s", n, other, m.name)
			}
			seen[strings.ToLower(n)] = m.name
		}
	}
	names := OfficialModelNames()
	if len(names) != 127 || !slices.IsSorted(names) || !slices.Contains(names, "EleutherAI/pythia-160m-seed3") {
		t.Errorf("OfficialModelNames: %d names (want TransformerLens's 127 of golens's model_types), sorted %v", len(names), slices.IsSorted(names))
	}
}

// TestCheckpointRevisions picks training checkpoints as from_pretrained's
// checkpoint_index and checkpoint_value do, on TransformerLens's lists
// (loading_from_pretrained.py: Pythia 0, 1, 2, 4, ..., 512, then every
// 1000 steps to 143000; its v0 models every 1000 only; Stanford CRFM's
// GPT-2s every 10, 50, 100, then 1000 steps to 400000), as the hub's
// revisions step{N} and checkpoint-{N}.
func TestCheckpointRevisions(t *testing.T) {
	ip := func(i int) *int { return &i }
	for _, tc := range []struct {
		model        string
		index, value *int
		want, err    string
	}{
		{model: "pythia-70m", index: ip(0), want: "step0"},
		{model: "pythia-70m", index: ip(10), want: "step512"},
		{model: "pythia-70m", index: ip(11), want: "step1000"},
		{model: "pythia-70m", index: ip(153), want: "step143000"},
		{model: "pythia-70m", index: ip(-1), want: "step143000"},
		{model: "pythia-70m", index: ip(154), err: "checkpoint index 154 of EleutherAI/pythia-70m: out of range: it has 154 checkpoints (0 to 153)"},
		{model: "pythia-70m", value: ip(4), want: "step4"},
		{model: "pythia-1.4b-deduped", value: ip(71000), want: "step71000"},
		{model: "pythia-70m", value: ip(3), err: "checkpoint value 3 of EleutherAI/pythia-70m: no such checkpoint (steps 0, 1, ... 143000)"},
		{model: "pythia-70m-v0", index: ip(0), want: "step1000"},
		{model: "pythia-70m-v0", value: ip(512), err: "no such checkpoint"},
		{model: "stanford-gpt2-small-a", index: ip(0), want: "checkpoint-0"},
		{model: "stanford-gpt2-small-a", index: ip(10), want: "checkpoint-100"},
		{model: "stanford-gpt2-small-a", value: ip(1950), want: "checkpoint-1950"},
		{model: "stanford-gpt2-small-a", value: ip(400000), want: "checkpoint-400000"},
		{model: "stanford-gpt2-small-a", value: ip(1975), err: "no such checkpoint"},
		{model: "meta-llama/Llama-3.2-1B", index: ip(0), err: "meta-llama/Llama-3.2-1B has no training checkpoints"},
	} {
		m, _ := official(tc.model)
		got, err := m.checkpointRevision(tc.index, tc.value)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %v %v: %q, %v; want an error saying %q", tc.model, tc.index, tc.value, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s index %v value %v: %q, %v; want %s", tc.model, tc.index, tc.value, got, err, tc.want)
		}
	}
}

// repoHub plays the Hugging Face hub for several repositories, each with
// branches (revisions) that hold checkpoint directories, some gated behind
// a token; it answers resolve requests as huggingface.co does (the commit
// in X-Repo-Commit, the sha256 of an LFS file as its ETag) and records the
// Authorization headers it saw.
type repoHub struct {
	srv    *httptest.Server
	branch map[string]map[string]string // repo -> revision -> directory
	gated  map[string]string            // repo -> the token it wants
	mu     sync.Mutex
	auth   []string
	files  []string // "repo@revision/file" served
}

func newRepoHub(t *testing.T) *repoHub {
	h := &repoHub{branch: map[string]map[string]string{}, gated: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// commit is the commit a repository's revision stands for.
func commitOf(repo, rev string) string {
	s := sha1.Sum([]byte(repo + "@" + rev))
	return hex.EncodeToString(s[:])
}

func (h *repoHub) serve(w http.ResponseWriter, r *http.Request) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/")
	rev, file, _ := strings.Cut(rest, "/")
	h.mu.Lock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	fail := func(status int, code, msg string) {
		w.Header().Set("X-Error-Code", code)
		w.Header().Set("X-Error-Message", msg)
		http.Error(w, msg, status)
	}
	revs, known := h.branch[repo]
	if !ok || !known {
		fail(http.StatusUnauthorized, "RepoNotFound", "Repository Not Found")
		return
	}
	if want, gated := h.gated[repo]; gated {
		switch r.Header.Get("Authorization") {
		case "Bearer " + want:
		case "":
			fail(http.StatusUnauthorized, "GatedRepo", "Access to model "+repo+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
			return
		default:
			fail(http.StatusForbidden, "GatedRepo", "Access to model "+repo+" is restricted and you are not in the authorized list.")
			return
		}
	}
	dir := ""
	for b, d := range revs {
		if rev == b || rev == commitOf(repo, b) {
			dir, rev = d, b
		}
	}
	if dir == "" {
		fail(http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		fail(http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	h.mu.Lock()
	h.files = append(h.files, repo+"@"+rev+"/"+file)
	h.mu.Unlock()
	sum := sha256.Sum256(data)
	w.Header().Set("X-Repo-Commit", commitOf(repo, rev))
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(data))
}

func (h *repoHub) opts(cache string, more ...hub.Option) Option {
	return WithHub(append([]hub.Option{hub.WithEndpoint(h.srv.URL), hub.WithCacheDir(cache), hub.WithProgress(nil), hub.WithToken(""), hub.WithOffline(false)}, more...)...)
}

// Pythia by TransformerLens's alias at a training checkpoint: the hub's
// revision step1000 (a sharded checkpoint: every shard comes down), not
// main; cached under refs/step1000, whence a second load reads it offline.
func TestLoadPythiaCheckpointThroughHub(t *testing.T) {
	gotchtest.CheckLeaks(t)
	h := newRepoHub(t)
	mainCk := hftest.Write(t, "gpt_neox", hftest.Opts{Seed: 1})
	stepCk := hftest.Write(t, "gpt_neox", hftest.Opts{Seed: 2, Shards: 3})
	h.branch["EleutherAI/pythia-70m"] = map[string]string{"main": mainCk.Dir, "step1000": stepCk.Dir}
	cache := t.TempDir()
	ctx := context.Background()
	embed := func(m *HookedTransformer) []float64 { return gotchtest.Values(t, m.WE) }

	m, err := Load(ctx, "pythia-70m", h.opts(cache), WithCheckpointValue(1000), NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(embed(m), stepCk.Values["gpt_neox.embed_in.weight"]) {
		t.Error("checkpoint 1000 has main's weights, not step1000's")
	}
	if m.Cfg.ModelName != "EleutherAI/pythia-70m" {
		t.Errorf("model name %q, want the repository", m.Cfg.ModelName)
	}
	m.Free()
	for s := 1; s <= 3; s++ {
		shard := "EleutherAI/pythia-70m@step1000/model-0000" + itoa(s) + "-of-00003.safetensors"
		if !slices.Contains(h.files, shard) {
			t.Errorf("shard %s was not downloaded (served: %v)", shard, h.files)
		}
	}
	ref, err := os.ReadFile(filepath.Join(cache, "models--EleutherAI--pythia-70m", "refs", "step1000"))
	if err != nil || string(ref) != commitOf("EleutherAI/pythia-70m", "step1000") {
		t.Errorf("refs/step1000 = %q, %v; want the commit", ref, err)
	}

	// Offline, index 11 is step 1000 again, from the cache; main was never
	// downloaded.
	served := len(h.files)
	m, err = Load(ctx, "EleutherAI/pythia-70m", h.opts(cache, hub.WithOffline(true)), WithCheckpointIndex(11), NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(embed(m), stepCk.Values["gpt_neox.embed_in.weight"]) || len(h.files) != served {
		t.Error("the cached checkpoint was not what loaded offline, or the hub was asked")
	}
	m.Free()
	if _, err := Load(ctx, "pythia-70m", h.opts(cache, hub.WithOffline(true)), NoProcessing()); !errors.Is(err, hub.ErrOffline) {
		t.Errorf("main offline, never downloaded: %v, want ErrOffline", err)
	}
	m, err = Load(ctx, "pythia-70m", h.opts(cache), NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(embed(m), mainCk.Values["gpt_neox.embed_in.weight"]) {
		t.Error("main has step1000's weights")
	}
	m.Free()

	// Bad picks fail before any download, naming what was wrong.
	for _, tc := range []struct {
		model string
		opts  []Option
		want  string
	}{
		{"pythia-70m", []Option{WithCheckpointValue(1001)}, "checkpoint value 1001 of EleutherAI/pythia-70m: no such checkpoint"},
		{"pythia-70m", []Option{WithCheckpointValue(1000), WithRevision("main")}, "give one"},
		{"EleutherAI/other", []Option{WithCheckpointIndex(0)}, "for another repository give its revision"},
		{"pythia-70m", []Option{WithRevision("step7")}, `revision "step7" of EleutherAI/pythia-70m: not found`},
	} {
		before := len(h.files)
		_, err := Load(ctx, tc.model, append(tc.opts, h.opts(t.TempDir()))...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || len(h.files) != before {
			t.Errorf("%s %d options: %v, want an error saying %q and no download", tc.model, len(tc.opts), err, tc.want)
		}
	}
}

// A gated repository (Llama 3.2) loads with the token from HF_TOKEN, which
// goes to the hub as a bearer token; without it, or with a token without
// access, the error says the repository is gated and how to set HF_TOKEN,
// and never shows a token.
func TestLoadGatedThroughHub(t *testing.T) {
	gotchtest.CheckLeaks(t)
	h := newRepoHub(t)
	ck := hftest.Write(t, "llama", hftest.Opts{Seed: 3, DType: weights.BF16, Shards: 2,
		Edit: func(c map[string]any) { delete(c, "rope_scaling") }}) // Llama 3.1's rope_scaling is not golens's yet
	const repo, secret = "meta-llama/Llama-3.2-1B", "hf_test_secret"
	h.branch[repo] = map[string]string{"main": ck.Dir}
	h.gated[repo] = secret
	ctx := context.Background()
	cache := t.TempDir()
	plain := []hub.Option{hub.WithEndpoint(h.srv.URL), hub.WithCacheDir(cache), hub.WithProgress(nil), hub.WithOffline(false)}
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"} {
		t.Setenv(k, "")
	}
	t.Setenv("HF_HOME", t.TempDir()) // no token file

	_, err := Load(ctx, repo, WithHub(plain...))
	for _, s := range []string{"repository meta-llama/Llama-3.2-1B is gated", "401", "accept its terms at " + h.srv.URL + "/" + repo, "set HF_TOKEN"} {
		if !errors.Is(err, hub.ErrAccess) || !strings.Contains(err.Error(), s) {
			t.Errorf("without a token: %v, want ErrAccess saying %q", err, s)
		}
	}
	t.Setenv("HF_TOKEN", "hf_no_access")
	_, err = Load(ctx, repo, WithHub(plain...))
	if !errors.Is(err, hub.ErrAccess) || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "token in use (from HF_TOKEN) has no access") || strings.Contains(err.Error(), "hf_no_access") {
		t.Errorf("with a token without access: %v, want ErrAccess naming HF_TOKEN but not its value", err)
	}

	t.Setenv("HF_TOKEN", secret)
	m, err := Load(ctx, repo, WithHub(plain...), NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if !slices.Equal(gotchtest.Values(t, m.WE), ck.Values["model.embed_tokens.weight"]) || m.Cfg.ModelName != repo {
		t.Errorf("loaded %q, not the gated checkpoint", m.Cfg.ModelName)
	}
	if !slices.Contains(h.auth, "Bearer "+secret) {
		t.Errorf("the hub never saw the token as a bearer token: %q", h.auth)
	}
	// Through the cache now: TransformerLens's name in another case needs
	// neither the network nor the token.
	t.Setenv("HF_TOKEN", "")
	again, err := Load(ctx, "META-LLAMA/llama-3.2-1b", WithHub(append(plain, hub.WithOffline(true))...), NoProcessing(), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	again.Free()
}

// TestLoadByNameFetchesTokenizer: a model loaded by name through the hub
// brings its repository's tokenizer.json into the cache beside its weights,
// so the model tokenizes text with it and TokenizerOf finds it offline; a
// repository without one loads all the same, with no tokenizer.
func TestLoadByNameFetchesTokenizer(t *testing.T) {
	gotchtest.CheckLeaks(t)
	h := newRepoHub(t)
	with := hftest.Write(t, "llama", hftest.Opts{Seed: 4})
	// A WordPiece-style BPE of 10 tokens, within the model's 20 (written
	// here: the GPU bundle carries no other package's testdata).
	tokJSON := []byte(`{"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
		"post_processor": null, "decoder": null, "model": {"type": "BPE", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
		"vocab": {"[UNK]": 0, "a": 1, "b": 2, "c": 3, "##a": 4, "##b": 5, "##c": 6, "ab": 7, "abc": 8, "##bc": 9},
		"merges": ["a ##b", "ab ##c", "##b ##c"]}}`)
	if err := os.WriteFile(filepath.Join(with.Dir, "tokenizer.json"), tokJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	without := hftest.Write(t, "llama", hftest.Opts{Seed: 5})
	h.branch["org/with-tokenizer"] = map[string]string{"main": with.Dir}
	h.branch["Qwen/Qwen2.5-0.5B"] = map[string]string{"main": with.Dir} // an official name, for TokenizerOf
	h.branch["org/without-tokenizer"] = map[string]string{"main": without.Dir}
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	opts := []hub.Option{hub.WithEndpoint(h.srv.URL), hub.WithCacheDir(cache), hub.WithProgress(nil), hub.WithOffline(false)}
	ctx := context.Background()
	want, err := tokenizer.Parse(tokJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"org/with-tokenizer", "Qwen/Qwen2.5-0.5B"} {
		m, err := Load(ctx, repo, WithHub(opts...), OnDevice(gotchtest.Device(t)))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := m.ToTokens([]string{"abc ab"}, PrependBOS(false))
		m.Free()
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		got := gotchtest.Values(t, tok)
		tok.Free()
		if ids := want.Encode("abc ab"); len(got) != len(ids) || got[0] != float64(ids[0]) || got[1] != float64(ids[1]) {
			t.Errorf("%s tokenizes %v, its tokenizer.json %v", repo, got, ids)
		}
	}
	tk, err := TokenizerOf("qwen2.5-0.5b") // offline, from the cache
	if err != nil || tk.VocabSize() != 10 {
		t.Errorf("TokenizerOf through the cache: %v, %v", tk, err)
	}
	m, err := Load(ctx, "org/without-tokenizer", WithHub(opts...), OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if _, err := m.ToTokens([]string{"abc"}); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("a model without a tokenizer tokenized text (%v)", err)
	}
}
