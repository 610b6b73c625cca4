package hookedmodel

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/golens/golens/cuda"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/metal"
)

// ActivationCache holds activations by their TransformerLens names, like
// TransformerLens's ActivationCache. It owns its tensors (handles in no
// scope) and lends them: Get's results stay the cache's, and ops on them
// make tensors that are yours. Free the cache when done with it; to keep
// an activation beyond that, take an alias (t.MustAlias(), yours to free).
type ActivationCache struct {
	acts   map[string]*gotch.Tensor
	order  []string
	filter Filter
	// userFilter is set when NamesFilter gave filter, which must then
	// select a hook point.
	userFilter bool
	opts       cacheOptions
	model      *HookedTransformer
	// pending is the device whose non-blocking copies to the cache device
	// may still be running, or nil.
	pending *gotch.Device
}

type cacheOptions struct {
	device         *gotch.Device
	removeBatchDim bool
	inclBwd        bool
	posSlice       *PosSlice
}

// PosSlice keeps positions [Start, Stop) of every cached activation (Stop 0
// means to the end), as TransformerLens's pos_slice does; negative values
// count from the end. A single position is Start with Single set, which
// drops the position dimension.
type PosSlice struct {
	Start, Stop int64
	Single      bool
}

func (m *HookedTransformer) newCache(f Filter, o cacheOptions) *ActivationCache {
	user := f != nil
	if f == nil {
		f = func(string) bool { return true }
	}
	return &ActivationCache{acts: map[string]*gotch.Tensor{}, filter: f, userFilter: user, opts: o, model: m}
}

func (c *ActivationCache) wants(name string) bool { return c != nil && c.filter(name) }

func (c *ActivationCache) wantsGrad(name string) bool {
	return c != nil && c.opts.inclBwd && c.filter(name)
}

// store keeps a detached alias of x (no copy), or a copy on the cache
// device, sliced as the options say: a handle of the cache's own, in no
// scope (the steps to it stay in x's).
func (c *ActivationCache) store(name string, x *gotch.Tensor) {
	base := strings.TrimSuffix(name, "_grad")
	if !c.wants(base) {
		return
	}
	t := x.MustDetach()
	if c.opts.removeBatchDim {
		t = t.MustSelect(0, 0)
	}
	if ps := c.opts.posSlice; ps != nil {
		dim := int64(posDim(base))
		if c.opts.removeBatchDim {
			dim--
		}
		t = slicePos(t, dim, *ps)
	}
	if d := c.opts.device; d != nil && *d != t.Device() {
		// A device-to-host copy without blocking the forward pass; settle
		// waits for it before the caller sees the cache.
		from := t.Device()
		t = t.MustToDevice(*d, true)
		if from.Type != gotch.CPUType {
			c.pending = &from
		}
	}
	unscoped(t)
	if old, ok := c.acts[name]; ok {
		old.Free() // a point that fires twice keeps its last value, as in TransformerLens
	} else {
		c.order = append(c.order, name)
	}
	c.acts[name] = t
}

// settle waits for the non-blocking copies store started: without it the
// caller could read a CPU tensor that a CUDA copy is still filling.
func (c *ActivationCache) settle() error {
	if c == nil || c.pending == nil {
		return nil
	}
	d := *c.pending
	c.pending = nil
	switch d.Type {
	case gotch.CUDAType:
		return cuda.Synchronize(max(d.Index, 0))
	case gotch.MPSType:
		return metal.Synchronize()
	}
	return nil
}

func slicePos(t *gotch.Tensor, dim int64, ps PosSlice) *gotch.Tensor {
	n := t.Size(int(dim))
	norm := func(i int64) int64 {
		if i < 0 {
			return i + n
		}
		return i
	}
	if ps.Single {
		return t.MustSelect(dim, norm(ps.Start))
	}
	stop := n
	if ps.Stop != 0 {
		stop = norm(ps.Stop)
	}
	return t.MustSlice(dim, norm(ps.Start), stop, 1)
}

// Get returns the activation cached under a full name
// ("blocks.0.attn.hook_pattern") or under TransformerLens's key of a
// shorthand, a layer and a layer type, as cache["pattern", 0] and
// cache["scale", 1, "ln1"] read them (see GetActName): Get("pattern", 0),
// Get("scale", 1, "ln1"). A negative layer counts from the end, as in
// TransformerLens: Get("resid_post", -1) is the last block's. Arguments
// that make no hook-point name are an error naming them. The tensor is
// lent: it stays the cache's (do not free it) and is valid until the cache
// is freed; ops on it are yours.
func (c *ActivationCache) Get(name string, args ...any) (*gotch.Tensor, error) {
	if len(args) == 0 {
		if t, ok := c.acts[name]; ok {
			return t, nil
		}
	}
	k, err := parseActKey("activation cache Get", name, args)
	if err != nil {
		return nil, err
	}
	if k.hasLayer && k.layer < 0 && c.model != nil {
		n := len(c.model.Blocks)
		if k.layer+n < 0 {
			return nil, fmt.Errorf("%s: layer %d is out of range for %d layers", k.call, k.layer, n)
		}
		k.layer += n
	}
	full := k.expand()
	t, ok := c.acts[full]
	if !ok {
		why := "was it filtered out?"
		if c.model != nil {
			for _, d := range c.model.disabledPoints() {
				if d.name == full {
					why = "the hook point is off in this model: it needs " + enableHint(d.flag)
				}
			}
			if !slices.Contains(c.model.hookNames, full) && why == "was it filtered out?" {
				why = "the model has no such hook point; nearest: " + strings.Join(nearest(full, c.model.hookNames, 3), ", ")
			}
		}
		return nil, fmt.Errorf("%s: no %q in the cache (it holds %d activations; %s)", k.call, full, len(c.acts), why)
	}
	return t, nil
}

// MustGet is Get that panics.
func (c *ActivationCache) MustGet(name string, args ...any) *gotch.Tensor {
	t, err := c.Get(name, args...)
	if err != nil {
		panic(err)
	}
	return t
}

// Keys lists the cached names in the order the forward pass produced them.
func (c *ActivationCache) Keys() []string { return slices.Clone(c.order) }

// Len is the number of cached activations.
func (c *ActivationCache) Len() int { return len(c.acts) }

// Bytes is the memory the cached activations occupy.
func (c *ActivationCache) Bytes() int64 {
	var n int64
	for _, t := range c.acts {
		n += t.Numel() * int64(t.DType().Size())
	}
	return n
}

// To moves every activation to dev, in place.
func (c *ActivationCache) To(dev gotch.Device) error {
	return gotch.Try(func() {
		for _, k := range c.order {
			old := c.acts[k]
			if old.Device() == dev {
				continue
			}
			c.acts[k] = old.MustToDevice(dev, false)
			old.Free()
		}
	})
}

// Free releases every cached tensor; the cache is empty afterwards. Nil
// and zero caches hold nothing to free.
func (c *ActivationCache) Free() {
	if c == nil {
		return
	}
	for _, t := range c.acts {
		t.Free()
	}
	c.acts = map[string]*gotch.Tensor{}
	c.order = nil
}

// String lists the cached names with their shapes, sorted.
func (c *ActivationCache) String() string {
	keys := c.Keys()
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "ActivationCache with %d activations:\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %s\n", k, c.acts[k].Spec())
	}
	return b.String()
}

// NamesFilter caches only the hook points f selects (RunWithCache). A
// filter that selects none, or names a hook point the model lacks, fails
// the run with an error naming it.
func NamesFilter(f Filter) RunOption { return func(o *runOptions) { o.names = f } }

// CacheDevice stores cached activations on dev, copied without blocking
// the pass (for example a CUDA model with a CPU cache).
func CacheDevice(dev gotch.Device) RunOption {
	return func(o *runOptions) { o.cache.device = &dev }
}

// RemoveBatchDim caches activations without their batch dimension; the
// batch must be 1.
func RemoveBatchDim() RunOption { return func(o *runOptions) { o.cache.removeBatchDim = true } }

// InclBwd also caches the gradients (as NAME_grad) once Output.Backward
// runs.
func InclBwd() RunOption { return func(o *runOptions) { o.cache.inclBwd = true } }

// CachePositions caches only the positions ps selects.
func CachePositions(ps PosSlice) RunOption { return func(o *runOptions) { o.cache.posSlice = &ps } }
