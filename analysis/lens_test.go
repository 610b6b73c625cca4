package analysis

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

func TestLogitLensEndsAtTheModel(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := mlpModel(t)
	addNoise(t, m, 5)
	tok := randomTokens(t, m, 2, 8, 6)
	ctx := context.Background()
	r, err := LogitLens(ctx, m, tok, TopK(3))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0_pre", "1_pre", "final_post"}; !slices.Equal(r.Labels, want) {
		t.Fatalf("labels %q, want %q", r.Labels, want)
	}
	out, err := m.Forward(ctx, hookedmodel.Tokens(tok), hookedmodel.Return(hookedmodel.ReturnBoth), hookedmodel.LossPerToken())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	loss := gotchtest.Values(t, out.Loss)
	logits := gotchtest.Values(t, out.Logits)
	final := r.LogProbs.Data[2*2*7:]
	for i := range loss {
		if math.Abs(final[i]+loss[i]) > 1e-4 {
			t.Fatalf("final layer log-prob [%d] = %g, the model's loss says %g", i, final[i], -loss[i])
		}
	}
	for b := range 2 {
		for p := range 8 {
			row := logits[(b*8+p)*40:][:40]
			best := 0
			for v := range row {
				if row[v] > row[best] {
					best = v
				}
			}
			if got := r.Top[2][b][p]; got[0] != int64(best) || len(got) != 3 || r.TopLogProbs[2][b][p][0] < r.TopLogProbs[2][b][p][1] {
				t.Errorf("final top tokens at [%d %d]: %v, want %d first", b, p, got, best)
			}
		}
	}
	// The earlier layers are different predictions.
	if gotchtest.RelErr(r.LogProbs.Data[:14], final) < 1e-3 {
		t.Errorf("the embeddings predict what the whole model does")
	}
}

func TestLogitLensOnTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 41)
	r, err := LogitLens(context.Background(), im.Model, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Only the induction head writes what the unembedding reads: before
	// layer 1 the second repeat is unpredicted, after it it is.
	const seqLen, n = 10, 20
	logV := math.Log(float64(im.Model.Cfg.DVocab))
	for l, want := range []float64{-logV, -logV, 0} {
		var lp []float64
		for b := range 4 {
			for p := seqLen + 1; p < n; p++ {
				lp = append(lp, r.LogProbs.At(l, b, p))
			}
		}
		if got := median(lp); math.Abs(got-want) > 0.1 {
			t.Errorf("%s: median log-prob of the second repeat %.3f, want %.3f", r.Labels[l], got, want)
		}
	}
}
