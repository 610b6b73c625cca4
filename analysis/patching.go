package analysis

import (
	"context"
	"fmt"
	"slices"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Sweep is one kind of activation-patching sweep: which activation is
// patched, and which indices it is patched at, one patch per index, as
// TransformerLens's patching module's get_act_patch_* functions do. The
// result has the index axes as its shape, layer first.
type Sweep int

const (
	ResidPre         Sweep = iota // blocks.{l}.hook_resid_pre at one position: [layer pos]
	ResidMid                      // blocks.{l}.hook_resid_mid at one position: [layer pos]
	AttnOut                       // blocks.{l}.hook_attn_out at one position: [layer pos]
	MLPOut                        // blocks.{l}.hook_mlp_out at one position: [layer pos]
	HeadOut                       // one head's hook_z at every position: [layer head]
	HeadOutByPos                  // one head's hook_z at one position: [layer pos head]
	HeadQ                         // one head's hook_q at every position: [layer head]
	HeadK                         // one head's hook_k at every position: [layer head] (key/value heads with grouped-query attention)
	HeadV                         // one head's hook_v at every position: [layer head] (key/value heads with grouped-query attention)
	HeadPattern                   // one head's whole hook_pattern: [layer head]
	HeadPatternByPos              // one head's hook_pattern row of one query: [layer head dest_pos]
)

// sweepSpec describes a sweep: the activation (GetActName's short name),
// the index axes after layer, and the activation dimension each indexes.
type sweepSpec struct {
	act  string
	axes []string
	dims []int
	name string // TransformerLens's function
}

var sweeps = map[Sweep]sweepSpec{
	ResidPre:         {"resid_pre", []string{"pos"}, []int{1}, "resid_pre"},
	ResidMid:         {"resid_mid", []string{"pos"}, []int{1}, "resid_mid"},
	AttnOut:          {"attn_out", []string{"pos"}, []int{1}, "attn_out"},
	MLPOut:           {"mlp_out", []string{"pos"}, []int{1}, "mlp_out"},
	HeadOut:          {"z", []string{"head"}, []int{2}, "attn_head_out_all_pos"},
	HeadOutByPos:     {"z", []string{"pos", "head"}, []int{1, 2}, "attn_head_out_by_pos"},
	HeadQ:            {"q", []string{"head"}, []int{2}, "attn_head_q_all_pos"},
	HeadK:            {"k", []string{"head"}, []int{2}, "attn_head_k_all_pos"},
	HeadV:            {"v", []string{"head"}, []int{2}, "attn_head_v_all_pos"},
	HeadPattern:      {"pattern", []string{"head"}, []int{1}, "attn_head_pattern_all_pos"},
	HeadPatternByPos: {"pattern", []string{"head", "dest_pos"}, []int{1, 2}, "attn_head_pattern_by_pos"},
}

func (s Sweep) String() string {
	if sp, ok := sweeps[s]; ok {
		return sp.name
	}
	return fmt.Sprintf("Sweep(%d)", int(s))
}

func (s Sweep) spec(m *hookedmodel.HookedTransformer) (sweepSpec, error) {
	sp, ok := sweeps[s]
	if !ok {
		return sp, fmt.Errorf("unknown sweep %d", int(s))
	}
	if m.Cfg.AttnOnly && (s == ResidMid || s == MLPOut) {
		return sp, fmt.Errorf("%v: an attention-only model has no %s", s, sp.act)
	}
	return sp, nil
}

// hookName is the sweep's hook point in layer l.
func (sp sweepSpec) hookName(l int) string {
	n, err := hookedmodel.GetActName(sp.act, l, "")
	if err != nil {
		panic(err) // the table's names are all valid
	}
	return n
}

// shape is the result's shape: [layer, axes...].
func (sp sweepSpec) shape(m *hookedmodel.HookedTransformer, pos int) []int {
	shape := []int{len(m.Blocks)}
	for _, a := range sp.axes {
		switch {
		case a == "head" && (sp.act == "k" || sp.act == "v") && m.Cfg.NKeyValueHeads > 0:
			shape = append(shape, m.Cfg.NKeyValueHeads) // grouped-query hook_k/hook_v have the key/value heads
		case a == "head":
			shape = append(shape, m.Cfg.NHeads)
		default:
			shape = append(shape, pos)
		}
	}
	return shape
}

// PatchingResult is the outcome of an activation-patching sweep.
type PatchingResult struct {
	Sweep Sweep
	// Clean and Corrupted are the metric on the clean and the corrupted
	// run, unpatched.
	Clean, Corrupted float64
	// Patched holds the metric of the corrupted run with each index
	// patched from the clean run, as TransformerLens returns it.
	Patched *Table
}

// Normalized is (patched - corrupted) / (clean - corrupted): 0 where the
// patch changes nothing, 1 where it restores the clean metric; nil
// without a Patched table.
func (r *PatchingResult) Normalized() *Table {
	if r == nil || r.Patched == nil {
		return nil
	}
	return r.Patched.Map(func(v float64) float64 { return (v - r.Corrupted) / (r.Clean - r.Corrupted) })
}

// ActivationPatching runs the sweep: for every index it runs the model on
// the corrupted tokens with that part of the activation replaced by its
// value in the clean run, and records the metric of the logits. clean and
// corrupted are [batch pos] of the same shape. Options: CleanCache (a
// clean run's cache to reuse), WithProgress, SplitOver.
func ActivationPatching(ctx context.Context, m *hookedmodel.HookedTransformer, clean, corrupted *gotch.Tensor, metric Metric, sweep Sweep, opts ...Option) (*PatchingResult, error) {
	o, err := collect("ActivationPatching", opts, optCleanCache|optProgress|optSplit)
	if err != nil {
		return nil, err
	}
	sp0, err := o.split()
	if err != nil {
		return nil, fmt.Errorf("activation patching: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("activation patching: nil model")
	}
	sp, err := sweep.spec(m)
	if err != nil {
		return nil, fmt.Errorf("activation patching: %w", err)
	}
	if err := checkPair(clean, corrupted, metric); err != nil {
		return nil, fmt.Errorf("activation patching: %w", err)
	}
	res := &PatchingResult{Sweep: sweep}
	cache := o.cleanCache
	if cache == nil {
		names := map[string]bool{}
		for l := range m.Blocks {
			names[sp.hookName(l)] = true
		}
		out, c, err := m.RunWithCache(ctx, hookedmodel.Tokens(clean), hookedmodel.NamesFilter(func(s string) bool { return names[s] }))
		if err != nil {
			return nil, fmt.Errorf("activation patching: clean run: %w", err)
		}
		defer c.Free()
		res.Clean, err = metricValue(out.Logits, metric)
		out.Free()
		if err != nil {
			return nil, fmt.Errorf("activation patching: clean run: %w", err)
		}
		cache = c
	} else if res.Clean, err = evaluate(ctx, m, clean, nil, metric); err != nil {
		return nil, fmt.Errorf("activation patching: clean run: %w", err)
	}
	if res.Corrupted, err = evaluate(ctx, m, corrupted, nil, metric); err != nil {
		return nil, fmt.Errorf("activation patching: corrupted run: %w", err)
	}

	res.Patched = NewTable(append([]string{"layer"}, sp.axes...), sp.shape(m, int(clean.Size(1)))...)
	b := newBar(&o, sp0.count(len(res.Patched.Data)), "patching "+sweep.String())
	for i := range res.Patched.Data {
		if !sp0.mine(i) {
			continue
		}
		idx := res.Patched.Index(i)
		name := sp.hookName(idx[0])
		src, err := cache.Get(name)
		if err != nil {
			b.end(false)
			return nil, fmt.Errorf("activation patching: clean cache: %w", err)
		}
		hook := hookedmodel.FwdHook(hookedmodel.Name(name), patchHook(src, sp.dims, idx[1:]))
		v, err := evaluate(ctx, m, corrupted, []hookedmodel.Hook{hook}, metric)
		if err != nil {
			b.end(false)
			return nil, fmt.Errorf("activation patching %v at %v: %w", sweep, idx, err)
		}
		res.Patched.Data[i] = v
		b.add()
	}
	b.end(true)
	if err := sp0.gather(ctx, res.Patched.Data); err != nil {
		return nil, fmt.Errorf("activation patching: %w", err)
	}
	return res, nil
}

// patchHook replaces the activation by a copy whose part at index (along
// dims) is the clean activation's.
func patchHook(clean *gotch.Tensor, dims, index []int) hookedmodel.HookFunc {
	return func(act *gotch.Tensor, _ string) (r *gotch.Tensor, err error) {
		err = gotch.Try(func() {
			if !slices.Equal(act.Shape(), clean.Shape()) {
				panic(fmt.Errorf("the clean activation %v does not match the corrupted %v", clean.Shape(), act.Shape()))
			}
			s := gotch.NewScope()
			defer s.Close()
			r = act.MustClone()
			dst := must(s.Borrow(r))
			src := must(s.Borrow(clean)).MustToDevice(act.Device(), false).MustTo(act.DType())
			for i, d := range dims {
				dst = dst.MustNarrow(int64(d), int64(index[i]), 1)
				src = src.MustNarrow(int64(d), int64(index[i]), 1)
			}
			dst.MustCopy_(src)
		})
		return r, err
	}
}

func checkPair(clean, corrupted *gotch.Tensor, metric Metric) error {
	switch {
	case metric == nil:
		return fmt.Errorf("no metric")
	case clean == nil || corrupted == nil || clean.Freed() || corrupted.Freed():
		return fmt.Errorf("nil or freed tokens")
	case clean.Dim() != 2 || !slices.Equal(clean.Shape(), corrupted.Shape()):
		return fmt.Errorf("clean %v and corrupted %v tokens must both be [batch pos], of the same shape", clean.Shape(), corrupted.Shape())
	}
	return nil
}

// Attribution is attribution patching's estimate of every patch of a set
// of sweeps.
type Attribution struct {
	// Clean and Corrupted are the metric on the clean and corrupted runs.
	Clean, Corrupted float64
	// Tables holds, per sweep, the estimated change of the metric from
	// patching each index (shaped as ActivationPatching's result): the sum
	// over the patched part of (clean − corrupted activation) ⊙ the
	// gradient of the metric on the corrupted run. Compare it with
	// ActivationPatching's Patched − Corrupted.
	Tables map[Sweep]*Table
}

// AttributionPatching estimates the sweeps' activation patching by its
// linear approximation (Nanda's attribution patching), from one clean run
// with a cache, one corrupted run with a cache and one backward pass of
// the metric from the corrupted logits (Output.BackwardFrom). It reads no
// options yet: any is an error.
func AttributionPatching(ctx context.Context, m *hookedmodel.HookedTransformer, clean, corrupted *gotch.Tensor, metric Metric, sweepList []Sweep, opts ...Option) (*Attribution, error) {
	if _, err := collect("AttributionPatching", opts, 0); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("attribution patching: nil model")
	}
	if len(sweepList) == 0 {
		return nil, fmt.Errorf("attribution patching: no sweeps")
	}
	if err := checkPair(clean, corrupted, metric); err != nil {
		return nil, fmt.Errorf("attribution patching: %w", err)
	}
	specs := make([]sweepSpec, len(sweepList))
	names := map[string]bool{}
	for i, sw := range sweepList {
		sp, err := sw.spec(m)
		if err != nil {
			return nil, fmt.Errorf("attribution patching: %w", err)
		}
		specs[i] = sp
		for l := range m.Blocks {
			names[sp.hookName(l)] = true
		}
	}
	filter := hookedmodel.NamesFilter(func(s string) bool { return names[s] })
	res := &Attribution{Tables: map[Sweep]*Table{}}

	cleanOut, cleanCache, err := m.RunWithCache(ctx, hookedmodel.Tokens(clean), filter)
	if err != nil {
		return nil, fmt.Errorf("attribution patching: clean run: %w", err)
	}
	defer cleanCache.Free()
	res.Clean, err = metricValue(cleanOut.Logits, metric)
	cleanOut.Free()
	if err != nil {
		return nil, fmt.Errorf("attribution patching: clean run: %w", err)
	}

	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(corrupted), filter, hookedmodel.InclBwd())
	if err != nil {
		return nil, fmt.Errorf("attribution patching: corrupted run: %w", err)
	}
	defer cache.Free()
	defer out.Free()
	s := gotch.NewScope()
	defer s.Close()
	logits, err := s.Borrow(out.Logits)
	if err != nil {
		return nil, err
	}
	mt, err := metric(logits)
	if err != nil {
		return nil, fmt.Errorf("attribution patching: metric: %w", err)
	}
	s.Attach(mt)
	if res.Corrupted, err = mt.Item(); err != nil {
		return nil, err
	}
	if err := out.BackwardFrom(mt); err != nil {
		return nil, fmt.Errorf("attribution patching: backward: %w", err)
	}

	err = gotch.Try(func() {
		for i, sw := range sweepList {
			sp := specs[i]
			t := NewTable(append([]string{"layer"}, sp.axes...), sp.shape(m, int(clean.Size(1)))...)
			per := len(t.Data) / t.Shape[0]
			for l := range m.Blocks {
				if err := ctx.Err(); err != nil {
					panic(err)
				}
				name := sp.hookName(l)
				grad, err := cache.Get(name + "_grad")
				if err != nil {
					continue // the metric does not depend on it
				}
				a := must(s.Borrow(cleanCache.MustGet(name))).MustSub(cache.MustGet(name))
				prod := a.MustMul(grad).MustTo(gotch.Double)
				var sum []int64
				for d := range prod.Dim() {
					if !slices.Contains(sp.dims, d) {
						sum = append(sum, int64(d))
					}
				}
				vals := must(gotch.ToSlice[float64](prod.MustSumDims(sum, false)))
				copy(t.Data[l*per:(l+1)*per], vals)
			}
			res.Tables[sw] = t
		}
	})
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("attribution patching: %w", cerr) // not the panic's stack
	}
	if err != nil {
		return nil, fmt.Errorf("attribution patching: %w", err)
	}
	return res, nil
}
