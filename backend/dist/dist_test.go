//go:build cgo

package dist_test

// Multi-process groups on loopback: each rank is this test binary run
// again (TestMain hands it to the child function named by distChild), with
// the launcher's variables set as torchrun sets them. Expectations come
// from reference, a plain float64 computation over every rank's input in
// one process.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/backend/dist"
	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

const distChild = "GOLENS_DIST_TEST_CHILD"

// children are the rank programs; each prints its results as JSON on
// stdout and fails with an error.
var children = map[string]func(ctx context.Context) (any, error){
	"collectives": collectivesChild,
	"mixed":       mixedChild,
	"join":        joinChild,
	"allreduce":   allReduceForeverChild,
}

func TestMain(m *testing.M) {
	if name := os.Getenv(distChild); name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res, err := children[name](ctx)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "child error:", err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rankProc is one started rank.
type rankProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// start runs argv (nil: this binary as child name) as rank of size, with
// extra environment.
func start(t *testing.T, argv []string, name string, rank, size, port int, extra ...string) *rankProc {
	t.Helper()
	if argv == nil {
		argv = []string{os.Args[0]}
	}
	p := &rankProc{cmd: exec.Command(argv[0], argv[1:]...)}
	p.cmd.Env = append(os.Environ(), distChild+"="+name,
		"RANK="+strconv.Itoa(rank), "WORLD_SIZE="+strconv.Itoa(size),
		"LOCAL_RANK="+strconv.Itoa(rank), "LOCAL_WORLD_SIZE="+strconv.Itoa(size),
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0")
	p.cmd.Env = append(p.cmd.Env, extra...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// wait waits for p up to limit (a rank still running then is a hang) and
// returns its exit error.
func (p *rankProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-done
		t.Fatalf("rank hung for %v; stderr:\n%s", limit, p.stderr.String())
		return nil
	}
}

// result decodes p's JSON output into v after a clean exit.
func (p *rankProc) result(t *testing.T, v any) {
	t.Helper()
	if err := p.wait(t, 60*time.Second); err != nil {
		t.Fatalf("rank failed: %v\nstderr:\n%s", err, p.stderr.String())
	}
	if err := json.Unmarshal(p.stdout.Bytes(), v); err != nil {
		t.Fatalf("rank's output %q: %v", p.stdout.String(), err)
	}
}

// input is rank r's vector in every collective test.
func input(r int) []float64 {
	return []float64{float64(r + 1), float64(10 * (r + 1)), -float64(r), 0.5 * float64(r)}
}

func tensor(xs []float64) *gotch.Tensor {
	f := make([]float32, len(xs))
	for i, x := range xs {
		f[i] = float32(x)
	}
	return gotch.MustFromSlice(f, []int64{int64(len(f))}, gotch.CPU)
}

func values(t *gotch.Tensor) []float64 {
	f, _ := gotch.ToSlice[float32](t)
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out
}

// collectivesChild runs every collective once on input(rank).
func collectivesChild(ctx context.Context) (any, error) {
	g, err := dist.Join(ctx, dist.WithTimeout(20*time.Second))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	r, n := g.Rank(), g.Size()
	res := map[string][]float64{}
	for _, op := range []dist.Op{dist.Sum, dist.Avg, dist.Max, dist.Min, dist.Product} {
		x := tensor(input(r))
		if err := g.AllReduce(ctx, x, op); err != nil {
			return nil, err
		}
		res[op.String()] = values(x)
		x.Free()
	}
	x := tensor(input(r))
	defer x.Free()
	outs := make([]*gotch.Tensor, n)
	for i := range outs {
		outs[i] = tensor(make([]float64, 4))
		defer outs[i].Free()
	}
	if err := g.AllGather(ctx, outs, x); err != nil {
		return nil, err
	}
	for _, o := range outs {
		res["allgather"] = append(res["allgather"], values(o)...)
	}
	b := tensor(input(r))
	defer b.Free()
	if err := g.Broadcast(ctx, b, n-1); err != nil {
		return nil, err
	}
	res["broadcast"] = values(b)
	ins := make([]*gotch.Tensor, n)
	for q := range ins {
		in := input(r)
		for i := range in {
			in[i] += 100 * float64(q)
		}
		ins[q] = tensor(in)
		defer ins[q].Free()
	}
	out := tensor(make([]float64, 4))
	defer out.Free()
	if err := g.ReduceScatter(ctx, out, ins, dist.Sum); err != nil {
		return nil, err
	}
	res["reducescatter"] = values(out)
	if err := g.Barrier(ctx); err != nil {
		return nil, err
	}
	// a ring: even ranks send first, odd ranks receive first
	got := tensor(make([]float64, 4))
	defer got.Free()
	send := func() error { return g.Send(ctx, x, (r+1)%n, 7) }
	recv := func() error { return g.Recv(ctx, got, (r+n-1)%n, 7) }
	steps := []func() error{send, recv}
	if r%2 == 1 {
		steps = []func() error{recv, send}
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	res["ring"] = values(got)
	return res, g.Close()
}

// reference is what every collective gives rank r of n, computed from all
// ranks' inputs in float64.
func reference(r, n int) map[string][]float64 {
	fold := func(init float64, f func(acc, x float64) float64) []float64 {
		out := make([]float64, 4)
		for i := range out {
			out[i] = init
			for s := range n {
				out[i] = f(out[i], input(s)[i])
			}
		}
		return out
	}
	res := map[string][]float64{
		"sum":     fold(0, func(a, x float64) float64 { return a + x }),
		"max":     fold(math.Inf(-1), math.Max),
		"min":     fold(math.Inf(1), math.Min),
		"product": fold(1, func(a, x float64) float64 { return a * x }),
	}
	for _, s := range res["sum"] {
		res["avg"] = append(res["avg"], s/float64(n))
	}
	for s := range n {
		res["allgather"] = append(res["allgather"], input(s)...)
	}
	res["broadcast"] = input(n - 1)
	for _, s := range res["sum"] {
		res["reducescatter"] = append(res["reducescatter"], s+100*float64(n*r))
	}
	res["ring"] = input((r + n - 1) % n)
	return res
}

func TestCollectivesAcrossProcesses(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d ranks", n), func(t *testing.T) {
			port := freePort(t)
			procs := make([]*rankProc, n)
			for r := range n {
				procs[r] = start(t, nil, "collectives", r, n, port)
			}
			for r, p := range procs {
				var got map[string][]float64
				p.result(t, &got)
				want := reference(r, n)
				for name, w := range want {
					gotchtest.Close(t, fmt.Sprintf("rank %d %s", r, name), got[name], w, 1e-6)
				}
			}
		})
	}
}

// joinChild joins with GOLENS_DIST_TEST_CONFIG as its config and the
// timeout GOLENS_DIST_TEST_TIMEOUT, then all-reduces once.
func joinChild(ctx context.Context) (any, error) {
	timeout, _ := time.ParseDuration(os.Getenv("GOLENS_DIST_TEST_TIMEOUT"))
	g, err := dist.Join(ctx, dist.WithTimeout(timeout), dist.WithConfig(os.Getenv("GOLENS_DIST_TEST_CONFIG")))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	x := tensor([]float64{1})
	defer x.Free()
	if err := g.AllReduce(ctx, x, dist.Sum); err != nil {
		return nil, err
	}
	return values(x), g.Close()
}

// allReduceForeverChild joins, leaves a marker file, and all-reduces until
// that fails (a peer is killed).
func allReduceForeverChild(ctx context.Context) (any, error) {
	g, err := dist.Join(ctx, dist.WithTimeout(5*time.Second), dist.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	if err := os.WriteFile(os.Getenv("GOLENS_DIST_TEST_MARK")+os.Getenv("RANK"), nil, 0o644); err != nil {
		return nil, err
	}
	x := tensor([]float64{1})
	defer x.Free()
	for {
		if err := g.AllReduce(ctx, x, dist.Max); err != nil {
			return nil, err
		}
	}
}

// mixedChild is a golens rank of a group with Python ranks running
// testdata/peer.py: the same collectives in the same order.
func mixedChild(ctx context.Context) (any, error) {
	g, err := dist.Join(ctx, dist.WithTimeout(20*time.Second))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return mixedOps(ctx, g)
}

func mixedOps(ctx context.Context, g *dist.Group) (map[string][]float64, error) {
	r, n := float64(g.Rank()), g.Size()
	res := map[string][]float64{}
	x := tensor([]float64{r + 1, r + 1, r + 1, r + 1})
	defer x.Free()
	if err := g.AllReduce(ctx, x, dist.Sum); err != nil {
		return nil, err
	}
	res["allreduce"] = values(x)
	in := tensor([]float64{r + 1, 10 * (r + 1)})
	defer in.Free()
	outs := make([]*gotch.Tensor, n)
	for i := range outs {
		outs[i] = tensor([]float64{0, 0})
		defer outs[i].Free()
	}
	if err := g.AllGather(ctx, outs, in); err != nil {
		return nil, err
	}
	for _, o := range outs {
		res["allgather"] = append(res["allgather"], values(o)...)
	}
	b := tensor([]float64{r + 1, 7})
	defer b.Free()
	if err := g.Broadcast(ctx, b, 1); err != nil {
		return nil, err
	}
	res["broadcast"] = values(b)
	return res, g.Close()
}

// TestMixedGoPythonGroup makes one Gloo group of golens ranks 0 and 2 and
// a Python torch.distributed rank 1 (Debian's python3-torch): they
// exchange tensors, and every rank gets what the reference says.
func TestMixedGoPythonGroup(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	if err := exec.Command("/usr/bin/python3", "-c", "import torch.distributed as d; assert d.is_available()").Run(); err != nil {
		t.Skipf("no python3 with torch.distributed (Debian: python3-torch): %v", err)
	}
	const n = 3
	port := freePort(t)
	procs := []*rankProc{
		start(t, nil, "mixed", 0, n, port),
		start(t, []string{"/usr/bin/python3", "testdata/peer.py"}, "", 1, n, port),
		start(t, nil, "mixed", 2, n, port),
	}
	for r, p := range procs {
		var got map[string][]float64
		p.result(t, &got)
		sum := float64(n * (n + 1) / 2)
		want := map[string][]float64{
			"allreduce": {sum, sum, sum, sum},
			"allgather": {1, 10, 2, 20, 3, 30},
			"broadcast": {2, 7}, // rank 1's, the Python rank
		}
		for name, w := range want {
			gotchtest.Close(t, fmt.Sprintf("rank %d %s", r, name), got[name], w, 1e-6)
		}
	}
}

// TestConfigMismatchRefused: a rank that joins with another config is
// refused at the rendezvous, on every rank, naming the other rank.
func TestConfigMismatchRefused(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	port := freePort(t)
	a := start(t, nil, "join", 0, 2, port, "GOLENS_DIST_TEST_CONFIG=gpt2", "GOLENS_DIST_TEST_TIMEOUT=10s")
	b := start(t, nil, "join", 1, 2, port, "GOLENS_DIST_TEST_CONFIG=pythia-70m", "GOLENS_DIST_TEST_TIMEOUT=10s")
	for r, p := range []*rankProc{a, b} {
		if err := p.wait(t, 30*time.Second); err == nil {
			t.Errorf("rank %d with another rank's config: joined", r)
		}
		msg := p.stderr.String()
		if other := 1 - r; !strings.Contains(msg, fmt.Sprintf("refused: rank %d joined with config hash", other)) {
			t.Errorf("rank %d: error does not name rank %d's config: %s", r, other, msg)
		}
	}
}

// TestAloneWaitsThenFails: a rank of a world of 2 never runs alone: it
// waits for its peer up to the timeout, then names the missing rank.
func TestAloneWaitsThenFails(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	for _, c := range []struct {
		rank int
		want string
	}{
		{0, "rank 1 never joined within 1s"}, // serves the store, waits for rank 1
		{1, "rank 0 never joined: its store at 127.0.0.1:"},
	} {
		began := time.Now()
		g, err := dist.Join(context.Background(), dist.WithRank(c.rank, 2), dist.WithMaster("127.0.0.1", freePort(t)), dist.WithTimeout(time.Second))
		if err == nil {
			g.Close()
			t.Fatalf("rank %d of 2 alone: joined", c.rank)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("rank %d of 2", c.rank)) {
			t.Errorf("rank %d of 2 alone: %v, want it to say %q", c.rank, err, c.want)
		}
		if d := time.Since(began); d < time.Second || d > 10*time.Second {
			t.Errorf("rank %d of 2 alone failed after %v, timeout 1s", c.rank, d)
		}
	}
}

// TestKilledRankNamed: SIGKILL (or SIGSTOP) one rank during all-reduces;
// the others fail within the timeout (5s) naming it, and none hangs.
// Killing rank 0, which serves the store, is named through the store's
// loss.
func TestKilledRankNamed(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	for _, c := range []struct {
		victim int
		sig    syscall.Signal
		want   string
	}{
		{1, syscall.SIGKILL, "lost rank 1 (no heartbeat"},
		{0, syscall.SIGKILL, "its host, rank 0, is lost"},
		// a frozen rank keeps its sockets open: Gloo's timeout ends the wait
		{2, syscall.SIGSTOP, "lost rank 2 (no heartbeat"},
	} {
		t.Run(fmt.Sprintf("%v rank %d", c.sig, c.victim), func(t *testing.T) {
			const n = 3
			port := freePort(t)
			mark := t.TempDir() + "/joined"
			procs := make([]*rankProc, n)
			for r := range n {
				procs[r] = start(t, nil, "allreduce", r, n, port, "GOLENS_DIST_TEST_MARK="+mark)
			}
			for r := range n {
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(mark + strconv.Itoa(r)); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("rank %d never joined: %s", r, procs[r].stderr.String())
					}
				}
			}
			killed := time.Now()
			procs[c.victim].cmd.Process.Signal(c.sig)
			for r, p := range procs {
				if r == c.victim {
					continue // killed at the end of the test (start's cleanup)
				}
				if err := p.wait(t, 15*time.Second); err == nil {
					t.Errorf("rank %d went on after rank %d was killed", r, c.victim)
				}
				if d := time.Since(killed); d > 10*time.Second {
					t.Errorf("rank %d took %v to fail, timeout 5s", r, d)
				}
				if msg := p.stderr.String(); !strings.Contains(msg, c.want) {
					t.Errorf("rank %d: error does not say %q: %s", r, c.want, msg)
				}
			}
		})
	}
}
