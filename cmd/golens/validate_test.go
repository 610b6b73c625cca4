package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/backend"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/weights"
	"github.com/spf13/cobra"
)

// hfTiny is the Hugging Face GPT-2 checkpoint of hookedmodel's testdata:
// 2 layers, d_model 16, 4 heads of 4, d_mlp 40, n_ctx 16, vocabulary 29.
const hfTiny = "../../hookedmodel/testdata/gpt2-tiny-bin"

// setCase is one --set key with a valid and an invalid value. An empty
// validErr means the valid value takes effect (the loaded model's config
// holds it); otherwise loading fails saying validErr, which for a field
// the checkpoint's weights fix says so. invalid "" marks a free-text label,
// which takes any value.
type setCase struct {
	key, valid, validErr, invalid, invalidErr string
}

var setCases = []setCase{
	{"n_layers", "3", "the checkpoint's weights fix n_layers at 2; it cannot change on a loaded model", "-1", "n_layers must be positive, got -1"},
	{"d_model", "32", "fix d_model at 16", "0", "d_model must be positive, got 0"},
	{"n_ctx", "8", "fix n_ctx at 16", "x", `--set n_ctx="x": want a whole number`},
	{"d_head", "8", "fix d_head at 4", "-2", "d_head must be positive, got -2"},
	{"model_name", "mine", "", "", ""},
	{"n_heads", "2", "fix n_heads at 4", "-5", "n_heads must be positive (or -1 for d_model / d_head), got -5"},
	{"d_mlp", "64", "fix d_mlp at 40", "-1", "d_mlp must be positive (or 0 for 4 d_model), got -1"},
	{"act_fn", "relu", "", "tanh", `act_fn "tanh" is not supported (want relu, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, silu or solu_ln)`},
	{"d_vocab", "30", "fix d_vocab at 29", "0", "d_vocab must be set (got 0)"},
	{"eps", "0.001", "", "0", "eps must be a positive number (the LayerNorm epsilon, default 1e-5), got 0"},
	{"use_attn_result", "true", "", "maybe", `--set use_attn_result="maybe": want true or false`},
	{"use_attn_scale", "false", "", "2", `--set use_attn_scale="2": want true or false`},
	{"attn_scale", "3", "", "0", "attn_scale must be a positive number (or -1 for sqrt(d_head)), got 0"},
	{"use_split_qkv_input", "true", "", "yes", "want true or false"},
	{"use_hook_mlp_in", "true", "", "on", "want true or false"},
	{"use_attn_in", "true", "", "1", "want true or false"},
	{"use_hook_tokens", "true", "", "null", "want true or false"},
	{"scale_attn_by_inverse_layer_idx", "true", "", "T", "want true or false"},
	{"parallel_attn_mlp", "true", "", `"x"`, "want true or false"},
	{"gated_mlp", "true", "the checkpoint's weights fix gated_mlp at false", "[]", "want true or false"},
	{"attn_only", "true", "fix attn_only at false", "sure", "want true or false"},
	{"final_rms", "true", "the checkpoint's weights fix final_rms at false", "0", "want true or false"},
	{"original_architecture", "GPT2Model", "", "", ""},
	{"tokenizer_name", "gpt2", `tokenizer_name "gpt2" has 50257 tokens but d_vocab is 29`, "bert", `tokenizer_name "bert": golens has only GPT-2's tokenizer`},
	{"normalization_type", "null", `fix normalization_type at "LN"`, "RMSNorm", `normalization_type "RMSNorm" is not supported (want LN, LNPre, RMS, RMSPre or null)`},
	{"attention_dir", "bidirectional", "", "sideways", `attention_dir "sideways" is not supported (want causal or bidirectional)`},
	{"positional_embedding_type", "shortformer", "", "alibi", `positional_embedding_type "alibi" is not supported yet (want standard, shortformer or rotary)`},
	{"rotary_dim", "4", "rotary_dim 4 needs positional_embedding_type rotary", "-1", "rotary_dim must not be negative, got -1"},
	{"rotary_base", "500000", "", "x", `--set rotary_base="x"`},
	{"rotary_adjacent_pairs", "false", "", "2", "want true or false"},
	{"use_NTK_by_parts_rope", "true", "use_NTK_by_parts_rope needs positional_embedding_type rotary", "1", "want true or false"},
	{"NTK_by_parts_factor", "32", "", "x", `--set NTK_by_parts_factor="x"`},
	{"NTK_by_parts_low_freq_factor", "2", "", "x", `--set NTK_by_parts_low_freq_factor="x"`},
	{"NTK_by_parts_high_freq_factor", "8", "", "x", `--set NTK_by_parts_high_freq_factor="x"`},
	{"NTK_original_ctx_len", "4096", "", "x", `--set NTK_original_ctx_len="x": want a whole number`},
	{"n_key_value_heads", "4", "", "-1", "n_key_value_heads must not be negative, got -1"},
	{"rms_norm_weight_plus_one", "false", "", "yes", "want true or false"},
	{"attn_scores_soft_cap", "50", "", "x", `--set attn_scores_soft_cap="x": want a finite number`},
	{"output_logits_soft_cap", "30", "", "inf", `--set output_logits_soft_cap="inf": want a finite number`},
	{"use_normalization_before_and_after", "true", `use_normalization_before_and_after needs normalization_type RMS or RMSPre (got "LN")`, "yes", "want true or false"},
	{"use_local_attn", "true", "use_local_attn needs attn_types", "1.5", "want true or false"},
	{"attn_types", `["global","global"]`, "", `["sliding","global"]`, `attn_types[0] is "sliding"`},
	{"window_size", "4", "", "0", "window_size must be positive, got 0"},
	{"d_vocab_out", "100", "fix d_vocab_out at 29", "-5", "d_vocab_out must be positive (or -1 for d_vocab), got -5"},
	{"initializer_range", "0.02", "initializer_range only affects the weights New initialises; a loaded model's weights come from its checkpoint", "NaN", `--set initializer_range="NaN": want a finite number`},
	{"seed", "5", "seed only affects the weights New initialises", "abc", `--set seed="abc": want a whole number or null`},
	{"default_prepend_bos", "false", "", "nah", "want true or false"},
	{"dtype", "float64", "", "int8", `dtype "int8" is not a floating-point type golens runs models in (want float32, float64, float16 or bfloat16)`},
	{"reorder_and_upcast_attn", "true", "", "2", "want true or false"},
	{"n_params", "5", "n_params is derived from the other fields", "x", `--set n_params="x": want a whole number`},
}

// Every key --set takes (every field of hookedmodel.Config) with a valid
// and an invalid value, loaded on a Hugging Face checkpoint: none panics
// (normalization_type=null and attn_only=true did), a valid value takes
// effect or is an error saying why it cannot (d_vocab_out=100 was silently
// ignored), and an invalid one names the key and what it takes. act_fn and
// d_mlp were "unknown config field".
func TestSetEveryKey(t *testing.T) {
	gotchtest.CheckLeaks(t)
	var keys []string
	for _, tc := range setCases {
		keys = append(keys, tc.key)
	}
	if !slices.Equal(keys, configKeys()) {
		t.Fatalf("setCases cover %v;\nthe keys --set takes are %v", keys, configKeys())
	}
	load := func(kv string) (*hookedmodel.HookedTransformer, error) {
		cmd := &cobra.Command{}
		cmd.SetContext(context.Background())
		mf := modelFlags{model: hfTiny, device: testDevice(), set: []string{kv}}
		return mf.load(cmd)
	}
	for _, tc := range setCases {
		t.Run(tc.key, func(t *testing.T) {
			m, err := load(tc.key + "=" + tc.valid)
			switch {
			case tc.validErr != "" && (err == nil || !strings.Contains(err.Error(), tc.validErr)):
				t.Errorf("--set %s=%s: error %v, want one saying %q", tc.key, tc.valid, err, tc.validErr)
			case tc.validErr == "" && err != nil:
				t.Errorf("--set %s=%s: %v", tc.key, tc.valid, err)
			case tc.validErr == "":
				f, _ := configField(tc.key)
				want, _ := parseSetting(f.Type, tc.valid)
				if got := reflect.ValueOf(m.Cfg).Field(f.Index[0]); !reflect.DeepEqual(got.Interface(), want.Interface()) {
					t.Errorf("--set %s=%s: the model's config has %v", tc.key, tc.valid, got)
				}
			}
			if err == nil {
				m.Free()
			}
			if tc.invalid == "" {
				return
			}
			m, err = load(tc.key + "=" + tc.invalid)
			if err == nil {
				m.Free()
				t.Fatalf("--set %s=%s loaded", tc.key, tc.invalid)
			}
			if !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.invalidErr) {
				t.Errorf("--set %s=%s: error %q, want one naming %s and saying %q", tc.key, tc.invalid, err, tc.key, tc.invalidErr)
			}
		})
	}
}

// nanCheckpoint saves tinyGPT2's model with a NaN in blocks.0.mlp.W_in.
func nanCheckpoint(t *testing.T) string {
	t.Helper()
	m, err := hookedmodel.Load(context.Background(), tinyGPT2(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	for _, p := range m.Parameters() {
		if p.Name == "blocks.0.mlp.W_in" {
			p.Tensor.MustFill_(math.NaN())
		}
	}
	path := filepath.Join(t.TempDir(), "nan.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustRun runs golens with args and fails the test on an error.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := golens(t, args...)
	if err != nil {
		t.Fatalf("golens %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// An input longer than the model's context is an error naming both
// lengths (a --prompt was silently cut to its first n_ctx tokens); with
// --truncate it keeps the first n_ctx tokens, as TransformerLens's
// to_tokens(truncate=True) does.
func TestInputLongerThanContext(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := tinyGPT2(t) // n_ctx 32
	dev := testDevice()
	prompt := strings.TrimSpace(strings.Repeat("one two three ", 20)) // BOS and 60 tokens
	var tokenized struct{ IDs []int }
	if err := json.Unmarshal([]byte(mustRun(t, "tokenize", "--model", "gpt2", "--text", prompt, "--json")), &tokenized); err != nil {
		t.Fatal(err)
	}
	full := [][]int{tokenized.IDs}
	tokens := filepath.Join(t.TempDir(), "long.json")
	long, _ := json.Marshal([][]int{full[0][:40], full[0][1:41]})
	os.WriteFile(tokens, long, 0o644)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--prompt", prompt}, "--prompt: 61 tokens exceed the model's context of n_ctx=32 (--truncate keeps the first 32)"},
		{[]string{"run", "--tokens-file", tokens}, "--tokens-file: 40 tokens exceed the model's context of n_ctx=32"},
		{[]string{"cache", "--prompt", prompt, "--out", filepath.Join(t.TempDir(), "c.safetensors")}, "--prompt: 61 tokens exceed"},
		{[]string{"ablate", "--prompt", prompt, "--head", "0.0", "--out", filepath.Join(t.TempDir(), "a.safetensors")}, "--prompt: 61 tokens exceed"},
		{[]string{"analyze", "--prompt", prompt, "--out", t.TempDir()}, "--prompt: 61 tokens exceed"},
		{[]string{"generate", "--prompt", prompt}, "--prompt of 61 tokens and --max-new-tokens 20: 81 positions exceed the model's context of n_ctx=32"},
		{[]string{"generate", "--prompt", "one two", "--max-new-tokens", "30"}, "--prompt of 3 tokens and --max-new-tokens 30: 33 positions exceed"},
	} {
		args := append(tc.args, "--model", model, "--device", dev)
		if _, err := golens(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("golens %s: error %v, want one saying %q", strings.Join(tc.args[:2], " "), err, tc.want)
		}
	}

	for _, input := range [][]string{{"--prompt", prompt}, {"--tokens-file", tokens}} {
		var res runResult
		out := mustRun(t, append([]string{"run", "--model", model, "--device", dev, "--json", "--truncate"}, input...)...)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		for i, row := range res.Tokens {
			want := full[0][i : i+32] // the tokens file's rows start at 0 and 1
			if input[0] == "--prompt" {
				want = full[0][:32]
			}
			if len(row) != 32 || !slices.Equal(row, toInt64(want)) {
				t.Errorf("run %s --truncate: row %d is %v, want the first 32 tokens %v", input[0], i, row, want)
			}
		}
	}
}

func toInt64(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

// Every numeric flag is checked before anything runs: the error names the
// flag and the range it takes (bench --reps -5, generate --top-k -5 and
// --temperature +Inf were accepted).
func TestNumericFlagRanges(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := tinyGPT2(t)
	gen := []string{"generate", "--model", model, "--prompt", "hi"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--reps", "-5"}, "--reps -5: want a whole number of at least 1"},
		{[]string{"bench", "--reps", "0"}, "--reps 0: want a whole number of at least 1"},
		{[]string{"bench", "--warmup", "-1"}, "--warmup -1: want a whole number of at least 0"},
		{[]string{"bench", "--new-tokens", "0"}, "--new-tokens 0: want a whole number of at least 1"},
		{[]string{"bench", "--batch", "-2"}, `--batch "-2": want a whole number of at least 1`},
		{[]string{"bench", "--seq", "0"}, `--seq "0": want a whole number of at least 1`},
		{[]string{"bench", "--batch", "1,x"}, `--batch "x"`},
		{append(gen, "--top-k", "-5"), "--top-k -5: want a whole number of at least 1"},
		{append(gen, "--top-k", "0"), "--top-k 0: want a whole number of at least 1"},
		{append(gen, "--temperature", "+Inf"), "--temperature +Inf: want a finite number in [0, ∞)"},
		{append(gen, "--temperature", "NaN"), "--temperature NaN: want a finite number in [0, ∞)"},
		{append(gen, "--temperature", "-1"), "--temperature -1: want a finite number in [0, ∞)"},
		{append(gen, "--top-p", "0"), "--top-p 0: want a finite number in (0, 1]"},
		{append(gen, "--top-p", "1.5"), "--top-p 1.5: want a finite number in (0, 1]"},
		{append(gen, "--top-p", "-0.5"), "--top-p -0.5: want a finite number in (0, 1]"},
		{append(gen, "--top-p", "NaN"), "--top-p NaN: want a finite number in (0, 1]"},
		{append(gen, "--top-k", "3", "--top-p", "0.5"), "--top-p 0.5: applies only without --top-k"},
		{append(gen, "--temperature", "0", "--top-k", "3"), "--temperature 0 samples none"},
		{append(gen, "--max-new-tokens", "-1"), "--max-new-tokens -1: want a whole number of at least 0"},
		{[]string{"run", "--model", model, "--prompt", "hi", "--top", "0"}, "--top 0: want a whole number of at least 1"},
		{[]string{"analyze", "--model", model, "--seq-len", "0", "--out", t.TempDir()}, "--seq-len 0: want a whole number of at least 1"},
		{[]string{"analyze", "--model", model, "--seq-len", "-3", "--out", t.TempDir()}, "--seq-len -3: want a whole number of at least 1"},
	} {
		if _, err := golens(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("golens %s: error %v, want one saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	// The edges of the ranges are accepted.
	mustRun(t, append(gen, "--device", testDevice(), "--max-new-tokens", "0", "--top-p", "1")...)
	mustRun(t, append(gen, "--device", testDevice(), "--max-new-tokens", "2", "--temperature", "0")...)
}

// Weights holding NaN load only with --allow-nonfinite (the error names
// the weight); run --json then prints the NaN loss and probabilities as
// null instead of failing ("json: unsupported value: NaN").
func TestNonFiniteWeights(t *testing.T) {
	gotchtest.CheckLeaks(t)
	model := nanCheckpoint(t)
	args := []string{"run", "--model", model, "--device", testDevice(), "--prompt", "hi", "--json"}
	_, err := golens(t, args...)
	if err == nil || !errors.Is(err, hookedmodel.ErrNonFinite) || !strings.Contains(err.Error(), `weight "blocks.0.mlp.W_in" holds 256 NaN`) || !strings.Contains(err.Error(), "--allow-nonfinite") {
		t.Fatalf("run on NaN weights: %v; want an error naming the weight and --allow-nonfinite", err)
	}
	out := mustRun(t, append(args, "--allow-nonfinite")...)
	var res struct {
		Loss *float64 `json:"loss"`
		Next [][]struct {
			Prob *float64 `json:"prob"`
		} `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("run --json printed %q: %v", out, err)
	}
	if res.Loss != nil || len(res.Next) != 1 || res.Next[0][0].Prob != nil {
		t.Errorf("run --json on NaN weights: %s; want loss and probabilities null", out)
	}
}

// tokenize --model gives the tokenizer the model loads with: none for a
// vocabulary that is not GPT-2's (it gave GPT-2 ids), GPT-2's for a golens
// checkpoint with GPT-2's vocabulary.
func TestTokenizeModelVocabulary(t *testing.T) {
	if _, err := golens(t, "tokenize", "--model", hfTiny, "--text", "hi"); err == nil || !strings.Contains(err.Error(), "has no tokenizer: its vocabulary has 29 tokens, not GPT-2's 50257") {
		t.Errorf("tokenize on a 29-token vocabulary: %v, want an error saying it has no tokenizer", err)
	}
	gpt2 := mustRun(t, "tokenize", "--model", "gpt2", "--text", "Hello world")
	if got := mustRun(t, "tokenize", "--model", tinyGPT2(t), "--text", "Hello world"); got != gpt2 {
		t.Errorf("tokenize on a GPT-2-vocabulary checkpoint: %q, want GPT-2's %q", got, gpt2)
	}
}

// --dtype the device cannot compute in is refused naming the dtypes it
// can, instead of libtorch's "not implemented for 'Half'" at the first op.
func TestDTypeTheDeviceCannotRun(t *testing.T) {
	b, err := backend.Resolve(testDevice())
	if err != nil {
		t.Fatal(err)
	}
	if b.Supports(gotch.Half) == nil {
		t.Skipf("%s computes in float16 with torch %s", b.Device(), gotch.TorchVersion())
	}
	model := tinyGPT2(t)
	for _, args := range [][]string{
		{"run", "--model", model, "--prompt", "hi", "--dtype", "float16"},
		{"run", "--model", model, "--prompt", "hi", "--set", "dtype=float16"},
		{"bench", "--dtype", "float32,float16", "--reps", "1"},
	} {
		_, err := golens(t, append(args, "--device", testDevice())...)
		if err == nil || !strings.Contains(err.Error(), "float16") || !strings.Contains(err.Error(), "runs float32, float64") || strings.Contains(err.Error(), "not implemented") {
			t.Errorf("golens %s: %v; want an error naming the dtypes the device runs", strings.Join(args, " "), err)
		}
	}
}

// bench exits non-zero when a row is ERROR or WRONG, after printing every
// row (it exited 0).
func TestBenchFailedRows(t *testing.T) {
	gotchtest.CheckLeaks(t)
	for _, asJSON := range []bool{false, true} {
		args := []string{"bench", "--model", tinyGPT2(t), "--device", testDevice(), "--seq", "40,4", "--reps", "1", "--warmup", "0"}
		if asJSON {
			args = append(args, "--json")
		}
		out, err := golens(t, args...)
		if err == nil || !strings.Contains(err.Error(), "bench: 1 of 2 rows failed (status ERROR or WRONG)") {
			t.Errorf("bench with a row longer than n_ctx (json %v): %v", asJSON, err)
		}
		if !strings.Contains(out, "ERROR") || !strings.Contains(out, "OK") {
			t.Errorf("bench (json %v) printed:\n%s\nwant both rows", asJSON, out)
		}
	}
}

// A mistyped local path says it does not exist, naming the missing part,
// instead of being looked up on the hub as a repository.
func TestMistypedModelPath(t *testing.T) {
	t.Chdir(t.TempDir())
	os.Mkdir("models", 0o755)
	for model, want := range map[string]string{
		"./modls/x":              `no such file or directory: "." has no "modls"`,
		"models/foo.safetensors": `no such file or directory: "models" has no "foo.safetensors"`,
		"models/foo":             `no such file or directory: "models" has no "foo"`,
	} {
		if _, err := golens(t, "run", "--model", model, "--prompt", "x"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--model %s: %v, want an error saying %q", model, err, want)
		}
	}
}

// Every error is one line: joined errors are joined with "; ", and control
// characters a file or flag held (a tensor name with an escape sequence,
// say) are printed escaped, never raw.
func TestErrorLine(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("plain"), "golens: plain"},
		{errors.Join(errors.New("first"), errors.New("second\n")), "golens: first; second"},
		{errors.New("name \x1b[2J\x1b[31mred\r\ttab\x00"), `golens: name \x1b[2J\x1b[31mred\r\ttab\x00`},
		{errors.New("bidi \u202egnp.exe"), `golens: bidi \u202egnp.exe`},
		{errors.New("ünïcode ok"), "golens: ünïcode ok"},
	} {
		if got := errorLine(tc.err); got != tc.want {
			t.Errorf("errorLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}

	// A checkpoint with a tensor whose name holds an escape sequence: the
	// error quotes it.
	dir := t.TempDir()
	ck, err := weights.Open(filepath.Join(hfTiny, "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var ts []*weights.Tensor
	for _, k := range ck.Keys() {
		x, err := ck.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, x)
	}
	ck.Close()
	ts = append(ts, &weights.Tensor{Name: "evil\x1b[2J", DType: weights.F32, Shape: []int64{1}, Data: make([]byte, 4)})
	if err := weights.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(hfTiny, "config.json"))
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	_, err = golens(t, "run", "--model", dir, "--tokens-file", "/dev/null")
	if err == nil {
		t.Fatal("run on a checkpoint with an extra tensor succeeded")
	}
	if line := errorLine(err); strings.ContainsFunc(line, func(r rune) bool { return r < ' ' }) || !strings.Contains(line, `"evil\x1b[2J"`) {
		t.Errorf("error line %q: want the tensor name quoted, no control character", line)
	}
}
