package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test if f has not returned after a second: the inputs
// here used to hang (a FIFO with no writer).
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("still blocked after a second")
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "config.json")
	os.WriteFile(regular, []byte(`{"n_layers": 2}`), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	os.Symlink(regular, link)
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, make([]byte, 101), 0o644)

	for _, tc := range []struct {
		path, want string
	}{
		{regular, ""},
		{link, ""},
		{big, "larger than 100 bytes"},
		{"/dev/zero", "it is a character device, not a regular file"},
		{fifo, "it is a named pipe (FIFO), not a regular file"},
		{dir, "it is a directory, not a regular file"},
		{filepath.Join(dir, "missing.json"), "no such file or directory"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			var b []byte
			var err error
			within(t, func() { b, err = Read(tc.path, 100) })
			if tc.want == "" {
				if err != nil || string(b) != `{"n_layers": 2}` {
					t.Errorf("Read: %q, %v", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Read(%s): %v, want an error naming the path and %q", tc.path, err, tc.want)
			}
		})
	}
}

// entries lists dir, to show that a failed write leaves no temporary file.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o644)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	toNull := filepath.Join(dir, "to-null")
	os.Symlink("/dev/null", toNull)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "nowhere"), dangling)
	before := entries(t, dir)
	for _, tc := range []struct{ path, want string }{
		{"/dev/null", "it is a character device"},
		{"/dev/full", "it is a character device"},
		{fifo, "it is a named pipe (FIFO)"},
		{sub, "it is a directory"},
		{toNull, "(→ /dev/null): it is a character device"},
		{dangling, "a symbolic link to a missing file"},
	} {
		called := false
		var err error
		within(t, func() {
			err = Write(tc.path, 0o644, func(w io.Writer) error { called = true; _, err := io.WriteString(w, "x"); return err })
		})
		var nr *NotRegularError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Write(%s): %v, want an error naming it and %q", tc.path, err, tc.want)
		} else if tc.path != dangling && !errors.As(err, &nr) {
			t.Errorf("Write(%s): %T, want a *NotRegularError", tc.path, err)
		}
		if called {
			t.Errorf("Write(%s) wrote before refusing", tc.path)
		}
	}
	if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a device: %v %v", fi.Mode(), err)
	}
	if after := entries(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the directory changed: %q, was %q", after, before)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.safetensors")
	write := func(content string) error {
		return Write(path, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, content); return err })
	}
	if err := write("one"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("a new file has mode %v, want 0600", fi.Mode().Perm())
	}
	os.Chmod(path, 0o640)
	if err := write("two"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("content %q, want two", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("a replaced file has mode %v, want its old 0640", fi.Mode().Perm())
	}

	// A failing fill leaves the old content and no temporary file.
	err := Write(path, 0o644, func(w io.Writer) error { io.WriteString(w, "par"); return fmt.Errorf("disk on fire") })
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("a failing fill: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("after a failed write the content is %q, want two", b)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("after a failed write the directory holds %q", got)
	}

	// Through a symbolic link: the target is replaced, the link stays.
	link := filepath.Join(dir, "latest")
	os.Symlink("out.safetensors", link)
	if err := Write(link, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "three"); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced by a file")
	}
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Errorf("the link's target holds %q, want three", b)
	}
}

const lockHelperEnv = "SAFEFILE_TEST_LOCK_DIR"

// TestMain doubles as a process that takes a lock and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv(lockHelperEnv); dir != "" {
		if _, err := LockDir(dir, "training"); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	release, err := LockDir(dir, "training")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockDir(dir, "training")
	if err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), dir) {
		t.Errorf("a second lock: %v, want an error naming the directory and this process", err)
	}
	release()
	again, err := LockDir(dir, "training")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()

	// A process killed with SIGKILL leaves no lock behind.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("helper said %q, %v", buf, err)
	}
	if _, err := LockDir(dir, "training"); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Errorf("while another process holds it: %v, want an error naming pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	r, err := LockDir(dir, "training")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	r()
}
