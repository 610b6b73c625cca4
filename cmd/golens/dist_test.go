//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel/weights"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestDistSelftestTorchrun runs golens dist selftest under Debian's real
// torchrun (python3-torch 1.13: underscore options; on Python 3.11 it
// needs --redirects and --tee), which serves the store from its agent and
// sets TORCHELASTIC_USE_AGENT_STORE: each of 3 ranks adds 1, 2 and 3.
func TestDistSelftestTorchrun(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	needTorchrun(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-m", "torch.distributed.run",
		"--nproc_per_node", "3", "--no_python", "--redirects", "2", "--tee", "2",
		"--master_addr", "127.0.0.1", "--master_port", freePort(t),
		os.Args[0], "dist", "selftest", "--timeout", "30s")
	cmd.Env = append(os.Environ(), asCLI+"=1", "OMP_NUM_THREADS=1", "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("torchrun still running after 90s (a hang):\n%s", out)
	}
	if err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	for r := range 3 {
		// 1+2+3 = 6 in each of the 4 places, on every rank
		if want := "rank " + strconv.Itoa(r) + " of 3: all-reduce sum [6 6 6 6]"; !strings.Contains(string(out), want) {
			t.Errorf("torchrun's output lacks %q:\n%s", want, out)
		}
	}
}

// TestDistSelftestErrors: a bad environment, and a rank whose peer never
// comes, fail with one line naming the variable or the missing rank.
func TestDistSelftestErrors(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	port := freePort(t)
	// empty is unset to ParseEnv, whatever the test's own environment holds
	base := []string{"RANK=", "WORLD_SIZE=", "SLURM_PROCID=", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"WORLD_SIZE=2"}, "RANK is not set"},
		{[]string{"RANK=0", "WORLD_SIZE=two"}, `WORLD_SIZE="two" is not a whole number`},
		{[]string{"RANK=0", "WORLD_SIZE=2"}, "rank 0 of 2: rank 1 never joined within 2s"},
		{[]string{"RANK=1", "WORLD_SIZE=2"}, "rank 1 of 2: rank 0 never joined: its store at 127.0.0.1:" + port + " is unreachable"},
	} {
		args := []string{"dist", "selftest", "--timeout", "2s"}
		_, stderr, err := runCLIEnv(t, 30*time.Second, append(base, c.env...), args...)
		checkFailure(t, args, withoutTorchLog(stderr), err, c.want)
	}
}

// torchLogLine is a line libtorch's own logging writes to stderr ("[W1206
// 10:25:28.742 socket.cpp:464] ..."): on torch 2.x c10d warns there of the
// timeout golens then reports as its error.
var torchLogLine = regexp.MustCompile(`^\[[WIE]\d{4} `)

// withoutTorchLog drops libtorch's log lines from stderr.
func withoutTorchLog(stderr string) string {
	var kept []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !torchLogLine.MatchString(l) {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "")
}

// TestHarvestTorchrun: golens harvest under torchrun with 2 ranks writes
// the same shard files as one process, and Python reads them with numpy
// alone (testdata/read_shard.py parses safetensors by its spec) to the same
// sums as Go.
func TestHarvestTorchrun(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	needTorchrun(t)
	dir := t.TempDir()
	model := tinyGPT2(t)
	var ids []byte
	for i := range 7*8 + 1 {
		ids = append(ids, byte(i*13%251), byte(i%3)) // little-endian uint16 ids below 1000
	}
	data := filepath.Join(dir, "tokens.bin")
	if err := os.WriteFile(data, ids, 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(out string) []string {
		return []string{"harvest", "--model", model, "--device", "cpu", "--data", data, "--format", "uint16", "--seq-len", "8",
			"--hooks", `^blocks\.1\.hook_resid_post$`, "--out", filepath.Join(dir, out), "--batch", "2", "--shard-examples", "3"}
	}
	stdout, stderr, err := runCLIEnv(t, 60*time.Second, []string{"RANK=", "SLURM_PROCID=", "WORLD_SIZE="}, args("one")...)
	if err != nil || !strings.Contains(stdout, "harvested 56 rows from 7 examples in 3 shards") {
		t.Fatalf("one process: %v\n%s%s", err, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-m", "torch.distributed.run",
		"--nproc_per_node", "2", "--no_python", "--redirects", "2", "--tee", "2",
		"--master_addr", "127.0.0.1", "--master_port", freePort(t), os.Args[0]}, args("two")...)...)
	cmd.Env = append(os.Environ(), asCLI+"=1", "OMP_NUM_THREADS=1", "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, out)
	}
	one, two := shardTensorsIn(t, filepath.Join(dir, "one")), shardTensorsIn(t, filepath.Join(dir, "two"))
	if len(one) != 3*4 || len(two) != len(one) { // 3 shards: the hook, example, position, token
		t.Fatalf("%d and %d tensors, want 12 each", len(one), len(two))
	}
	for name, b := range one {
		if !bytes.Equal(two[name], b) {
			t.Errorf("%s: 1 process and 2 ranks differ", name)
		}
	}
	py, err := exec.Command("/usr/bin/python3", "testdata/read_shard.py", filepath.Join(dir, "two", "shard-000000.safetensors")).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy reader: %v\n%s", err, py)
	}
	ck, err := weights.Open(filepath.Join(dir, "one", "shard-000000.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	w, err := ck.Get("blocks.1.hook_resid_post")
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i := 0; i < len(w.Data); i += 4 {
		sum += float64(math.Float32frombits(binary.LittleEndian.Uint32(w.Data[i:])))
	}
	want := fmt.Sprintf("blocks.1.hook_resid_post (24, 8) %.4f", sum)
	examples := "example (24,) [" + strings.Repeat("0, ", 8) + strings.Repeat("1, ", 8) + strings.Repeat("2, ", 7) + "2]"
	if !strings.Contains(string(py), want) || !strings.Contains(string(py), examples) {
		t.Errorf("numpy read %q, want %q and %q", py, want, examples)
	}
}

// TestHarvestRestartResumes kills a rank under torchrun --max_restarts 1
// once a shard is committed: torchrun restarts the group, which resumes
// from the committed shards, and the result is what one uninterrupted
// process writes, every example once.
func TestHarvestRestartResumes(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	needTorchrun(t)
	dir := t.TempDir()
	model := tinyGPT2(t)
	const examples = 600
	var ids []byte
	for i := range examples * 4 {
		ids = binary.LittleEndian.AppendUint16(ids, uint16(i*7%1000))
	}
	data := filepath.Join(dir, "tokens.bin")
	if err := os.WriteFile(data, ids, 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(out string) []string {
		return []string{"harvest", "--model", model, "--device", "cpu", "--data", data, "--format", "uint16", "--seq-len", "4",
			"--hooks", `^hook_embed$`, "--out", filepath.Join(dir, out), "--batch", "1", "--shard-examples", "1", "--timeout", "20s"}
	}
	if _, stderr, err := runCLIEnv(t, 120*time.Second, []string{"RANK=", "SLURM_PROCID=", "WORLD_SIZE="}, args("one")...); err != nil {
		t.Fatalf("one process: %v\n%s", err, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"-m", "torch.distributed.run",
		"--nproc_per_node", "2", "--max_restarts", "1", "--no_python", "--redirects", "2", "--tee", "2",
		"--master_addr", "127.0.0.1", "--master_port", freePort(t), os.Args[0]}, args("two")...)...)
	cmd.Env = append(os.Environ(), asCLI+"=1", "OMP_NUM_THREADS=1", "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "two", "shard-000001.safetensors") // rank 1's first commit
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(first); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no shard committed after 60s:\n%s", out.String())
		}
	}
	victim := workerOf(t, cmd.Process.Pid, 1)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("torchrun after a restart: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "restart") && !strings.Contains(out.String(), "Restart") {
		t.Logf("torchrun's output does not mention a restart:\n%s", out.String())
	}
	one, two := shardTensorsIn(t, filepath.Join(dir, "one")), shardTensorsIn(t, filepath.Join(dir, "two"))
	if len(one) != 4*examples || len(two) != len(one) {
		t.Fatalf("%d and %d shard tensors, want %d each", len(one), len(two), 4*examples)
	}
	for name, b := range one {
		if !bytes.Equal(two[name], b) {
			t.Fatalf("%s differs between the restarted run and one process", name)
		}
	}
}

// workerOf is the pid of torchrun's worker with the given RANK.
func workerOf(t *testing.T, torchrun, rank int) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(torchrun) {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "environ"))
		if bytes.Contains(env, []byte("\x00RANK="+strconv.Itoa(rank)+"\x00")) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no worker of rank %d under torchrun %d", rank, torchrun)
	return 0
}

// shardTensorsIn is every tensor of dir's shard files, by "file/tensor"
// (a shard's metadata says which rank wrote it, so files differ there).
func shardTensorsIn(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "shard-*.safetensors"))
	tensors := map[string][]byte{}
	for _, p := range names {
		ck, err := weights.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ck.Keys() {
			w, err := ck.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			tensors[filepath.Base(p)+"/"+k] = w.Data
		}
		ck.Close()
	}
	return tensors
}

// TestDistSelftestWithPythonPeer: golens dist selftest as rank 0 and a
// Python torch.distributed process doing the same as rank 1 form one
// group: both see 1+2 = 3.
func TestDistSelftestWithPythonPeer(t *testing.T) {
	gotchtest.NeedDistBackend(t, gotch.BackendGloo)
	if err := exec.Command("/usr/bin/python3", "-c", "import torch.distributed").Run(); err != nil {
		t.Skipf("no python3-torch: %v", err)
	}
	env := []string{"WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + freePort(t), "GLOO_SOCKET_IFNAME=lo", "USE_LIBUV=0"}
	py := exec.Command("/usr/bin/python3", "testdata/selftest_peer.py")
	py.Env = append(append(os.Environ(), env...), "RANK=1")
	var pyOut bytes.Buffer
	py.Stdout, py.Stderr = &pyOut, &pyOut
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer py.Process.Kill()
	stdout, stderr, err := runCLIEnv(t, 60*time.Second, append(env, "RANK=0"), "dist", "selftest", "--timeout", "30s")
	if err != nil || !strings.Contains(stdout, "rank 0 of 2: all-reduce sum [3 3 3 3]") {
		t.Errorf("golens rank 0: %v\n%s%s", err, stdout, stderr)
	}
	if err := waitLimitCmd(py, 30*time.Second); err != nil || !strings.Contains(pyOut.String(), "python rank 1 of 2: all-reduce sum [3.0, 3.0, 3.0, 3.0]") {
		t.Errorf("python rank 1: %v\n%s", err, pyOut.String())
	}
}

func waitLimitCmd(c *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		c.Process.Kill()
		<-done
		return fmt.Errorf("still running after %v (a hang)", limit)
	}
}
