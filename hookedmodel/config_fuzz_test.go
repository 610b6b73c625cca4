package hookedmodel

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// FuzzConfig feeds arbitrary bytes to LoadConfig, the
// HookedTransformerConfig JSON reader; a config it accepts goes through
// checkAccepted.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"n_layers":2,"d_model":16,"d_head":4,"n_ctx":12,"d_vocab":23,"act_fn":"gelu_new"}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"d_vocab":5,"attn_only":true,"normalization_type":null}`,
		`{"n_layers":1,"d_model":8,"d_head":2,"n_heads":3,"n_ctx":4,"d_vocab":5,"d_vocab_out":7,"act_fn":"solu_ln","normalization_type":"LNPre","positional_embedding_type":"shortformer","use_attn_result":true,"use_split_qkv_input":true,"use_hook_mlp_in":true}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"tokenizer_name":"gpt2","act_fn":"relu","attention_dir":"bidirectional","scale_attn_by_inverse_layer_idx":true}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"d_vocab":5,"act_fn":"gelu","dtype":"float64","seed":3,"eps":1e-3,"initializer_range":0.5}`,
		`{"n_layers":1000000000,"d_model":768,"d_head":64,"n_ctx":1024,"d_vocab":50257,"act_fn":"gelu_new"}`,
		`{"n_layers":9223372036854775807,"d_model":9223372036854775807,"d_head":1,"n_ctx":1,"d_vocab":1,"act_fn":"relu"}`,
		`{"n_layers":1,"d_model":4,"d_head":8,"n_ctx":4,"d_vocab":5,"act_fn":"relu"}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"d_vocab":5,"act_fn":"relu","eps":-1}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"d_vocab":5,"act_fn":"tanh"}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"d_vocab":5,"act_fn":"relu","dtype":"int8"}`,
		`{"n_layers":1,"d_model":8,"d_head":4,"n_ctx":4,"d_vocab":5,"act_fn":"relu","rotary_dim":4,"n_key_value_heads":1}`,
		`{"n_layers":"2"}`, `{"n_layers":2.5}`, `{"eps":1e999}`, `[]`, `null`, `{`, ``, "{\"act_fn\":\"a\nb\"}",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "config.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			checkOneLine(t, err)
			return
		}
		checkAccepted(t, c)
	})
}

// FuzzHFConfig feeds arbitrary bytes to gpt2Config, the reader of a
// Hugging Face GPT-2 config.json, and initialises what it returns as Load
// does.
func FuzzHFConfig(f *testing.F) {
	tiny, err := os.ReadFile("testdata/gpt2-tiny-bin/config.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny)
	for _, s := range []string{
		`{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":2,"n_positions":4,"vocab_size":50257,"activation_function":"gelu_new","scale_attn_weights":false,"reorder_and_upcast_attn":true}`,
		`{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":2,"n_positions":4,"vocab_size":5,"n_inner":null,"activation_function":"relu","layer_norm_epsilon":0}`,
		`{"model_type":"gpt2","n_layer":1000000000,"n_embd":768,"n_head":12,"n_positions":1024,"vocab_size":50257,"activation_function":"gelu_new"}`,
		`{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":0,"n_positions":4,"vocab_size":5}`,
		`{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":-2,"n_positions":4,"vocab_size":5,"activation_function":"relu"}`,
		`{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":2,"n_positions":4,"vocab_size":5,"n_inner":-1,"activation_function":"relu"}`,
		`{"model_type":"gpt2","n_layer":1,"n_embd":8,"n_head":2,"n_positions":4,"vocab_size":5,"activation_function":"relu","layer_norm_epsilon":-1e-5}`,
		`{"model_type":"llama"}`, `{"model_type":"gpt2","n_embd":"8"}`, `[1]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := gpt2Config("m/config.json", b, "gpt2-fuzz")
		if err == nil {
			err = c.Init()
		}
		if err != nil {
			checkOneLine(t, err)
			return
		}
		checkAccepted(t, c)
	})
}

// checkOneLine fails t when err's message is not a single line, as the
// command line prints it.
func checkOneLine(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("error is not one line: %q", msg)
	}
}

// smallModel is the most weights checkAccepted builds a model for: enough
// for every seed, little enough for thousands of executions a second.
const smallModel = 1 << 14

// checkAccepted checks a config that Init accepted: its sizes are
// positive, a second Init changes nothing, it survives the JSON round trip
// a golens checkpoint's header makes, and, when it is small, New builds
// it, a pass runs (or fails with an error) and nothing leaks.
func checkAccepted(t *testing.T, c Config) {
	t.Helper()
	for name, v := range map[string]int{"n_layers": c.NLayers, "d_model": c.DModel, "d_head": c.DHead, "n_heads": c.NHeads,
		"n_ctx": c.NCtx, "d_vocab": c.DVocab, "d_vocab_out": c.DVocabOut} {
		if v <= 0 {
			t.Fatalf("Init accepted %s = %d: %+v", name, v, c)
		}
	}
	if !c.AttnOnly && c.DMLP <= 0 {
		t.Fatalf("Init accepted d_mlp = %d with MLPs: %+v", c.DMLP, c)
	}
	if c.NParams < 0 {
		t.Fatalf("n_params overflowed to %d: %+v", c.NParams, c)
	}
	again := c
	if err := again.Init(); err != nil || !reflect.DeepEqual(again, c) {
		t.Fatalf("a second Init gives %+v, %v; the first gave %+v", again, err, c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("an accepted config does not marshal: %v", err)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if err := back.Init(); err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("after a JSON round trip: %+v, %v; before: %+v", back, err, c)
	}

	weights := c.NParams + int64(c.DVocab+c.DVocabOut+c.NCtx+4*c.NLayers+2)*int64(c.DModel)
	if c.NParams > smallModel || weights > smallModel || weights < 0 {
		return
	}
	gotchtest.CheckLeaks(t)
	m, err := New(c, WithSeed(1))
	if err != nil {
		checkOneLine(t, err)
		return
	}
	defer m.Free()
	n := int64(min(c.NCtx, 3))
	tok, err := gotch.FromSlice(make([]int64, n), []int64{1, n}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Free()
	out, err := m.Forward(context.Background(), Tokens(tok), Return(ReturnBoth))
	if err != nil {
		checkOneLine(t, err)
		return
	}
	out.Free()
}
