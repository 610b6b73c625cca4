package hookedmodel

import (
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/golens/golens/gotch"
)

// Direction says whether a hook sees activations (Fwd) or their
// gradients (Bwd).
type Direction int

const (
	Fwd Direction = iota
	Bwd
)

func (d Direction) String() string {
	if d == Bwd {
		return "bwd"
	}
	return "fwd"
}

// HookFunc is called at a hook point with the activation (or, for a Bwd
// hook, its gradient) on the model's device and the hook point's name (a
// Bwd hook's too, without "_grad"); LayerOf(name) is the hook point's
// layer, as TransformerLens's hook.layer(). It may modify act in place, or
// return a replacement of the same shape, dtype and device; nil (or act)
// keeps act. An error (or a panic) aborts the pass with an error that names
// the hook point.
//
// act is lent, as everything golens lends: a handle in no scope, valid
// during the call (the pass frees it when the hook returns). In-place edits
// of it change the activation. Ops on it make tensors that are yours, as
// ops on any tensor of no scope do: free them, or make them in a scope of
// the hook's own (s := gotch.NewScope(); defer s.Close(); x, err :=
// s.Borrow(act)). To keep act beyond the call, at a later hook
// point or after the pass, take act.MustAlias(): a handle of the same
// memory that is yours; Free it when done.
//
// A replacement you own (in no scope: made by ops on act, or from nothing)
// is handed to the pass, which frees it when the pass ends. One in a scope
// of yours is borrowed: the pass never frees it. To return a tensor golens
// lends you (another run's cache entry, an Output's field), return an alias
// of it (cached.MustAlias()), which is yours to hand over.
//
// A freed act fails cleanly: ops on it return an error wrapping
// gotch.ErrFreed, and returning it from a later hook aborts the pass with
// one. That holds in other goroutines too: act handed to one fails there
// once the hook returns (an op already running on it finishes first),
// never crashes; hand over an alias to read it for longer.
type HookFunc func(act *gotch.Tensor, name string) (*gotch.Tensor, error)

// Filter selects hook points by name. Name, Names, Regexp and Match make
// one; they are the four forms TransformerLens accepts.
type Filter func(name string) bool

// Name selects exactly one hook point. A pass with a hook (or a names
// filter) on a name the model has no hook point for fails with an error
// that names it and the nearest real ones.
func Name(n string) Filter {
	return func(s string) bool {
		if s == n {
			return true
		}
		if isProbe(s) {
			fileProbe(s, []string{n}, "")
		}
		return false
	}
}

// Names selects the listed hook points; each must be one of the model's.
func Names(ns ...string) Filter {
	set := make(map[string]bool, len(ns))
	for _, n := range ns {
		set[n] = true
	}
	ns = slices.Clone(ns)
	return func(s string) bool {
		if set[s] {
			return true
		}
		if isProbe(s) {
			fileProbe(s, ns, "")
		}
		return false
	}
}

// Regexp selects the hook points whose names match the expression; it
// must match at least one of the model's.
func Regexp(expr string) (Filter, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("hook filter %q: %w", expr, err)
	}
	return func(s string) bool {
		if isProbe(s) {
			fileProbe(s, nil, expr)
			return false
		}
		return re.MatchString(s)
	}, nil
}

// Match selects the hook points for which pred is true; it must be true
// for at least one of the model's.
func Match(pred func(name string) bool) Filter { return pred }

// Hook binds a function to the hook points a filter selects.
type Hook struct {
	Filter Filter
	Fn     HookFunc
	Dir    Direction
	Label  string // shown by ListHooks and in AddHook's errors; WithLabel sets it too
}

// FwdHook is a forward hook on the points f selects.
func FwdHook(f Filter, fn HookFunc) Hook { return Hook{Filter: f, Fn: fn, Dir: Fwd} }

// BwdHook is a backward hook on the points f selects: fn receives the
// gradient of the loss with respect to the activation there.
func BwdHook(f Filter, fn HookFunc) Hook { return Hook{Filter: f, Fn: fn, Dir: Bwd} }

// HookHandle removes a hook registered with AddHook.
type HookHandle struct {
	m  *HookedTransformer
	id int
}

// Remove detaches the hook; it is idempotent, and a no-op on the zero
// HookHandle that a failed AddHook returns.
func (h HookHandle) Remove() {
	if h.m != nil {
		h.m.hooks.remove(h.id)
	}
}

// HookOption modifies AddHook; a nil one is ignored.
type HookOption func(*registered)

// Permanent keeps the hook through ResetHooks(false), as TransformerLens's
// is_permanent does.
func Permanent() HookOption { return func(r *registered) { r.permanent = true } }

// Prepend runs the hook before the hooks already on the same point.
func Prepend() HookOption { return func(r *registered) { r.prepend = true } }

// WithLabel names the hook in ListHooks.
func WithLabel(label string) HookOption { return func(r *registered) { r.hook.Label = label } }

type registered struct {
	id        int
	hook      Hook
	permanent bool
	prepend   bool
}

// hookRegistry holds the hooks registered on a model. A pass takes a
// snapshot at its start, so a hook added during a pass affects the next.
type hookRegistry struct {
	mu     sync.RWMutex
	nextID int
	hooks  []registered
}

func (r *hookRegistry) add(h Hook, opts ...HookOption) int {
	reg := registered{hook: h}
	for _, o := range opts {
		if o != nil {
			o(&reg)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	reg.id = r.nextID
	if reg.prepend {
		r.hooks = append([]registered{reg}, r.hooks...)
	} else {
		r.hooks = append(r.hooks, reg)
	}
	return reg.id
}

func (r *hookRegistry) remove(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = slices.DeleteFunc(r.hooks, func(h registered) bool { return h.id == id })
}

func (r *hookRegistry) reset(includingPermanent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = slices.DeleteFunc(r.hooks, func(h registered) bool { return includingPermanent || !h.permanent })
}

func (r *hookRegistry) snapshot() []Hook {
	r.mu.RLock()
	defer r.mu.RUnlock()
	hs := make([]Hook, len(r.hooks))
	for i, h := range r.hooks {
		hs[i] = h.hook
	}
	return hs
}

// AddHook registers h on the model until it is removed (HookHandle.Remove
// or ResetHooks). Every later pass runs it: the registered hooks of a point
// in the order they were added (a Prepend one before them), then the
// per-call hooks.
func (m *HookedTransformer) AddHook(h Hook, opts ...HookOption) (HookHandle, error) {
	if err := m.checkHook(h); err != nil {
		return HookHandle{}, fmt.Errorf("add %w", err)
	}
	return HookHandle{m: m, id: m.hooks.add(h, opts...)}, nil
}

// Hooks registers hs and returns the function that removes them, for
// `defer m.Hooks(hs...)()`: the Go form of TransformerLens's `with
// model.hooks(...)`.
func (m *HookedTransformer) Hooks(hs ...Hook) (remove func(), err error) {
	var handles []HookHandle
	remove = func() {
		for _, h := range handles {
			h.Remove()
		}
	}
	for _, h := range hs {
		hh, err := m.AddHook(h)
		if err != nil {
			remove()
			return func() {}, err
		}
		handles = append(handles, hh)
	}
	return remove, nil
}

// ResetHooks removes the registered hooks, the permanent ones too when
// includingPermanent.
func (m *HookedTransformer) ResetHooks(includingPermanent bool) { m.hooks.reset(includingPermanent) }

// HookInfo describes one registered hook for ListHooks.
type HookInfo struct {
	Point     string
	Dir       Direction
	Label     string
	Permanent bool
}

// ListHooks lists the registered hooks per hook point, in the order they
// run.
func (m *HookedTransformer) ListHooks() []HookInfo {
	m.hooks.mu.RLock()
	defer m.hooks.mu.RUnlock()
	var out []HookInfo
	for _, name := range m.hookNames {
		for _, r := range m.hooks.hooks {
			if r.hook.Filter(name) {
				out = append(out, HookInfo{Point: name, Dir: r.hook.Dir, Label: r.hook.Label, Permanent: r.permanent})
			}
		}
	}
	return out
}
