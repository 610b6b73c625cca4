package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/reference"
)

// The correctness check of every row: the workload runs on a small input
// (batch 1, 4 tokens; 4 new tokens) and its numbers are compared with the
// float64 reference of the same weights.
const (
	checkBatch, checkSeq, checkNewTokens = 1, 4, 4
)

// tolerance is the largest relative error a dtype may show.
func tolerance(dtype string) float64 {
	if dtype == "float32" || dtype == "float64" {
		return 1e-4
	}
	return 5e-2
}

// verdict is a check's outcome: the largest relative error, and what
// differed beyond tolerance ("" when nothing did).
type verdict struct {
	relErr float64
	wrong  string
}

// compare folds one comparison into v.
func (v *verdict) compare(what string, got, want []float64, tol float64) {
	e := gotchtest.RelErr(got, want)
	if math.IsInf(e, 1) || e > v.relErr {
		v.relErr = e
	}
	if (e > tol || math.IsInf(e, 1)) && v.wrong == "" {
		v.wrong = fmt.Sprintf("%s: rel err %.3g > %.3g", what, e, tol)
	}
}

// refModel is the reference of e's current weights: it borrows them, as
// float64 only while a pass of it runs, so a check needs no float64 copy of
// the model (21 GB for gemma2-2b).
func (e *env) refModel() (*reference.Model, error) {
	if e.ref != nil {
		return e.ref, nil
	}
	js, err := json.Marshal(e.m.Cfg)
	if err != nil {
		return nil, err
	}
	rc, err := reference.ParseConfig(js)
	if err != nil {
		return nil, err
	}
	sd, s, err := e.m.StateDict()
	if err != nil {
		return nil, err
	}
	e.ref, e.refViews = reference.Borrow(rc, sd), s
	return e.ref, nil
}

// weightsChanged drops the reference's runs of the old weights, and its
// views of them.
func (e *env) weightsChanged() {
	if e.refViews != nil {
		e.refViews.Close()
	}
	e.ref, e.refViews, e.refRuns = nil, nil, nil
}

// refForward is the reference's activations on rows with edits; runs
// without edits are kept until the weights change.
func (e *env) refForward(rows [][]int64, edits map[string]func(reference.Tensor)) (map[string]reference.Tensor, error) {
	key := fmt.Sprint(rows)
	if acts, ok := e.refRuns[key]; ok && edits == nil {
		return acts, nil
	}
	r, err := e.refModel()
	if err != nil {
		return nil, err
	}
	r.Edits = edits
	acts := r.Forward(rows)
	r.Edits = nil
	if edits == nil {
		if e.refRuns == nil {
			e.refRuns = map[string]refActs{}
		}
		e.refRuns[key] = acts
	}
	return acts, nil
}

// refActs are the reference's activations by hook name, plus "logits".
type refActs = map[string]reference.Tensor

func values(t *gotch.Tensor) ([]float64, error) { return gotch.ToSlice[float64](t) }

// ablateEdits is hooks_modify's intervention on the reference.
var ablateEdits = map[string]func(reference.Tensor){ablatedPoint: func(z reference.Tensor) {
	H, D := z.Shape[2], z.Shape[3]
	for i := range z.Data {
		if (i/D)%H == 0 {
			z.Data[i] = 0
		}
	}
}}

func checkLogits(edits map[string]func(reference.Tensor)) func(*env, *inputs, result, refActs) (verdict, error) {
	return func(e *env, in *inputs, r result, plain refActs) (v verdict, err error) {
		want := plain
		if edits != nil {
			if want, err = e.refForward(in.rows, edits); err != nil {
				return v, err
			}
		}
		got, err := values(r.logits)
		if err != nil {
			return v, err
		}
		v.compare("logits", got, want["logits"].Data, tolerance(e.dtype))
		return v, nil
	}
}

func checkCache(e *env, _ *inputs, r result, want refActs) (v verdict, err error) {
	if r.cache.Len() == 0 {
		return verdict{wrong: "the cache is empty"}, nil
	}
	for _, name := range r.cache.Keys() {
		ref, ok := want[name]
		if !ok {
			return verdict{wrong: name + ": cached, but the reference has no such hook point"}, nil
		}
		act, err := r.cache.Get(name)
		if err != nil {
			return v, err
		}
		got, err := values(act)
		if err != nil {
			return v, err
		}
		v.compare(name, reference.Finite(got), reference.Finite(ref.Data), tolerance(e.dtype))
	}
	return v, nil
}

// checkGenerate compares the generated ids with the reference's greedy
// continuation, and the prompt's logits as a number.
func checkGenerate(e *env, in *inputs, r result, _ refActs) (v verdict, err error) {
	rows := in.rows
	for range in.newTokens {
		acts, err := e.refForward(rows, nil)
		if err != nil {
			return v, err
		}
		logits := acts["logits"]
		V := logits.Shape[2]
		next := make([][]int64, len(rows))
		for b, row := range rows {
			last := logits.Data[((b+1)*len(row)-1)*V:][:V]
			next[b] = append(slices.Clone(row), int64(argmax(last)))
		}
		rows = next
	}
	if !slices.EqualFunc(r.ids, rows, slices.Equal) {
		v.wrong = fmt.Sprintf("generated %v, the reference %v", r.ids, rows)
	}
	return v, nil
}

func argmax(xs []float64) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

// checkPatching recomputes three entries of the head × position grid (the
// first, the middle and the last) and the unpatched metrics with the
// reference.
func checkPatching(e *env, in *inputs, r result, clean refActs) (v verdict, err error) {
	metric := func(acts map[string]reference.Tensor) float64 {
		l := acts["logits"]
		P, V := l.Shape[1], l.Shape[2]
		s := 0.0
		for b := range l.Shape[0] {
			row := l.Data[(b*P+P-1)*V:][:V]
			s += row[1] - row[2]
		}
		return s / float64(l.Shape[0])
	}
	corrupted, err := e.refForward(in.corruptedRows, nil)
	if err != nil {
		return v, err
	}
	got := []float64{r.patching.Clean, r.patching.Corrupted}
	want := []float64{metric(clean), metric(corrupted)}
	t := r.patching.Patched
	for _, i := range []int{0, len(t.Data) / 2, len(t.Data) - 1} {
		idx := t.Index(i) // layer pos head
		name := fmt.Sprintf("blocks.%d.attn.hook_z", idx[0])
		src := clean[name]
		patch := func(z reference.Tensor) { // [batch pos head d_head]
			P, H, D := z.Shape[1], z.Shape[2], z.Shape[3]
			for b := range z.Shape[0] {
				at := ((b*P+idx[1])*H + idx[2]) * D
				copy(z.Data[at:at+D], src.Data[at:at+D])
			}
		}
		acts, err := e.refForward(in.corruptedRows, map[string]func(reference.Tensor){name: patch})
		if err != nil {
			return v, err
		}
		got, want = append(got, t.Data[i]), append(want, metric(acts))
	}
	v.compare("patching metrics", got, want, tolerance(e.dtype))
	return v, nil
}

// checkTrain compares the loss before the step with the reference's on the
// old weights, and the loss after it with the reference's on the new ones.
func checkTrain(e *env, in *inputs, r result, before refActs) (v verdict, err error) {
	tol := tolerance(e.dtype)
	v.compare("loss before the step", r.losses[:1], []float64{meanLoss(before["logits"], in.rows)}, tol)
	after, err := e.refForward(in.rows, nil)
	if err != nil {
		return v, err
	}
	v.compare("loss after the step", r.losses[1:], []float64{meanLoss(after["logits"], in.rows)}, 10*tol)
	if r.losses[1] >= r.losses[0] {
		v.wrong = fmt.Sprintf("the step did not lower the loss on its batch (%.6g -> %.6g)", r.losses[0], r.losses[1])
	}
	return v, nil
}

// meanLoss is the mean next-token cross-entropy of logits [batch pos vocab].
func meanLoss(logits reference.Tensor, rows [][]int64) float64 {
	P, V := logits.Shape[1], logits.Shape[2]
	sum, n := 0.0, 0
	for b, row := range rows {
		for p := range P - 1 {
			x := logits.Data[(b*P+p)*V:][:V]
			mx := slices.Max(x)
			z := 0.0
			for _, xi := range x {
				z += math.Exp(xi - mx)
			}
			sum += mx + math.Log(z) - x[row[p+1]]
			n++
		}
	}
	return sum / float64(n)
}

// FLOPs, as HARNESS.md counts them (a multiply-add is 2).

// perToken is the matmul FLOPs of one token through the weights: W_Q and
// W_O with n_heads heads, W_K and W_V with n_key_value_heads, and two MLP
// matrices (three when gated).
func perToken(c hookedmodel.Config) float64 {
	kvHeads := c.NHeads
	if c.NKeyValueHeads > 0 {
		kvHeads = c.NKeyValueHeads
	}
	attn := 2 * c.DModel * (c.NHeads + kvHeads) * c.DHead
	mlp := 0
	if !c.AttnOnly {
		mats := 2
		if c.GatedMLP {
			mats = 3
		}
		mlp = mats * c.DModel * c.DMLP
	}
	return 2 * float64(c.NLayers*(attn+mlp)+c.DModel*c.DVocab)
}

// attention is the FLOPs of scores and pattern·v for queries against keys.
func attention(c hookedmodel.Config, queries, keys int) float64 {
	return float64(c.NLayers*c.NHeads) * 2 * 2 * float64(queries*keys*c.DHead)
}

func fwd(c hookedmodel.Config, batch, seq int) float64 {
	return float64(batch) * (float64(seq)*perToken(c) + attention(c, seq, seq))
}

func tokens(_ hookedmodel.Config, in *inputs) float64 { return float64(in.batch * in.seq) }

func newTokens(_ hookedmodel.Config, in *inputs) float64 { return float64(in.batch * in.newTokens) }

func patchedPasses(c hookedmodel.Config, in *inputs) float64 {
	return float64(c.NLayers * in.seq * c.NHeads)
}

func forwardFLOPs(c hookedmodel.Config, in *inputs) float64 { return fwd(c, in.batch, in.seq) }

func trainFLOPs(c hookedmodel.Config, in *inputs) float64 { return 3 * fwd(c, in.batch, in.seq) }

func patchingFLOPs(c hookedmodel.Config, in *inputs) float64 {
	return (patchedPasses(c, in) + 2) * fwd(c, in.batch, in.seq)
}

func generateFLOPs(c hookedmodel.Config, in *inputs) float64 {
	f := 0.0
	for t := range in.newTokens {
		f += fwd(c, in.batch, in.seq+t)
	}
	return f
}

func generateKVFLOPs(c hookedmodel.Config, in *inputs) float64 {
	f := fwd(c, in.batch, in.seq)
	for t := 1; t < in.newTokens; t++ {
		f += float64(in.batch) * (perToken(c) + attention(c, 1, in.seq+t))
	}
	return f
}
