package hookedmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/hub"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
	"github.com/golens/golens/hookedmodel/weights"
)

// WithProcessing sets the weight processing Load applies (default
// DefaultProcessing, as from_pretrained, for Hugging Face checkpoints;
// none for golens checkpoints, whose weights are loaded as saved). On a
// golens checkpoint it is applied to the saved weights, after whatever
// processing they already went through (Processing says both). Steps
// that would change the model's log-probabilities are skipped; see
// Process.
func WithProcessing(pr Processing) Option { return func(o *options) { o.processing = &pr } }

// NoProcessing loads the weights as they are, as
// from_pretrained_no_processing does.
func NoProcessing() Option { return WithProcessing(Processing{}) }

// WithConfig edits the config before the model is built, e.g. to switch
// on optional hook points (use_attn_result, use_split_qkv_input, ...), as
// from_pretrained's config overrides do. Every edit takes effect or the
// loader fails naming the field: a field the checkpoint's weights fix (a
// size, attn_only, normalization_type, act_fn to or from solu_ln, ...),
// one only New reads (seed, initializer_range) and n_params, which is
// derived, cannot change on a loaded model.
func WithConfig(edit func(*Config)) Option {
	return func(o *options) { o.edits = append(o.edits, edit) }
}

// WithHub passes options to the Hugging Face hub client (endpoint, cache
// directory, token, progress output).
func WithHub(opts ...hub.Option) Option { return func(o *options) { o.hub = append(o.hub, opts...) } }

// ErrNonFinite is wrapped by the loaders' error for a weight holding a NaN
// or an infinity, which would make every loss NaN.
var ErrNonFinite = errors.New("not finite")

// AllowNonFinite loads weights that hold NaN or infinite values, which the
// loaders otherwise refuse with ErrNonFinite (to study a broken checkpoint,
// say).
func AllowNonFinite() Option { return func(o *options) { o.allowNonFinite = true } }

// Load opens a model from a Hugging Face checkpoint directory (config.json
// with model.safetensors or pytorch_model.bin, sharded or not), a golens
// checkpoint file written by Save, or by name: one of TransformerLens's
// (gpt2, pythia-70m, meta-llama/Llama-3.2-1B, Qwen/Qwen2.5-0.5B, ...; see
// OfficialModelNames) or any hub repository "org/name", found in the local
// Hugging Face cache or downloaded (gated repositories need HF_TOKEN), at a
// revision or training checkpoint when asked (WithRevision,
// WithCheckpointIndex, WithCheckpointValue). Weights are processed as
// from_pretrained does unless NoProcessing.
func Load(ctx context.Context, model string, opts ...Option) (*HookedTransformer, error) {
	if err := gotch.Available(); err != nil { // before any download
		return nil, fmt.Errorf("load %q: %w", model, err)
	}
	o := collect(opts)
	path, err := locate(ctx, model, o)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", model, err)
	}
	ck, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", model, err)
	}
	defer ck.Close()
	m, err := loadCheckpoint(ck, nil, path, o)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", model, err)
	}
	return m, nil
}

// LoadFS opens a model as Load does, from fsys (an embed.FS, os.DirFS, an
// fstest.MapFS holding bytes, ...) instead of the operating system's
// files, writing nothing to disk: name (slash-separated, as fs.FS names
// are) is a golens checkpoint file written by Save, or a Hugging Face
// checkpoint directory or file (config.json beside it) as Load takes.
// Names are not looked up on the hub. Options are Load's.
func LoadFS(ctx context.Context, fsys fs.FS, name string, opts ...Option) (*HookedTransformer, error) {
	if err := gotch.Available(); err != nil {
		return nil, fmt.Errorf("load %q: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %q: %w", name, err)
	}
	ck, err := weights.OpenFS(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", name, err)
	}
	defer ck.Close()
	m, err := loadCheckpoint(ck, fsys, name, collect(opts))
	if err != nil {
		return nil, fmt.Errorf("load %q: %w", name, err)
	}
	return m, nil
}

// loadCheckpoint builds the model ck holds, read from path in fsys (nil:
// the operating system's files).
func loadCheckpoint(ck *weights.Checkpoint, fsys fs.FS, path string, o options) (*HookedTransformer, error) {
	cfg, err := checkpointConfig(ck, fsys, path)
	if err != nil {
		return nil, err
	}
	if _, ok := ck.Metadata()[golensConfigKey]; ok {
		return loadGolens(ck, cfg, o)
	}
	tk, err := dirTokenizer(fsys, path, cfg.DVocab)
	if err != nil {
		return nil, err
	}
	m, err := loadHF(ck, cfg, o)
	if err == nil && tk != nil {
		m.Tokenizer = tk
	}
	return m, err
}

// checkpointConfig is the config of the checkpoint ck at path in fsys
// (nil: the operating system's files), validated: a golens checkpoint's
// header's, or that of the config.json beside a Hugging Face checkpoint.
func checkpointConfig(ck *weights.Checkpoint, fsys fs.FS, path string) (Config, error) {
	cfgJSON, ok := ck.Metadata()[golensConfigKey]
	if !ok {
		return hfConfig(fsys, path)
	}
	var cfg Config
	err := json.Unmarshal([]byte(cfgJSON), &cfg)
	if err == nil {
		err = cfg.Init()
	}
	if err != nil {
		return Config{}, fmt.Errorf("config in the checkpoint header: %w", err)
	}
	return cfg, nil
}

// hfConfig reads the config.json of the Hugging Face checkpoint at path
// (its folder, or a weights file in it) in fsys (nil: the operating
// system's files).
func hfConfig(fsys fs.FS, path string) (Config, error) {
	dir := checkpointDir(fsys, path)
	return hfModelConfig(fsys, dir, checkpointName(filepath.ToSlash(dir)))
}

// TokenizerOf returns the tokenizer a model loaded from model gets,
// reading only its config and tokenizer files (neither its weights nor the
// network): model is a checkpoint path, as Load takes, or a known name
// (gpt2, gpt2-medium, ...). A Hugging Face checkpoint's tokenizer.json is
// its tokenizer; without one, a model whose vocabulary is GPT-2's gets
// GPT-2's, and any other has none, which is an error saying so.
func TokenizerOf(model string) (*tokenizer.Tokenizer, error) {
	fi, err := os.Stat(model)
	if err != nil {
		m, ok := official(model)
		switch {
		case ok && m.modelType == "gpt2" || isGPT2Tokenizer(model):
			return tokenizer.GPT2(), nil
		case ok:
			return cachedTokenizer(m.name)
		}
		return nil, fmt.Errorf("no tokenizer known for model %q: no such file or directory, and not a known model name (golens has GPT-2's tokenizer: gpt2 names it)", model)
	}
	var cfg Config
	hf := fi.IsDir()
	if hf {
		cfg, err = hfConfig(nil, model)
	} else {
		var ck *weights.Checkpoint
		if ck, err = weights.Open(model); err == nil {
			_, golens := ck.Metadata()[golensConfigKey]
			hf = !golens
			cfg, err = checkpointConfig(ck, nil, model)
			ck.Close()
		}
	}
	var tk *tokenizer.Tokenizer
	if err == nil && hf {
		tk, err = dirTokenizer(nil, model, cfg.DVocab)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer of %q: %w", model, err)
	}
	if tk != nil {
		return tk, nil
	}
	if t := cfg.tokenizer(); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("model %q has no tokenizer: its vocabulary has %d tokens, not GPT-2's %d, and no tokenizer.json is beside it; its inputs are token ids", model, cfg.DVocab, gpt2VocabSize())
}

// cachedTokenizer is the tokenizer.json of repo in the Hugging Face cache,
// as Load fetched it with the weights.
func cachedTokenizer(repo string) (*tokenizer.Tokenizer, error) {
	dir, err := hub.Resolve(context.Background(), repo, []hub.Want{{"tokenizer.json"}}, hub.WithOffline(true), hub.WithProgress(nil))
	if err != nil {
		return nil, fmt.Errorf("model %q: its tokenizer.json is not in the Hugging Face cache (load the model once, or give its directory): %w", repo, err)
	}
	return tokenizer.Load(dir)
}

// locate finds the checkpoint: a path as given, else a name through the
// hub cache (offline first, under each name Python may have cached it), at
// the revision o asks for.
func locate(ctx context.Context, model string, o options) (string, error) {
	if _, err := os.Stat(model); err == nil {
		if o.revision != "" || o.checkpointIndex != nil || o.checkpointValue != nil {
			return "", fmt.Errorf("a revision or checkpoint picks a version of a hub repository; %q is a local path", model)
		}
		return model, nil
	}
	m, ok := official(model)
	var repos []string
	switch {
	case ok:
		repos = []string{m.name}
		if moved, ok := movedRepos[m.name]; ok {
			repos = append(repos, moved)
		}
	case looksLikePath(model):
		return "", fmt.Errorf("no such file or directory: %s", missingPart(model))
	case !strings.Contains(model, "/"):
		return "", fmt.Errorf("no such file or directory, and not a known model name (TransformerLens's names such as gpt2, pythia-70m or Qwen/Qwen2.5-0.5B, which hookedmodel.OfficialModelNames lists, or a hub repository org/name)")
	default:
		repos = []string{model}
	}
	rev, err := o.revisionOf(m)
	if err != nil {
		return "", err
	}
	if rev != "" {
		o.hub = append(slices.Clip(o.hub), hub.WithRevision(rev))
	}
	want := []hub.Want{{"config.json"}, {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}}
	for _, repo := range repos {
		if dir, err := hub.Resolve(ctx, repo, want, append(slices.Clip(o.hub), hub.WithOffline(true))...); err == nil {
			return withTokenizer(ctx, repo, dir, o, false)
		}
	}
	// Download under the name TransformerLens's from_pretrained uses, so
	// Python finds the same cache.
	dir, err := hub.Resolve(ctx, repos[0], want, o.hub...)
	if err != nil {
		if !ok { // "org/name" may be a mistyped local path as well
			return "", fmt.Errorf("no such file or directory, and as a hub repository: %w", err)
		}
		return "", err
	}
	return withTokenizer(ctx, repos[0], dir, o, true)
}

// tokenizerFiles are what a repository's tokenizer is made of, beside its
// weights; a repository may have none.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json"}

// withTokenizer fetches the shards of the checkpoint in dir and, when
// online (the weights were just downloaded), the repository's tokenizer
// files, so that the snapshot directory holds the model's tokenizer as it
// holds its weights; a model found in the cache makes no request. A file
// the repository does not have, or that offline mode cannot fetch, is left
// out: the model then has no tokenizer (or GPT-2's, by its vocabulary), as
// a directory without one does.
func withTokenizer(ctx context.Context, repo, dir string, o options, online bool) (string, error) {
	dir, err := shards(ctx, repo, dir, o)
	if err != nil || !online {
		return dir, err
	}
	for _, f := range tokenizerFiles {
		want := []hub.Want{{f}}
		if _, err := hub.Resolve(ctx, repo, want, append(slices.Clip(o.hub), hub.WithOffline(true))...); err == nil {
			continue
		}
		_, err := hub.Resolve(ctx, repo, want, o.hub...)
		if err != nil && !errors.Is(err, hub.ErrNotFound) && !errors.Is(err, hub.ErrOffline) {
			return "", fmt.Errorf("%s's tokenizer: %w", repo, err)
		}
	}
	return dir, nil
}

// shards fetches the files a sharded checkpoint's index names.
func shards(ctx context.Context, repo, dir string, o options) (string, error) {
	for _, index := range []string{"model.safetensors.index.json", "pytorch_model.bin.index.json"} {
		b, err := safefile.Read(filepath.Join(dir, index), safefile.JSONLimit)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return "", fmt.Errorf("%s: %w", index, err)
		}
		var want []hub.Want
		seen := map[string]bool{}
		for _, f := range idx.WeightMap {
			if !seen[f] {
				seen[f] = true
				want = append(want, hub.Want{f})
			}
		}
		return hub.Resolve(ctx, repo, want, o.hub...)
	}
	return dir, nil
}

// looksLikePath tells a missing file from a hub repository "org/name": an
// absolute or dotted path, more than two parts, an extension, or a first
// part that is a local folder (the hub is never asked for "models/foo"
// when ./models exists).
func looksLikePath(s string) bool {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.Count(s, "/") > 1 || filepath.Ext(s) != "" {
		return true
	}
	org, _, ok := strings.Cut(s, "/")
	fi, err := os.Stat(org)
	return ok && err == nil && fi.IsDir()
}

// missingPart says which part of path does not exist: the first missing
// element below the deepest folder that does.
func missingPart(path string) string {
	clean := filepath.Clean(path)
	for p := clean; ; {
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Sprintf("%q does not exist", clean)
		}
		if fi, err := os.Stat(parent); err == nil {
			if !fi.IsDir() {
				return fmt.Sprintf("%q is a file, not a folder", parent)
			}
			return fmt.Sprintf("%q has no %q", parent, filepath.Base(p))
		}
		p = parent
	}
}

// hfGPT2Config is the part of a Hugging Face GPT-2 config.json golens reads.
type hfGPT2Config struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures"`
	NLayer        int      `json:"n_layer"`
	NEmbd         int      `json:"n_embd"`
	NHead         int      `json:"n_head"`
	NPositions    int      `json:"n_positions"`
	NInner        *int     `json:"n_inner"`
	VocabSize     int      `json:"vocab_size"`
	Activation    string   `json:"activation_function"`
	Eps           *float64 `json:"layer_norm_epsilon"` // absent: 1e-5, GPT2Config's default
	ScaleByIdx    bool     `json:"scale_attn_by_inverse_layer_idx"`
	ScaleWeights  *bool    `json:"scale_attn_weights"` // absent: true, GPT2Config's default
	ReorderUpcast bool     `json:"reorder_and_upcast_attn"`
}

// gpt2Config converts the Hugging Face GPT-2 config.json b (read from
// path) as TransformerLens's convert_hf_model_config does.
func gpt2Config(path string, b []byte, name string) (Config, error) {
	var hf hfGPT2Config
	if err := json.Unmarshal(b, &hf); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", path, err)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"n_layer", hf.NLayer}, {"n_embd", hf.NEmbd}, {"n_head", hf.NHead}, {"n_positions", hf.NPositions}, {"vocab_size", hf.VocabSize}} {
		if f.v <= 0 {
			return Config{}, fmt.Errorf("%s: %s must be positive, got %d", path, f.key, f.v)
		}
	}
	if hf.NEmbd%hf.NHead != 0 {
		return Config{}, fmt.Errorf("%s: n_embd %d is not a multiple of n_head %d", path, hf.NEmbd, hf.NHead)
	}
	if hf.NInner != nil && *hf.NInner <= 0 {
		return Config{}, fmt.Errorf("%s: n_inner must be positive or null (4 n_embd), got %d", path, *hf.NInner)
	}
	eps := 1e-5
	if hf.Eps != nil {
		if eps = *hf.Eps; !(eps > 0) {
			return Config{}, fmt.Errorf("%s: layer_norm_epsilon must be positive, got %g", path, eps)
		}
	}
	c := DefaultConfig()
	c.ModelName = name
	c.OriginalArchitecture = "GPT2LMHeadModel"
	c.NLayers, c.DModel, c.NHeads, c.DHead = hf.NLayer, hf.NEmbd, hf.NHead, hf.NEmbd/hf.NHead
	c.DMLP = 4 * hf.NEmbd
	if hf.NInner != nil {
		c.DMLP = *hf.NInner
	}
	c.NCtx, c.DVocab, c.ActFn, c.Eps = hf.NPositions, hf.VocabSize, hf.Activation, eps
	if hf.VocabSize >= gpt2VocabSize() {
		// config.json does not name the tokenizer; a GPT-2-family
		// checkpoint with GPT-2's vocabulary is taken to use GPT-2's.
		c.TokenizerName = "gpt2"
	}
	c.AttnScaleByIdx, c.ReorderUpcastAttn = hf.ScaleByIdx, hf.ReorderUpcast
	// GPT2Attention divides the scores by sqrt(d_head) only when
	// scale_attn_weights is set; TransformerLens's use_attn_scale.
	c.UseAttnScale = hf.ScaleWeights == nil || *hf.ScaleWeights
	if err := c.Init(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// checkpointName names the model in a Hugging Face checkpoint directory
// (slash-separated): its repository id ("openai-community/gpt2") when dir
// is a snapshot in a hub cache (models--{org}--{name}/snapshots/{commit},
// where the hub downloads to), else the directory's base name.
func checkpointName(dir string) string {
	dir = pathpkg.Clean(dir)
	parent, commit := pathpkg.Split(dir)
	repoDir, snapshots := pathpkg.Split(pathpkg.Clean(parent))
	repo := pathpkg.Base(repoDir)
	if commit != "" && snapshots == "snapshots" && strings.HasPrefix(repo, "models--") {
		return strings.ReplaceAll(strings.TrimPrefix(repo, "models--"), "--", "/")
	}
	return pathpkg.Base(dir)
}

func loadHF(ck *weights.Checkpoint, cfg Config, o options) (*HookedTransformer, error) {
	m, err := buildWith(cfg, o)
	if err != nil {
		return nil, err
	}
	fill := func() error { return m.fill(ck, gpt2Table(m, ck), o) }
	if a, ok := hfArchOf(cfg); ok { // a model_type of load_hf.go
		fill = func() error { return m.fillHF(ck, a, o) }
	}
	if err := fill(); err != nil {
		m.Free()
		return nil, err
	}
	return m.finish(o)
}

// buildWith builds the model of a checkpoint's config cfg (validated) after
// the caller's edits (WithConfig, WithDType), each of which takes effect or
// is an error (see checkEdit).
func buildWith(cfg Config, o options) (*HookedTransformer, error) {
	edited := cfg
	for _, e := range o.edits {
		if e != nil {
			e(&edited)
		}
	}
	if o.dtype != "" {
		edited.DType = o.dtype
	}
	for _, f := range changedFields(edited, cfg) {
		if err := checkEdit(cfg, f); err != nil {
			return nil, fmt.Errorf("config edit %s=%s: %w", f.name, jsonValue(f.now), err)
		}
	}
	m, err := build(edited, o.device)
	if err != nil {
		return nil, fmt.Errorf("config edits: %w", err)
	}
	return m, nil
}

// checkEdit says why the loaded model's config cfg cannot take the change
// f, or nil when it can: the checkpoint's weights fix every field their
// names or shapes depend on; seed and initializer_range only shape the
// weights New draws; n_params is derived. The rest (hook switches, eps,
// act_fn between activations without weights, dtype, labels, ...) apply.
func checkEdit(cfg Config, f fieldChange) error {
	one := cfg
	reflect.ValueOf(&one).Elem().Field(f.index).Set(f.now)
	switch f.name {
	case "n_params":
		return fmt.Errorf("n_params is derived from the other fields (%d here) and cannot be set", cfg.NParams)
	case "seed", "initializer_range":
		return fmt.Errorf("%s only affects the weights New initialises; a loaded model's weights come from its checkpoint", f.name)
	}
	if err := one.Init(); err != nil {
		return err
	}
	was := weightShapes(cfg)
	if f.name == "n_layers" || !slices.Equal(weightShapes(one), was) {
		return fmt.Errorf("the checkpoint's weights fix %s at %s; it cannot change on a loaded model", f.name, jsonValue(f.was))
	}
	return nil
}

// weightShapes lists the names and shapes of the weights a model of the
// valid config c has, for one block (every block has the same) so that a
// config claiming many layers costs nothing.
func weightShapes(c Config) []string {
	c.NLayers = 1
	if c.AttnTypes.Len() > 0 {
		c.AttnTypes = c.AttnTypes[:1] // local or global, a block has the same weights
	}
	m, err := build(c, gotch.CPU) // no tensors yet: only the structure
	if err != nil {
		return []string{err.Error()}
	}
	var ws []string
	for _, p := range m.params() {
		ws = append(ws, fmt.Sprint(p.name, p.shape))
	}
	return ws
}

// jsonValue is v as JSON: as --set and config files spell it.
func jsonValue(v reflect.Value) string {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	return string(b)
}

// finish attaches the tokenizer, processes the weights and makes the
// views, leaving a ready model (or freeing it on error).
func (m *HookedTransformer) finish(o options) (*HookedTransformer, error) {
	m.attachTokenizer()
	if err := gotch.Try(m.prepare); err != nil {
		m.Free()
		return nil, err
	}
	pr := DefaultProcessing
	if o.processing != nil {
		pr = *o.processing
	}
	if err := m.Process(pr); err != nil {
		m.Free()
		return nil, fmt.Errorf("process weights: %w", err)
	}
	return m, nil
}

// source says where one weight comes from in a checkpoint.
type source struct {
	dst       **gotch.Tensor
	key       string  // checkpoint key; "" makes zeros
	shape     []int64 // the shape in the checkpoint
	transpose bool    // stored [in out] (GPT-2's Conv1D), wanted [out in]
}

// gpt2Table maps a GPT-2 checkpoint's keys onto the model's weights.
// Checkpoints written by GPT2LMHeadModel prefix them with "transformer.";
// GPT2Model's do not.
func gpt2Table(m *HookedTransformer, ck *weights.Checkpoint) []source {
	c := m.Cfg
	pre := ""
	if slices.Contains(ck.Keys(), "transformer.wte.weight") {
		pre = "transformer."
	}
	dm, hd, f, v := int64(c.DModel), int64(c.NHeads*c.DHead), int64(c.DMLP), int64(c.DVocab)
	t := []source{
		{&m.WE, pre + "wte.weight", []int64{v, dm}, false},
		{&m.WPos, pre + "wpe.weight", []int64{int64(c.NCtx), dm}, false},
	}
	ln := func(l *LayerNorm, key string) {
		t = append(t, source{&l.W, key + ".weight", []int64{dm}, false}, source{&l.B, key + ".bias", []int64{dm}, false})
	}
	for l, b := range m.Blocks {
		h := fmt.Sprintf("%sh.%d.", pre, l)
		ln(b.Ln1, h+"ln_1")
		ln(b.Ln2, h+"ln_2")
		t = append(t,
			source{&b.Attn.WQKV, h + "attn.c_attn.weight", []int64{dm, 3 * hd}, true},
			source{&b.Attn.BQKV, h + "attn.c_attn.bias", []int64{3 * hd}, false},
			source{&b.Attn.WO, h + "attn.c_proj.weight", []int64{hd, dm}, true},
			source{&b.Attn.BO, h + "attn.c_proj.bias", []int64{dm}, false},
			source{&b.MLP.WIn, h + "mlp.c_fc.weight", []int64{dm, f}, true},
			source{&b.MLP.BIn, h + "mlp.c_fc.bias", []int64{f}, false},
			source{&b.MLP.WOut, h + "mlp.c_proj.weight", []int64{f, dm}, true},
			source{&b.MLP.BOut, h + "mlp.c_proj.bias", []int64{dm}, false})
	}
	ln(m.LnFinal, pre+"ln_f")
	unembed := pre + "wte.weight" // tied to the embedding unless the checkpoint has its own head
	if slices.Contains(ck.Keys(), "lm_head.weight") {
		unembed = "lm_head.weight"
	}
	return append(t,
		source{&m.WU, unembed, []int64{v, dm}, false},
		source{&m.BU, "", []int64{v}, false})
}

// gpt2Buffers are checkpoint entries that are not weights.
func ignoredKey(k string) bool {
	return strings.HasSuffix(k, ".attn.bias") || strings.HasSuffix(k, ".attn.masked_bias") ||
		// GPT-NeoX's causal-mask buffers and the rotary frequencies older
		// Pythia and Llama checkpoints hold (golens computes them).
		strings.HasSuffix(k, ".attention.bias") || strings.HasSuffix(k, ".attention.masked_bias") ||
		strings.HasSuffix(k, ".rotary_emb.inv_freq")
}

var wdtypes = map[weights.DType]gotch.DType{
	weights.F32: gotch.Float, weights.F64: gotch.Double, weights.F16: gotch.Half, weights.BF16: gotch.BFloat16,
	weights.I64: gotch.Int64, weights.I32: gotch.Int32, weights.U8: gotch.Uint8, weights.BOOL: gotch.Bool,
}

// fill reads every weight of table from ck, checking each key's presence
// and shape, that the checkpoint holds nothing the config cannot place
// (which means the two disagree), and unless o allows it that each weight
// is finite.
func (m *HookedTransformer) fill(ck *weights.Checkpoint, table []source, o options) error {
	if err := m.checkTable(ck, table); err != nil {
		return err
	}
	r := m.newWeightReader(ck, table, o)
	for _, src := range table {
		t, err := r.read(src)
		if err != nil {
			return err
		}
		*src.dst = t
	}
	return nil
}

// checkTable checks, before anything is read, that ck holds each key of
// table in its shape and nothing the table cannot place.
func (m *HookedTransformer) checkTable(ck *weights.Checkpoint, table []source) error {
	used := map[string]bool{}
	for _, src := range table {
		if src.key != "" {
			if err := ck.Expect(src.key, src.shape...); err != nil {
				return fmt.Errorf("%w (config: %d layers, d_model %d, d_vocab %d, n_ctx %d)", err, m.Cfg.NLayers, m.Cfg.DModel, m.Cfg.DVocab, m.Cfg.NCtx)
			}
			used[src.key] = true
		}
	}
	var extra []string
	for _, k := range ck.Keys() {
		if !used[k] && !ignoredKey(k) {
			extra = append(extra, strconv.Quote(k))
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		if len(extra) > 5 {
			extra = append(extra[:5], fmt.Sprintf("and %d more", len(extra)-5))
		}
		return fmt.Errorf("the checkpoint has weights the config does not account for: %s", strings.Join(extra, ", "))
	}
	return nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// ---- golens checkpoints

const (
	golensConfigKey     = "golens_config"
	golensProcessingKey = "golens_processing" // the ProcessingRecord as JSON
)

// Save writes the model's weights and config to one safetensors file (the
// config and the ProcessingRecord as JSON in the header metadata) that
// Load reads back exactly.
func (m *HookedTransformer) Save(path string) error {
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return err
	}
	var names []string
	ts := map[string]*gotch.Tensor{}
	for _, p := range m.params() {
		names = append(names, p.name)
		ts[p.name] = *p.ptr
	}
	processed, err := json.Marshal(m.processed)
	if err != nil {
		return err
	}
	meta := map[string]string{golensConfigKey: string(cfg), golensProcessingKey: string(processed), "format": "golens"}
	if err := WriteSafetensors(path, names, ts, meta); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

// WriteSafetensors writes the named tensors, in that order and in their
// own dtypes, to a safetensors file with the given header metadata.
func WriteSafetensors(path string, names []string, ts map[string]*gotch.Tensor, meta map[string]string) error {
	if path == "" {
		return fmt.Errorf("write safetensors: empty path")
	}
	var out []*weights.Tensor
	for _, k := range names {
		t := ts[k]
		if t == nil {
			return fmt.Errorf("write safetensors %q: no tensor for name %q", path, k)
		}
		b, err := t.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, &weights.Tensor{Name: k, DType: wdtypeOf(t.DType()), Shape: t.Shape(), Data: b})
	}
	return weights.WriteSafetensors(path, out, meta)
}

func wdtypeOf(d gotch.DType) weights.DType {
	for k, v := range wdtypes {
		if v == d {
			return k
		}
	}
	return ""
}

func loadGolens(ck *weights.Checkpoint, cfg Config, o options) (*HookedTransformer, error) {
	var processed ProcessingRecord // checkpoints before the record: none known
	if pj, ok := ck.Metadata()[golensProcessingKey]; ok {
		if err := json.Unmarshal([]byte(pj), &processed); err != nil {
			return nil, fmt.Errorf("processing record in the checkpoint header: %w", err)
		}
	}
	m, err := buildWith(cfg, o)
	if err != nil {
		return nil, err
	}
	var table []source
	for _, p := range m.params() {
		table = append(table, source{dst: p.ptr, key: p.name, shape: p.shape})
	}
	if err := m.fill(ck, table, o); err != nil {
		m.Free()
		return nil, err
	}
	m.processed = processed
	if o.processing == nil {
		o.processing = &Processing{} // saved weights are loaded as saved unless asked
	}
	return m.finish(o)
}
