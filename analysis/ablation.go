package analysis

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// AblationMode is what an ablated activation is replaced with.
type AblationMode int

const (
	// ZeroAblation sets the activation to zero.
	ZeroAblation AblationMode = iota
	// MeanAblation sets it to its mean over the batch rows and positions
	// of the Reference tokens.
	MeanAblation
	// ResampleAblation sets each row's activation to that of a row of the
	// Reference tokens drawn at random (WithSeed), at the same positions.
	ResampleAblation
)

func (a AblationMode) String() string {
	switch a {
	case ZeroAblation:
		return "zero"
	case MeanAblation:
		return "mean"
	case ResampleAblation:
		return "resample"
	}
	return fmt.Sprintf("AblationMode(%d)", int(a))
}

// ParseAblationMode is the mode String names: "zero", "mean" or
// "resample".
func ParseAblationMode(s string) (AblationMode, error) {
	for _, m := range []AblationMode{ZeroAblation, MeanAblation, ResampleAblation} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("ablation mode %q: want zero, mean or resample", s)
}

// ComponentKind is the kind of model component an ablation acts on.
type ComponentKind int

const (
	HeadComponent   ComponentKind = iota // one head's output, at blocks.{l}.attn.hook_z
	NeuronComponent                      // one MLP neuron, at blocks.{l}.mlp.hook_post
	AttnComponent                        // a whole attention layer, at blocks.{l}.hook_attn_out
	MLPComponent                         // a whole MLP layer, at blocks.{l}.hook_mlp_out
)

// Component names one ablatable part of a model.
type Component struct {
	Kind  ComponentKind
	Layer int
	Index int // the head or neuron; unused for whole layers
}

// Head is attention head h of layer l.
func Head(l, h int) Component { return Component{HeadComponent, l, h} }

// Neuron is neuron n of layer l's MLP.
func Neuron(l, n int) Component { return Component{NeuronComponent, l, n} }

// AttnLayer is the whole attention layer l.
func AttnLayer(l int) Component { return Component{AttnComponent, l, 0} }

// MLPLayer is the whole MLP of layer l.
func MLPLayer(l int) Component { return Component{MLPComponent, l, 0} }

func (c Component) String() string {
	switch c.Kind {
	case HeadComponent:
		return HeadLabel(c.Layer, c.Index)
	case NeuronComponent:
		return fmt.Sprintf("L%dN%d", c.Layer, c.Index)
	case AttnComponent:
		return fmt.Sprintf("%d_attn_out", c.Layer)
	case MLPComponent:
		return fmt.Sprintf("%d_mlp_out", c.Layer)
	}
	return fmt.Sprintf("Component(%d, %d, %d)", int(c.Kind), c.Layer, c.Index)
}

// HookName is the hook point where the component is ablated.
func (c Component) HookName() string {
	switch c.Kind {
	case HeadComponent:
		return fmt.Sprintf("blocks.%d.attn.hook_z", c.Layer)
	case NeuronComponent:
		return fmt.Sprintf("blocks.%d.mlp.hook_post", c.Layer)
	case AttnComponent:
		return fmt.Sprintf("blocks.%d.hook_attn_out", c.Layer)
	default:
		return fmt.Sprintf("blocks.%d.hook_mlp_out", c.Layer)
	}
}

func (c Component) check(m *hookedmodel.HookedTransformer) error {
	if c.Layer < 0 || c.Layer >= len(m.Blocks) {
		return fmt.Errorf("%v: layer %d is not in a model of %d layers", c, c.Layer, len(m.Blocks))
	}
	switch c.Kind {
	case HeadComponent:
		if c.Index < 0 || c.Index >= m.Cfg.NHeads {
			return fmt.Errorf("%v: head %d is not in a layer of %d heads", c, c.Index, m.Cfg.NHeads)
		}
	case NeuronComponent, MLPComponent:
		if m.Cfg.AttnOnly {
			return fmt.Errorf("%v: an attention-only model has no MLPs", c)
		}
		if c.Kind == NeuronComponent && (c.Index < 0 || c.Index >= m.Cfg.DMLP) {
			return fmt.Errorf("%v: neuron %d is not in an MLP of d_mlp=%d", c, c.Index, m.Cfg.DMLP)
		}
	case AttnComponent:
	default:
		return fmt.Errorf("unknown component kind %d", int(c.Kind))
	}
	return nil
}

// slice is the part of act (the activation at the component's hook point,
// [batch pos ...]) the component owns: a view.
func (c Component) slice(act *gotch.Tensor) *gotch.Tensor {
	switch c.Kind {
	case HeadComponent, NeuronComponent:
		return act.MustSelect(2, int64(c.Index))
	}
	return act
}

// sliceMean is the part of a mean activation [...] (batch and positions
// averaged away) the component owns.
func (c Component) sliceMean(mean *gotch.Tensor) *gotch.Tensor {
	switch c.Kind {
	case HeadComponent, NeuronComponent:
		return mean.MustSelect(0, int64(c.Index))
	}
	return mean
}

// Ablation replaces the activations of a set of components with zeros,
// means or resampled values during a pass: run the model with its Hooks.
// It holds the reference activations mean and resample ablation need;
// Close releases them.
type Ablation struct {
	mode   AblationMode
	comps  []Component
	seed   uint64
	s      *gotch.Scope
	means  map[string]*gotch.Tensor // mean ablation: per hook point, the mean activation
	cache  *hookedmodel.ActivationCache
	byName map[string][]Component
	names  []string
}

// ablationOptions are the options NewAblation reads.
const ablationOptions = optReference | optSeed

// NewAblation prepares the ablation of comps. Mean and resample ablation
// run the model once on the Reference tokens. No components give an
// ablation without hooks. Options: Reference, WithSeed.
func NewAblation(ctx context.Context, m *hookedmodel.HookedTransformer, mode AblationMode, comps []Component, opts ...Option) (*Ablation, error) {
	o, err := collect("NewAblation", opts, ablationOptions)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("ablation: nil model")
	}
	a := &Ablation{mode: mode, comps: comps, seed: o.seed, s: gotch.NewScope(), byName: map[string][]Component{}}
	for _, c := range comps {
		if err := c.check(m); err != nil {
			return nil, fmt.Errorf("ablation: %w", err)
		}
		n := c.HookName()
		if _, ok := a.byName[n]; !ok {
			a.names = append(a.names, n)
		}
		a.byName[n] = append(a.byName[n], c)
	}
	switch mode {
	case ZeroAblation:
		return a, nil
	case MeanAblation, ResampleAblation:
	default:
		return nil, fmt.Errorf("ablation: unknown mode %v", mode)
	}
	if len(a.names) == 0 {
		return a, nil // nothing to average or resample
	}
	if o.reference == nil {
		return nil, fmt.Errorf("ablation: %v ablation needs Reference tokens", mode)
	}
	want := map[string]bool{}
	for _, n := range a.names {
		want[n] = true
	}
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(o.reference), hookedmodel.NamesFilter(func(s string) bool { return want[s] }),
		hookedmodel.Return(hookedmodel.ReturnNone))
	if err != nil {
		return nil, fmt.Errorf("ablation: reference run: %w", err)
	}
	out.Free()
	if mode == ResampleAblation {
		a.cache = cache
		return a, nil
	}
	defer cache.Free()
	a.means = map[string]*gotch.Tensor{}
	err = gotch.Try(func() {
		for _, n := range a.names {
			a.means[n] = must(a.s.Borrow(cache.MustGet(n))).MustMeanDims([]int64{0, 1}, false)
		}
	})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("ablation: %w", err)
	}
	return a, nil
}

// Close releases the reference activations. It is idempotent, and a
// no-op on nil and zero ablations.
func (a *Ablation) Close() {
	if a == nil || a.s == nil {
		return
	}
	a.s.Close()
	a.cache.Free()
	a.cache = nil
}

// Hooks are the forward hooks that ablate the components, one per hook
// point, for RunWithHooks (or AddHook). They replace the activation by an
// edited copy and leave the original alone.
func (a *Ablation) Hooks() []hookedmodel.Hook {
	hooks := make([]hookedmodel.Hook, 0, len(a.names))
	for _, n := range a.names {
		hooks = append(hooks, a.hook(n, a.byName[n]))
	}
	return hooks
}

func (a *Ablation) hook(name string, comps []Component) hookedmodel.Hook {
	return hookedmodel.FwdHook(hookedmodel.Name(name), func(act *gotch.Tensor, _ string) (r *gotch.Tensor, err error) {
		err = gotch.Try(func() {
			s := gotch.NewScope()
			defer s.Close()
			r = act.MustClone() // ours, handed to the pass as the replacement
			dst := must(s.Borrow(r))
			var src *gotch.Tensor
			switch a.mode {
			case MeanAblation:
				src = must(s.Borrow(a.means[name])).MustTo(act.DType())
			case ResampleAblation:
				src = a.resampled(s, name, act)
			}
			for _, c := range comps {
				part := c.slice(dst)
				switch a.mode {
				case ZeroAblation:
					part.MustZero_()
				case MeanAblation:
					part.MustCopy_(c.sliceMean(src))
				case ResampleAblation:
					part.MustCopy_(c.slice(src))
				}
			}
		})
		return r, err
	})
}

// resampled is, for each row of act, the reference activation at a row
// drawn at random (the same draws for every pass).
func (a *Ablation) resampled(s *gotch.Scope, name string, act *gotch.Tensor) *gotch.Tensor {
	ref := must(s.Borrow(a.cache.MustGet(name)))
	if ref.Size(1) != act.Size(1) {
		panic(fmt.Errorf("resample ablation: the reference has %d positions, the input %d", ref.Size(1), act.Size(1)))
	}
	rng := rand.New(rand.NewPCG(a.seed, 0x5eed))
	rows := make([]int64, act.Size(0))
	for i := range rows {
		rows[i] = rng.Int64N(ref.Size(0))
	}
	idx := s.Attach(gotch.MustFromSlice(rows, []int64{int64(len(rows))}, ref.Device()))
	return ref.MustIndexSelect(0, idx).MustTo(act.DType())
}

// HeadAblation is the effect of ablating each head on its own.
type HeadAblation struct {
	Mode AblationMode
	// Base is the metric without ablation: the mean next-token loss, or
	// WithMetric's metric.
	Base float64
	// Change [layer head] is the metric with the head ablated, less Base:
	// for the loss, how much worse the model does without the head.
	Change *Table
}

// AblationTable ablates every head in turn (at hook_z, over all positions)
// on tokens and measures the change in the mean next-token loss, or in
// WithMetric's metric. Options: Reference and WithSeed (mean and resample
// ablation), WithMetric, WithProgress, SplitOver.
func AblationTable(ctx context.Context, m *hookedmodel.HookedTransformer, tokens *gotch.Tensor, mode AblationMode, opts ...Option) (*HeadAblation, error) {
	o, err := collect("AblationTable", opts, ablationOptions|optMetric|optProgress|optSplit)
	if err != nil {
		return nil, err
	}
	sp, err := o.split()
	if err != nil {
		return nil, fmt.Errorf("ablation table: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("ablation table: nil model")
	}
	nl, nh := len(m.Blocks), m.Cfg.NHeads
	var heads []Component
	for l := range nl {
		for h := range nh {
			heads = append(heads, Head(l, h))
		}
	}
	a, err := NewAblation(ctx, m, mode, heads, only(opts, ablationOptions)...)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	res := &HeadAblation{Mode: mode, Change: NewTable([]string{"layer", "head"}, nl, nh)}
	if res.Base, err = evaluate(ctx, m, tokens, nil, o.metric); err != nil {
		return nil, fmt.Errorf("ablation table: %w", err)
	}
	b := newBar(&o, sp.count(len(heads)), fmt.Sprintf("%v-ablating heads", mode))
	ablated := make([]float64, len(heads)) // the metric with each head ablated
	for i, c := range heads {
		if !sp.mine(i) {
			continue
		}
		if ablated[i], err = evaluate(ctx, m, tokens, []hookedmodel.Hook{a.hook(c.HookName(), []Component{c})}, o.metric); err != nil {
			b.end(false)
			return nil, fmt.Errorf("ablation table: %v: %w", c, err)
		}
		b.add()
	}
	b.end(true)
	if err := sp.gather(ctx, ablated); err != nil {
		return nil, fmt.Errorf("ablation table: %w", err)
	}
	for i, c := range heads {
		res.Change.Set(ablated[i]-res.Base, c.Layer, c.Index)
	}
	return res, nil
}

// evaluate runs the model on tokens with hooks and returns the metric, or
// the mean next-token loss when metric is nil.
func evaluate(ctx context.Context, m *hookedmodel.HookedTransformer, tokens *gotch.Tensor, hooks []hookedmodel.Hook, metric Metric) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ret := hookedmodel.ReturnLogits
	if metric == nil {
		ret = hookedmodel.ReturnLoss
	}
	out, err := m.RunWithHooks(ctx, hookedmodel.Tokens(tokens), hooks, hookedmodel.Return(ret))
	if err != nil {
		return 0, err
	}
	defer out.Free()
	if metric == nil {
		return out.Loss.Item()
	}
	return metricValue(out.Logits, metric)
}

// metricValue is metric(logits) as a number; what the metric makes is
// freed.
func metricValue(logits *gotch.Tensor, metric Metric) (float64, error) {
	s := gotch.NewScope()
	defer s.Close()
	lg, err := s.Borrow(logits)
	if err != nil {
		return 0, err
	}
	v, err := metric(lg)
	if err != nil {
		return 0, fmt.Errorf("metric: %w", err)
	}
	if v == nil || v.Numel() != 1 {
		return 0, fmt.Errorf("metric: got %v, want a scalar", v.Spec())
	}
	s.Attach(v)
	return v.Item()
}
