package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golens/golens/gotch"
)

// DefaultTimeout bounds joining and each collective unless WithTimeout
// says otherwise (torch.distributed's default is 30 minutes; a golens job
// that waits that long for a dead peer has usually lost its allocation).
const DefaultTimeout = 5 * time.Minute

// Op is how AllReduce and ReduceScatter combine the ranks' values.
type Op int

// Avg is the sum divided by the world size (Gloo has no native average).
const (
	Sum Op = iota
	Avg
	Max
	Min
	Product
)

var opNames = [...]string{"sum", "avg", "max", "min", "product"}

func (op Op) String() string {
	if op >= 0 && int(op) < len(opNames) {
		return opNames[op]
	}
	return "Op(" + strconv.Itoa(int(op)) + ")"
}

// native is the c10d reduction that computes op (Avg then divides).
func (op Op) native() (gotch.ReduceOp, error) {
	switch op {
	case Sum, Avg:
		return gotch.ReduceSum, nil
	case Max:
		return gotch.ReduceMax, nil
	case Min:
		return gotch.ReduceMin, nil
	case Product:
		return gotch.ReduceProduct, nil
	}
	return 0, fmt.Errorf("unknown reduce op %d", int(op))
}

type config struct {
	env       *Env
	rank      int
	size      int
	haveRank  bool
	addr      string
	port      int
	store     *gotch.Store
	timeout   time.Duration
	device    gotch.Device
	hash      string
	hostname  string
	heartbeat time.Duration
}

// Option configures Join.
type Option func(*config)

// WithEnv joins as e says instead of as the process's environment does.
func WithEnv(e Env) Option { return func(c *config) { c.env = &e } }

// WithRank sets this process's rank and the world size, instead of
// RANK and WORLD_SIZE.
func WithRank(rank, worldSize int) Option {
	return func(c *config) { c.rank, c.size, c.haveRank = rank, worldSize, true }
}

// WithMaster sets the TCP store's address, instead of MASTER_ADDR and
// MASTER_PORT; rank 0 serves it.
func WithMaster(addr string, port int) Option {
	return func(c *config) { c.addr, c.port = addr, port }
}

// WithStore rendezvouses through st (a FileStore for one host, or a
// store the caller serves) instead of the TCP store at the master's
// address. The caller closes st after the group.
func WithStore(st *gotch.Store) Option { return func(c *config) { c.store = st } }

// WithTimeout bounds joining (waiting for every rank) and each collective.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithDevice picks the backend: Gloo for the CPU (the default), NCCL for
// CUDA.
func WithDevice(d gotch.Device) Option { return func(c *config) { c.device = d } }

// WithConfig makes the rendezvous refuse a rank whose v (a model's config,
// its weights' hash, a run's settings) differs from this rank's: v is
// compared by the SHA-256 of its JSON encoding.
func WithConfig(v any) Option {
	return func(c *config) {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte("unencodable: " + err.Error())
		}
		sum := sha256.Sum256(b)
		c.hash = hex.EncodeToString(sum[:8])
	}
}

// WithHostname is the address this rank's Gloo listens on for its peers;
// by default as torch.distributed: GLOO_SOCKET_IFNAME, else the host's name.
func WithHostname(h string) Option { return func(c *config) { c.hostname = h } }

// WithHeartbeat sets how often this rank tells the store it is alive; a
// lost rank is named about three heartbeats after a collective fails.
// The default is a tenth of the timeout, between 100ms and 1s.
func WithHeartbeat(d time.Duration) Option { return func(c *config) { c.heartbeat = d } }

// Group is this process's membership of a joined group.
type Group struct {
	pg      *gotch.ProcessGroup
	base    *gotch.Store // the launcher's store (the caller's, with WithStore)
	ownBase bool
	views   []*gotch.Store // the prefixed views of base, innermost last
	keys    *gotch.Store   // torch.distributed's default_pg view: golens's keys live here
	pgStore *gotch.Store   // the view the backend rendezvouses through
	env     Env
	timeout time.Duration
	device  gotch.Device

	mu        sync.Mutex
	lost      []int // ranks a failed collective found dead
	beat      time.Duration
	stopBeat  chan struct{}
	beatDone  sync.WaitGroup
	closeOnce sync.Once
}

// Join joins this process's group, waiting up to the timeout for every
// rank. Where an option is missing it reads the launcher's environment
// (FromEnv); without either it fails saying what to set.
func Join(ctx context.Context, opts ...Option) (*Group, error) {
	c := config{timeout: DefaultTimeout, device: gotch.CPU}
	for _, o := range opts {
		o(&c)
	}
	env, err := c.resolveEnv()
	if err != nil {
		return nil, err
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("dist: timeout %v must be positive", c.timeout)
	}
	backend := gotch.BackendGloo
	if c.device.Type == gotch.CUDAType {
		backend = gotch.BackendNCCL
	}
	if !gotch.HasDistBackend(backend) {
		return nil, fmt.Errorf("dist: this golens build has no %s: %w", backend, gotch.ErrNotCompiled)
	}
	g := &Group{env: env, timeout: c.timeout, device: c.device, beat: c.beatInterval(), stopBeat: make(chan struct{})}
	if err := g.join(ctx, c, backend); err != nil {
		g.release()
		return nil, fmt.Errorf("dist: rank %d of %d: %w", env.Rank, env.WorldSize, err)
	}
	g.beatDone.Add(1)
	go g.heartbeat()
	return g, nil
}

// resolveEnv merges the options over the launcher's environment; the
// environment is read only for what the options leave out.
func (c *config) resolveEnv() (Env, error) {
	if c.env != nil {
		return *c.env, nil
	}
	if c.haveRank && (c.store != nil || c.addr != "") {
		if c.size < 1 || c.rank < 0 || c.rank >= c.size {
			return Env{}, fmt.Errorf("dist: rank %d is not in a world of size %d", c.rank, c.size)
		}
		return Env{Rank: c.rank, WorldSize: c.size, MasterAddr: c.addr, MasterPort: c.port}, nil
	}
	e, err := FromEnv()
	if err != nil {
		return Env{}, err
	}
	if c.haveRank {
		e.Rank, e.WorldSize = c.rank, c.size
	}
	if c.addr != "" {
		e.MasterAddr, e.MasterPort = c.addr, c.port
	}
	return e, nil
}

func (c *config) beatInterval() time.Duration {
	if c.heartbeat > 0 {
		return c.heartbeat
	}
	return min(max(c.timeout/10, 100*time.Millisecond), time.Second)
}

func (g *Group) join(ctx context.Context, c config, backend string) error {
	if err := g.openStores(ctx, c); err != nil {
		return err
	}
	me := joinRecord{Hash: c.hash, Backend: backend}
	b, _ := json.Marshal(me)
	if err := g.keys.Set(joinKey(g.env.Rank), b); err != nil {
		return fmt.Errorf("announcing this rank: %w", err)
	}
	// The first beat before the group forms: a rank with no beat is then
	// one that never beats (a Python rank), not a golens rank killed before
	// its heartbeat goroutine first ran.
	if _, err := g.keys.Add(beatKey(g.env.Rank), 1); err != nil {
		return fmt.Errorf("first heartbeat: %w", err)
	}
	var err error
	g.pg, err = gotch.NewProcessGroup(g.pgStore, gotch.GroupOptions{
		Backend: backend, Rank: g.env.Rank, Size: g.env.WorldSize, Timeout: c.timeout, Hostname: c.hostname,
	})
	if err != nil {
		return g.missing(err)
	}
	if err := g.initBarrier(ctx); err != nil {
		return err
	}
	if err := g.pg.SetSequenceNumber(); err != nil {
		return err
	}
	return g.checkPeers(me)
}

// openStores opens the launcher's store and the views torch.distributed
// uses: under torchrun's agent, /worker/attempt_N; then default_pg, then
// the group's name ("0") and, since torch 2.0, the device type.
func (g *Group) openStores(ctx context.Context, c config) error {
	g.base = c.store
	if g.base == nil {
		if g.env.MasterAddr == "" {
			return errors.New("no store: set MASTER_ADDR and MASTER_PORT, or use WithMaster or WithStore")
		}
		server := g.env.Rank == 0 && !g.env.AgentStore
		if !server {
			if err := awaitListener(ctx, g.env, c.timeout); err != nil {
				return fmt.Errorf("%s: %w", storeTrouble(g.env, server), err)
			}
		}
		st, err := gotch.NewTCPStore(g.env.MasterAddr, g.env.MasterPort, server, c.timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", storeTrouble(g.env, server), err)
		}
		g.base, g.ownBase = st, true
	}
	prefixes := []string{"default_pg"}
	if g.env.AgentStore {
		prefixes = append([]string{"/worker/attempt_" + strconv.Itoa(g.env.RestartCount)}, prefixes...)
	}
	st := g.base
	var err error
	for i, p := range append(prefixes, groupPrefixes(c.device)...) {
		if st, err = st.Prefixed(p); err != nil {
			return err
		}
		g.views = append(g.views, st)
		if i == len(prefixes)-1 {
			g.keys = st
		}
	}
	g.pgStore = st
	return nil
}

// awaitListener waits, up to timeout, until the store's address accepts
// connections. c10d's own client gives up at
// the first refusal once less than its 1s retry delay is left, which
// would make a rank started before rank 0 fail at once.
func awaitListener(ctx context.Context, e Env, timeout time.Duration) error {
	addr := net.JoinHostPort(e.MasterAddr, strconv.Itoa(e.MasterPort))
	deadline := time.Now().Add(timeout)
	var d net.Dialer
	for {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens there after %v: %w", timeout, err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// storeTrouble says whose store at the master's address could not be
// served or reached.
func storeTrouble(e Env, server bool) string {
	addr := fmt.Sprintf("%s:%d", e.MasterAddr, e.MasterPort)
	switch {
	case server:
		return "rank 0 cannot serve the store at " + addr
	case e.AgentStore:
		return "torchrun's agent store at " + addr + " is unreachable"
	}
	return "rank 0 never joined: its store at " + addr + " is unreachable"
}

// groupPrefixes are the views torch.distributed puts between default_pg
// and a group's backend: the group's name, and since torch 2.0 a view per
// device type.
func groupPrefixes(d gotch.Device) []string {
	if torchMajor() < 2 {
		return []string{"0"}
	}
	return []string{"0/", deviceTypeName(d) + "/"}
}

func deviceTypeName(d gotch.Device) string {
	if d.Type == gotch.CUDAType {
		return "cuda"
	}
	return "cpu"
}

func torchMajor() int {
	major, _, _ := strings.Cut(gotch.TorchVersion(), ".")
	n, _ := strconv.Atoi(major)
	return n
}

// joinRecord is what each golens rank writes at the rendezvous.
type joinRecord struct {
	Hash    string `json:"hash"`
	Backend string `json:"backend"`
}

func joinKey(rank int) string { return "golens/join/" + strconv.Itoa(rank) }
func beatKey(rank int) string { return "golens/beat/" + strconv.Itoa(rank) }
func leftKey(rank int) string { return "golens/left/" + strconv.Itoa(rank) }

// missing explains a failed rendezvous by the ranks that never came: a
// rank has come when it announced itself (golens) or Gloo has its address
// (golens or Python).
func (g *Group) missing(err error) error {
	var absent []int
	for r := range g.env.WorldSize {
		announced, _ := g.keys.Has(joinKey(r))
		connected, _ := g.pgStore.Has("0/rank_" + strconv.Itoa(r))
		if !announced && !connected {
			absent = append(absent, r)
		}
	}
	if len(absent) == 0 {
		return err
	}
	return fmt.Errorf("%s never joined within %v: %w", ranksText(absent), g.timeout, err)
}

func ranksText(ranks []int) string {
	s := make([]string, len(ranks))
	for i, r := range ranks {
		s[i] = strconv.Itoa(r)
	}
	if len(s) == 1 {
		return "rank " + s[0]
	}
	return "ranks " + strings.Join(s, ", ")
}

// initBarrier is torch 1.x's store-based barrier at the end of
// init_process_group, which a Python rank waits in until every rank added
// itself (torch 2.x runs it only when TORCH_DIST_INIT_BARRIER=1).
func (g *Group) initBarrier(ctx context.Context) error {
	if torchMajor() >= 2 {
		return nil
	}
	const key = "store_based_barrier_key:1"
	if _, err := g.keys.Add(key, 1); err != nil {
		return err
	}
	deadline := time.Now().Add(g.timeout)
	for {
		n, err := g.keys.Add(key, 0)
		if err != nil || n >= int64(g.env.WorldSize) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the store-based barrier after joining saw %d of %d ranks within %v", n, g.env.WorldSize, g.timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// checkPeers refuses the group when another golens rank joined with a
// different config. Every rank announced itself before the group formed,
// so every rank sees every record and all refuse together.
func (g *Group) checkPeers(me joinRecord) error {
	for r := range g.env.WorldSize {
		if r == g.env.Rank {
			continue
		}
		if ok, err := g.keys.Has(joinKey(r)); err != nil || !ok {
			continue // a Python rank announces nothing
		}
		b, err := g.keys.Get(joinKey(r))
		if err != nil {
			return err
		}
		var peer joinRecord
		if err := json.Unmarshal(b, &peer); err != nil {
			return fmt.Errorf("rank %d's join record %q: %w", r, b, err)
		}
		if peer.Hash != me.Hash {
			return fmt.Errorf("refused: rank %d joined with config hash %q, this rank with %q: every rank must load the same model and config", r, peer.Hash, me.Hash)
		}
	}
	return nil
}

// heartbeat counts up this rank's beat key, once a beat after join's
// first, until Close.
func (g *Group) heartbeat() {
	defer g.beatDone.Done()
	t := time.NewTicker(g.beat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-g.stopBeat:
			return
		}
		_, _ = g.keys.Add(beatKey(g.env.Rank), 1) // a failing store is diagnosed when an op fails
	}
}

// beats reads every rank's heartbeat count.
func (g *Group) beats() ([]int64, error) {
	n := make([]int64, g.env.WorldSize)
	for r := range n {
		var err error
		if n[r], err = g.keys.Add(beatKey(r), 0); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// failed explains a collective that failed while it ran: by the ranks
// whose heartbeat stopped (over three beats), or by the store's host when
// the store is gone too.
func (g *Group) failed(op string, err error) error {
	where := fmt.Sprintf("dist: %s on rank %d of %d", op, g.env.Rank, g.env.WorldSize)
	before, serr := g.beats()
	if serr == nil {
		time.Sleep(3 * g.beat)
		var after []int64
		if after, serr = g.beats(); serr == nil {
			var lost, left []int
			for r := range after {
				if r == g.env.Rank || before[r] == 0 || after[r] != before[r] {
					continue
				}
				if ok, _ := g.keys.Has(leftKey(r)); ok {
					left = append(left, r)
				} else {
					lost = append(lost, r)
				}
			}
			g.mu.Lock()
			g.lost = append(g.lost, lost...)
			g.mu.Unlock()
			switch {
			case len(lost) > 0:
				return fmt.Errorf("%s: lost %s (no heartbeat for %v): %w", where, ranksText(lost), 3*g.beat, err)
			case len(left) > 0:
				return fmt.Errorf("%s: %s closed the group already: %w", where, ranksText(left), err)
			}
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	host := "rank 0"
	if g.env.AgentStore {
		host = "torchrun's agent"
	}
	return fmt.Errorf("%s: the store is unreachable too (%v), so its host, %s, is lost: %w", where, serr, host, err)
}

// Rank is this process's rank.
func (g *Group) Rank() int { return g.env.Rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.env.WorldSize }

// LocalRank is this process's rank on its host (LOCAL_RANK).
func (g *Group) LocalRank() int { return g.env.LocalRank }

// Env is what the group was joined with.
func (g *Group) Env() Env { return g.env }

// Device is the device the group's collectives run on.
func (g *Group) Device() gotch.Device { return g.device }

// Store is a view of the group's store for the job's own keys (progress,
// commits); its keys must not start with "golens/".
func (g *Group) Store() *gotch.Store { return g.keys }

// AllReduce combines t over the ranks, in place, on every rank.
func (g *Group) AllReduce(ctx context.Context, t *gotch.Tensor, op Op) error {
	native, err := op.native()
	if err != nil {
		return fmt.Errorf("dist: AllReduce: %w", err)
	}
	if op == Avg && (t == nil || !t.DType().IsFloat()) {
		return fmt.Errorf("dist: AllReduce: avg needs a floating-point tensor, got %v", t)
	}
	if err := g.run(ctx, "AllReduce", func() (*gotch.Work, error) { return g.pg.AllReduce(t, native) }); err != nil {
		return err
	}
	if op == Avg {
		return t.MulScalar_(1 / float64(g.env.WorldSize))
	}
	return nil
}

// Broadcast copies root's t into t on every rank.
func (g *Group) Broadcast(ctx context.Context, t *gotch.Tensor, root int) error {
	return g.run(ctx, "Broadcast", func() (*gotch.Work, error) { return g.pg.Broadcast(t, root) })
}

// AllGather fills outs[r] with rank r's in on every rank; outs holds one
// tensor per rank shaped like in.
func (g *Group) AllGather(ctx context.Context, outs []*gotch.Tensor, in *gotch.Tensor) error {
	return g.run(ctx, "AllGather", func() (*gotch.Work, error) { return g.pg.AllGather(outs, in) })
}

// ReduceScatter combines ins[r] over the ranks into rank r's out; ins
// holds one tensor per rank shaped like out.
func (g *Group) ReduceScatter(ctx context.Context, out *gotch.Tensor, ins []*gotch.Tensor, op Op) error {
	native, err := op.native()
	if err != nil {
		return fmt.Errorf("dist: ReduceScatter: %w", err)
	}
	if op == Avg && (out == nil || !out.DType().IsFloat()) {
		return fmt.Errorf("dist: ReduceScatter: avg needs a floating-point tensor, got %v", out)
	}
	if err := g.run(ctx, "ReduceScatter", func() (*gotch.Work, error) { return g.pg.ReduceScatter(out, ins, native) }); err != nil {
		return err
	}
	if op == Avg {
		return out.MulScalar_(1 / float64(g.env.WorldSize))
	}
	return nil
}

// SumFloat64 sums v over the ranks, in place, on every rank: the gather of
// a sweep split with analysis.SplitOver.
func (g *Group) SumFloat64(ctx context.Context, v []float64) error {
	if len(v) == 0 {
		return nil
	}
	t, err := gotch.FromSlice(v, []int64{int64(len(v))}, g.device)
	if err != nil {
		return fmt.Errorf("dist: SumFloat64: %w", err)
	}
	defer t.Free()
	if err := g.AllReduce(ctx, t, Sum); err != nil {
		return err
	}
	sum, err := gotch.ToSlice[float64](t)
	if err != nil {
		return fmt.Errorf("dist: SumFloat64: %w", err)
	}
	copy(v, sum)
	return nil
}

// SumTensors sums each of ts over the ranks, in place, on every rank, as
// one all-reduce per dtype of their values laid end to end (a model's
// gradients for train.DataParallel: one collective, not one per weight).
func (g *Group) SumTensors(ctx context.Context, ts []*gotch.Tensor) error {
	byDType := map[gotch.DType][]*gotch.Tensor{}
	var order []gotch.DType
	for _, t := range ts {
		if t == nil {
			return fmt.Errorf("dist: SumTensors: a nil tensor")
		}
		if _, ok := byDType[t.DType()]; !ok {
			order = append(order, t.DType())
		}
		byDType[t.DType()] = append(byDType[t.DType()], t)
	}
	for _, dt := range order {
		if err := g.sumFlat(ctx, byDType[dt]); err != nil {
			return err
		}
	}
	return nil
}

// sumFlat all-reduces ts (one dtype) through one flat buffer.
func (g *Group) sumFlat(ctx context.Context, ts []*gotch.Tensor) error {
	s := gotch.NewScope()
	defer s.Close()
	var flat *gotch.Tensor
	err := gotch.Try(func() {
		parts := make([]*gotch.Tensor, len(ts))
		for i, t := range ts {
			b, err := s.Borrow(t)
			if err != nil {
				panic(err)
			}
			parts[i] = b.MustReshape([]int64{-1})
		}
		flat = gotch.MustCat(parts, 0)
	})
	if err != nil {
		return fmt.Errorf("dist: SumTensors: %w", err)
	}
	if err := g.AllReduce(ctx, flat, Sum); err != nil {
		return err
	}
	return gotch.Try(func() {
		var at int64
		for _, t := range ts {
			n := t.Numel()
			dst, err := s.Borrow(t)
			if err != nil {
				panic(err)
			}
			dst.MustCopy_(flat.MustNarrow(0, at, n).MustView(t.Shape()))
			at += n
		}
	})
}

// Barrier returns once every rank reached it.
func (g *Group) Barrier(ctx context.Context) error {
	return g.run(ctx, "Barrier", g.pg.Barrier)
}

// Send sends t to rank dst, whose Recv names the same tag.
func (g *Group) Send(ctx context.Context, t *gotch.Tensor, dst, tag int) error {
	return g.run(ctx, "Send", func() (*gotch.Work, error) { return g.pg.Send(t, dst, tag) })
}

// Recv receives into t what rank src sends with the same tag.
func (g *Group) Recv(ctx context.Context, t *gotch.Tensor, src, tag int) error {
	return g.run(ctx, "Recv", func() (*gotch.Work, error) { return g.pg.Recv(t, src, tag) })
}

// run starts a collective and waits for it; a failure while it ran (not
// the caller's cancellation) is explained by the ranks that were lost.
func (g *Group) run(ctx context.Context, op string, start func() (*gotch.Work, error)) error {
	if g == nil || g.pg == nil {
		return fmt.Errorf("dist: %s on a nil or closed group", op)
	}
	w, err := start()
	if err != nil {
		return fmt.Errorf("dist: %w", err)
	}
	defer w.Free()
	if err := w.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("dist: %w", err)
		}
		return g.failed(op, err)
	}
	return nil
}

// Close leaves the group. Rank 0, when it serves the store, first waits
// (up to the timeout) for the other golens ranks to leave, so that the
// store outlives its clients; it does not wait for ranks found lost.
// Idempotent.
func (g *Group) Close() error {
	if g == nil {
		return nil
	}
	var err error
	g.closeOnce.Do(func() {
		close(g.stopBeat)
		g.beatDone.Wait()
		// Gloo's connections go first: a peer blocked on this rank then
		// fails at once, not at its timeout, while the store stays up.
		g.pg.Close()
		g.pg = nil
		if err = g.keys.Set(leftKey(g.env.Rank), nil); err == nil && g.servesStore() {
			err = g.awaitLeaving()
		}
		g.release()
	})
	return err
}

func (g *Group) servesStore() bool { return g.ownBase && g.env.Rank == 0 && !g.env.AgentStore }

func (g *Group) awaitLeaving() error {
	deadline := time.Now().Add(g.timeout)
	g.mu.Lock()
	lost := slices.Clone(g.lost)
	g.mu.Unlock()
	for r := 1; r < g.env.WorldSize; r++ {
		for !slices.Contains(lost, r) {
			golens, _ := g.keys.Has(joinKey(r))
			left, err := g.keys.Has(leftKey(r))
			if err != nil || left || !golens {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("dist: rank 0 closed its store with rank %d still in the group after %v", r, g.timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// release frees what the group holds, innermost first.
func (g *Group) release() {
	g.pg.Close()
	g.pg = nil
	for i := len(g.views) - 1; i >= 0; i-- {
		g.views[i].Close()
	}
	g.views = nil
	if g.ownBase {
		g.base.Close()
	}
}
