package analysis

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// matrix is a dense row-major matrix for the reference computation.
type matrix struct {
	r, c int
	v    []float64
}

func (a matrix) mul(b matrix) matrix {
	out := matrix{a.r, b.c, make([]float64, a.r*b.c)}
	for i := range a.r {
		for k := range a.c {
			for j := range b.c {
				out.v[i*b.c+j] += a.v[i*a.c+k] * b.v[k*b.c+j]
			}
		}
	}
	return out
}

func (a matrix) t() matrix {
	out := matrix{a.c, a.r, make([]float64, len(a.v))}
	for i := range a.r {
		for j := range a.c {
			out.v[j*a.r+i] = a.v[i*a.c+j]
		}
	}
	return out
}

func (a matrix) norm() float64 {
	var s float64
	for _, x := range a.v {
		s += x * x
	}
	return math.Sqrt(s)
}

// TestCompositionScoresMatchDense checks the factored computation against
// the dense d_model × d_model matrices.
func TestCompositionScoresMatchDense(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := mlpModel(t)
	res, err := CompositionScores(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const nl, nh, d, k = 2, 4, 16, 4
	head := func(name string, l, h, r, c int) matrix {
		v := gotchtest.Values(t, sd[fmt.Sprintf("blocks.%d.attn.%s", l, name)])
		return matrix{r, c, v[h*r*c : (h+1)*r*c]}
	}
	ov := func(l, h int) matrix { return head("W_V", l, h, d, k).mul(head("W_O", l, h, k, d)) }
	qk := func(l, h int) matrix { return head("W_Q", l, h, d, k).mul(head("W_K", l, h, d, k).t()) }
	score := func(a, b matrix) float64 { return a.mul(b).norm() / (a.norm() * b.norm()) }
	for l1 := range nl {
		for h1 := range nh {
			for l2 := range nl {
				for h2 := range nh {
					want := [3]float64{}
					if l2 > l1 {
						a := ov(l1, h1)
						want = [3]float64{score(a, qk(l2, h2)), score(a, qk(l2, h2).t()), score(a, ov(l2, h2))}
					}
					got := [3]float64{res.Q.At(l1, h1, l2, h2), res.K.At(l1, h1, l2, h2), res.V.At(l1, h1, l2, h2)}
					for i := range 3 {
						if math.Abs(got[i]-want[i]) > 1e-5 {
							t.Errorf("%c-composition %d.%d -> %d.%d: %.6f, dense %.6f", "QKV"[i], l1, h1, l2, h2, got[i], want[i])
						}
					}
				}
			}
		}
	}
	// Random 16×4·4×16 matrices: the baseline is about 1/√16-ish, and
	// well inside (0, 1).
	if res.Baseline <= 0.05 || res.Baseline >= 0.6 {
		t.Errorf("baseline %.3f is implausible", res.Baseline)
	}
}

func TestCompositionScoresOnTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	res, err := CompositionScores(context.Background(), im.Model, WithSeed(2))
	if err != nil {
		t.Fatal(err)
	}
	p, ind := im.PrevToken, im.Induction
	kScore := res.K.At(p.Layer, p.Head, ind.Layer, ind.Head)
	t.Logf("K-composition %v -> %v: %.4f; baseline %.4f", p, ind, kScore, res.Baseline)
	for name, tab := range map[string]*Table{"Q": res.Q, "K": res.K, "V": res.V} {
		for i, v := range tab.Data {
			idx := tab.Index(i)
			if name == "K" && idx[0] == p.Layer && idx[1] == p.Head && idx[2] == ind.Layer && idx[3] == ind.Head {
				continue
			}
			if v >= kScore {
				t.Errorf("%s-composition %v: %.4f, not below the circuit's K-composition %.4f", name, idx, v, kScore)
			}
		}
	}
	// The previous-token head writes tok(t) -> prev(t) for all 64 tokens,
	// the induction head's keys read prev(t) for the 63 but BOS, aligned:
	// the score is √63 / (√64 √63) = 1/8.
	if math.Abs(kScore-0.125) > 1e-4 {
		t.Errorf("K-composition of the circuit %.5f, want 1/8", kScore)
	}
	if kScore < 1.5*res.Baseline {
		t.Errorf("the circuit's K-composition %.4f is not well above the random baseline %.4f", kScore, res.Baseline)
	}
	// Q- and V-composition of the circuit's heads are exactly zero: the
	// previous-token head writes where neither the induction head's
	// queries nor its values read.
	if q, v := res.Q.At(p.Layer, p.Head, ind.Layer, ind.Head), res.V.At(p.Layer, p.Head, ind.Layer, ind.Head); q > 1e-6 || v > 1e-6 {
		t.Errorf("Q- and V-composition of the circuit %.2g and %.2g, want 0", q, v)
	}
}

// TestCompositionScoresGroupedQuery: with grouped-query attention the
// scores read keys and values repeated per query head (TransformerLens's
// W_K and W_V): query heads 2h and 2h+1 share key head h, so their
// K-composition scores from any earlier head are equal, and each equals
// the dense score of the repeated weights.
func TestCompositionScoresGroupedQuery(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.NKeyValueHeads, cfg.DMLP = 2, 16, 4, 4, 2, 32
	cfg.NCtx, cfg.DVocab, cfg.ActFn, cfg.GatedMLP = 16, 40, "silu", true
	cfg.NormalizationType, cfg.PositionalEmbeddingType = "RMS", "rotary"
	m, err := hookedmodel.New(cfg, hookedmodel.OnDevice(gotchtest.Device(t)), hookedmodel.WithSeed(9))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	res, err := CompositionScores(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	const d, k = 16, 4
	head := func(w *gotch.Tensor, h, r, c int) matrix {
		v := gotchtest.Values(t, w)
		return matrix{r, c, v[h*r*c : (h+1)*r*c]}
	}
	a0, a1 := m.Blocks[0].Attn, m.Blocks[1].Attn
	ov := head(must(a0.W_V()), 1, d, k).mul(head(must(a0.W_O()), 1, k, d))
	q1, k1 := must(a1.W_Q()), must(a1.W_K())
	score := func(a, b matrix) float64 { return a.mul(b).norm() / (a.norm() * b.norm()) }
	for h2 := range 4 {
		want := score(ov, head(q1, h2, d, k).mul(head(k1, h2, d, k).t()).t())
		if got := res.K.At(0, 1, 1, h2); math.Abs(got-want) > 1e-5 {
			t.Errorf("K-composition 0.1 -> 1.%d: %.6f, dense %.6f", h2, got, want)
		}
	}
}
