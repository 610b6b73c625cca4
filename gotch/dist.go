package gotch

// The distributed engine: c10d, the library torch.distributed runs on.
// A Store is the rendezvous (key-value) every rank connects to; a
// ProcessGroup is the ranks' communicator (Gloo on the CPU, NCCL on CUDA);
// each collective starts asynchronously and returns a Work to wait on with
// a context. Ranks must issue the same collectives in the same order.
// Higher-level joining (the launcher's environment, liveness, config
// checks) is in backend/dist.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// ReduceOp combines the ranks' values in AllReduce and ReduceScatter.
type ReduceOp int

// The reductions c10d runs natively on every backend (backend/dist adds
// the average).
const (
	ReduceSum ReduceOp = iota
	ReduceProduct
	ReduceMin
	ReduceMax
)

func (op ReduceOp) String() string {
	switch op {
	case ReduceSum:
		return "sum"
	case ReduceProduct:
		return "product"
	case ReduceMin:
		return "min"
	case ReduceMax:
		return "max"
	}
	return fmt.Sprintf("ReduceOp(%d)", int(op))
}

// The process-group backends.
const (
	BackendGloo = "gloo" // CPU tensors
	BackendNCCL = "nccl" // CUDA tensors
)

// HasDistBackend reports whether this build has the backend compiled in:
// Gloo needs libtorch's Gloo headers when the shim is built (Debian:
// libgloo-dev), NCCL the tag cuda and nccl.h.
func HasDistBackend(name string) bool {
	code, ok := backendCode(name)
	return ok && hasDistBackend(code)
}

func backendCode(name string) (int, bool) {
	switch name {
	case BackendGloo:
		return 0, true
	case BackendNCCL:
		return 1, true
	}
	return 0, false
}

// Store is a c10d key-value store shared by a group's ranks: a TCPStore
// (what torchrun and torch.distributed use) or a FileStore (one host).
// Its methods are safe for concurrent use.
type Store struct {
	h    ref
	port int
	name string // for errors: "tcp 127.0.0.1:29500", "file /tmp/x"
}

// NewTCPStore connects to the TCPStore at host:port, or, when server,
// serves one there (port 0 picks a free port: see Port). timeout bounds
// every call on the store, the connection included.
func NewTCPStore(host string, port int, server bool, timeout time.Duration) (*Store, error) {
	name := fmt.Sprintf("tcp %s:%d", host, port)
	if host == "" || port < 0 || port > 65535 {
		return nil, &Error{Op: "NewTCPStore", Msg: fmt.Sprintf("bad address %q port %d", host, port)}
	}
	p, bound, err := storeTCP(host, port, server, timeout)
	if err != nil {
		return nil, err
	}
	if server {
		name = fmt.Sprintf("tcp %s:%d", host, bound)
	}
	return &Store{h: ref{p: p}, port: bound, name: name}, nil
}

// NewFileStore opens the FileStore at path, shared by worldSize processes
// of one host; the last of them to close it removes the file.
func NewFileStore(path string, worldSize int, timeout time.Duration) (*Store, error) {
	if path == "" || worldSize < 1 {
		return nil, &Error{Op: "NewFileStore", Msg: fmt.Sprintf("bad path %q or world size %d", path, worldSize)}
	}
	p, err := storeFile(path, worldSize, timeout)
	if err != nil {
		return nil, err
	}
	return &Store{h: ref{p: p}, port: -1, name: "file " + path}, nil
}

// Prefixed is a view of s whose keys all start with prefix + "/", as
// c10d's PrefixStore; close it before s.
func (s *Store) Prefixed(prefix string) (*Store, error) {
	var out unsafe.Pointer
	err := s.use("Store.Prefixed", func(p unsafe.Pointer) (err error) {
		out, err = storePrefix(p, prefix)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Store{h: ref{p: out}, port: -1, name: s.name + " prefix " + prefix}, nil
}

// Port is the TCP store's port (the one picked for port 0), else -1.
func (s *Store) Port() int {
	if s == nil {
		return -1
	}
	return s.port
}

func (s *Store) String() string {
	if s == nil {
		return "nil store"
	}
	return s.name
}

// Set writes value at key.
func (s *Store) Set(key string, value []byte) error {
	return s.use("Store.Set", func(p unsafe.Pointer) error { return storeSet(p, key, value) })
}

// Get reads key, waiting for it up to the store's timeout.
func (s *Store) Get(key string) ([]byte, error) {
	var v []byte
	err := s.use("Store.Get", func(p unsafe.Pointer) (err error) {
		v, err = storeGet(p, key)
		return err
	})
	return v, err
}

// Add adds delta to the counter at key (0 when absent) and returns its new
// value; Add(key, 0) reads it.
func (s *Store) Add(key string, delta int64) (int64, error) {
	var v int64
	err := s.use("Store.Add", func(p unsafe.Pointer) (err error) {
		v, err = storeAdd(p, key, delta)
		return err
	})
	return v, err
}

// Has reports whether key exists, without waiting.
func (s *Store) Has(key string) (bool, error) {
	var ok bool
	err := s.use("Store.Has", func(p unsafe.Pointer) (err error) {
		ok, err = storeCheck(p, key)
		return err
	})
	return ok, err
}

// Close releases the store (a server stops serving); idempotent.
func (s *Store) Close() {
	if s != nil && s.h.release() {
		s.h.drop(freeStore)
	}
}

func (s *Store) use(op string, fn func(unsafe.Pointer) error) error {
	if s == nil || !s.h.pin(freeStore) {
		return &Error{Op: op, Msg: "the store is nil or closed"}
	}
	defer s.h.unpin(freeStore)
	if err := fn(s.h.p); err != nil {
		return withArgs(err, s.name)
	}
	return nil
}

// withArgs names what an op worked on (a store, a rank) in its error.
func withArgs(err error, args ...string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Args = append(args, e.Args...)
	}
	return err
}

// GroupOptions configure NewProcessGroup.
type GroupOptions struct {
	Backend string // BackendGloo or BackendNCCL
	Rank    int
	Size    int
	// Timeout bounds joining and every collective (Gloo fails an op that
	// waited this long for a peer).
	Timeout time.Duration
	// Hostname is the address Gloo listens on for its peers; empty means
	// as torch.distributed: GLOO_SOCKET_IFNAME, else this host's name.
	Hostname string
}

// ProcessGroup is a c10d communicator of Size ranks. Each collective
// returns a Work at once; the tensors it reads and writes must not be
// touched until its Wait returns (the Work keeps them alive, so freeing
// them early is safe).
type ProcessGroup struct {
	h          ref
	rank, size int
	backend    string
}

// NewProcessGroup joins the group through store: it waits, up to
// o.Timeout, for all o.Size ranks to join.
func NewProcessGroup(store *Store, o GroupOptions) (*ProcessGroup, error) {
	code, ok := backendCode(o.Backend)
	if !ok {
		return nil, &Error{Op: "NewProcessGroup", Msg: fmt.Sprintf("unknown backend %q (want %s or %s)", o.Backend, BackendGloo, BackendNCCL)}
	}
	if o.Size < 1 || o.Rank < 0 || o.Rank >= o.Size {
		return nil, &Error{Op: "NewProcessGroup", Msg: fmt.Sprintf("rank %d is not in a group of size %d", o.Rank, o.Size)}
	}
	if o.Timeout <= 0 {
		return nil, &Error{Op: "NewProcessGroup", Msg: fmt.Sprintf("timeout %v must be positive", o.Timeout)}
	}
	var pg unsafe.Pointer
	err := store.use("NewProcessGroup", func(p unsafe.Pointer) (err error) {
		pg, err = pgNew(p, code, o)
		return err
	})
	if err != nil {
		return nil, withArgs(err, o.Backend, rankArg(o.Rank, o.Size))
	}
	return &ProcessGroup{h: ref{p: pg}, rank: o.Rank, size: o.Size, backend: o.Backend}, nil
}

func rankArg(rank, size int) string { return fmt.Sprintf("rank %d of %d", rank, size) }

// Rank is this process's rank in the group.
func (g *ProcessGroup) Rank() int { return g.rank }

// Size is the number of ranks.
func (g *ProcessGroup) Size() int { return g.size }

// Backend is BackendGloo or BackendNCCL.
func (g *ProcessGroup) Backend() string { return g.backend }

// SetSequenceNumber agrees on the group's sequence number through the
// store, as torch.distributed does after making a group: a Python rank
// waits for rank 0's.
func (g *ProcessGroup) SetSequenceNumber() error {
	return g.use("SetSequenceNumber", nil, func(p unsafe.Pointer) error { return pgSetSequence(p) })
}

// Close releases the group; a collective still in flight holds it until
// it ends. Idempotent.
func (g *ProcessGroup) Close() {
	if g != nil && g.h.release() {
		g.h.drop(freeProcessGroup)
	}
}

// AllReduce reduces t over the ranks, in place, on every rank.
func (g *ProcessGroup) AllReduce(t *Tensor, op ReduceOp) (*Work, error) {
	return g.start("AllReduce", []*Tensor{t}, func(p unsafe.Pointer, h []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgAllReduce(p, h[0], op)
	})
}

// Broadcast copies root's t into t on every other rank.
func (g *ProcessGroup) Broadcast(t *Tensor, root int) (*Work, error) {
	if err := g.checkPeer("Broadcast", root); err != nil {
		return nil, err
	}
	return g.start("Broadcast", []*Tensor{t}, func(p unsafe.Pointer, h []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgBroadcast(p, h[0], root)
	})
}

// AllGather fills outs[r] with rank r's in, on every rank; outs holds one
// tensor per rank, each shaped like in.
func (g *ProcessGroup) AllGather(outs []*Tensor, in *Tensor) (*Work, error) {
	if len(outs) != g.size {
		return nil, g.fail("AllGather", fmt.Errorf("%d outputs for %d ranks", len(outs), g.size))
	}
	return g.start("AllGather", append([]*Tensor{in}, outs...), func(p unsafe.Pointer, h []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgAllGather(p, h[1:], h[0])
	})
}

// ReduceScatter reduces ins[r] over the ranks into rank r's out; ins holds
// one tensor per rank, each shaped like out. On Gloo (torch 1.13's says
// "does not support reduce_scatter") it is an all-reduce of the stacked
// inputs, size times the traffic, on every torch version alike.
func (g *ProcessGroup) ReduceScatter(out *Tensor, ins []*Tensor, op ReduceOp) (*Work, error) {
	if len(ins) != g.size {
		return nil, g.fail("ReduceScatter", fmt.Errorf("%d inputs for %d ranks", len(ins), g.size))
	}
	if g.backend == BackendGloo {
		return g.reduceScatterByAllReduce(out, ins, op)
	}
	return g.start("ReduceScatter", append([]*Tensor{out}, ins...), func(p unsafe.Pointer, h []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgReduceScatter(p, h[0], h[1:], op)
	})
}

func (g *ProcessGroup) reduceScatterByAllReduce(out *Tensor, ins []*Tensor, op ReduceOp) (*Work, error) {
	all, err := Stack(ins, 0) // [rank ...]
	if err != nil {
		return nil, g.fail("ReduceScatter", err)
	}
	w, err := g.AllReduce(all, op)
	if err != nil {
		all.Free()
		return nil, err
	}
	w.op = "ReduceScatter"
	w.then = func() error {
		defer all.Free()
		mine, err := all.Select(0, int64(g.rank))
		if err != nil {
			return err
		}
		defer mine.Free()
		return out.Copy_(mine)
	}
	w.cleanup = all.Free
	return w, nil
}

// Barrier waits for every rank to reach it.
func (g *ProcessGroup) Barrier() (*Work, error) {
	return g.start("Barrier", nil, func(p unsafe.Pointer, _ []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgBarrier(p)
	})
}

// Send sends t to rank dst; the receiver's Recv names the same tag.
func (g *ProcessGroup) Send(t *Tensor, dst, tag int) (*Work, error) {
	if err := g.checkPeer("Send", dst); err != nil {
		return nil, err
	}
	return g.start("Send", []*Tensor{t}, func(p unsafe.Pointer, h []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgSend(p, h[0], dst, tag)
	})
}

// Recv receives into t what rank src sends with the same tag.
func (g *ProcessGroup) Recv(t *Tensor, src, tag int) (*Work, error) {
	if err := g.checkPeer("Recv", src); err != nil {
		return nil, err
	}
	return g.start("Recv", []*Tensor{t}, func(p unsafe.Pointer, h []unsafe.Pointer) (unsafe.Pointer, error) {
		return pgRecv(p, h[0], src, tag)
	})
}

func (g *ProcessGroup) checkPeer(op string, r int) error {
	if r < 0 || r >= g.size {
		return g.fail(op, fmt.Errorf("rank %d is not in a group of size %d", r, g.size))
	}
	return nil
}

func (g *ProcessGroup) fail(op string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return &Error{Op: op, Args: []string{rankArg(g.rank, g.size)}, Msg: err.Error(), Err: err}
	}
	return withArgs(err, rankArg(g.rank, g.size))
}

// start pins the group and ts, starts a collective on their handles and
// wraps its work.
func (g *ProcessGroup) start(op string, ts []*Tensor, fn func(unsafe.Pointer, []unsafe.Pointer) (unsafe.Pointer, error)) (*Work, error) {
	var w unsafe.Pointer
	err := g.use(op, ts, func(p unsafe.Pointer) error {
		h := make([]unsafe.Pointer, len(ts))
		for i, t := range ts {
			h[i] = t.h.p
		}
		var err error
		w, err = fn(p, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Work{h: ref{p: w}, op: op, rank: g.rank, size: g.size}, nil
}

func (g *ProcessGroup) use(op string, ts []*Tensor, fn func(unsafe.Pointer) error) error {
	if g == nil || !g.h.pin(freeProcessGroup) {
		return &Error{Op: op, Msg: "the process group is nil or closed"}
	}
	defer g.h.unpin(freeProcessGroup)
	for i, t := range ts {
		if err := pinTensor(op, fmt.Sprintf("tensor %d", i), t); err != nil {
			unpinAll(ts[:i])
			return g.fail(op, err)
		}
	}
	defer unpinAll(ts)
	if err := fn(g.h.p); err != nil {
		return g.fail(op, withArgs(err, describe(ts)...))
	}
	return nil
}

func unpinAll(ts []*Tensor) {
	for _, t := range ts {
		t.unpin()
	}
}

// Work is one collective in flight.
type Work struct {
	h          ref
	op         string
	rank, size int
	then       func() error // runs once the work succeeded
	cleanup    func()       // runs on Free when then never ran

	start sync.Once
	done  chan struct{} // closed when the op finished; err is then its result
	err   error
}

// Wait returns when the work finished (its error, naming the op and this
// rank, if it failed) or ctx is done (ctx's error: the op goes on until
// it ends or the group's timeout fails it; the group should then be
// closed, as its ranks no longer agree on what comes next). Wait may be
// called again, also after a cancelled wait.
func (w *Work) Wait(ctx context.Context) error {
	if w == nil {
		return &Error{Op: "Work.Wait", Msg: "the work is nil"}
	}
	w.start.Do(w.run)
	select {
	case <-w.done:
		return w.result()
	case <-ctx.Done():
		return fmt.Errorf("gotch: %s on %s: %w", w.op, rankArg(w.rank, w.size), context.Cause(ctx))
	}
}

// run waits for the op on a goroutine of its own, so that Wait can return
// for its context while the shim blocks.
func (w *Work) run() {
	w.done = make(chan struct{})
	if !w.h.pin(freeWork) {
		w.err = &Error{Op: "Work.Wait", Msg: "the work was freed"}
		close(w.done)
		return
	}
	go func() {
		defer close(w.done)
		defer w.h.unpin(freeWork)
		if err := workWait(w.h.p); err != nil {
			w.err = withArgs(err, w.op, rankArg(w.rank, w.size))
		}
	}()
}

// result is the finished op's error, or else the error of its follow-up
// step, which runs on the first call only.
func (w *Work) result() error {
	if w.err != nil {
		return w.err
	}
	then := w.then
	w.then, w.cleanup = nil, nil
	if then == nil {
		return nil
	}
	if err := then(); err != nil {
		w.err = &Error{Op: w.op, Args: []string{rankArg(w.rank, w.size)}, Msg: err.Error(), Err: err}
	}
	return w.err
}

// Free releases the work handle; idempotent. An op still running goes on
// (c10d keeps what it needs). Free must not run concurrently with Wait.
func (w *Work) Free() {
	if w == nil || !w.h.release() {
		return
	}
	if w.cleanup != nil {
		w.cleanup()
		w.then, w.cleanup = nil, nil
	}
	w.h.drop(freeWork)
}
