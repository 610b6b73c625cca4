//go:build cgo

package gotch_test

// The c10d binding: ranks as goroutines of this process (each its own Gloo
// group, as separate processes would have), collectives checked against
// sums worked out by hand; multi-process groups, the launcher's
// environment and Python peers are tested in backend/dist.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// inGroups runs fn as each of size ranks of one Gloo group, on loopback.
func inGroups(t *testing.T, size int, fn func(g *gotch.ProcessGroup) error) []error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store")
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := range size {
		wg.Go(func() {
			st, err := gotch.NewFileStore(path, size, 10*time.Second)
			if err != nil {
				errs[r] = err
				return
			}
			defer st.Close()
			g, err := gotch.NewProcessGroup(st, gotch.GroupOptions{Backend: gotch.BackendGloo, Rank: r, Size: size, Timeout: 10 * time.Second, Hostname: "127.0.0.1"})
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = fn(g)
		})
	}
	wg.Wait()
	return errs
}

func waitFree(w *gotch.Work, err error) error {
	if err != nil {
		return err
	}
	defer w.Free()
	return w.Wait(context.Background())
}

func TestDistCollectivesInProcess(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	const size = 3
	got := make([][]float32, size)
	errs := inGroups(t, size, func(g *gotch.ProcessGroup) error {
		r := float32(g.Rank())
		x := gotch.MustFromSlice([]float32{r + 1, 10 * (r + 1)}, []int64{2}, gotch.CPU)
		defer x.Free()
		if err := waitFree(g.AllReduce(x, gotch.ReduceSum)); err != nil {
			return err
		}
		v, err := gotch.ToSlice[float32](x)
		got[g.Rank()] = v
		return err
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		// 1+2+3 and 10+20+30
		if want := []float32{6, 60}; fmt.Sprint(got[r]) != fmt.Sprint(want) {
			t.Errorf("rank %d: all-reduced %v, want %v", r, got[r], want)
		}
	}
}

// TestDistEachCollective checks every collective on 3 in-process ranks;
// rank r holds r+1 (and multiples), so each expectation is a small sum
// worked out by hand in the case.
func TestDistEachCollective(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	const size = 3
	vec := func(xs ...float32) *gotch.Tensor { return gotch.MustFromSlice(xs, []int64{int64(len(xs))}, gotch.CPU) }
	read := func(x *gotch.Tensor) string { v, _ := gotch.ToSlice[float32](x); return fmt.Sprint(v) }
	cases := []struct {
		name string
		run  func(g *gotch.ProcessGroup) (string, error)
		want func(rank int) string
	}{
		{"min", func(g *gotch.ProcessGroup) (string, error) {
			x := vec(float32(g.Rank()+1), float32(-g.Rank()))
			defer x.Free()
			err := waitFree(g.AllReduce(x, gotch.ReduceMin))
			return read(x), err
		}, func(int) string { return "[1 -2]" }},
		{"max", func(g *gotch.ProcessGroup) (string, error) {
			x := vec(float32(g.Rank()+1), float32(-g.Rank()))
			defer x.Free()
			err := waitFree(g.AllReduce(x, gotch.ReduceMax))
			return read(x), err
		}, func(int) string { return "[3 0]" }},
		{"product", func(g *gotch.ProcessGroup) (string, error) {
			x := vec(float32(g.Rank() + 1))
			defer x.Free()
			err := waitFree(g.AllReduce(x, gotch.ReduceProduct))
			return read(x), err
		}, func(int) string { return "[6]" }},
		{"broadcast from 2", func(g *gotch.ProcessGroup) (string, error) {
			x := vec(float32(g.Rank()+1), 7)
			defer x.Free()
			err := waitFree(g.Broadcast(x, 2))
			return read(x), err
		}, func(int) string { return "[3 7]" }},
		{"all-gather", func(g *gotch.ProcessGroup) (string, error) {
			x := vec(float32(g.Rank()+1), float32(10*(g.Rank()+1)))
			defer x.Free()
			outs := []*gotch.Tensor{vec(0, 0), vec(0, 0), vec(0, 0)}
			defer func() {
				for _, o := range outs {
					o.Free()
				}
			}()
			err := waitFree(g.AllGather(outs, x))
			return read(outs[0]) + read(outs[1]) + read(outs[2]), err
		}, func(int) string { return "[1 10][2 20][3 30]" }},
		{"reduce-scatter", func(g *gotch.ProcessGroup) (string, error) {
			// rank r sends (r+1)*[1 2], (r+1)*[3 4], (r+1)*[5 6]; rank q
			// receives the sum over r of chunk q: 6 times chunk q.
			k := float32(g.Rank() + 1)
			ins := []*gotch.Tensor{vec(k, 2*k), vec(3*k, 4*k), vec(5*k, 6*k)}
			defer func() {
				for _, x := range ins {
					x.Free()
				}
			}()
			out := vec(0, 0)
			defer out.Free()
			err := waitFree(g.ReduceScatter(out, ins, gotch.ReduceSum))
			return read(out), err
		}, func(r int) string { return fmt.Sprint([]float32{6 * float32(2*r+1), 6 * float32(2*r+2)}) }},
		{"barrier", func(g *gotch.ProcessGroup) (string, error) {
			return "", waitFree(g.Barrier())
		}, func(int) string { return "" }},
		{"send/recv ring", func(g *gotch.ProcessGroup) (string, error) {
			// each rank sends its rank+1 to the next and receives from the previous
			x := vec(float32(g.Rank() + 1))
			defer x.Free()
			y := vec(0)
			defer y.Free()
			sw, err := g.Send(x, (g.Rank()+1)%size, 5)
			if err != nil {
				return "", err
			}
			defer sw.Free()
			if err := waitFree(g.Recv(y, (g.Rank()+size-1)%size, 5)); err != nil {
				return "", err
			}
			return read(y), sw.Wait(context.Background())
		}, func(r int) string { return fmt.Sprint([]float32{float32((r+size-1)%size + 1)}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := make([]string, size)
			errs := inGroups(t, size, func(g *gotch.ProcessGroup) (err error) {
				got[g.Rank()], err = c.run(g)
				return err
			})
			for r := range size {
				if errs[r] != nil {
					t.Fatalf("rank %d: %v", r, errs[r])
				}
				if want := c.want(r); got[r] != want {
					t.Errorf("rank %d: got %s, want %s", r, got[r], want)
				}
			}
		})
	}
}

// TestDistErrors: bad arguments and a peer that never comes are errors
// naming the op, the rank and what was wrong; a cancelled context ends a
// wait at once.
func TestDistErrors(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	gotchtest.CheckLeaks(t)
	path := filepath.Join(t.TempDir(), "store")
	if _, err := gotch.NewTCPStore("", 1, false, time.Second); err == nil {
		t.Error("a store with no host: no error")
	}
	if _, err := gotch.NewProcessGroup(nil, gotch.GroupOptions{Backend: gotch.BackendGloo, Size: 1, Timeout: time.Second}); err == nil {
		t.Error("a group on a nil store: no error")
	}
	st, err := gotch.NewFileStore(path, 2, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		o    gotch.GroupOptions
		want string
	}{
		{gotch.GroupOptions{Backend: "mpi", Size: 1, Timeout: time.Second}, `unknown backend "mpi"`},
		{gotch.GroupOptions{Backend: gotch.BackendGloo, Rank: 2, Size: 2, Timeout: time.Second}, "rank 2 is not in a group of size 2"},
		{gotch.GroupOptions{Backend: gotch.BackendGloo, Size: 1}, "timeout 0s must be positive"},
	} {
		_, err := gotch.NewProcessGroup(st, c.o)
		checkMsg(t, err, c.want)
	}
	if !gotch.HasDistBackend(gotch.BackendNCCL) {
		_, err := gotch.NewProcessGroup(st, gotch.GroupOptions{Backend: gotch.BackendNCCL, Size: 1, Timeout: time.Second})
		checkMsg(t, err, "NewProcessGroup", "not compiled", "NCCL")
		if !errors.Is(err, gotch.ErrNotCompiled) {
			t.Errorf("NCCL without NCCL: %v does not wrap ErrNotCompiled", err)
		}
	}
	// rank 1 of 2 alone: the join times out, naming the rank
	start := time.Now()
	_, err = gotch.NewProcessGroup(st, gotch.GroupOptions{Backend: gotch.BackendGloo, Rank: 1, Size: 2, Timeout: 500 * time.Millisecond, Hostname: "127.0.0.1"})
	checkMsg(t, err, "NewProcessGroup", "rank 1 of 2")
	t.Logf("a missing peer reported after %v: %v", time.Since(start), err)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a missing peer took %v to report, timeout 500ms", d)
	}

	cancelled := make(chan struct{})
	errs := inGroups(t, 2, func(g *gotch.ProcessGroup) error {
		x := gotch.MustFromSlice([]float32{1}, []int64{1}, gotch.CPU)
		defer x.Free()
		if _, err := g.Broadcast(x, 5); err == nil {
			return fmt.Errorf("broadcast from rank 5 of 2: no error")
		}
		if _, err := g.AllGather([]*gotch.Tensor{x}, x); err == nil {
			return fmt.Errorf("all-gather into 1 output for 2 ranks: no error")
		}
		freed := gotch.MustFromSlice([]float32{1}, []int64{1}, gotch.CPU)
		freed.Free()
		_, err := g.AllReduce(freed, gotch.ReduceSum)
		if !errors.Is(err, gotch.ErrFreed) {
			return fmt.Errorf("all-reduce of a freed tensor: %v, want ErrFreed", err)
		}
		if g.Rank() == 0 {
			// rank 0 sends only once rank 1 gave up waiting
			<-cancelled
			return waitFree(g.Send(x, 1, 9))
		}
		y := gotch.MustFromSlice([]float32{0}, []int64{1}, gotch.CPU)
		defer y.Free()
		w, err := g.Recv(y, 0, 9)
		if err != nil {
			return err
		}
		defer w.Free()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err = w.Wait(ctx)
		close(cancelled)
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("a cancelled wait: %v, want the context's error", err)
		}
		checkMsg(t, err, "Recv", "rank 1 of 2")
		// waiting again, without a deadline, gets what rank 0 sent
		if err := w.Wait(context.Background()); err != nil {
			return err
		}
		if v, _ := gotch.ToSlice[float32](y); v[0] != 1 {
			return fmt.Errorf("received %v after a cancelled wait, want [1]", v)
		}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}
