package hookedmodel

import (
	"fmt"
	"strings"

	"github.com/golens/golens/gotch"
)

// Processing says which of from_pretrained's weight transformations a
// loader applies. Each is meant to leave the model's log-probabilities
// unchanged while making its weights easier to read; golens holds to
// that (DESIGN §10): where a step would change them for a given model,
// Process skips it or leaves out the part that would, and says so in
// the model's ProcessingRecord.
type Processing struct {
	FoldLN               bool // fold LayerNorm weights into the layers that read them (LN -> LNPre)
	CenterWritingWeights bool // make what each layer writes to the residual stream mean-zero
	CenterUnembed        bool // make the logits mean-zero (softmax ignores a shift)
	FoldValueBiases      bool // move b_V into b_O
	RefactorFactoredAttn bool // balance W_Q/W_K and W_V/W_O through their SVDs
}

// DefaultProcessing is from_pretrained's default: everything but the
// refactoring.
var DefaultProcessing = Processing{FoldLN: true, CenterWritingWeights: true, CenterUnembed: true, FoldValueBiases: true}

// The processing steps' names, as TransformerLens's from_pretrained
// arguments.
const (
	StepFoldLN               = "fold_ln"
	StepCenterWritingWeights = "center_writing_weights"
	StepCenterUnembed        = "center_unembed"
	StepFoldValueBiases      = "fold_value_biases"
	StepRefactorFactoredAttn = "refactor_factored_attn"
)

// ProcessingStep is what one requested processing step did to a model.
type ProcessingStep struct {
	Step string `json:"step"` // one of the Step* names
	Ran  bool   `json:"ran"`  // false: skipped, the weights untouched by it
	// Note says why the step was skipped, or what it left out to stay
	// exact; empty when it ran in full.
	Note string `json:"note,omitempty"`
}

// ProcessingRecord is the weight processing a model's weights went
// through, in order: each step some Process call (or Load) was asked for,
// whether it ran and why not. Steps never asked for are not listed, so a
// model with no steps has its weights as trained or as the checkpoint
// held them. It travels with golens checkpoints.
type ProcessingRecord struct {
	Steps []ProcessingStep `json:"steps"`
}

// Ran reports whether step (a Step* name) ran at least once.
func (r ProcessingRecord) Ran(step string) bool {
	for _, s := range r.Steps {
		if s.Step == step && s.Ran {
			return true
		}
	}
	return false
}

// String lists the steps, e.g. "fold_ln skipped (...), center_unembed".
func (r ProcessingRecord) String() string {
	if len(r.Steps) == 0 {
		return "none"
	}
	var parts []string
	for _, s := range r.Steps {
		p := s.Step
		if !s.Ran {
			p += " skipped"
		}
		if s.Note != "" {
			p += " (" + s.Note + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// Processing is the record of the weight processing the model went
// through (a copy).
func (m *HookedTransformer) Processing() ProcessingRecord {
	return ProcessingRecord{Steps: append([]ProcessingStep{}, m.processed.Steps...)}
}

// processingStep is one planned step: the record it leaves and, when it
// runs, what it does.
type processingStep struct {
	rec ProcessingStep
	fn  func(stateDict)
}

// plan decides, for this model's config, which of pr's steps are exact
// invariances of its log-probabilities, and how to do each exactly.
//
// fold_ln turns ln(x) = w*n + b (n = (x-mean)/scale) followed by a linear
// map x W + c into n (diag(w) W) + (b W + c), then centres diag(w) W over
// d_model, which changes nothing since n is centred. That needs the layer
// to read ln's output and nothing else. With shortformer positions, W_Q
// and W_K read ln1(x) + pos: folding would turn pos W_Q into pos diag(w)
// W_Q minus its centring, and no change to the one W_pos shared by every
// layer can undo that for each layer's own w. Folding ln1's bias alone is
// exact, but ln1 cannot then become an LNPre (it keeps w), and
// normalization_type is one value for every LayerNorm; so for a
// shortformer model fold_ln is skipped whole.
//
// center_writing_weights subtracts from each vector written to the
// residual stream its mean over d_model. Every position's residual then
// changes by a multiple of the all-ones vector, which is invisible only
// to readers that remove the mean: that holds when every reader is a
// LayerNorm (LN or LNPre: ln1, ln2, ln_final; attention-only models
// have ln_final too). Without normalization the step is skipped. W_pos
// of a shortformer model is not written to the residual stream (it is
// added to ln1's output, which nothing re-centres), so it is left out.
//
// center_unembed shifts each position's logits by a constant, which
// log_softmax removes: exact unless the logits are soft-capped (Gemma 2),
// as cap·tanh(x/cap) is not invariant to a shift; then it is skipped, as
// TransformerLens skips it. fold_value_biases relies on each
// attention pattern row summing to one, which softmax ensures: always
// exact. refactor_factored_attn keeps the products [W_Q; b_Q][W_K; b_K]ᵀ
// and W_V W_O per head (b_V folded first), whatever the inputs are, so
// it is exact for shortformer models too.
func (m *HookedTransformer) plan(pr Processing) []processingStep {
	c := &m.Cfg
	shortformer := c.PositionalEmbeddingType == "shortformer"
	var steps []processingStep
	add := func(on bool, name string, fn func(stateDict), skip, note string) {
		if !on {
			return
		}
		if skip != "" {
			steps = append(steps, processingStep{rec: ProcessingStep{Step: name, Note: skip}})
			return
		}
		steps = append(steps, processingStep{rec: ProcessingStep{Step: name, Ran: true, Note: note}, fn: fn})
	}

	foldSkip, foldNote := "", ""
	rms := c.NormalizationType == "RMS" || c.NormalizationType == "RMSPre" || c.FinalRMS
	switch {
	case c.NormalizationType == "LNPre" || c.NormalizationType == "RMSPre":
		foldSkip = "normalization_type is " + c.NormalizationType + ": no norm weights to fold"
	case c.NormalizationType == "":
		foldSkip = "the model has no LayerNorm"
	case shortformer:
		foldSkip = "shortformer positions are added to ln1's output before W_Q and W_K, so ln1's weights cannot be folded into them exactly; the LayerNorms keep their weights"
	case c.GatedMLP && c.NormalizationType == "LN":
		foldSkip = "gated_mlp: ln2's bias reaches W_gate, which has no bias to fold it into; the LayerNorms keep their weights"
	case rms:
		foldNote = "RMSNorm weights folded; the readers of an RMSNorm are not centred (RMSNorm does not remove the mean)"
		if c.UseNormalizationBeforeAndAfter {
			foldNote += "; ln1_post and ln2_post keep their weights (the residual stream reads their output, so nothing can absorb them)"
		}
	}
	add(pr.FoldLN, StepFoldLN, m.foldLayerNorm, foldSkip, foldNote)

	centerSkip, centerNote := "", ""
	if c.NormalizationType != "LN" && c.NormalizationType != "LNPre" {
		centerSkip = "the model has no LayerNorm to remove the residual stream's mean"
		if rms {
			centerSkip = "RMSNorm does not remove the residual stream's mean, so centring what is written to it would change the model"
		}
	} else if c.FinalRMS {
		centerSkip = "final_rms: ln_final is an RMSNorm, which does not remove the residual stream's mean"
	} else if shortformer {
		centerNote = "W_pos left as is: shortformer positions are added to the attention's query and key inputs, not to the residual stream"
	}
	add(pr.CenterWritingWeights, StepCenterWritingWeights, func(sd stateDict) { m.centerWritingWeights(sd, c.PositionalEmbeddingType == "standard") }, centerSkip, centerNote)
	unembedSkip := ""
	if c.OutputLogitsSoftCap > 0 {
		unembedSkip = "output_logits_soft_cap: the soft cap of the logits is not invariant to shifting them"
	}
	add(pr.CenterUnembed, StepCenterUnembed, m.centerUnembed, unembedSkip, "")
	add(pr.FoldValueBiases, StepFoldValueBiases, m.foldValueBiases, "", "")
	refactorSkip := ""
	if c.NKeyValueHeads > 0 {
		refactorSkip = "grouped-query attention: query heads share key and value heads, so W_K and W_V cannot be refactored for each head alone"
	}
	if c.PositionalEmbeddingType == "rotary" {
		refactorSkip = "rotary embeddings rotate q and k between W_Q and W_K, so W_Q W_Kᵀ is not what the scores read and refactoring it would change the model"
	}
	add(pr.RefactorFactoredAttn, StepRefactorFactoredAttn, m.refactorFactoredAttn, refactorSkip, "")
	return steps
}

// Process applies pr in from_pretrained's order, each step only where it
// is an exact invariance of the model's log-probabilities (see plan), and
// appends what it did to the model's ProcessingRecord.
func (m *HookedTransformer) Process(pr Processing) error {
	steps := m.plan(pr)
	err := gotch.NoGrad(func() error {
		return gotch.Try(func() {
			for _, st := range steps {
				if st.fn != nil {
					sd, s, err := m.StateDict()
					if err != nil {
						panic(err)
					}
					func() {
						defer s.Close()
						st.fn(sd)
					}()
				}
				m.processed.Steps = append(m.processed.Steps, st.rec)
			}
		})
	})
	// The weights changed, perhaps partly on error. prepare runs outside
	// NoGrad so that the views it remakes record gradients when the
	// weights do.
	if perr := gotch.Try(m.prepare); err == nil {
		err = perr
	}
	return err
}

// stateDict is StateDict's result for the processing steps: views whose
// in-place updates change the model, and whose ops land in its scope.
type stateDict map[string]*gotch.Tensor

func (sd stateDict) w(name string) *gotch.Tensor {
	t, ok := sd[name]
	if !ok {
		panic(fmt.Errorf("process weights: no %s", name))
	}
	return t
}

// foldInto folds a LayerNorm (weight w, bias b over d_model) into a weight
// W that reads its output along dim: b_W += Σ b·W, W *= w, then W is
// centred along dim, since LayerNormPre's output is centred anyway. An
// RMSNorm (lnB nil) has no bias and its output is not centred: only W *=
// w.
func foldInto(W, bias, lnW, lnB *gotch.Tensor, dim int64, shape []int64) {
	if lnB != nil {
		wB := lnB.MustView(shape)
		bias.MustAdd_(W.MustMul(wB).MustSumDims([]int64{dim}, false))
	}
	W.MustMul_(lnW.MustView(shape))
	if lnB != nil {
		W.MustSub_(W.MustMeanDims([]int64{dim}, true))
	}
}

// foldLN folds the norm named prefix (ln1, ln2, ...) into the weights
// (with their biases) that read it.
func foldLN(sd stateDict, ln *LayerNorm, prefix string, dim int64, shape []int64, weights ...[2]string) {
	var lnB *gotch.Tensor
	if !ln.rms {
		lnB = sd.w(prefix + ".b")
	}
	lnW := sd.w(prefix + ".w")
	if ln.plusOne {
		lnW = lnW.MustAddScalar(1) // Gemma's norm scales by (1 + w)
	}
	for _, w := range weights {
		var bias *gotch.Tensor
		if w[1] != "" {
			bias = sd.w(w[1])
		}
		foldInto(sd.w(w[0]), bias, lnW, lnB, dim, shape)
	}
	dropLN(ln)
}

func (m *HookedTransformer) foldLayerNorm(sd stateDict) {
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		// W [head d_model d_head] reads d_model (dim 1)
		foldLN(sd, b.Ln1, pre+"ln1", 1, []int64{1, -1, 1}, m.qkvNames(pre)...)
		if b.MLP != nil {
			in := [][2]string{{pre + "mlp.W_in", pre + "mlp.b_in"}}
			if b.MLP.WGate != nil {
				in = append(in, [2]string{pre + "mlp.W_gate", ""})
			}
			foldLN(sd, b.Ln2, pre+"ln2", 0, []int64{-1, 1}, in...)
			if b.MLP.ln != nil {
				foldLN(sd, b.MLP.ln, pre+"mlp.ln", 0, []int64{-1, 1}, [2]string{pre + "mlp.W_out", pre + "mlp.b_out"})
			}
		}
	}
	foldLN(sd, m.LnFinal, "ln_final", 0, []int64{-1, 1}, [2]string{"unembed.W_U", "unembed.b_U"})
	m.Cfg.NormalizationType += "Pre"
}

// qkvNames are the state dict names of a layer's query, key and value
// weights and biases, which read ln1.
func (m *HookedTransformer) qkvNames(pre string) [][2]string {
	var out [][2]string
	for _, n := range []string{"Q", "K", "V"} {
		kv := ""
		if n != "Q" && m.Cfg.NKeyValueHeads > 0 {
			kv = "_" // GroupedQueryAttention's _W_K, _W_V
		}
		out = append(out, [2]string{pre + "attn." + kv + "W_" + n, pre + "attn." + kv + "b_" + n})
	}
	return out
}

func dropLN(ln *LayerNorm) {
	if ln == nil {
		return
	}
	ln.W.Free()
	ln.B.Free()
	ln.W, ln.B = nil, nil
	ln.affine, ln.plusOne = false, false
}

// centerWritingWeights makes every vector written to the residual stream
// mean-zero over d_model: LayerNorm removes that mean anyway. W_pos is
// centred only when it is written to the residual stream (pos).
func (m *HookedTransformer) centerWritingWeights(sd stateDict, pos bool) {
	center := func(name string) {
		w := sd.w(name)
		w.MustSub_(w.MustMeanDims([]int64{-1}, true))
	}
	center("embed.W_E")
	if pos {
		center("pos_embed.W_pos")
	}
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		center(pre + "attn.W_O")
		center(pre + "attn.b_O")
		if b.MLP != nil {
			center(pre + "mlp.W_out")
			center(pre + "mlp.b_out")
		}
	}
}

// centerUnembed makes the logits mean-zero over the vocabulary; softmax
// is unchanged by a shift.
func (m *HookedTransformer) centerUnembed(sd stateDict) {
	wu, bu := sd.w("unembed.W_U"), sd.w("unembed.b_U")
	wu.MustSub_(wu.MustMeanDims([]int64{-1}, true))
	bu.MustSub_(bu.MustMean())
}

// foldValueBiases moves b_V into b_O: the pattern sums to one over keys,
// so each head adds b_V·W_O whatever it attends to.
func (m *HookedTransformer) foldValueBiases(sd stateDict) {
	for l, b := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		bV := sd.w(m.qkvNames(pre)[2][1]) // [n_kv_heads d_head]
		wO, bO := sd.w(pre+"attn.W_O"), sd.w(pre+"attn.b_O")
		// each query head adds its key/value head's b_V W_O
		bO.MustAdd_(gotch.MustEinsum("hd,hdm->m", []*gotch.Tensor{b.Attn.repeatKV(bV, 0), wO}))
		bV.MustZero_()
	}
}

// refactorFactoredAttn rewrites each head's W_Q/W_K (with their biases as
// an extra input row) and W_V/W_O as balanced factors of the same
// products: both factors get the square root of the singular values.
func (m *HookedTransformer) refactorFactoredAttn(sd stateDict) {
	for l := range m.Blocks {
		pre := "blocks." + itoa(l) + "."
		wQ, bQ, wK, bK := sd.w(pre+"attn.W_Q"), sd.w(pre+"attn.b_Q"), sd.w(pre+"attn.W_K"), sd.w(pre+"attn.b_K")
		dModel := wQ.Size(1)
		qEff := gotch.MustCat([]*gotch.Tensor{wQ, bQ.MustUnsqueeze(1)}, 1) // [head d_model+1 d_head]
		kEff := gotch.MustCat([]*gotch.Tensor{wK, bK.MustUnsqueeze(1)}, 1)
		a, bT := evenFactors(qEff, kEff.MustTranspose(-1, -2))
		k := bT.MustTranspose(-1, -2)
		wQ.MustCopy_(a.MustNarrow(1, 0, dModel))
		bQ.MustCopy_(a.MustSelect(1, dModel))
		wK.MustCopy_(k.MustNarrow(1, 0, dModel))
		bK.MustCopy_(k.MustSelect(1, dModel))

		wV, bV, wO, bO := sd.w(pre+"attn.W_V"), sd.w(pre+"attn.b_V"), sd.w(pre+"attn.W_O"), sd.w(pre+"attn.b_O")
		bO.MustAdd_(gotch.MustEinsum("hd,hdm->m", []*gotch.Tensor{bV, wO}))
		bV.MustZero_()
		v, o := evenFactors(wV, wO)
		wV.MustCopy_(v)
		wO.MustCopy_(o)
	}
}
