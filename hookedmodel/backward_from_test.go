package hookedmodel

import (
	"context"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestBackwardFrom back-propagates a metric of the logits: without a final
// LayerNorm, d logits[b, p, v] / d resid_post[b, p] is column v of W_U.
func TestBackwardFrom(t *testing.T) {
	gotchtest.CheckLeaks(t)
	cfg := smallConfig()
	cfg.NormalizationType = ""
	cfg.DType = "float64"
	m := newTestModel(t, cfg, 71)
	defer m.Free()
	_, tok := randomTokens(t, 2, 5, cfg.DVocab, 72)
	defer tok.Free()
	ctx := context.Background()
	const point = "blocks.1.hook_resid_post"

	out, cache, err := m.RunWithCache(ctx, Tokens(tok), NamesFilter(Name(point)), InclBwd())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Free()
	defer out.Free()
	const b, p, v = 1, 3, 7
	s := gotch.NewScope() // ops on the output's logits are the test's
	defer s.Close()
	metric := borrow(s, out.Logits).MustSelect(0, b).MustSelect(0, p).MustSelect(0, v)
	if err := out.BackwardFrom(metric); err != nil {
		t.Fatal(err)
	}
	grad := gotchtest.Values(t, cache.MustGet(point+"_grad")) // [batch pos d_model]
	sd, sdScope, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	defer sdScope.Close()
	wU := gotchtest.Values(t, sd["unembed.W_U"]) // [d_model d_vocab]
	d := cfg.DModel
	want := make([]float64, len(grad))
	for i := range d {
		want[(b*5+p)*d+i] = wU[i*cfg.DVocab+v]
	}
	gotchtest.Close(t, "gradient of one logit", grad, want, 1e-12)

	for _, tc := range []struct {
		name   string
		metric func(o *Output) *gotch.Tensor
		want   string
	}{
		{"nil", func(*Output) *gotch.Tensor { return nil }, "scalar"},
		{"not a scalar", func(o *Output) *gotch.Tensor { return borrow(s, o.Logits).MustSelect(0, 0) }, "scalar"},
	} {
		o, err := m.RunWithHooks(ctx, Tokens(tok), []Hook{BwdHook(Name(point), func(*gotch.Tensor, string) (*gotch.Tensor, error) { return nil, nil })})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.BackwardFrom(tc.metric(o)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: BackwardFrom error %v, want one saying %q", tc.name, err, tc.want)
		}
		o.Free()
	}
}
