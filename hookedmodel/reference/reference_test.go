package reference

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/golens/golens/gotch"
)

// close reports |a - b| <= 1e-12 · max(1, |a|, |b|).
func close(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func wantClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !close(got[i], want[i]) {
			t.Fatalf("%s[%d] = %v, want %v\n got %v\nwant %v", what, i, got[i], want[i], got, want)
		}
	}
}

// randomModel is a model of config c with random weights under
// TransformerLens's names (d_mlp 6, vocabulary 11, context 16), norms with
// weights that are not 1 and biases that are not 0.
func randomModel(c Config, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 7))
	const V, F, ctx = 11, 6, 16
	M, H, KV, D := c.DModel, c.NHeads, c.kvHeads(), c.DHead
	W := map[string]Tensor{}
	rnd := func(name string, shape ...int) {
		t := newTensor(shape...)
		for i := range t.Data {
			t.Data[i] = rng.NormFloat64() * 0.5
		}
		W[name] = t
	}
	normW := func(prefix string) {
		if c.NormalizationType == "RMS" || c.NormalizationType == "LN" {
			rnd(prefix+".w", M)
			for i := range W[prefix+".w"].Data {
				W[prefix+".w"].Data[i] += 1
			}
		}
		if c.NormalizationType == "LN" {
			rnd(prefix+".b", M)
		}
	}
	rnd("embed.W_E", V, M)
	if c.PositionalEmbeddingType != "rotary" {
		rnd("pos_embed.W_pos", ctx, M)
	}
	for l := range c.NLayers {
		p := "blocks." + strconv.Itoa(l) + "."
		normW(p + "ln1")
		normW(p + "ln2")
		if c.NormBeforeAndAfter {
			normW(p + "ln1_post")
			normW(p + "ln2_post")
		}
		rnd(p+"attn.W_Q", H, M, D)
		rnd(p+"attn.b_Q", H, D)
		rnd(p+"attn.W_K", KV, M, D)
		rnd(p+"attn.b_K", KV, D)
		rnd(p+"attn.W_V", KV, M, D)
		rnd(p+"attn.b_V", KV, D)
		rnd(p+"attn.W_O", H, D, M)
		rnd(p+"attn.b_O", M)
		rnd(p+"mlp.W_in", M, F)
		rnd(p+"mlp.b_in", F)
		if c.GatedMLP {
			rnd(p+"mlp.W_gate", M, F)
		}
		rnd(p+"mlp.W_out", F, M)
		rnd(p+"mlp.b_out", M)
	}
	normW("ln_final")
	rnd("unembed.W_U", M, V)
	rnd("unembed.b_U", V)
	return &Model{Cfg: c, W: W}
}

func baseConfig() Config {
	return Config{
		NLayers: 2, DModel: 8, DHead: 4, NHeads: 4, ActFn: "gelu", Eps: 1e-5,
		UseAttnScale: true, NormalizationType: "LN", AttentionDir: "causal",
		PositionalEmbeddingType: "standard", DType: "float32",
	}
}

var tokens = [][]int64{{1, 5, 2, 9, 3, 3}, {0, 10, 4, 4, 7, 1}}

func TestRotaryAtPositionZeroIsIdentity(t *testing.T) {
	x := newTensor(1, 1, 2, 8)
	for i := range x.Data {
		x.Data[i] = float64(i) - 3.5
	}
	got := rotary(x, Config{DHead: 8, RotaryBase: 10000}.invFreq(), false)
	wantClose(t, "rotary at 0", got.Data, x.Data)
}

// TestRotateHalfAtPosition1 checks NeoX's rotate-half layout: dim i pairs
// with dim i + d/2 (GPT-J's interleaved layout would pair 2i with 2i+1).
// With d = 4 and base 10000 the frequencies are 1 and 10000^(-1/2) = 0.01.
func TestRotateHalfAtPosition1(t *testing.T) {
	inv := Config{DHead: 4, RotaryBase: 10000}.invFreq()
	wantClose(t, "inv_freq", inv, []float64{1, 0.01})
	x := newTensor(1, 2, 1, 4)
	copy(x.Data[4:], []float64{1, 2, 3, 4}) // position 1
	got := rotary(x, inv, false).Data[4:]
	c1, s1, c2, s2 := math.Cos(1), math.Sin(1), math.Cos(0.01), math.Sin(0.01)
	wantClose(t, "rotated", got, []float64{1*c1 - 3*s1, 2*c2 - 4*s2, 3*c1 + 1*s1, 4*c2 + 2*s2})
}

// TestRotateAdjacentPairsAtPosition1 checks GPT-J's layout
// (rotary_adjacent_pairs): dim 2i pairs with dim 2i + 1, pair i turning by
// θ_i; of d_head 6 with rotary_dim 4, dims 4 and 5 pass. Frequencies 1 and
// 0.01 as above.
func TestRotateAdjacentPairsAtPosition1(t *testing.T) {
	inv := Config{DHead: 6, RotaryDim: 4}.invFreq()
	x := newTensor(1, 2, 1, 6)
	copy(x.Data[6:], []float64{1, 2, 3, 4, 5, 6})
	got := rotary(x, inv, true).Data[6:]
	c1, s1, c2, s2 := math.Cos(1), math.Sin(1), math.Cos(0.01), math.Sin(0.01)
	wantClose(t, "rotated", got, []float64{1*c1 - 2*s1, 2*c1 + 1*s1, 3*c2 - 4*s2, 4*c2 + 3*s2, 5, 6})
}

// TestPartialRotary: rotary_dim 4 of d_head 6 rotates dims 0..3 as a
// 4-dim head would and leaves dims 4 and 5 alone; the frequencies come
// from rotary_dim, not d_head.
func TestPartialRotary(t *testing.T) {
	c := Config{DHead: 6, RotaryDim: 4}
	inv := c.invFreq()
	wantClose(t, "inv_freq", inv, []float64{1, 0.01})
	x := newTensor(1, 2, 1, 6)
	copy(x.Data[6:], []float64{1, 2, 3, 4, 5, 6})
	got := rotary(x, inv, false).Data[6:]
	c1, s1, c2, s2 := math.Cos(1), math.Sin(1), math.Cos(0.01), math.Sin(0.01)
	wantClose(t, "rotated", got, []float64{1*c1 - 3*s1, 2*c2 - 4*s2, 3*c1 + 1*s1, 4*c2 + 2*s2, 5, 6})
}

// TestRotaryBase: the base is the config's (Hugging Face's rope_theta),
// not TransformerLens's fixed 10000.
func TestRotaryBase(t *testing.T) {
	inv := Config{DHead: 4, RotaryBase: 500000}.invFreq()
	wantClose(t, "inv_freq", inv, []float64{1, 1 / math.Sqrt(500000)})
}

// TestLlama3RopeScaling: Llama 3.1's parameters (factor 8, low 1, high 4,
// original context 8192) on a 64-dim head with base 500000.
func TestLlama3RopeScaling(t *testing.T) {
	plain := Config{DHead: 64, RotaryBase: 500000}
	scaled := plain
	scaled.UseLlama3Rope, scaled.Llama3Factor, scaled.Llama3LowFreq, scaled.Llama3HighFreq, scaled.Llama3OriginalCtx = true, 8, 1, 4, 8192
	a, b := plain.invFreq(), scaled.invFreq()
	var high, low, mid int
	for i := range a {
		wavelen := 2 * math.Pi / a[i]
		switch {
		case wavelen < 8192/4.0:
			high++
			if b[i] != a[i] {
				t.Errorf("pair %d (wavelength %.0f): %v, want unchanged %v", i, wavelen, b[i], a[i])
			}
		case wavelen > 8192:
			low++
			if !close(b[i], a[i]/8) {
				t.Errorf("pair %d (wavelength %.0f): %v, want %v / 8", i, wavelen, b[i], a[i])
			}
		default:
			mid++
			s := (8192/wavelen - 1) / (4 - 1)
			if want := (1-s)*a[i]/8 + s*a[i]; !close(b[i], want) || b[i] <= a[i]/8 || b[i] >= a[i] {
				t.Errorf("pair %d (wavelength %.0f): %v, want %v between %v and %v", i, wavelen, b[i], want, a[i]/8, a[i])
			}
		}
	}
	if high == 0 || low == 0 || mid == 0 {
		t.Fatalf("bands high %d, mid %d, low %d: the case should cover all three", high, mid, low)
	}
}

func TestRMSNorm(t *testing.T) {
	const eps = 1e-6
	x := Tensor{[]int{1, 1, 2}, []float64{3, 4}}
	s := math.Sqrt(12.5 + eps)
	for _, tc := range []struct {
		name    string
		plusOne bool
		w, want []float64
	}{
		{"w=1", false, []float64{1, 1}, []float64{3 / s, 4 / s}},
		{"w", false, []float64{2, -1}, []float64{6 / s, -4 / s}},
		{"1+w, w=0", true, []float64{0, 0}, []float64{3 / s, 4 / s}},
		{"1+w", true, []float64{1, -2}, []float64{6 / s, -4 / s}},
	} {
		r := &Model{Cfg: Config{Eps: eps, NormalizationType: "RMS", NormWeightPlusOne: tc.plusOne},
			W: map[string]Tensor{"ln.w": {[]int{2}, tc.w}}}
		u := &run{r, map[string]Tensor{}}
		got := u.norm("ln", x)
		wantClose(t, tc.name+" out", got.Data, tc.want)
		wantClose(t, tc.name+" hook_scale", u.acts["ln.hook_scale"].Data, []float64{s})
		if sh := u.acts["ln.hook_scale"].Shape; !slices.Equal(sh, []int{1, 1, 1}) {
			t.Errorf("hook_scale shape %v", sh)
		}
		// TransformerLens's rms_norm.py hooks x / scale, before the weight.
		wantClose(t, tc.name+" hook_normalized", u.acts["ln.hook_normalized"].Data, []float64{3 / s, 4 / s})
	}
}

func TestGatedMLP(t *testing.T) {
	for _, tc := range []struct {
		act string
		f   func(float64) float64
	}{
		{"silu", func(x float64) float64 { return x / (1 + math.Exp(-x)) }},
		{"gelu_pytorch_tanh", func(x float64) float64 {
			return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		}},
	} {
		r := &Model{Cfg: Config{GatedMLP: true, ActFn: tc.act}, W: map[string]Tensor{
			"mlp.W_gate": {[]int{1, 1}, []float64{-0.5}},
			"mlp.W_in":   {[]int{1, 1}, []float64{3}},
			"mlp.W_out":  {[]int{1, 1}, []float64{2}},
		}}
		u := &run{r, map[string]Tensor{}}
		out := u.mlp("", Tensor{[]int{1, 1, 1}, []float64{2}})
		wantClose(t, tc.act+" hook_pre", u.acts["mlp.hook_pre"].Data, []float64{-1})
		wantClose(t, tc.act+" hook_pre_linear", u.acts["mlp.hook_pre_linear"].Data, []float64{6})
		wantClose(t, tc.act+" hook_post", u.acts["mlp.hook_post"].Data, []float64{tc.f(-1) * 6})
		wantClose(t, tc.act+" out", out.Data, []float64{2 * tc.f(-1) * 6})
	}
}

func TestExactGELU(t *testing.T) {
	// Φ(1) = 0.8413447460685429: NeoX's exact GELU, not the tanh form
	// (0.8411919906082768).
	if got := activation("gelu")(1); !close(got, 0.8413447460685429) {
		t.Fatalf("gelu(1) = %v", got)
	}
}

func TestSoftCap(t *testing.T) {
	if got := softCapValue(1e6, 50); got != 50 {
		t.Errorf("softcap(1e6, 50) = %v, want 50", got)
	}
	if got := softCapValue(-1e6, 30); got != -30 {
		t.Errorf("softcap(-1e6, 30) = %v, want -30", got)
	}
	if got := softCapValue(1e-3, 50); math.Abs(got-1e-3) > 1e-12 {
		t.Errorf("softcap(1e-3, 50) = %v, want ~1e-3", got)
	}
	// In a model: scores and logits stay within their caps.
	c := baseConfig()
	c.AttnScoresSoftCap, c.LogitsSoftCap = 0.5, 0.25
	m := randomModel(c, 1)
	acts := m.Forward(tokens)
	plain := randomModel(baseConfig(), 1).Forward(tokens)
	for name, capv := range map[string]float64{"blocks.0.attn.hook_attn_scores": 0.5, "logits": 0.25} {
		above := false
		for i, v := range acts[name].Data {
			if !math.IsInf(v, -1) && math.Abs(v) > capv {
				t.Fatalf("%s[%d] = %v, beyond the cap %v", name, i, v, capv)
			}
			if math.Abs(plain[name].Data[i]) > capv && !math.IsInf(v, -1) {
				above = true
			}
		}
		if !above {
			t.Errorf("%s: no uncapped value exceeds the cap; the case tests nothing", name)
		}
	}
}

func TestSlidingWindow(t *testing.T) {
	c := Config{AttentionDir: "causal", WindowSize: 2, AttnTypes: []string{"local", "global"}}
	for i := range 4 {
		for j := range 4 {
			wantLocal := j <= i && i-j <= 1
			if got := c.attends(0, i, j); got != wantLocal {
				t.Errorf("local layer: attends(%d, %d) = %v", i, j, got)
			}
			if got := c.attends(1, i, j); got != (j <= i) {
				t.Errorf("global layer: attends(%d, %d) = %v", i, j, got)
			}
		}
	}
	// Hugging Face's Gemma 2: even layers slide.
	if got := HFGemma2AttnTypes(4); !slices.Equal(got, []string{"local", "global", "local", "global"}) {
		t.Errorf("HFGemma2AttnTypes(4) = %v", got)
	}
	// In a model: layer 0's pattern is zero on keys 2 or more back.
	bc := baseConfig()
	bc.WindowSize, bc.AttnTypes = 2, HFGemma2AttnTypes(2)
	acts := randomModel(bc, 2).Forward(tokens)
	P := len(tokens[0])
	for l, local := range []bool{true, false} {
		pat := acts["blocks."+strconv.Itoa(l)+".attn.hook_pattern"].Data
		for i := range P {
			for j := range i + 1 {
				if v := pat[i*P+j]; (v == 0) != (local && i-j >= 2) {
					t.Errorf("layer %d: pattern[%d][%d] = %v", l, i, j, v)
				}
			}
		}
	}
}

// TestGroupedQueryAttention: n_key_value_heads = n_heads is plain
// multi-head attention, and 2 key/value heads for 4 query heads equal
// multi-head attention with each key/value head repeated for consecutive
// query heads (Hugging Face's repeat_kv: heads 0, 1 read kv head 0).
func TestGroupedQueryAttention(t *testing.T) {
	c := baseConfig()
	c.PositionalEmbeddingType = "rotary"
	mha := randomModel(c, 3)
	c.NKeyValueHeads = 4
	same := &Model{Cfg: c, W: mha.W}
	a, b := mha.Forward(tokens), same.Forward(tokens)
	wantClose(t, "kv heads = heads", b["logits"].Data, a["logits"].Data)

	c.NKeyValueHeads = 2
	gqa := randomModel(c, 4)
	expanded := map[string]Tensor{}
	for k, w := range gqa.W {
		expanded[k] = w
	}
	for l := range c.NLayers {
		p := "blocks." + strconv.Itoa(l) + ".attn."
		for _, n := range []string{"W_K", "b_K", "W_V", "b_V"} {
			w := gqa.W[p+n]
			per := len(w.Data) / 2
			e := Tensor{append([]int{4}, w.Shape[1:]...), nil}
			for h := range 4 {
				e.Data = append(e.Data, w.Data[(h/2)*per:][:per]...)
			}
			expanded[p+n] = e
		}
	}
	mc := c
	mc.NKeyValueHeads = 0
	g, e := gqa.Forward(tokens), (&Model{Cfg: mc, W: expanded}).Forward(tokens)
	if sh := g["blocks.0.attn.hook_k"].Shape; !slices.Equal(sh, []int{2, 6, 2, 4}) {
		t.Errorf("hook_k shape %v, want [2 6 2 4]", sh)
	}
	if sh := g["blocks.0.attn.hook_rot_k"].Shape; !slices.Equal(sh, []int{2, 6, 2, 4}) {
		t.Errorf("hook_rot_k shape %v, want [2 6 2 4]", sh)
	}
	for _, n := range []string{"blocks.0.attn.hook_z", "blocks.1.attn.hook_pattern", "logits"} {
		wantClose(t, n, g[n].Data, e[n].Data)
	}
}

// TestParallelAttnMLP: NeoX's parallel residual, resid_post = resid_pre +
// attn_out + mlp_out with the MLP reading ln2(resid_pre); no resid_mid.
func TestParallelAttnMLP(t *testing.T) {
	c := baseConfig()
	c.ParallelAttnMLP = true
	acts := randomModel(c, 5).Forward(tokens)
	if _, ok := acts["blocks.0.hook_resid_mid"]; ok {
		t.Error("parallel block records hook_resid_mid")
	}
	pre, attn, mlp := acts["blocks.0.hook_resid_pre"], acts["blocks.0.hook_attn_out"], acts["blocks.0.hook_mlp_out"]
	want := add(add(pre, attn), mlp)
	wantClose(t, "resid_post", acts["blocks.0.hook_resid_post"].Data, want.Data)
	// ln2's scale is resid_pre's (LayerNorm: its standard deviation).
	M := c.DModel
	row := pre.Data[:M]
	mean, ss := 0.0, 0.0
	for _, v := range row {
		mean += v / float64(M)
	}
	for _, v := range row {
		ss += (v - mean) * (v - mean)
	}
	wantClose(t, "ln2 scale", acts["blocks.0.ln2.hook_scale"].Data[:1], []float64{math.Sqrt(ss/float64(M) + c.Eps)})
}

// TestEmbedScale: Gemma's sqrt(d_model), rounded to the weights' dtype.
func TestEmbedScale(t *testing.T) {
	for _, tc := range []struct {
		d     int
		dtype string
		want  float64
	}{
		{2304, "bfloat16", 48},
		{3072, "bfloat16", 55.5}, // sqrt = 55.4256..., bf16 steps 0.25 in [32, 64)
		{3072, "float16", 55.4375},
		{3072, "float32", float64(float32(math.Sqrt(3072)))},
		{3072, "float64", math.Sqrt(3072)},
	} {
		if got := embedScale(tc.d, tc.dtype); got != tc.want {
			t.Errorf("embedScale(%d, %s) = %v, want %v", tc.d, tc.dtype, got, tc.want)
		}
	}
	c := baseConfig()
	c.ScaleEmbed, c.DType = true, "bfloat16"
	m := randomModel(c, 6)
	acts := m.Forward(tokens)
	M := c.DModel
	s := roundTo(math.Sqrt(8), "bfloat16") // 2.828... -> 2.828125
	if s != 2.828125 {
		t.Fatalf("bf16 sqrt(8) = %v", s)
	}
	wantClose(t, "hook_embed", acts["hook_embed"].Data[:M], scale(Tensor{[]int{M}, m.W["embed.W_E"].Data[M*1:][:M]}, s).Data)
}

// TestAttnScale: Gemma's query_pre_attn_scalar replaces d_head in the
// score scale.
func TestAttnScale(t *testing.T) {
	c := baseConfig()
	a := randomModel(c, 7)
	c.AttnScale = 3
	b := &Model{Cfg: c, W: a.W}
	sa, sb := a.Forward(tokens)["blocks.0.attn.hook_attn_scores"], b.Forward(tokens)["blocks.0.attn.hook_attn_scores"]
	for i := range sa.Data {
		if !math.IsInf(sa.Data[i], -1) && !close(sb.Data[i], sa.Data[i]*2/3) {
			t.Fatalf("score %d: %v, want %v · sqrt(4) / 3", i, sb.Data[i], sa.Data[i])
		}
	}
}

// TestPostNorms: Gemma 2's ln1_post and ln2_post normalize each
// sublayer's output before hook_attn_out / hook_mlp_out.
func TestPostNorms(t *testing.T) {
	c := baseConfig()
	c.NormalizationType, c.NormBeforeAndAfter, c.NormWeightPlusOne = "RMS", true, true
	m := randomModel(c, 8)
	acts := m.Forward(tokens)
	for _, n := range []string{"ln1_post", "ln2_post"} {
		out := map[string]string{"ln1_post": "hook_attn_out", "ln2_post": "hook_mlp_out"}[n]
		norm := acts["blocks.1."+n+".hook_normalized"]
		w := m.W["blocks.1."+n+".w"].Data
		want := newTensor(norm.Shape...)
		for i, v := range norm.Data {
			want.Data[i] = v * (1 + w[i%c.DModel])
		}
		wantClose(t, out, acts["blocks.1."+out].Data, want.Data)
	}
	wantClose(t, "resid_mid", acts["blocks.1.hook_resid_mid"].Data,
		add(acts["blocks.1.hook_resid_pre"], acts["blocks.1.hook_attn_out"]).Data)
}

// TestRotaryHooks: a rotary model has hook_rot_q/hook_rot_k, rotated from
// hook_q/hook_k, and no positional embedding.
func TestRotaryHooks(t *testing.T) {
	c := baseConfig()
	c.PositionalEmbeddingType, c.RotaryDim, c.RotaryBase = "rotary", 2, 100
	acts := randomModel(c, 9).Forward(tokens)
	if _, ok := acts["hook_pos_embed"]; ok {
		t.Error("rotary model records hook_pos_embed")
	}
	for _, n := range []string{"q", "k"} {
		wantClose(t, "rot_"+n, acts["blocks.0.attn.hook_rot_"+n].Data, rotary(acts["blocks.0.attn.hook_"+n], c.invFreq(), false).Data)
	}
}

// A borrowed state dict gives the numbers of a copied one, bit for bit.
func TestBorrowEqualsNew(t *testing.T) {
	c := baseConfig()
	c.NormalizationType, c.PositionalEmbeddingType, c.RotaryDim, c.GatedMLP, c.ActFn = "RMS", "rotary", 4, true, "silu"
	want := randomModel(c, 3)
	sd := map[string]*gotch.Tensor{}
	for name, w := range want.W {
		shape := make([]int64, len(w.Shape))
		for i, n := range w.Shape {
			shape[i] = int64(n)
		}
		ts, err := gotch.FromSlice(w.Data, shape, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer ts.Free()
		sd[name] = ts
	}
	copied, err := New(c, sd)
	if err != nil {
		t.Fatal(err)
	}
	borrowed := Borrow(c, sd)
	wantActs, gotActs := copied.Forward(tokens), borrowed.Forward(tokens)
	if len(gotActs) != len(wantActs) {
		t.Fatalf("%d activations, want %d", len(gotActs), len(wantActs))
	}
	for name, w := range wantActs {
		if !slices.Equal(gotActs[name].Data, w.Data) {
			t.Errorf("%s differs", name)
		}
	}
}
