package hookedmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/golens/golens/gotch"
)

// HookError is the error of a pass that a hook aborted; it names the hook
// point.
type HookError struct {
	Point string
	Err   error
}

func (e *HookError) Error() string { return fmt.Sprintf("hook at %s: %v", e.Point, e.Err) }
func (e *HookError) Unwrap() error { return e.Err }

// pass is the state of one forward call: its scopes, the hooks resolved per
// hook point, and the cache. Nothing in it is shared with other calls, so
// concurrent passes on one model never see each other's hooks.
//
// s owns what lives as long as the pass (its inputs, what Backward reads);
// each component call opens a scope of its own (scope) for its
// intermediates, which go when it returns, so a pass holds little more
// than the activations it is working on, as a forward pass in C++ or
// PyTorch does: a gpt2-small 4×512 forward that kept every intermediate
// until it ended raised the peak resident memory by 1,812 MB, against
// 379 MB freeing them as they were done with (bench/RESULTS.md).
type pass struct {
	ctx   context.Context
	s     *gotch.Scope
	cur   *gotch.Scope // the innermost open scope: the current component call's, else s
	fwd   map[string][]HookFunc
	bwd   map[string][]HookFunc
	cache *ActivationCache
	grad  bool // a Bwd hook or the cache wants gradients: Backward will run
	// grads holds, in forward order, handles in s of the activations whose
	// gradients a Bwd hook or the cache wants after Backward.
	grads []gradPoint
	// yield keeps the pass's goroutine on a fresh scheduler time slice
	// (see gotch.Yielder); every hook point offers a yield.
	yield gotch.Yielder
}

type gradPoint struct {
	name string
	act  *gotch.Tensor
}

// newPass binds the hooks and the cache's names filter to the model's
// hook points. A hook or filter that lists a name the model has no hook
// point for, or selects none, is an error (see checkFilter), found before
// the pass allocates anything.
func (m *HookedTransformer) newPass(ctx context.Context, perCall []Hook, cache *ActivationCache) (*pass, error) {
	if err := m.checkConfig(); err != nil {
		return nil, err
	}
	// Registered hooks run first, then the per-call ones, as TransformerLens
	// runs hooks in the order they were added.
	hooks := append(m.hooks.snapshot(), perCall...)
	for _, h := range hooks {
		if err := m.checkHook(h); err != nil {
			return nil, err
		}
	}
	if cache != nil && cache.userFilter {
		if err := m.checkFilter("names filter", cache.filter); err != nil {
			return nil, err
		}
	}
	s := gotch.NewScope()
	p := &pass{ctx: ctx, s: s, cur: s, fwd: map[string][]HookFunc{}, bwd: map[string][]HookFunc{}, cache: cache}
	for _, name := range m.hookNames {
		for _, h := range hooks {
			if !h.Filter(name) {
				continue
			}
			if h.Dir == Bwd {
				p.bwd[name] = append(p.bwd[name], h.Fn)
			} else {
				p.fwd[name] = append(p.fwd[name], h.Fn)
			}
		}
	}
	p.grad = len(p.bwd) > 0 || (cache != nil && cache.opts.inclBwd)
	return p, nil
}

// gradRoot makes x, a value the weights do not make differentiable (an
// embedding of frozen weights, a residual input), a start of the graph
// Backward differentiates, so that gradients reach every hook point from
// hook_embed on. It is a copy of a leaf, not the leaf itself, so that hooks
// may still edit it in place.
func (p *pass) gradRoot(x *gotch.Tensor) *gotch.Tensor {
	if !p.grad || x.RequiresGrad() {
		return x
	}
	x = x.MustDetach()
	x.MustSetRequiresGrad_(true)
	return x.MustClone()
}

// wants reports whether anything observes the hook point, so the forward
// may take a fused path where nobody looks.
func (p *pass) wants(name string) bool {
	return len(p.fwd[name]) > 0 || len(p.bwd[name]) > 0 || p.cache.wants(name)
}

// callScope is the scope of one component call (pass.scope).
type callScope struct {
	*gotch.Scope
	p      *pass
	caller *gotch.Scope
}

// scope opens the scope of a component call, a child of the caller's: what
// the call makes lands in it (bring its inputs in with in), it returns its
// output with Keep, which moves it to the caller's scope, and everything
// else goes when it closes (with defer, on panics too).
func (p *pass) scope() *callScope {
	c := &callScope{Scope: p.cur.Child(), p: p, caller: p.cur}
	p.cur = c.Scope
	return c
}

// Close frees what the call made and did not keep.
func (c *callScope) Close() {
	c.p.cur = c.caller
	c.Scope.Close()
}

// in is a handle of t in the call's scope, so that ops on it land there.
func (c *callScope) in(t *gotch.Tensor) *gotch.Tensor { return borrow(c.Scope, t) }

// at is a hook point: x flows through the hooks on name, into the cache,
// and on. It panics with a *HookError, which the entry point recovers.
func (p *pass) at(name string, x *gotch.Tensor) *gotch.Tensor {
	p.yield.Yield()
	for _, fn := range p.fwd[name] {
		x = p.hook(fn, name, x)
	}
	p.cache.store(name, x)
	if (len(p.bwd[name]) > 0 || p.cache.wantsGrad(name)) && x.RequiresGrad() {
		x.MustRetainGrad()
		// A handle of the pass's own (the same tensor): Backward reads the
		// gradient after the component that made x has freed its handles.
		p.grads = append(p.grads, gradPoint{name, p.s.Attach(x.MustAlias())})
	}
	return x
}

// hook runs fn on a lent alias of x (see HookFunc), freed when fn returns,
// and returns what the pass goes on with: x, or fn's replacement. A
// replacement fn owned (unscoped) is the pass's from then on; one in a
// scope of the user's is borrowed. Either way the component goes on with a
// handle in its own scope, which it frees when it ends: the replacement
// may be returned again at a later hook point.
func (p *pass) hook(fn HookFunc, name string, x *gotch.Tensor) *gotch.Tensor {
	act := unscoped(x.MustAlias())
	defer act.Free()
	r, err := callHook(fn, act, name)
	if r == act {
		r = nil // act itself: x goes on
	}
	if err == nil && r != nil {
		err = sameKind(r, x)
	}
	if r != nil && r.Scope() == nil {
		p.s.Attach(r) // handed over: the pass frees it when it ends, on error too
	}
	if err != nil {
		panic(&HookError{Point: name, Err: err})
	}
	if r == nil {
		return x
	}
	return borrow(p.cur, r)
}

// callHook runs a user hook, turning its panic into an error.
func callHook(fn HookFunc, x *gotch.Tensor, name string) (r *gotch.Tensor, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = gotch.PanicError(v)
		}
	}()
	return fn(x, name)
}

func sameKind(r, x *gotch.Tensor) error {
	if r.Freed() {
		return fmt.Errorf("the hook returned a freed tensor")
	}
	if !slices.Equal(r.Shape(), x.Shape()) || r.DType() != x.DType() || r.Device() != x.Device() {
		return fmt.Errorf("the hook returned %s, want the activation's %s%v %s", r.Spec(), x.DType(), x.Shape(), x.Device())
	}
	return nil
}

// check stops the pass between layers when the context is done.
func (p *pass) check() {
	if err := p.ctx.Err(); err != nil {
		panic(err)
	}
}

// runBackward fires the Bwd hooks and caches gradients after a backward
// pass, latest hook point first as autograd would.
func (p *pass) runBackward() error {
	for i := len(p.grads) - 1; i >= 0; i-- {
		g := p.grads[i]
		grad, err := g.act.Grad()
		if err != nil {
			return err
		}
		if grad == nil {
			continue // the loss does not depend on this point
		}
		p.s.Attach(grad)
		for _, fn := range p.bwd[g.name] {
			if err := p.bwdHook(fn, g.name, grad); err != nil {
				return &HookError{Point: g.name + " (bwd)", Err: err}
			}
		}
		p.cache.store(g.name+"_grad", grad)
	}
	return nil
}

// bwdHook runs fn on a lent alias of grad, as hook does; what it returns
// is ignored, and freed when it owned it.
func (p *pass) bwdHook(fn HookFunc, name string, grad *gotch.Tensor) error {
	act := unscoped(grad.MustAlias())
	defer act.Free()
	r, err := callHook(fn, act, name)
	if r != act && r != nil && r.Scope() == nil {
		r.Free()
	}
	return err
}

// recoverPass turns a panic raised inside a pass into the entry point's
// error: hook failures, cancellation and op failures come back as they are,
// anything else with its stack.
func recoverPass(err *error) {
	v := recover()
	if v == nil {
		return
	}
	var he *HookError
	var ge *gotch.Error
	if e, ok := v.(error); ok && (errors.As(e, &he) || errors.As(e, &ge) || errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded)) {
		*err = e
		return
	}
	*err = gotch.PanicError(v)
}
