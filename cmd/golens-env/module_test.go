package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"go/format"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

const modulePath = "github.com/golens/golens"

// TestGoGetBuildsAndRuns does what the README's "Use golens from your Go
// program" tells a user to do, in a new module outside the repository:
// go get golens, build the README's program with plain go build (with
// golens-env's variables when libtorch is not the system's), and run it
// on the model golens ships. golens comes from a module proxy on
// 127.0.0.1 that serves this repository's HEAD as the public proxy would
// (a git archive of it, at a pseudo-version); every other module comes
// from the local module cache, offline.
func TestGoGetBuildsAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a new module through a local module proxy (a minute or two the first time): run without -short")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git: the module is made from the repository's HEAD")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, err := gitOut(".", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Skipf("not in a git checkout of golens: %v", err)
	}
	f := newFinder()
	getenv := f.getenv
	f.getenv = func(k string) string {
		if k == "GOFLAGS" {
			return "-mod=readonly" // as below: what golens-env's GOFLAGS keeps
		}
		return getenv(k)
	}
	torch, err := f.find(context.Background())
	if err != nil {
		t.Skipf("golens needs libtorch: %v", err)
	}
	if cgo, _ := exec.Command(goBin, "env", "CGO_ENABLED").Output(); strings.TrimSpace(string(cgo)) != "1" {
		t.Skip("cgo is off (CGO_ENABLED=0): golens's binaries need it")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	// The module at HEAD, as the public proxy would serve it.
	head, err := gitOut(root, "log", "-1", "--format=%H %ct", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	hash, unix, _ := strings.Cut(head, " ")
	sec, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		t.Fatalf("commit time %q: %v", unix, err)
	}
	commitTime := time.Unix(sec, 0).UTC()
	version := module.PseudoVersion("v0", "", commitTime, hash[:12])
	goMod, err := gitOut(root, "show", "HEAD:go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(goMod, "module "+modulePath+"\n") {
		t.Fatalf("HEAD's go.mod is not module %s", modulePath)
	}
	var modZip bytes.Buffer
	if err := modzip.CreateFromVCS(&modZip, module.Version{Path: modulePath, Version: version}, root, "HEAD", ""); err != nil {
		t.Fatalf("module zip from git archive HEAD: %v", err)
	}
	readme := zipFile(t, modZip.Bytes(), modulePath+"@"+version+"/README.md")
	program, err := readmeProgram(readme)
	if err != nil {
		t.Fatalf("README.md at HEAD: %v", err)
	}
	if dirty, _ := gitOut(root, "status", "--porcelain", "--untracked-files=no"); dirty != "" {
		t.Logf("testing HEAD (%s); uncommitted changes are not in the module", hash[:12])
	}
	t.Logf("serving %s@%s (%d kB zip)", modulePath, version, modZip.Len()/1000)

	var zipServed atomic.Bool
	proxy := httptest.NewServer(goProxy(modulePath, version, commitTime, goMod, modZip.Bytes(), &zipServed))
	defer proxy.Close()
	defer func() {
		if !zipServed.Load() {
			t.Logf("%s@%s was in the module cache already: the proxy served no zip this time", modulePath, version)
		}
	}()
	// The new module's go mod tidy wants golens's dependencies and the
	// modules of their tests (all) from the module cache: fetch any missing
	// the usual way, through copies of go.mod and go.sum, which download
	// all would add those modules' sums to.
	modCopy := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(modCopy, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	download := exec.CommandContext(ctx, goBin, "mod", "download", "-modfile="+filepath.Join(modCopy, "go.mod"), "all")
	download.Dir = root
	if out, err := download.CombinedOutput(); err != nil {
		t.Logf("go mod download in %s: %v %s (going on with the module cache as it is)", root, err, bytes.TrimSpace(out))
	}
	modCache, err := exec.Command(goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"GOPROXY="+proxy.URL+",file://"+filepath.ToSlash(filepath.Join(strings.TrimSpace(string(modCache)), "cache", "download")),
		"GOSUMDB=off", "GOPRIVATE=", "GONOPROXY=", "GONOSUMDB=", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOFLAGS=-mod=readonly", // the README's steps must be enough: nothing edits go.mod behind them
	)
	e := f.env(torch)
	for k, v := range e.Vars {
		// The system's libtorch-dev needs no CGO_* variables: that is the
		// point. GOFLAGS (-mod=readonly, and -tags=cuda for a CUDA torch)
		// goes in for every torch, as eval would put it.
		if torch.From != "system" || k == "GOFLAGS" {
			env = append(env, k+"="+v)
		}
	}

	dir := t.TempDir()
	gocmd := func(args ...string) string {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("go %s: %.1fs %s", strings.Join(args, " "), time.Since(start).Seconds(), bytes.TrimSpace(out))
		return strings.TrimSpace(string(out))
	}
	gocmd("mod", "init", "example.com/lensdemo")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	gocmd("get", modulePath)
	gocmd("mod", "tidy")
	if got := gocmd("list", "-m", "-f", "{{.Version}}", modulePath); got != version {
		t.Fatalf("go get resolved %s to %s, want HEAD's %s", modulePath, got, version)
	}
	gocmd("build", "-o", "lensdemo", ".") // no -tags: for a CUDA torch GOFLAGS has them
	modDir := gocmd("list", "-m", "-f", "{{.Dir}}", modulePath)

	bin := filepath.Join(dir, "lensdemo")
	checkNoRunpathInto(t, bin, root, modDir)

	model := filepath.Join(modDir, "models", "induction-2l", "model.safetensors")
	start := time.Now()
	run := exec.CommandContext(ctx, bin, model)
	run.Dir = t.TempDir() // not the module, not the repository
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("lensdemo %s: %v\n%s", model, err, out)
	}
	t.Logf("lensdemo: %.1fs\n%s", time.Since(start).Seconds(), out)
	checkDemoOutput(t, string(out))
}

// goProxy serves one module version by the GOPROXY protocol
// (go help goproxy); everything else is 404, so that the go command asks
// the next proxy in GOPROXY.
func goProxy(path, version string, at time.Time, goMod string, zipData []byte, zipServed *atomic.Bool) http.Handler {
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, at})
	files := map[string][]byte{
		"/" + path + "/@v/list":                 nil, // no tagged versions: @latest is HEAD's pseudo-version
		"/" + path + "/@latest":                 info,
		"/" + path + "/@v/" + version + ".info": info,
		"/" + path + "/@v/" + version + ".mod":  []byte(goMod),
		"/" + path + "/@v/" + version + ".zip":  zipData,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".zip") {
			zipServed.Store(true)
		}
		w.Write(b)
	})
}

// The README's program is a whole, gofmt'ed main package, also under -short.
func TestREADMEProgram(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	program, err := readmeProgram(string(readme))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	formatted, err := format.Source([]byte(program))
	if err != nil {
		t.Fatalf("README.md's program: %v", err)
	}
	if string(formatted) != program {
		t.Errorf("README.md's program is not gofmt'ed: gofmt makes it\n%s", formatted)
	}
	for _, want := range []string{`"github.com/golens/golens/hookedmodel"`, "RunWithCache", "blocks.0.attn.hook_pattern", "FwdHook", "Free()"} {
		if !strings.Contains(program, want) {
			t.Errorf("README.md's program does not show %s", want)
		}
	}
}

// readmeProgram is the Go code block of the README's section "Use golens
// from your Go program".
func readmeProgram(readme string) (string, error) {
	const heading = "\n## Use golens from your Go program\n"
	_, section, ok := strings.Cut(readme, heading)
	if !ok {
		return "", fmt.Errorf("no section %q", strings.TrimSpace(heading))
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	_, code, ok := strings.Cut(section, "\n```go\n")
	if !ok {
		return "", fmt.Errorf("no ```go block in %q", strings.TrimSpace(heading))
	}
	code, _, ok = strings.Cut(code, "\n```\n")
	if !ok || !strings.HasPrefix(code, "package main\n") {
		return "", fmt.Errorf("the ```go block in %q is not a whole main package", strings.TrimSpace(heading))
	}
	return code + "\n", nil
}

func zipFile(t *testing.T, data []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, zf := range zr.File {
		if zf.Name == name {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var b bytes.Buffer
			if _, err := b.ReadFrom(rc); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
	}
	t.Fatalf("the module zip has no %s", name)
	return ""
}

// checkNoRunpathInto fails when the binary's RPATH or RUNPATH names a
// folder in any of dirs: a binary must keep working when they move.
func checkNoRunpathInto(t *testing.T, bin string, dirs ...string) {
	t.Helper()
	ef, err := elf.Open(bin)
	if err != nil {
		t.Logf("not an ELF binary (%v): no run path to check", err)
		return
	}
	defer ef.Close()
	for _, tag := range []elf.DynTag{elf.DT_RPATH, elf.DT_RUNPATH} {
		vals, err := ef.DynString(tag)
		if err != nil {
			t.Fatalf("%s of %s: %v", tag, bin, err)
		}
		for _, v := range vals {
			for _, p := range filepath.SplitList(v) {
				for _, d := range dirs {
					if rel, err := filepath.Rel(d, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
						t.Errorf("%s has %s %s, inside %s", filepath.Base(bin), tag, p, d)
					}
				}
				t.Logf("%s: %s", tag, p)
			}
		}
	}
}

var (
	prevLine = regexp.MustCompile(`(?m)^head 0\.2 attends to the previous token: ([0-9.]+)$`)
	lossLine = regexp.MustCompile(`(?m)^loss ([0-9.]+), with head 0\.2 zeroed ([0-9.]+)$`)
)

// checkDemoOutput checks the README program's output on the shipped
// induction-2l: head 0.2 is its previous-token head (score 0.947 in
// models/induction-2l/README.md), and zeroing it breaks the induction
// circuit, so the loss on the repeated tokens rises (2.17 to 4.13 here).
func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	m := prevLine.FindStringSubmatch(out)
	l := lossLine.FindStringSubmatch(out)
	if m == nil || l == nil {
		t.Fatalf("the program printed\n%s\nwant the lines %q and %q", out, prevLine, lossLine)
	}
	prev, _ := strconv.ParseFloat(m[1], 64)
	clean, _ := strconv.ParseFloat(l[1], 64)
	zeroed, _ := strconv.ParseFloat(l[2], 64)
	if prev < 0.9 {
		t.Errorf("head 0.2's attention to the previous token: got %.3f, want > 0.9", prev)
	}
	if zeroed < clean+1 {
		t.Errorf("loss %.3f clean, %.3f with head 0.2 zeroed: want it to rise by more than 1", clean, zeroed)
	}
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(ee.Stderr))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
