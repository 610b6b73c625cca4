package analysis

import (
	"fmt"
	"math"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// InductionConfig sizes the hand-built induction model; zero fields take
// the defaults.
type InductionConfig struct {
	DVocab int // tokens, BOS (0) included; default 64
	NCtx   int // positions; default 32
}

// InductionModel is a two-layer attention-only transformer whose weights
// are written by hand so that it contains a textbook induction circuit: a
// previous-token head in layer 0 and, K-composing with it, an induction
// head in layer 1. It has no LayerNorm, no MLPs and three heads per layer.
// The other heads (0.0, 1.0, 1.1, and the current-token head's OV circuit)
// keep New's random weights, with their W_O scaled by 1/10 so that they
// perturb the circuit without drowning it: distractors. It is the ground truth the analysis tests check against,
// and a small demo model.
//
// # Residual stream
//
// With V = d_vocab and C = n_ctx, d_model = 3V + C is split into four
// orthogonal subspaces, each with one basis vector per token or position:
//
//	tok(t)  = t            the current token (W_E is one-hot: W_E[t] = tok(t))
//	pos(i)  = V + i        the position (W_pos[i] = pos(i))
//	prev(t) = V + C + t    the previous token, written by the previous-token head
//	out(t)  = 2V + C + t   the predicted token, written by the induction head
//
// d_head = max(V, C) + 1: one head dimension per token or position, and a
// last one, sink, for the induction head's default attention to BOS. The
// scores are divided by √d_head (use_attn_scale), so a query weight of
// s·√d_head gives a score of s.
//
// # Layer 0, head 1: the previous-token head
//
//	W_Q: pos(i) -> s_prev·√d_head · e(i-1)   W_K: pos(j) -> e(j)
//	W_V: tok(t) -> e(t)                      W_O: e(t) -> prev(t)
//
// Position i scores s_prev = 16 on key i-1 and 0 elsewhere, so it attends
// to i-1 with weight 1 - O(i·e⁻¹⁶), and writes the identity of the token
// there into prev. Position 0 attends to itself.
//
// # Layer 0, head 2: a current-token head
//
// W_Q: pos(i) -> s_prev·√d_head · e(i), W_K as above: each position
// attends to itself. Its OV circuit stays random.
//
// # Layer 1, head 2: the induction head
//
//	W_Q: tok(t) -> s_ind·√d_head · e(t), b_Q = s_ind/2·√d_head · e(sink)
//	W_K: prev(t) -> e(t),  pos(0) -> e(sink)
//	W_V: tok(t) -> e(t)                      W_O: e(t) -> out(t)
//	W_U: out(t) -> g · logit(t)
//
// for every token t but BOS. Its keys read the previous-token subspace
// (K-composition with head 0.1), its queries the current token: position i
// scores s_ind = 20 on every key j whose previous token tok[j-1] equals
// tok[i], s_ind/2 = 10 on position 0 (the sink), and 0 elsewhere. In the
// second repeat of [BOS, seq, seq] the position of seq[k] attends to the
// position after seq[k]'s first occurrence, which holds seq[k+1], and the
// OV circuit copies that token into out, where the unembedding reads it as
// a logit of g = 10: the next token's loss is about (V-2)·e⁻¹⁰. Where no
// earlier token matches (the first repeat) the head attends to BOS, whose
// value is zero, and the logits stay near uniform: a loss of about log V.
type InductionModel struct {
	Model *hookedmodel.HookedTransformer
	BOS   int64 // 0

	PrevToken    HeadID // 0.1: attends from i to i-1, writes the token there
	CurrentToken HeadID // 0.2: attends from i to i
	Induction    HeadID // 1.2: K-composes with PrevToken, copies the next token
}

// The construction's scales (scores after the √d_head division, and the
// unembedding's logit).
const (
	inductionPrevScore  = 16.0
	inductionMatchScore = 20.0
	inductionLogit      = 10.0
	distractorScale     = 0.1 // of the random heads' W_O
)

// NewInductionModel builds the induction model; opts go to hookedmodel.New
// (OnDevice, WithSeed for the distractor heads, WithDType). Free the model
// with Free.
func NewInductionModel(ic InductionConfig, opts ...hookedmodel.Option) (*InductionModel, error) {
	v, c := ic.DVocab, ic.NCtx
	if v == 0 {
		v = 64
	}
	if c == 0 {
		c = 32
	}
	if v < 3 || c < 2 {
		return nil, fmt.Errorf("induction model: d_vocab %d and n_ctx %d are too small (want at least 3 and 2)", v, c)
	}
	k := max(v, c) + 1
	d := 3*v + c
	cfg := hookedmodel.DefaultConfig()
	cfg.ModelName = "induction-construction"
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads = 2, d, k, 3
	cfg.NCtx, cfg.DVocab = c, v
	cfg.AttnOnly = true
	cfg.NormalizationType = ""
	m, err := hookedmodel.New(cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("induction model: %w", err)
	}
	im := &InductionModel{Model: m, BOS: 0, PrevToken: HeadID{0, 1}, CurrentToken: HeadID{0, 2}, Induction: HeadID{1, 2}}
	if err := im.write(v, c, k, d); err != nil {
		m.Free()
		return nil, fmt.Errorf("induction model: %w", err)
	}
	return im, nil
}

// Free releases the model.
func (im *InductionModel) Free() {
	if im != nil && im.Model != nil {
		im.Model.Free()
	}
}

// write sets the weights as the type's documentation says.
func (im *InductionModel) write(v, c, k, d int) error {
	sd, s, err := im.Model.StateDict()
	if err != nil {
		return err
	}
	defer s.Close()
	tok := func(t int) int { return t }
	pos := func(i int) int { return v + i }
	prev := func(t int) int { return v + c + t }
	out := func(t int) int { return 2*v + c + t }
	sink := k - 1
	bos := int(im.BOS)
	rootK := math.Sqrt(float64(k))
	qPrev, qInd := inductionPrevScore*rootK, inductionMatchScore*rootK

	return gotch.Try(func() {
		// set copies a rows×cols matrix, built by fill, into dst (a view
		// of the model's weights).
		set := func(dst *gotch.Tensor, rows, cols int, fill func(m []float64)) {
			m := make([]float64, rows*cols)
			fill(m)
			src := s.Attach(gotch.MustFromSlice(m, []int64{int64(rows), int64(cols)}, gotch.CPU))
			dst.MustCopy_(src.MustReshape(dst.Shape()))
		}
		head := func(name string, l, h int) *gotch.Tensor {
			return sd[fmt.Sprintf("blocks.%d.attn.%s", l, name)].MustSelect(0, int64(h))
		}
		one := func(m []float64, cols, r, c int, x float64) { m[r*cols+c] = x }

		set(sd["embed.W_E"], v, d, func(m []float64) {
			for t := range v {
				one(m, d, t, tok(t), 1)
			}
		})
		set(sd["pos_embed.W_pos"], c, d, func(m []float64) {
			for i := range c {
				one(m, d, i, pos(i), 1)
			}
		})

		// Layer 0: the previous-token head (1) and the current-token head (2).
		p, cur := im.PrevToken, im.CurrentToken
		set(head("W_Q", p.Layer, p.Head), d, k, func(m []float64) {
			for i := 1; i < c; i++ {
				one(m, k, pos(i), i-1, qPrev)
			}
		})
		set(head("W_Q", cur.Layer, cur.Head), d, k, func(m []float64) {
			for i := range c {
				one(m, k, pos(i), i, qPrev)
			}
		})
		for _, h := range []HeadID{p, cur} {
			set(head("W_K", h.Layer, h.Head), d, k, func(m []float64) {
				for j := range c {
					one(m, k, pos(j), j, 1)
				}
			})
		}
		set(head("W_V", p.Layer, p.Head), d, k, func(m []float64) {
			for t := range v {
				one(m, k, tok(t), t, 1)
			}
		})
		set(head("W_O", p.Layer, p.Head), k, d, func(m []float64) {
			for t := range v {
				one(m, d, t, prev(t), 1)
			}
		})

		// Layer 1: the induction head.
		ind := im.Induction
		set(head("W_Q", ind.Layer, ind.Head), d, k, func(m []float64) {
			for t := range v {
				if t != bos {
					one(m, k, tok(t), t, qInd)
				}
			}
		})
		set(head("b_Q", ind.Layer, ind.Head), 1, k, func(m []float64) { m[sink] = qInd / 2 })
		set(head("W_K", ind.Layer, ind.Head), d, k, func(m []float64) {
			for t := range v {
				if t != bos {
					one(m, k, prev(t), t, 1)
				}
			}
			one(m, k, pos(0), sink, 1)
		})
		set(head("W_V", ind.Layer, ind.Head), d, k, func(m []float64) {
			for t := range v {
				if t != bos {
					one(m, k, tok(t), t, 1)
				}
			}
		})
		set(head("W_O", ind.Layer, ind.Head), k, d, func(m []float64) {
			for t := range v {
				one(m, d, t, out(t), 1)
			}
		})
		// The distractors keep their random weights, with W_O scaled down so
		// that they perturb the circuit without drowning it.
		for l := range 2 {
			for h := range 3 {
				if id := (HeadID{l, h}); id != p && id != ind {
					head("W_O", l, h).MustMulScalar_(distractorScale)
				}
			}
		}
		set(sd["unembed.W_U"], d, v, func(m []float64) {
			for t := range v {
				one(m, v, out(t), t, inductionLogit)
			}
		})
	})
}
