package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// soakEnv runs TestSoak for the duration it holds (GOLENS_SOAK=10m is the
// full soak); without it the test is skipped, so the suite never runs it.
const soakEnv = "GOLENS_SOAK"

// soakWorkers is how many goroutines share the model.
const soakWorkers = 8

// soakRSSBound is how far the resident set may grow from the sample after
// warm-up to the last one. Measured here (2 shared cores, 8 workers, three
// 2-minute runs): +11 to +28 MiB from the warm-up sample at 24 s to the
// end, in steps, all of it in the C heap (the Go heap stayed at 4.9 MiB):
// glibc's per-thread arenas filling as the 14 OS threads take turns
// (+13 MiB with GOLENS_MALLOC=tuned's single arena). A pass losing its
// logits ([1 16 50257] float32, 3 MiB) in the C heap once in a thousand
// passes, out of sight of the handle counter, would add about 18 MiB a
// minute at the 6,000 passes a minute measured: 160 MiB over the
// 10-minute soak.
const soakRSSBound = 64 << 20

// TestSoak runs soakWorkers goroutines on one model for the duration in
// GOLENS_SOAK: hooked passes whose hooks edit activations, cached passes
// with a name filter, greedy generations, and failures mixed in (a hook
// that errs, panics or returns a wrong shape, a hook name the model lacks,
// a cancelled context, one cancelled mid-pass or mid-generation, an
// out-of-range token). Every pass must give the result a sequential run
// gave and every injected failure its own error. At the start, every
// minute (every fifth of a shorter run; the first sample ends the
// warm-up) and at the end all workers pause while the live tensor handles
// and the resident set (VmRSS) are read: the handles must stay at the
// start's count with no tensor left to the GC, and the resident set
// within soakRSSBound of the warm-up sample.
//
//	GOLENS_SOAK=10m go test ./bench/ -run TestSoak -v -timeout 30m
func TestSoak(t *testing.T) {
	spec := os.Getenv(soakEnv)
	if spec == "" {
		t.Skipf("set %s to a duration (10m for the full soak) to run it", soakEnv)
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 10m", soakEnv, spec)
	}
	gotchtest.CheckLeaks(t)
	s := newSoak(t)
	defer s.free()

	every := min(d/5, time.Minute) // the first sample is the one after warm-up
	start := time.Now()
	first := s.sample("start", 0)
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	var wg sync.WaitGroup
	for g := range soakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, g)
		}()
	}
	ticks := time.NewTicker(every)
	defer ticks.Stop()
	var afterWarm soakSample
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticks.C:
			if afterWarm.at == 0 {
				afterWarm = s.sample("warm", time.Since(start))
			} else {
				s.sample("", time.Since(start))
			}
		}
	}
	wg.Wait()
	last := s.sample("end", time.Since(start))

	var passes, failures int64
	var mix []string
	for i, op := range soakOps {
		n := s.done[i].Load()
		mix = append(mix, fmt.Sprintf("%s %d", op.name, n))
		if op.failure {
			failures += n
		} else {
			passes += n
		}
	}
	t.Logf("%d workers, %v: %d passes and %d injected failures (%s)", soakWorkers, d, passes, failures, strings.Join(mix, ", "))
	t.Logf("live handles %d at the start, %d at the end; RSS %.1f MiB at the start, %.1f MiB after warm-up, %.1f MiB at the end",
		first.handles, last.handles, mib(first.rss), mib(afterWarm.rss), mib(last.rss))
	if err := s.firstErr(); err != nil {
		t.Fatal(err)
	}
	for i, op := range soakOps {
		if s.done[i].Load() == 0 {
			t.Errorf("%s never ran", op.name)
		}
	}
	for _, sm := range s.samples {
		if sm.handles != first.handles || sm.gcFreed != first.gcFreed {
			t.Errorf("%v: %d live handles with every worker paused, %d at the start; %d tensors left to the GC", sm.at.Round(time.Second), sm.handles, first.handles, sm.gcFreed-first.gcFreed)
		}
	}
	switch {
	case first.rss < 0:
		t.Log("no /proc/self/status: RSS not checked")
	case afterWarm.at == 0:
		t.Error("the soak ended before its warm-up sample")
	case last.rss-afterWarm.rss > soakRSSBound:
		t.Errorf("RSS grew by %.1f MiB after warm-up (bound %d MiB)", mib(last.rss-afterWarm.rss), soakRSSBound>>20)
	}
}

// soakOp is one kind of work: run returns an error when the outcome is not
// what it must be (a pass that fails, or a failure that is not the one
// injected).
type soakOp struct {
	name    string
	failure bool
	weight  int
	run     func(s *soak, ctx context.Context, g int) error
}

// soakOps is the mix, weighted so that half the passes fail.
var soakOps = []soakOp{
	{"hooked", false, 4, (*soak).hooked},
	{"cached", false, 3, (*soak).cached},
	{"generate", false, 2, (*soak).generate},
	{"hook_error", true, 1, (*soak).hookError},
	{"hook_panic", true, 1, (*soak).hookPanic},
	{"hook_wrong_shape", true, 1, (*soak).hookWrongShape},
	{"bad_hook_name", true, 1, (*soak).badHookName},
	{"cancelled", true, 1, (*soak).cancelled},
	{"cancel_mid_pass", true, 1, (*soak).cancelMidPass},
	{"cancel_mid_generate", true, 1, (*soak).cancelMidGenerate},
	{"generate_hook_panic", true, 1, (*soak).generateHookPanic},
	{"bad_token", true, 1, (*soak).badToken},
}

// soakConfig is a small model with GPT-2's vocabulary, so that text
// prompts tokenize and logits are as wide as GPT-2's.
func soakConfig() hookedmodel.Config {
	c := hookedmodel.DefaultConfig()
	c.ModelName = "soak"
	c.NLayers, c.DModel, c.NHeads, c.DHead, c.DMLP = 2, 64, 4, 16, 256
	c.NCtx, c.DVocab, c.ActFn, c.TokenizerName = 64, 50257, "gelu_new", "gpt2"
	return c
}

const (
	soakPrompt    = "When Mary and John went to the store, John gave a drink to"
	soakNewTokens = 6
)

var errInjected = errors.New("soak: injected failure")

type soakSample struct {
	label   string
	at      time.Duration
	handles int64
	gcFreed int64 // tensors never freed, reclaimed by the GC
	rss     int64 // bytes; -1 without /proc
	goHeap  int64 // bytes of the Go heap in use
	threads int64 // OS threads; -1 without /proc
}

type soak struct {
	t        *testing.T
	m        *hookedmodel.HookedTransformer
	tok, bad *gotch.Tensor // [1 16]; bad holds the id d_vocab
	filter   hookedmodel.Filter

	// what a sequential run gives
	hookedLoss []float64 // per ablated head
	cachedLoss float64
	generated  [][]int64

	// Passes hold pause for reading; a sample takes it to stop them all.
	pause   sync.RWMutex
	done    []atomic.Int64 // by soakOps index
	samples []soakSample

	mu  sync.Mutex
	err error
}

func newSoak(t *testing.T) *soak {
	dev := gotchtest.Device(t)
	m, err := hookedmodel.New(soakConfig(), hookedmodel.OnDevice(dev), hookedmodel.WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	s := &soak{t: t, m: m, done: make([]atomic.Int64, len(soakOps))}
	r := rand.New(rand.NewPCG(7, 7))
	ids := make([]int64, 16)
	for i := range ids {
		ids[i] = r.Int64N(int64(m.Cfg.DVocab))
	}
	if s.tok, err = gotch.FromSlice(ids, []int64{1, 16}, dev); err == nil {
		ids[5] = int64(m.Cfg.DVocab)
		s.bad, err = gotch.FromSlice(ids, []int64{1, 16}, dev)
	}
	if err == nil {
		s.filter, err = hookedmodel.Regexp(`^blocks\.\d+\.(attn\.hook_pattern|hook_resid_post)$`)
	}
	if err == nil {
		err = s.reference()
	}
	if err != nil {
		s.free()
		t.Fatal(err)
	}
	return s
}

// reference runs each passing kind of work once, alone.
func (s *soak) reference() error {
	ctx := context.Background()
	for h := range s.m.Cfg.NHeads {
		loss, err := s.hookedLossOf(ctx, h)
		if err != nil {
			return err
		}
		if h > 0 && loss == s.hookedLoss[0] {
			return fmt.Errorf("ablating head %d leaves the loss as head 0's: the check would prove nothing", h)
		}
		s.hookedLoss = append(s.hookedLoss, loss)
	}
	var err error
	if s.cachedLoss, err = s.cachedLossOf(ctx); err != nil {
		return err
	}
	s.generated, err = s.m.Generate(ctx, hookedmodel.Tokens(s.tok), hookedmodel.MaxNewTokens(soakNewTokens), hookedmodel.Greedy(), hookedmodel.StopAtEOS(false))
	return err
}

func (s *soak) free() {
	s.tok.Free()
	s.bad.Free()
	s.m.Free()
}

// work runs random kinds of work until ctx ends or a worker fails.
func (s *soak) work(ctx context.Context, g int) {
	r := rand.New(rand.NewPCG(uint64(g), 0x50a4))
	total := 0
	for _, op := range soakOps {
		total += op.weight
	}
	for ctx.Err() == nil && s.firstErr() == nil {
		i, k := 0, r.IntN(total)
		for k >= soakOps[i].weight {
			k -= soakOps[i].weight
			i++
		}
		s.pause.RLock()
		err := soakOps[i].run(s, context.Background(), g)
		s.pause.RUnlock()
		if err != nil {
			s.fail(fmt.Errorf("worker %d, %s: %w", g, soakOps[i].name, err))
			return
		}
		s.done[i].Add(1)
	}
}

func (s *soak) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *soak) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// sample pauses every worker between passes, collects garbage and reads
// the live handles and the resident set.
func (s *soak) sample(label string, at time.Duration) soakSample {
	s.pause.Lock()
	defer s.pause.Unlock()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sm := soakSample{label: label, at: at, handles: gotch.LiveHandles(), gcFreed: gotch.GCFreed(),
		rss: procStatus("VmRSS") << 10, goHeap: int64(ms.HeapInuse), threads: procStatus("Threads")}
	s.samples = append(s.samples, sm)
	var passes int64
	for i := range s.done {
		passes += s.done[i].Load()
	}
	s.t.Logf("%-5s %8v  %7d passes  %4d live handles  %d left to the GC  RSS %6.1f MiB (Go heap %5.1f MiB)  %d threads",
		label, at.Round(time.Second), passes, sm.handles, sm.gcFreed, mib(sm.rss), mib(sm.goHeap), sm.threads)
	return sm
}

// procStatus is the number of a line of /proc/self/status ("VmRSS" in
// KiB, "Threads"), or -1.
func procStatus(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// zeroHead zero-ablates head h of z [batch pos head d_head] in place.
func zeroHead(h int) hookedmodel.HookFunc {
	return func(z *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		return nil, gotch.Try(func() {
			head := z.MustNarrow(2, int64(h), 1)
			defer head.Free()
			head.MustZero_()
		})
	}
}

// halve returns a new residual stream, half the old.
func halve(resid *gotch.Tensor, _ string) (*gotch.Tensor, error) {
	var out *gotch.Tensor
	err := gotch.Try(func() { out = resid.MustMulScalar(0.5) })
	return out, err
}

// hookedLossOf is the loss with head h of layer 0 ablated in place and
// layer 1's mid-block residual replaced by half of it.
func (s *soak) hookedLossOf(ctx context.Context, h int) (float64, error) {
	hooks := []hookedmodel.Hook{
		hookedmodel.FwdHook(hookedmodel.Name("blocks.0.attn.hook_z"), zeroHead(h)),
		hookedmodel.FwdHook(hookedmodel.Name("blocks.1.hook_resid_mid"), halve),
	}
	out, err := s.m.RunWithHooks(ctx, hookedmodel.Tokens(s.tok), hooks, hookedmodel.Return(hookedmodel.ReturnLoss))
	if err != nil {
		return 0, err
	}
	defer out.Free()
	return out.Loss.Item()
}

// cachedLossOf caches the patterns and block outputs of the text prompt
// and checks them: four entries, each pattern row summing to 1.
func (s *soak) cachedLossOf(ctx context.Context) (float64, error) {
	out, cache, err := s.m.RunWithCache(ctx, hookedmodel.Text(soakPrompt), hookedmodel.NamesFilter(s.filter), hookedmodel.Return(hookedmodel.ReturnLoss))
	if err != nil {
		return 0, err
	}
	defer out.Free()
	defer cache.Free()
	if keys := cache.Keys(); len(keys) != 2*s.m.Cfg.NLayers {
		return 0, fmt.Errorf("cached %v, want the patterns and resid_post of %d layers", keys, s.m.Cfg.NLayers)
	}
	for l := range s.m.Cfg.NLayers {
		p, err := cache.Get("pattern", l) // [batch head query key]
		if err != nil {
			return 0, err
		}
		var sum float64
		if err := gotch.Try(func() {
			t := p.MustSum()
			defer t.Free()
			sum = t.MustItem()
		}); err != nil {
			return 0, err
		}
		sh := p.Shape()
		if rows := float64(sh[0] * sh[1] * sh[2]); math.Abs(sum-rows) > 1e-3*rows {
			return 0, fmt.Errorf("layer %d's pattern sums to %g over %g rows", l, sum, rows)
		}
	}
	return out.Loss.Item()
}

func closeTo(got, want float64) error {
	if math.Abs(got-want) > 1e-5*math.Abs(want) {
		return fmt.Errorf("loss %.9g, alone %.9g", got, want)
	}
	return nil
}

func (s *soak) hooked(ctx context.Context, g int) error {
	h := g % s.m.Cfg.NHeads
	loss, err := s.hookedLossOf(ctx, h)
	if err != nil {
		return err
	}
	return closeTo(loss, s.hookedLoss[h])
}

func (s *soak) cached(ctx context.Context, _ int) error {
	loss, err := s.cachedLossOf(ctx)
	if err != nil {
		return err
	}
	return closeTo(loss, s.cachedLoss)
}

func (s *soak) generate(ctx context.Context, _ int) error {
	rows, err := s.m.Generate(ctx, hookedmodel.Tokens(s.tok), hookedmodel.MaxNewTokens(soakNewTokens), hookedmodel.Greedy(), hookedmodel.StopAtEOS(false))
	if err != nil {
		return err
	}
	if !slices.Equal(rows[0], s.generated[0]) {
		return fmt.Errorf("generated %v, alone %v", rows[0], s.generated[0])
	}
	return nil
}

// failsWith checks that a pass failed, through its hook at point when
// point is not "", and that its error wraps want when want is not nil.
func failsWith(err error, point string, want error) error {
	if err == nil {
		return errors.New("the pass succeeded")
	}
	var he *hookedmodel.HookError
	if point != "" && (!errors.As(err, &he) || he.Point != point) {
		return fmt.Errorf("want a HookError at %s, got %w", point, err)
	}
	if want != nil && !errors.Is(err, want) {
		return fmt.Errorf("want %v, got %w", want, err)
	}
	return nil
}

// run is a hooked pass on the prompt tokens whose output, if any, is freed.
func (s *soak) run(ctx context.Context, tok *gotch.Tensor, hooks ...hookedmodel.Hook) error {
	out, err := s.m.RunWithHooks(ctx, hookedmodel.Tokens(tok), hooks)
	if err == nil {
		out.Free()
	}
	return err
}

const failPoint = "blocks.1.attn.hook_z"

func (s *soak) hookError(ctx context.Context, _ int) error {
	err := s.run(ctx, s.tok, hookedmodel.FwdHook(hookedmodel.Name(failPoint), func(*gotch.Tensor, string) (*gotch.Tensor, error) {
		return nil, errInjected
	}))
	return failsWith(err, failPoint, errInjected)
}

func (s *soak) hookPanic(ctx context.Context, _ int) error {
	err := s.run(ctx, s.tok, hookedmodel.FwdHook(hookedmodel.Name(failPoint), func(*gotch.Tensor, string) (*gotch.Tensor, error) {
		panic("soak: injected panic")
	}))
	if err := failsWith(err, failPoint, nil); err != nil {
		return err
	}
	if !strings.Contains(err.Error(), "injected panic") {
		return fmt.Errorf("the error does not carry the panic's value: %w", err)
	}
	return nil
}

// hookWrongShape returns a new tensor of another shape, which the pass
// must refuse and free.
func (s *soak) hookWrongShape(ctx context.Context, _ int) error {
	err := s.run(ctx, s.tok, hookedmodel.FwdHook(hookedmodel.Name(failPoint), func(z *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		return z.Sum()
	}))
	return failsWith(err, failPoint, nil)
}

func (s *soak) badHookName(ctx context.Context, _ int) error {
	err := s.run(ctx, s.tok, hookedmodel.FwdHook(hookedmodel.Name("blocks.7.attn.hook_z"), zeroHead(0)))
	if err := failsWith(err, "", nil); err != nil {
		return err
	}
	if !strings.Contains(err.Error(), "blocks.7.attn.hook_z") {
		return fmt.Errorf("the error does not name the hook point: %w", err)
	}
	return nil
}

// cancelled runs a cached pass on a context cancelled before it starts.
func (s *soak) cancelled(ctx context.Context, _ int) error {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	out, cache, err := s.m.RunWithCache(ctx, hookedmodel.Tokens(s.tok), hookedmodel.NamesFilter(s.filter))
	if err == nil {
		out.Free()
		cache.Free()
	}
	return failsWith(err, "", context.Canceled)
}

// cancelMidPass cancels a pass from a hook in layer 0: it must stop at
// the next layer.
func (s *soak) cancelMidPass(ctx context.Context, _ int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := s.run(ctx, s.tok, hookedmodel.FwdHook(hookedmodel.Name("blocks.0.hook_resid_post"), func(*gotch.Tensor, string) (*gotch.Tensor, error) {
		cancel()
		return nil, nil
	}))
	return failsWith(err, "", context.Canceled)
}

// cancelMidGenerate cancels a generation from a hook after its second
// forward pass.
func (s *soak) cancelMidGenerate(ctx context.Context, _ int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var passes atomic.Int32
	_, err := s.m.Generate(ctx, hookedmodel.Tokens(s.tok), hookedmodel.MaxNewTokens(soakNewTokens), hookedmodel.Greedy(), hookedmodel.StopAtEOS(false),
		hookedmodel.GenHooks(hookedmodel.FwdHook(hookedmodel.Name("ln_final.hook_normalized"), func(*gotch.Tensor, string) (*gotch.Tensor, error) {
			if passes.Add(1) == 2 {
				cancel()
			}
			return nil, nil
		})))
	return failsWith(err, "", context.Canceled)
}

// generateHookPanic panics in a hook on a generation's third pass, with
// the key-value cache filled.
func (s *soak) generateHookPanic(ctx context.Context, _ int) error {
	var passes atomic.Int32
	_, err := s.m.Generate(ctx, hookedmodel.Tokens(s.tok), hookedmodel.MaxNewTokens(soakNewTokens), hookedmodel.Greedy(), hookedmodel.StopAtEOS(false),
		hookedmodel.GenHooks(hookedmodel.FwdHook(hookedmodel.Name(failPoint), func(*gotch.Tensor, string) (*gotch.Tensor, error) {
			if passes.Add(1) == 3 {
				panic("soak: injected panic")
			}
			return nil, nil
		})))
	return failsWith(err, failPoint, nil)
}

func (s *soak) badToken(ctx context.Context, _ int) error {
	err := s.run(ctx, s.bad)
	if err := failsWith(err, "", nil); err != nil {
		return err
	}
	if !strings.Contains(err.Error(), "d_vocab") {
		return fmt.Errorf("the error does not say the token is out of range: %w", err)
	}
	return nil
}
