package analysis

import (
	"context"
	"math"
	"sort"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// addNoise perturbs every weight of m, biases and LayerNorm weights too,
// so that every term of a decomposition matters.
func addNoise(t *testing.T, m *hookedmodel.HookedTransformer, seed uint64) {
	t.Helper()
	sd, s, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gen := gotch.MustNewGenerator(seed)
	defer gen.Free()
	names := make([]string, 0, len(sd))
	for k := range sd {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		w := sd[k]
		w.MustAdd_(s.Attach(gotch.MustRandn(w.Shape(), gen, w.DType(), w.Device())).MustMulScalar(0.2))
	}
}

func sumOver(t *Table, axis int) []float64 {
	var out []float64
	outer, inner := 1, 1
	for d := range axis {
		outer *= t.Shape[d]
	}
	for d := axis + 1; d < len(t.Shape); d++ {
		inner *= t.Shape[d]
	}
	n := t.Shape[axis]
	out = make([]float64, outer*inner)
	for o := range outer {
		for i := range n {
			for j := range inner {
				out[o*inner+j] += t.Data[(o*n+i)*inner+j]
			}
		}
	}
	return out
}

func TestLogitAttributionSumsToTheLogitDiff(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := mlpModel(t)
	addNoise(t, m, 3)
	tok := randomTokens(t, m, 3, 9, 4)
	ctx := context.Background()
	for _, tc := range []struct {
		name               string
		pos                int
		correct, incorrect []int64
	}{
		{"last position, difference", -1, []int64{3, 17, 25}, []int64{30, 2, 25}},
		{"middle position, logit", 4, []int64{0, 39, 11}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := LogitAttribution(ctx, m, tok, tc.correct, tc.incorrect, AtPosition(tc.pos))
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out", "bias"}
			if len(r.Labels) != len(want) {
				t.Fatalf("labels %q, want %q", r.Labels, want)
			}
			for i := range want {
				if r.Labels[i] != want[i] {
					t.Fatalf("labels %q, want %q", r.Labels, want)
				}
			}
			// The total, read from the logits independently.
			out, err := m.Forward(ctx, hookedmodel.Tokens(tok))
			if err != nil {
				t.Fatal(err)
			}
			logits := gotchtest.Values(t, out.Logits)
			out.Free()
			pos := tc.pos
			if pos < 0 {
				pos += 9
			}
			for b := range 3 {
				row := logits[(b*9+pos)*40:][:40]
				w := row[tc.correct[b]]
				if tc.incorrect != nil {
					w -= row[tc.incorrect[b]]
				}
				if math.Abs(r.Total[b]-w) > 1e-4 {
					t.Errorf("total[%d] = %g, the logits say %g", b, r.Total[b], w)
				}
			}
			sum := sumOver(r.Components, 0)
			for b := range 3 {
				if math.Abs(sum[b]-r.Total[b]) > 1e-4 {
					t.Errorf("row %d: the components sum to %.6f, the logit difference is %.6f", b, sum[b], r.Total[b])
				}
			}
			gotchtest.Close(t, "head sources summed over positions", sumOver(r.HeadSources, 2), r.Heads.Data, 1e-5)
			// Nothing reads from a later position.
			for i, v := range r.HeadSources.Data {
				if idx := r.HeadSources.Index(i); idx[2] > pos && v != 0 {
					t.Fatalf("head %d.%d reads %g from position %d, after %d", idx[0], idx[1], v, idx[2], pos)
				}
			}
		})
	}
}

func TestLogitAttributionFindsTheInductionHead(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 31)
	ids := gotchtest.Values(t, tok)
	const seqLen, n = 10, 21
	// At the last position (seq[L-1] again) the continuation is seq[0]; the
	// difference is with seq[1].
	var correct, incorrect []int64
	for b := range 4 {
		correct = append(correct, int64(ids[b*n+1]))
		incorrect = append(incorrect, int64(ids[b*n+2]))
	}
	r, err := LogitAttribution(context.Background(), im.Model, tok, correct, incorrect)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 4 {
		if correct[b] == incorrect[b] {
			continue
		}
		best, bestV := HeadID{}, math.Inf(-1)
		for l := range 2 {
			for h := range 3 {
				if v := r.Heads.At(l, h, b); v > bestV {
					best, bestV = HeadID{l, h}, v
				}
			}
		}
		if best != im.Induction || bestV < 0.5*r.Total[b] {
			t.Errorf("row %d: the largest head contribution is %v's %.3f of %.3f, want the induction head's, most of it", b, best, bestV, r.Total[b])
		}
		// It reads from the position after the last token's first
		// occurrence, L+1 (ties when the random sequence repeats a token).
		src, srcV := 0, math.Inf(-1)
		for p := range n {
			if v := r.HeadSources.At(im.Induction.Layer, im.Induction.Head, p, b); v > srcV {
				src, srcV = p, v
			}
		}
		if ids[b*n+src-1] != ids[b*n+seqLen] {
			t.Errorf("row %d: the induction head's contribution comes from position %d, whose previous token is not the last one", b, src)
		}
	}
}

// TestLogitAttributionGroupedQuery: with grouped-query attention each
// head's per-source writes (values repeated per query head as
// repeat_kv does) sum over the source positions to the head's attribution.
func TestLogitAttributionGroupedQuery(t *testing.T) {
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
	tok := randomTokens(t, m, 2, 6, 4)
	r, err := LogitAttribution(context.Background(), m, tok, []int64{3, 17}, []int64{30, 2})
	if err != nil {
		t.Fatal(err)
	}
	sum := sumOver(r.Components, 0) // RMSNorm's ln_final: a weight, no bias
	for b := range 2 {
		if math.Abs(sum[b]-r.Total[b]) > 1e-4 {
			t.Errorf("row %d: the components sum to %.6f, the logit difference is %.6f", b, sum[b], r.Total[b])
		}
	}
	for l := range 2 {
		for h := range 4 {
			for b := range 2 {
				sum := 0.0
				for k := range 6 {
					sum += r.HeadSources.At(l, h, k, b)
				}
				if want := r.Heads.At(l, h, b); math.Abs(sum-want) > 1e-4 {
					t.Errorf("head %d.%d row %d: sources sum to %.6f, the head's attribution is %.6f", l, h, b, sum, want)
				}
			}
		}
	}
}
