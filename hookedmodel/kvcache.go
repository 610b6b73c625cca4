package hookedmodel

import "github.com/golens/golens/gotch"

// KVCache holds every layer's keys and values of the positions seen so
// far, so that generation runs each new token alone (TransformerLens's
// HookedTransformerKeyValueCache). It owns its tensors, in no scope, and
// lends none: Free it when done.
type KVCache struct {
	entries []*kvEntry
	padMask *gotch.Tensor // [batch past] which past positions are real tokens, or nil
}

type kvEntry struct {
	k, v *gotch.Tensor // [batch past head d_head]
}

// NewKVCache returns an empty cache for m.
func (m *HookedTransformer) NewKVCache() *KVCache {
	c := &KVCache{}
	for range m.Blocks {
		c.entries = append(c.entries, &kvEntry{})
	}
	return c
}

// WithKVCache makes the pass read and extend c.
func WithKVCache(c *KVCache) RunOption { return func(o *runOptions) { o.pastKV = c } }

// Len is the number of cached positions.
func (c *KVCache) Len() int64 {
	if c == nil || len(c.entries) == 0 {
		return 0
	}
	return c.entries[0].len()
}

func (c *KVCache) layer(l int) *kvEntry {
	if c == nil {
		return nil
	}
	return c.entries[l]
}

// Free releases the cached keys and values.
func (c *KVCache) Free() {
	if c == nil {
		return
	}
	for _, e := range c.entries {
		e.k.Free()
		e.v.Free()
		*e = kvEntry{}
	}
	c.padMask.Free()
	c.padMask = nil
}

func (e *kvEntry) len() int64 {
	if e == nil || e.k == nil {
		return 0
	}
	return e.k.Size(1)
}

// append adds this pass's keys and values [batch pos head d_head] after the
// cached ones and returns the whole sequence, in k's scope, for this pass to
// use.
func (e *kvEntry) append(k, v *gotch.Tensor) (*gotch.Tensor, *gotch.Tensor) {
	if e.k != nil {
		k = gotch.MustCat([]*gotch.Tensor{e.k, k}, 1)
		v = gotch.MustCat([]*gotch.Tensor{e.v, v}, 1)
	}
	e.k.Free()
	e.v.Free()
	// The cache keeps its own handles (detached: generation needs no
	// gradients through the past); the pass keeps using k and v.
	e.k, e.v = unscoped(k.MustDetach()), unscoped(v.MustDetach())
	return k, v
}

// extendPadMask records which of the new positions are real tokens and
// returns the mask over all positions, in the pass's scope, or nil when
// there is no padding.
func (c *KVCache) extendPadMask(p *pass, padMask *gotch.Tensor, batch, n int64, dev gotch.Device) *gotch.Tensor {
	if c.padMask == nil && padMask == nil {
		return nil
	}
	past := c.padMask
	if past == nil {
		past = p.s.Attach(gotch.MustOnes([]int64{batch, c.Len()}, gotch.Bool, dev))
	}
	if padMask == nil {
		padMask = p.s.Attach(gotch.MustOnes([]int64{batch, n}, gotch.Bool, dev))
	}
	full := gotch.MustCat([]*gotch.Tensor{past, padMask}, 1)
	c.padMask.Free()
	c.padMask = unscoped(full.MustAlias())
	return full
}
