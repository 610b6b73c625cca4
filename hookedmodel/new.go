package hookedmodel

import (
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel/hub"
)

// Option configures New and the loaders; a nil one is ignored.
type Option func(*options)

type options struct {
	device     gotch.Device
	seed       uint64
	dtype      string // the config's name of WithDType's dtype, or ""
	processing *Processing
	edits      []func(*Config)
	hub        []hub.Option
	// revision, checkpointIndex, checkpointValue pick the version of a
	// model loaded by name (names_official.go).
	revision                         string
	checkpointIndex, checkpointValue *int
	// allowNonFinite loads weights holding NaN or infinities.
	allowNonFinite bool
}

func collect(opts []Option) options {
	o := options{device: gotch.CPU}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// OnDevice puts the model's weights on dev (default the CPU).
func OnDevice(dev gotch.Device) Option { return func(o *options) { o.device = dev } }

// WithSeed seeds weight initialisation (default 0).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithDType overrides the config's dtype: the weights and passes run in d
// (gotch.Float, Half, BFloat16 or Double), and the config's dtype field
// says so in TransformerLens's name ("float16", ...).
func WithDType(d gotch.DType) Option { return func(o *options) { o.dtype = d.String() } }

// New builds a model of cfg with weights initialised as TransformerLens's
// "gpt2" init mode does: every W_ normal with standard deviation
// initializer_range, biases zero, LayerNorm weights one.
func New(cfg Config, opts ...Option) (m *HookedTransformer, err error) {
	if err := gotch.Available(); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
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
		for _, p := range m.params() {
			switch p.init {
			case initNormal:
				*p.ptr = m.normal(p.ptr, p.shape, gen, m.Cfg.InitializerRange)
			case initZeros:
				*p.ptr = gotch.MustZeros(p.shape, m.dtype, o.device)
			case initOnes:
				*p.ptr = gotch.MustOnes(p.shape, m.dtype, o.device)
			}
		}
		m.prepare()
	})
	if err != nil {
		m.Free()
		return nil, fmt.Errorf("new model: %w", err)
	}
	m.attachTokenizer() // as the loaders do: Text inputs work
	return m, nil
}

// normal draws N(0, std²) on the CPU from gen, in blocks of rows of at
// most normalBlock bytes, each copied on into the weight made in its
// device, dtype and memory order (zerosFor): a seed gives the same weights
// on every device and in either order, and a weight is never held twice
// (llama-1b's unembedding alone is 1 GB).
func (m *HookedTransformer) normal(dst **gotch.Tensor, shape []int64, gen *gotch.Generator, std float64) (w *gotch.Tensor) {
	w = must(m.zerosFor(dst, shape))
	defer func() {
		if r := recover(); r != nil {
			w.Free()
			panic(r)
		}
	}()
	rowBytes := int64(4) // float32
	for _, d := range shape[1:] {
		rowBytes *= d
	}
	step := max(1, normalBlock/max(rowBytes, 1))
	for r0 := int64(0); r0 < shape[0]; r0 += step {
		n := min(step, shape[0]-r0)
		func() {
			s := gotch.NewScope()
			defer s.Close() // each block goes before the next is drawn
			block := s.Attach(gotch.MustRandn(append([]int64{n}, shape[1:]...), gen, gotch.Float, gotch.CPU))
			block.MustMulScalar_(std)
			borrow(s, w).MustNarrow(0, r0, n).MustCopy_(block)
		}()
	}
	return w
}

// normalBlock bounds the float32 blocks normal draws (a variable so that
// tests can make small weights come in several blocks).
var normalBlock int64 = 64 << 20
