package harvest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// Option configures Run.
type Option func(*options)

type options struct {
	hooks         string
	shardExamples int
	batch         int
	dtype         gotch.DType
	rank, world   int
	barrier       func(context.Context) error
	truncate      bool
	force         bool
	progress      io.Writer
}

// Hooks selects the hook points to harvest by a regular expression over
// their names (required). Each must be a [batch pos ...] activation:
// attention scores and patterns ([batch head query key]) have no row per
// token.
func Hooks(regexp string) Option { return func(o *options) { o.hooks = regexp } }

// ShardExamples is how many examples a shard holds (default 256). It
// fixes the shards, so a resumed run must use the same value.
func ShardExamples(n int) Option { return func(o *options) { o.shardExamples = n } }

// Batch is how many examples one forward pass takes (default 8).
func Batch(n int) Option { return func(o *options) { o.batch = n } }

// DType is the dtype the activations are written in (default float32;
// float16 and bfloat16 halve the files).
func DType(d gotch.DType) Option { return func(o *options) { o.dtype = d } }

// Rank makes this process rank r of world processes: it computes the
// shards k with k mod world = r. barrier, called once all of this rank's
// shards are written, returns when every rank's are; rank 0 then writes
// the manifest. nil barrier is for world 1.
func Rank(r, world int, barrier func(context.Context) error) Option {
	return func(o *options) { o.rank, o.world, o.barrier = r, world, barrier }
}

// Truncate cuts examples longer than the model's n_ctx instead of failing.
func Truncate() Option { return func(o *options) { o.truncate = true } }

// Force writes into a directory that holds files of something else, or a
// harvest of other settings (its shards are replaced as they are redone).
func Force() Option { return func(o *options) { o.force = true } }

// WithProgress draws a progress bar (rows/s, ETA) on w.
func WithProgress(w io.Writer) Option { return func(o *options) { o.progress = w } }

// Run harvests the activations of m over ds into the directory out and
// returns the manifest (nil on ranks other than 0). Shards already in out
// from an interrupted run of the same settings are kept.
func Run(ctx context.Context, m *hookedmodel.HookedTransformer, ds Dataset, out string, opts ...Option) (*Manifest, error) {
	o := options{shardExamples: 256, batch: 8, dtype: gotch.Float, world: 1}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.check(m, ds, out); err != nil {
		return nil, fmt.Errorf("harvest: %w", err)
	}
	hooks, err := harvestedHooks(m, o.hooks)
	if err != nil {
		return nil, fmt.Errorf("harvest: %w", err)
	}
	id := newIdentity(m, ds, hooks, o)
	undo, err := prepareDir(out, id, o.force)
	if err != nil {
		return nil, fmt.Errorf("harvest: %w", err)
	}
	man, err := harvestShards(ctx, m, ds, out, hooks, id, o)
	if err != nil {
		undo()
		return nil, fmt.Errorf("harvest: %w", err)
	}
	return man, nil
}

// harvestShards writes this rank's missing shards and, on rank 0, the
// manifest.
func harvestShards(ctx context.Context, m *hookedmodel.HookedTransformer, ds Dataset, out string, hooks []string, id identity, o options) (*Manifest, error) {
	shards := (ds.Len() + o.shardExamples - 1) / o.shardExamples
	var mine []int
	for k := o.rank; k < shards; k += o.world {
		if !haveShard(out, k, id) {
			mine = append(mine, k)
		}
	}
	bar := newBar(o.progress, mine, ds, o.shardExamples)
	for _, k := range mine {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows, err := writeShard(ctx, m, ds, out, k, hooks, id, o)
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", k, err)
		}
		bar.add(rows, min(o.shardExamples, ds.Len()-k*o.shardExamples))
	}
	bar.done()
	if o.barrier != nil {
		if err := o.barrier(ctx); err != nil {
			return nil, fmt.Errorf("waiting for the other ranks: %w", err)
		}
	}
	if o.rank != 0 {
		return nil, nil
	}
	return writeManifest(out, shards, id)
}

func (o *options) check(m *hookedmodel.HookedTransformer, ds Dataset, out string) error {
	switch {
	case m == nil:
		return errors.New("nil model")
	case ds == nil || ds.Len() == 0:
		return errors.New("no examples")
	case out == "":
		return errors.New("no output directory")
	case o.hooks == "":
		return errors.New("no hooks: say which activations with Hooks(regexp)")
	case o.shardExamples <= 0:
		return fmt.Errorf("shard size %d examples; want a positive number", o.shardExamples)
	case o.batch <= 0:
		return fmt.Errorf("batch %d; want a positive number", o.batch)
	case o.world <= 0 || o.rank < 0 || o.rank >= o.world:
		return fmt.Errorf("rank %d of world size %d; want 0 <= rank < world", o.rank, o.world)
	case o.world > 1 && o.barrier == nil:
		return fmt.Errorf("world size %d without a barrier: rank 0 could write the manifest before the others finish", o.world)
	}
	switch o.dtype {
	case gotch.Float, gotch.Half, gotch.BFloat16:
	default:
		return fmt.Errorf("dtype %v; want float32, float16 or bfloat16", o.dtype)
	}
	return nil
}

// harvestedHooks are the model's hook points that expr selects, in the
// model's order.
func harvestedHooks(m *hookedmodel.HookedTransformer, expr string) ([]string, error) {
	filter, err := hookedmodel.Regexp(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range m.HookNames() {
		if !filter(n) {
			continue
		}
		if strings.HasSuffix(n, "hook_pattern") || strings.HasSuffix(n, "hook_attn_scores") {
			return nil, fmt.Errorf("hook %s is [batch head query key], with no row per token; harvest [batch pos ...] activations", n)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("hooks %q match none of the model's hook points (golens hooks lists them)", expr)
	}
	return names, nil
}

// writeShard computes shard k, batch by batch, and writes it; it returns
// the rows written.
func writeShard(ctx context.Context, m *hookedmodel.HookedTransformer, ds Dataset, out string, k int, hooks []string, id identity, o options) (int, error) {
	first, end := k*o.shardExamples, min((k+1)*o.shardExamples, ds.Len())
	s := gotch.NewScope()
	defer s.Close()
	parts := map[string][]*gotch.Tensor{}
	var example, position, token []int64
	for b := first; b < end; b += o.batch {
		rows, err := examples(ds, b, min(b+o.batch, end), m.Cfg.NCtx, o.truncate)
		if err != nil {
			return 0, err
		}
		acts, err := runBatch(ctx, m, s, rows, hooks, o.dtype)
		if err != nil {
			return 0, fmt.Errorf("examples [%d, %d): %w", b, b+len(rows), err)
		}
		for _, h := range hooks {
			parts[h] = append(parts[h], acts[h])
		}
		for i, r := range rows {
			for p, t := range r {
				example, position, token = append(example, int64(b+i)), append(position, int64(p)), append(token, t)
			}
		}
	}
	names := append(append([]string(nil), hooks...), "example", "position", "token")
	ts := map[string]*gotch.Tensor{}
	err := gotch.Try(func() {
		for _, h := range hooks {
			ts[h] = gotch.MustCat(parts[h], 0) // [rows ...]
		}
		for name, v := range map[string][]int64{"example": example, "position": position, "token": token} {
			ts[name] = s.Attach(gotch.MustFromSlice(v, []int64{int64(len(v))}, gotch.CPU))
		}
	})
	if err != nil {
		return 0, err
	}
	meta := id.metadata()
	meta["shard"] = fmt.Sprint(k)
	meta["examples"] = fmt.Sprintf("%d-%d", first, end)
	meta["rank"] = fmt.Sprint(o.rank)
	if err := hookedmodel.WriteSafetensors(shardPath(out, k), names, ts, meta); err != nil {
		return 0, err
	}
	return len(example), nil
}

// examples are the ids of examples [from, to), cut to n_ctx when truncate
// is set.
func examples(ds Dataset, from, to, nCtx int, truncate bool) ([][]int64, error) {
	var rows [][]int64
	for i := from; i < to; i++ {
		ids, err := ds.Example(i)
		if err != nil {
			return nil, err
		}
		if len(ids) > nCtx {
			if !truncate {
				return nil, fmt.Errorf("example %d has %d tokens, more than the model's n_ctx %d (truncate to harvest its first %d)", i, len(ids), nCtx, nCtx)
			}
			ids = ids[:nCtx]
		}
		rows = append(rows, ids)
	}
	return rows, nil
}

// runBatch runs the examples, right-padded to the longest with an
// attention mask, and returns each hook's activation at the real tokens,
// [tokens ...] in s on the CPU in dtype.
func runBatch(ctx context.Context, m *hookedmodel.HookedTransformer, s *gotch.Scope, rows [][]int64, hooks []string, dtype gotch.DType) (map[string]*gotch.Tensor, error) {
	n := 0
	for _, r := range rows {
		n = max(n, len(r))
	}
	ids, mask := make([]int64, len(rows)*n), make([]int64, len(rows)*n)
	for i, r := range rows {
		copy(ids[i*n:], r)
		for p := range r {
			mask[i*n+p] = 1
		}
	}
	shape := []int64{int64(len(rows)), int64(n)}
	tok, err := gotch.FromSlice(ids, shape, m.Device())
	if err != nil {
		return nil, err
	}
	defer tok.Free()
	am, err := gotch.FromSlice(mask, shape, m.Device())
	if err != nil {
		return nil, err
	}
	defer am.Free()
	want := map[string]bool{}
	for _, h := range hooks {
		want[h] = true
	}
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tok), hookedmodel.AttentionMask(am),
		hookedmodel.NamesFilter(func(n string) bool { return want[n] }), hookedmodel.Return(hookedmodel.ReturnNone))
	if err != nil {
		return nil, err
	}
	out.Free()
	defer cache.Free()
	acts := map[string]*gotch.Tensor{}
	err = gotch.Try(func() {
		for _, h := range hooks {
			act, err := s.Borrow(cache.MustGet(h)) // [batch pos ...]
			if err != nil {
				panic(err)
			}
			var real []*gotch.Tensor
			for i, r := range rows {
				real = append(real, act.MustSelect(0, int64(i)).MustNarrow(0, 0, int64(len(r))))
			}
			acts[h] = gotch.MustCat(real, 0).MustTo(dtype).MustToDevice(gotch.CPU, false) // [tokens ...]
		}
	})
	return acts, err
}

func shardPath(dir string, k int) string {
	return filepath.Join(dir, fmt.Sprintf("shard-%06d.safetensors", k))
}

// bar reports rows/s and the time left over this rank's examples.
type bar struct {
	w                     io.Writer
	start                 time.Time
	rows, examples, total int
}

func newBar(w io.Writer, shards []int, ds Dataset, per int) *bar {
	total := 0
	for _, k := range shards {
		total += min(per, ds.Len()-k*per)
	}
	return &bar{w: w, start: time.Now(), total: total}
}

func (b *bar) add(rows, examples int) {
	b.rows += rows
	b.examples += examples
	if b.w == nil {
		return
	}
	el := time.Since(b.start).Seconds()
	eta := time.Duration(el / float64(b.examples) * float64(b.total-b.examples) * float64(time.Second))
	fmt.Fprintf(b.w, "\rharvest: %d/%d examples, %d rows, %.0f rows/s, ETA %s   ", b.examples, b.total, b.rows, float64(b.rows)/el, eta.Round(time.Second))
}

func (b *bar) done() {
	if b.w != nil && b.total > 0 {
		fmt.Fprintln(b.w)
	}
}
