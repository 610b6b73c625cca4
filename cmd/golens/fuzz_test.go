package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// checkLine fails t unless err, as main prints it, is one line.
func checkLine(t *testing.T, err error) {
	t.Helper()
	if line := errorLine(err); strings.ContainsAny(line, "\n\r") || line == "golens: " {
		t.Fatalf("the error line is %q (from %q)", line, err.Error())
	}
}

// FuzzTokensFile feeds arbitrary bytes to the --tokens-file reader: it
// returns equally long, non-empty rows or a one-line error, and the
// tensor made of its rows has their shape and values.
func FuzzTokensFile(f *testing.F) {
	for _, s := range []string{
		"[[50256, 464, 3290, 318], [50256, 40, 588, 7043]]", "[[0]]", "[[-1, 9223372036854775807]]",
		"[[1, 2], [3]]", "[[]]", "[]", "[[1.5]]", `[["1"]]`, "[[1e3]]", "[[9223372036854775808]]",
		"{}", "null", "[null]", "[[null]]", "[[1],", "", "\xff", " [ [ 1 ] ] \n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "tokens\n.json") // a name an error must quote
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		rows, err := readTokensFile(path)
		if err != nil {
			checkLine(t, err)
			return
		}
		if len(rows) == 0 || len(rows[0]) == 0 {
			t.Fatalf("no tokens, and no error: %v", rows)
		}
		var flat []int64
		for i, r := range rows {
			if len(r) != len(rows[0]) {
				t.Fatalf("row %d has %d tokens, row 0 %d, and no error", i, len(r), len(rows[0]))
			}
			flat = append(flat, r...)
		}
		gotchtest.CheckLeaks(t)
		x, err := tensorOf(rows, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Free()
		got, err := gotch.ToSlice[int64](x)
		if err != nil {
			t.Fatal(err)
		}
		if sh := x.Shape(); len(sh) != 2 || sh[0] != int64(len(rows)) || sh[1] != int64(len(rows[0])) || !slices.Equal(got, flat) {
			t.Fatalf("tensor %v %v, want [%d %d] %v", sh, got, len(rows), len(rows[0]), flat)
		}
	})
}

// FuzzSet feeds arbitrary --set pairs (separated by NUL) to configEdits:
// a pair is refused with a one-line error or becomes an edit that applies
// without a panic to a config, which Init then accepts or refuses in one
// line.
func FuzzSet(f *testing.F) {
	for _, s := range []string{
		"use_attn_result=true", "use_attn_result=true\x00use_split_qkv_input=1", "normalization_type=null",
		"normalization_type=LNPre", `normalization_type="LN"`, "attn_only=true", "act_fn=relu", "d_mlp=-5", "d_vocab_out=100",
		"seed=null", "seed=3", "seed=1.5", "eps=1e999", "eps=-1", "n_layers=9223372036854775808", "n_heads=0",
		"dtype=float16", "model_name=a\nb", "unknown=1", "use_attn_result", "=", "", "use_attn_result=yes",
		// An empty key named Config's unexported field, whose JSON name is
		// "": "=true" was accepted and its edit panicked in reflect (golens
		// run --set =true exited 2).
		"=null", "=true",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		edit, err := configEdits(strings.Split(s, "\x00"))
		if err != nil {
			checkLine(t, err)
			return
		}
		c := hookedmodel.DefaultConfig()
		c.NLayers, c.DModel, c.DHead, c.NCtx, c.DVocab, c.ActFn = 1, 8, 4, 4, 5, "relu"
		edit(&c)
		if err := c.Init(); err != nil {
			checkLine(t, err)
		}
	})
}

// argsDir stands for the fuzz target's own folder in FuzzArgs's inputs.
const argsDir = "$T"

// fuzzedCommands are the command words FuzzArgs puts before the fuzzed
// arguments ("" leaves the first word to the fuzzer).
var fuzzedCommands = [][]string{
	{""}, {"run"}, {"cache"}, {"ablate"}, {"generate"}, {"analyze"}, {"tokenize"}, {"train"},
	{"bench"}, {"bench", "table"}, {"version"}, {"help"}, {"completion"},
}

// FuzzArgs runs the command line in-process on arbitrary arguments (NUL
// separates them; "$T" is a folder of the test's). No argument list may
// panic, and an error is one line. To keep every run short and its writes
// inside $T, only argument lists that fail before loading a model or that
// are quick by nature run: see runnable.
func FuzzArgs(f *testing.F) {
	for _, s := range []struct {
		cmd  uint8
		args string
	}{
		{1, "--model\x00$T/missing\x00--prompt\x00The cat"},
		{1, "--model=$T/missing\x00--tokens-file\x00$T/tokens.json\x00--json\x00--top\x00-3"},
		{1, "--model\x00$T\x00--prompt\x00x\x00--set\x00use_attn_result=true,normalization_type=null"},
		{1, "--model\x00$T/missing\x00--prompt\x00x\x00--tokens-file\x00$T/tokens.json"},
		{1, "--model\x00$T/missing\x00--set\x00d_vocab_out"},
		{1, "--model\x00$T/missing\x00--prompt\x00x\x00--dtype\x00float16\x00--device\x00cuda:7"},
		{2, "--model\x00$T/missing\x00--prompt\x00x\x00--names\x00(\x00--out\x00$T/c.safetensors"},
		{3, "--model\x00$T/missing\x00--prompt\x00x\x00--head\x001.x\x00--mode\x00max\x00--out\x00$T/a.safetensors"},
		{4, "--model\x00$T/missing\x00--prompt\x00x\x00--top-k\x00-5\x00--temperature\x00+Inf\x00--top-p\x002"},
		{5, "--model\x00$T/missing\x00--out\x00$T/report\x00--seq-len\x000"},
		{6, "--model\x00gpt2\x00--text\x00Hello <|endoftext|> world\x00--json\x00--str"},
		{6, "--model\x00$T/missing\x00--file\x00$T/tokens.json"},
		{6, "--model\x00gpt2\x00--jsonl\x00$T/tokens.json"},
		{7, "--config\x00$T/missing.json\x00--out\x00$T/run\x00--steps\x00-1"},
		{7, "--config\x00$T/tokens.json\x00--out\x00$T/run"},
		{8, "--model\x00$T/missing\x00--reps\x00-5\x00--batch\x000,x"},
		{8, "--model\x00$T/missing\x00--shape\x00toy"},
		{9, "$T/tokens.json"},
		{10, "--check\x00--device\x00cpu"},
		{10, "--check\x00--device\x00vulkan"},
		{11, "run"}, {12, "bash"}, {0, "--version"}, {0, "rn"}, {0, "-h"},
		{0, "run\x00--model\x00$T/missing\x00--prompt"}, {1, "--model\x00$T/missing\x00--prompt\x00x\x00--\x00extra"},
		{1, "--model\x00$T/missing\x00--prompt\x00x\x00--nope\x00a\nb"},
	} {
		f.Add(s.cmd, s.args)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokens.json"), []byte("[[50256, 464, 3290, 318]]"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, cmd uint8, joined string) {
		args := fuzzedCommands[int(cmd)%len(fuzzedCommands)]
		if args[0] == "" {
			args = nil
		}
		if joined != "" {
			for _, a := range strings.Split(joined, "\x00") {
				args = append(args, strings.ReplaceAll(a, argsDir, dir))
			}
		}
		if !runnable(args, dir) {
			return
		}
		gotchtest.CheckLeaks(t)
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(strings.NewReader(""))
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err != nil {
			checkLine(t, err)
		}
	})
}

// runnable reports whether golens may run args in a fuzz test: whether it
// fails before loading a model or is quick by nature, and reads and writes
// only inside dir. It parses args as Execute will (the same Find and
// ParseFlags on a root of its own) and looks at the command and its flags:
//   - demo never runs, bench only with --model (else it benchmarks the
//     grid's shapes), and no hidden completion request runs;
//   - every flag naming a file or folder (--model, --config, --out, ...)
//     and bench table's files name something inside dir, except
//     tokenize's --model gpt2, whose tokenizer is built in.
//
// Arguments Execute will refuse (an unknown command or flag, a bad flag
// value) may run: they fail before any command does.
func runnable(args []string, dir string) bool {
	if len(args) > 0 && strings.HasPrefix(args[0], "__") {
		return false
	}
	root := newRoot()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	c, rest, err := root.Find(args)
	if err != nil {
		return true
	}
	if err := c.ParseFlags(rest); err != nil {
		return true
	}
	inside := func(p string) bool {
		p = filepath.Clean(p)
		return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
	}
	switch c.CommandPath() {
	case "golens demo":
		return false
	case "golens bench":
		if !c.Flags().Changed("model") {
			return false
		}
	case "golens bench table":
		for _, a := range c.Flags().Args() {
			if !inside(a) {
				return false
			}
		}
	}
	for _, name := range []string{"model", "config", "out", "tokens-file", "reference-tokens-file", "file", "jsonl"} {
		fl := c.Flags().Lookup(name)
		if fl == nil || !fl.Changed || inside(fl.Value.String()) {
			continue
		}
		if name != "model" || c.Name() != "tokenize" || fl.Value.String() != "gpt2" {
			return false
		}
	}
	return true
}
