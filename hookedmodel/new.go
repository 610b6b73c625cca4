package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
)

// Option configures New and the loaders.
type Option func(*options)

type options struct {
	device gotch.Device
	seed   uint64
	dtype  string
}

func collect(opts []Option) options {
	o := options{device: gotch.CPU}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// OnDevice puts the model's weights on dev (default the CPU).
func OnDevice(dev gotch.Device) Option { return func(o *options) { o.device = dev } }

// WithSeed seeds weight initialisation (default 0).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithDType overrides the config's dtype ("float32", "float16", ...).
func WithDType(dtype string) Option { return func(o *options) { o.dtype = dtype } }

// New builds a model of cfg with weights initialised as TransformerLens's
// "gpt2" init mode does: every W_ normal with standard deviation
// initializer_range, biases zero, LayerNorm weights one.
func New(cfg Config, opts ...Option) (m *HookedTransformer, err error) {
	o := collect(opts)
	if o.dtype != "" {
		cfg.DType = o.dtype
	}
	if m, err = build(cfg, o.device); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	gen, err := gotch.NewGenerator(o.seed)
	if err != nil {
		return nil, err
	}
	defer gen.Free()
	err = gotch.Try(func() {
		c := &m.Cfg
		dm, dv, hd := int64(c.DModel), int64(c.DVocab), int64(c.NHeads*c.DHead)
		normal := func(shape ...int64) *gotch.Tensor {
			s := gotch.NewScope()
			defer s.Close()
			x := s.Attach(gotch.MustRandn(shape, gen, gotch.Float, gotch.CPU))
			return s.Keep(x.MustMulScalar(c.InitializerRange).MustToDevice(o.device, false).MustTo(m.dtype))
		}
		zeros := func(n int64) *gotch.Tensor { return gotch.MustZeros([]int64{n}, m.dtype, o.device) }
		ones := func(n int64) *gotch.Tensor { return gotch.MustOnes([]int64{n}, m.dtype, o.device) }
		initLN := func(ln *LayerNorm, n int64) {
			if ln != nil && c.NormalizationType == "LN" {
				ln.W, ln.B = ones(n), zeros(n)
			}
		}
		m.WE = normal(dv, dm)
		m.WPos = normal(int64(c.NCtx), dm)
		for _, b := range m.Blocks {
			initLN(b.Ln1, dm)
			b.Attn.WQKV, b.Attn.BQKV = normal(3*hd, dm), zeros(3*hd)
			b.Attn.WO, b.Attn.BO = normal(dm, hd), zeros(dm)
			if b.MLP != nil {
				dmlp := int64(c.DMLP)
				initLN(b.Ln2, dm)
				b.MLP.WIn, b.MLP.BIn = normal(dmlp, dm), zeros(dmlp)
				b.MLP.WOut, b.MLP.BOut = normal(dm, dmlp), zeros(dm)
				initLN(b.MLP.ln, dmlp)
			}
		}
		initLN(m.LnFinal, dm)
		m.WU, m.BU = normal(int64(c.DVocabOut), dm), zeros(int64(c.DVocabOut))
		m.prepare()
	})
	if err != nil {
		m.Free()
		return nil, fmt.Errorf("new model: %w", err)
	}
	return m, nil
}
