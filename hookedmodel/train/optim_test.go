package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// refAdamW is torch.optim.AdamW's step in plain float64 Go.
func refAdamW(p, m, v, g []float64, t int, lr float64, cfg TrainConfig, decay bool) {
	b1, b2 := cfg.Betas[0], cfg.Betas[1]
	bc1, bc2 := 1-math.Pow(b1, float64(t)), 1-math.Pow(b2, float64(t))
	for i := range p {
		if decay {
			p[i] *= 1 - lr*cfg.WeightDecay
		}
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + cfg.Eps)
	}
}

func TestAdamWMatchesReference(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	cfg := DefaultTrainConfig()
	cfg.WeightDecay, cfg.Betas, cfg.Eps = 0.1, [2]float64{0.8, 0.95}, 1e-6
	r := rand.New(rand.NewPCG(1, 2))
	randn := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		return x
	}
	shapes := [][]int64{{3, 4}, {5}} // a matrix (decayed) and a bias (not)
	var params []hookedmodel.Parameter
	var ref [][3][]float64 // p, m, v per parameter
	for i, sh := range shapes {
		n := int(sh[0])
		if len(sh) == 2 {
			n *= int(sh[1])
		}
		p := randn(n)
		params = append(params, hookedmodel.Parameter{Name: string(rune('a' + i)), Tensor: gotch.MustFromSlice(toF32(p), sh, dev)})
		ref = append(ref, [3][]float64{p, make([]float64, n), make([]float64, n)})
	}
	defer func() {
		for _, p := range params {
			p.Tensor.Free()
		}
	}()
	opt, err := newAdamW(params, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.free()
	for step := 1; step <= 5; step++ {
		lr := 0.01 * float64(step)
		s := gotch.NewScope()
		grads := make([]*gotch.Tensor, len(params))
		for i, sh := range shapes {
			g := randn(len(ref[i][0]))
			grads[i] = s.Attach(gotch.MustFromSlice(toF32(g), sh, dev))
			refAdamW(ref[i][0], ref[i][1], ref[i][2], roundF32(g), step, lr, cfg, len(sh) == 2)
		}
		err := gotch.NoGrad(func() error { return gotch.Try(func() { opt.update(s, grads, lr) }) })
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range params {
			gotchtest.Close(t, p.Name, gotchtest.Values(t, p.Tensor), ref[i][0], 1e-5)
			gotchtest.Close(t, p.Name+" m", gotchtest.Values(t, opt.m[i]), ref[i][1], 1e-5)
			gotchtest.Close(t, p.Name+" v", gotchtest.Values(t, opt.v[i]), ref[i][2], 1e-5)
		}
	}
	if opt.steps[0] != 5 || opt.steps[1] != 5 {
		t.Errorf("step counts %v, want 5 each", opt.steps)
	}
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func roundF32(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(float32(v))
	}
	return out
}

func TestClipGrads(t *testing.T) {
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	for _, tc := range []struct {
		clip, wantNorm, wantAfter float64
	}{
		{1, 13, 1},   // scaled down to the limit
		{20, 13, 13}, // under the limit: untouched
		{0, 13, 13},  // no clipping
	} {
		s := gotch.NewScope()
		grads := []*gotch.Tensor{
			s.Attach(gotch.MustFromSlice([]float32{3, 4}, []int64{2}, dev)),
			nil, // a parameter without a gradient
			s.Attach(gotch.MustFromSlice([]float32{12}, []int64{1, 1}, dev)),
		}
		norm := clipGrads(grads, tc.clip)
		after := math.Hypot(math.Hypot(gotchtest.Values(t, grads[0])[0], gotchtest.Values(t, grads[0])[1]), gotchtest.Values(t, grads[2])[0])
		s.Close()
		if math.Abs(norm-tc.wantNorm) > 1e-5 || math.Abs(after-tc.wantAfter) > 1e-5 {
			t.Errorf("clip %g: norm %g, after %g; want %g, %g", tc.clip, norm, after, tc.wantNorm, tc.wantAfter)
		}
	}
}

func TestLearningRate(t *testing.T) {
	tc := TrainConfig{LR: 1, MinLR: 0.1, Warmup: 4, Steps: 12}
	cosine := func(step int) float64 { return 0.1 + 0.9*(1+math.Cos(math.Pi*float64(step+1-4)/8))/2 }
	for _, c := range []struct {
		step int
		want float64
	}{
		{0, 0.25}, {1, 0.5}, {3, 1}, // linear warm-up
		{4, cosine(4)}, {7, 0.55}, {10, cosine(10)}, // half-way down at step 7
		{11, 0.1}, // the last step runs at min_lr
	} {
		if got := tc.LearningRate(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: lr %g, want %g", c.step, got, c.want)
		}
	}
	flat := TrainConfig{LR: 0.5, Warmup: 3, Steps: 3}
	if got := flat.LearningRate(2); got != 0.5 {
		t.Errorf("warm-up over every step: last lr %g, want 0.5", got)
	}
	noWarmup := TrainConfig{LR: 0.5, Steps: 10}
	if got, want := noWarmup.LearningRate(0), 0.25*(1+math.Cos(math.Pi/10)); math.Abs(got-want) > 1e-12 {
		t.Errorf("no warm-up: first lr %g, want %g, one tenth down the cosine", got, want)
	}
}
