// Command opgen writes the op bindings from gotch/ops.txt: the C
// declarations (csrc/golens_torch_ops.h), their C++ bodies (csrc/ops_gen.cpp)
// and the Go methods and functions, each op with an error-returning form
// (ops_gen.go, which calls the shim through cgo; ops_nocgo_gen.go, built
// without cgo, where every op fails with ErrNoCgo) and a Must form
// (ops_must_gen.go, either build). Run it through go generate in gotch/;
// -o writes the files elsewhere, for the test that checks them.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

type arg struct{ name, kind string }

type op struct {
	name   string // Go name, e.g. "LayerNorm" or "Add_"
	args   []arg
	result string
	expr   string
	doc    string
	line   int
}

func (o op) method() bool { return len(o.args) > 0 && o.args[0].name == "self" }

func (o op) cName() string {
	var b strings.Builder
	b.WriteString("gt_")
	for i, r := range o.name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return strings.ReplaceAll(b.String(), "__", "_")
}

var argKinds = map[string]bool{"t": true, "t?": true, "ts": true, "ts?": true, "i": true, "f": true, "sc": true, "b": true, "is": true, "dt": true, "dev": true, "s": true, "g": true}
var resultKinds = map[string]int{"t": 1, "t2": 2, "t3": 3, "ts": -1, "self": 0, "none": 0}

func parse(path string) ([]op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []op
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, " | ")
		if len(cols) != 5 {
			return nil, fmt.Errorf("%s:%d: want 5 columns separated by ' | ', got %d", path, n, len(cols))
		}
		o := op{name: strings.TrimSpace(cols[0]), result: strings.TrimSpace(cols[2]), expr: strings.TrimSpace(cols[3]), doc: strings.TrimSpace(cols[4]), line: n}
		for _, a := range strings.Fields(cols[1]) {
			name, kind, ok := strings.Cut(a, ":")
			if !ok || !argKinds[kind] {
				return nil, fmt.Errorf("%s:%d: bad argument %q", path, n, a)
			}
			o.args = append(o.args, arg{name, kind})
		}
		if _, ok := resultKinds[o.result]; !ok {
			return nil, fmt.Errorf("%s:%d: bad result kind %q", path, n, o.result)
		}
		if o.result == "self" && !o.method() {
			return nil, fmt.Errorf("%s:%d: an in-place op needs a first argument named self", path, n)
		}
		ops = append(ops, o)
	}
	return ops, sc.Err()
}

// ---- C header and C++ bodies

func cParams(o op) []string {
	var ps []string
	switch o.result {
	case "t", "t2", "t3", "self":
		ps = append(ps, "gt_out *out")
	case "ts":
		ps = append(ps, "gt_out **outs", "int32_t *n_outs")
	}
	for _, a := range o.args {
		switch a.kind {
		case "t", "t?":
			ps = append(ps, "gt_tensor "+a.name+"_")
		case "ts", "ts?":
			ps = append(ps, "const gt_tensor *"+a.name+"_", "int32_t "+a.name+"_n")
		case "i":
			ps = append(ps, "int64_t "+a.name)
		case "f":
			ps = append(ps, "double "+a.name)
		case "sc":
			ps = append(ps, "double "+a.name+"_")
		case "b":
			ps = append(ps, "int32_t "+a.name+"_")
		case "is":
			ps = append(ps, "const int64_t *"+a.name+"_", "int32_t "+a.name+"_n")
		case "dt":
			ps = append(ps, "int32_t "+a.name+"_")
		case "dev":
			ps = append(ps, "int32_t "+a.name+"_type", "int32_t "+a.name+"_index")
		case "s":
			ps = append(ps, "const char *"+a.name)
		case "g":
			ps = append(ps, "gt_generator "+a.name+"_")
		}
	}
	return ps
}

func cDecl(o op) string {
	return fmt.Sprintf("gt_error %s(%s)", o.cName(), strings.Join(cParams(o), ", "))
}

func cppBody(o op) string {
	var b strings.Builder
	for _, a := range o.args {
		n := a.name
		switch a.kind {
		case "t":
			fmt.Fprintf(&b, "    const at::Tensor &%s = gt::arg(%s_, %q);\n", n, n, n)
		case "t?":
			fmt.Fprintf(&b, "    c10::optional<at::Tensor> %s = gt::opt(%s_);\n", n, n)
		case "ts":
			fmt.Fprintf(&b, "    std::vector<at::Tensor> %s = gt::list(%s_, %s_n, %q);\n", n, n, n, n)
		case "ts?":
			fmt.Fprintf(&b, "    c10::List<c10::optional<at::Tensor>> %s = gt::opt_list(%s_, %s_n);\n", n, n, n)
		case "sc":
			fmt.Fprintf(&b, "    at::Scalar %s = gt::scalar(%s_);\n", n, n)
		case "b":
			fmt.Fprintf(&b, "    bool %s = %s_ != 0;\n", n, n)
		case "is":
			fmt.Fprintf(&b, "    at::IntArrayRef %s(%s_, static_cast<size_t>(%s_n));\n", n, n, n)
		case "dt":
			fmt.Fprintf(&b, "    at::ScalarType %s = gt::scalar_type(%s_);\n", n, n)
		case "dev":
			fmt.Fprintf(&b, "    at::Device %s = gt::device(%s_type, %s_index);\n", n, n, n)
		case "g":
			fmt.Fprintf(&b, "    at::Generator &%s = gt::generator(%s_, %q);\n", n, n, n)
		}
	}
	switch o.result {
	case "t":
		fmt.Fprintf(&b, "    gt::fill(out, %s);\n", o.expr)
	case "t2":
		fmt.Fprintf(&b, "    auto r = %s;\n    gt::fill_all(out, {std::get<0>(r), std::get<1>(r)});\n", o.expr)
	case "t3":
		fmt.Fprintf(&b, "    auto r = %s;\n    gt::fill_all(out, {std::get<0>(r), std::get<1>(r), std::get<2>(r)});\n", o.expr)
	case "ts":
		fmt.Fprintf(&b, "    gt::fill_list(outs, n_outs, %s);\n", o.expr)
	case "self":
		fmt.Fprintf(&b, "    %s;\n    gt::describe(out, self);\n    out->tensor = self_;\n", o.expr)
	case "none":
		fmt.Fprintf(&b, "    %s;\n", o.expr)
	}
	return fmt.Sprintf("%s {\n  GT_TRY({\n%s  })\n}\n", cDecl(o), b.String())
}

// ---- Go

func goName(a arg) string {
	if a.name == "self" {
		return "t"
	}
	return a.name
}

var goTypes = map[string]string{"t": "*Tensor", "t?": "*Tensor", "ts": "[]*Tensor", "ts?": "[]*Tensor", "i": "int64", "f": "float64", "sc": "float64", "b": "bool", "is": "[]int64", "dt": "DType", "dev": "Device", "s": "string", "g": "*Generator"}

func goResults(o op, must bool) (types []string, zero string) {
	switch o.result {
	case "t":
		types = []string{"*Tensor"}
	case "t2":
		types = []string{"*Tensor", "*Tensor"}
	case "t3":
		types = []string{"*Tensor", "*Tensor", "*Tensor"}
	case "ts":
		types = []string{"[]*Tensor"}
	}
	zeros := strings.TrimSuffix(strings.Repeat("nil, ", len(types)), ", ")
	if !must {
		types = append(types, "error")
	}
	return types, zeros
}

func sig(o op, prefix string, must bool) string {
	var params []string
	args := o.args
	recv := ""
	if o.method() {
		recv = "(t *Tensor) "
		args = args[1:]
	}
	for _, a := range args {
		params = append(params, goName(a)+" "+goTypes[a.kind])
	}
	res, _ := goResults(o, must)
	r := strings.Join(res, ", ")
	if len(res) > 1 {
		r = "(" + r + ")"
	}
	return fmt.Sprintf("func %s%s%s(%s) %s", recv, prefix, o.name, strings.Join(params, ", "), r)
}

func goBody(o op) string {
	var b strings.Builder
	_, zero := goResults(o, false)
	ret := func(e string) string {
		if zero == "" {
			return "return " + e
		}
		return "return " + zero + ", " + e
	}
	var tensors, lists, callArgs []string
	var pre []string
	for _, a := range o.args {
		n := goName(a)
		switch a.kind {
		case "t":
			tensors = append(tensors, n)
			pre = append(pre, fmt.Sprintf("if err := pinTensor(%q, %q, %s); err != nil {\n%s\n}\ndefer %s.unpin()", o.name, a.name, n, ret("err"), n))
			callArgs = append(callArgs, n+".ptr()")
		case "t?":
			tensors = append(tensors, n)
			pre = append(pre, fmt.Sprintf("if err := pinOptTensor(%q, %q, %s); err != nil {\n%s\n}\ndefer %s.unpin()", o.name, a.name, n, ret("err"), n))
			callArgs = append(callArgs, n+".ptr()")
		case "ts", "ts?":
			lists = append(lists, n)
			pre = append(pre, fmt.Sprintf("%sC, err := pinTensorList(%q, %q, %s, %t)\nif err != nil {\n%s\n}\ndefer unpinTensors(%s)", n, o.name, a.name, n, a.kind == "ts?", ret("err"), n))
			callArgs = append(callArgs, fmt.Sprintf("sliceData(%sC), C.int32_t(len(%sC))", n, n))
		case "i":
			callArgs = append(callArgs, "C.int64_t("+n+")")
		case "f", "sc":
			callArgs = append(callArgs, "C.double("+n+")")
		case "b":
			callArgs = append(callArgs, "cBool("+n+")")
		case "is":
			callArgs = append(callArgs, fmt.Sprintf("cInts(%s), C.int32_t(len(%s))", n, n))
		case "dt":
			callArgs = append(callArgs, "C.int32_t("+n+")")
		case "dev":
			callArgs = append(callArgs, fmt.Sprintf("C.int32_t(%s.Type), C.int32_t(%s.Index)", n, n))
		case "s":
			pre = append(pre, fmt.Sprintf("%sC := C.CString(%s)\ndefer C.free(unsafe.Pointer(%sC))", n, n, n))
			callArgs = append(callArgs, n+"C")
		case "g":
			pre = append(pre, fmt.Sprintf("if err := pinGenerator(%q, %s); err != nil {\n%s\n}\ndefer %s.unpin()", o.name, n, ret("err"), n))
			callArgs = append(callArgs, n+".ptr()")
		}
	}
	for _, p := range pre {
		b.WriteString(p + "\n")
	}
	operands := strings.Join(tensors, ", ")
	if len(lists) > 0 { // list elements are operands too, for errors and scopes
		operands = fmt.Sprintf("append([]*Tensor{%s}, %s...)...", operands, lists[0])
	}
	fail := func(extra string) string {
		return fmt.Sprintf("if e := C.%s(%s); e != nil {\n%s%s\n}\n", o.cName(), strings.Join(callArgs, ", "), extra, ret(fmt.Sprintf("opError(%q, e, %s)", o.name, operands)))
	}
	switch o.result {
	case "t":
		b.WriteString("var out C.gt_out\n")
		callArgs = append([]string{"&out"}, callArgs...)
		b.WriteString(fail(""))
		fmt.Fprintf(&b, "return newTensor(&out, scopeOf(%s)), nil\n", operands)
	case "t2", "t3":
		k := resultKinds[o.result]
		fmt.Fprintf(&b, "var out [%d]C.gt_out\n", k)
		callArgs = append([]string{"&out[0]"}, callArgs...)
		b.WriteString(fail(""))
		fmt.Fprintf(&b, "s := scopeOf(%s)\nreturn ", operands)
		for i := 0; i < k; i++ {
			fmt.Fprintf(&b, "newTensor(&out[%d], s), ", i)
		}
		b.WriteString("nil\n")
	case "ts":
		b.WriteString("var outs *C.gt_out\nvar n C.int32_t\n")
		callArgs = append([]string{"&outs", "&n"}, callArgs...)
		b.WriteString(fail(""))
		fmt.Fprintf(&b, "return newTensorList(outs, n, scopeOf(%s)), nil\n", operands)
	case "self":
		b.WriteString("var out C.gt_out\n")
		callArgs = append([]string{"&out"}, callArgs...)
		b.WriteString(fail(""))
		b.WriteString("t.refresh(&out)\nreturn nil\n")
	case "none":
		b.WriteString(fail(""))
		b.WriteString("return nil\n")
	}
	return b.String()
}

func mustBody(o op) string {
	var names []string
	args := o.args
	if o.method() {
		args = args[1:]
	}
	for _, a := range args {
		names = append(names, goName(a))
	}
	call := o.name + "(" + strings.Join(names, ", ") + ")"
	if o.method() {
		call = "t." + call
	}
	switch resultKinds[o.result] {
	case 0:
		return fmt.Sprintf("must(%s)\n", call)
	case 1, -1:
		return fmt.Sprintf("r, err := %s\nmust(err)\nreturn r\n", call)
	case 2:
		return fmt.Sprintf("a, b, err := %s\nmust(err)\nreturn a, b\n", call)
	default:
		return fmt.Sprintf("a, b, c, err := %s\nmust(err)\nreturn a, b, c\n", call)
	}
}

func goDoc(o op) string {
	switch o.result {
	case "self":
		return fmt.Sprintf("// %s works in place: %s.", o.name, o.doc)
	case "none":
		return fmt.Sprintf("// %s %s.", o.name, o.doc)
	}
	return fmt.Sprintf("// %s returns %s.", o.name, o.doc)
}

const header = "Code generated by gotch/internal/opgen from gotch/ops.txt; DO NOT EDIT."

// nocgoBody is an op's body without cgo: it fails before looking at its
// arguments, since no tensor can exist in such a build.
func nocgoBody(o op) string {
	_, zero := goResults(o, false)
	e := fmt.Sprintf("noCgo(%q)", o.name)
	if zero == "" {
		return "return " + e + "\n"
	}
	return "return " + zero + ", " + e + "\n"
}

// generate returns the files opgen writes, by path relative to gotch/.
func generate(ops []op) (map[string][]byte, error) {
	var h, cpp, g, must, nocgo bytes.Buffer
	fmt.Fprintf(&h, "/* %s */\n/* One entry per op of gotch/ops.txt; see golens_torch.h for the conventions. */\n#ifndef GOLENS_TORCH_OPS_H\n#define GOLENS_TORCH_OPS_H\n\n", header)
	fmt.Fprintf(&cpp, "// %s\n#include \"shim.h\"\n\nextern \"C\" {\n\n", header)
	imports := ""
	for _, o := range ops {
		for _, a := range o.args {
			if a.kind == "s" {
				imports = "import \"unsafe\"\n\n" // strings are freed with C.free
			}
		}
	}
	// No shim function keeps a Go pointer or calls back into Go; saying so
	// lets the out structs stay on the stack (about 150 ns an op).
	var directives strings.Builder
	for _, o := range ops {
		fmt.Fprintf(&directives, "#cgo noescape %s\n#cgo nocallback %s\n", o.cName(), o.cName())
	}
	// The ops cross into C in ops_gen.go; without cgo, ops_nocgo_gen.go has
	// the same functions failing with ErrNoCgo. The Must forms call either.
	fmt.Fprintf(&g, "// %s\n\n//go:build cgo\n\npackage gotch\n\n/*\n%s#include <stdlib.h>\n#include \"golens_torch.h\"\n*/\nimport \"C\"\n\n%s", header, directives.String(), imports)
	fmt.Fprintf(&must, "// %s\n\npackage gotch\n\n", header)
	fmt.Fprintf(&nocgo, "// %s\n\n//go:build !cgo\n\npackage gotch\n\n", header)
	for _, o := range ops {
		fmt.Fprintf(&h, "/* %s: %s. */\n%s;\n", o.name, o.doc, cDecl(o))
		cpp.WriteString(cppBody(o) + "\n")
		fmt.Fprintf(&g, "%s\n%s {\n%s}\n\n", goDoc(o), sig(o, "", false), goBody(o))
		fmt.Fprintf(&nocgo, "%s\n%s {\n%s}\n\n", goDoc(o), sig(o, "", false), nocgoBody(o))
		fmt.Fprintf(&must, "// Must%s is %s that panics with a *Error instead of returning it.\n%s {\n%s}\n\n", o.name, o.name, sig(o, "Must", true), mustBody(o))
	}
	h.WriteString("\n#endif /* GOLENS_TORCH_OPS_H */\n")
	cpp.WriteString("}  // extern \"C\"\n")
	files := map[string][]byte{
		"csrc/golens_torch_ops.h": h.Bytes(),
		"csrc/ops_gen.cpp":        cpp.Bytes(),
	}
	for path, b := range map[string]*bytes.Buffer{"ops_gen.go": &g, "ops_must_gen.go": &must, "ops_nocgo_gen.go": &nocgo} {
		src, err := format.Source(b.Bytes())
		if err != nil {
			return nil, fmt.Errorf("format generated %s: %v\n%s", path, err, b.Bytes())
		}
		files[path] = src
	}
	return files, nil
}

func main() {
	log.SetFlags(0)
	out := flag.String("o", "", "write the files under this `directory` (default: the package's own); the sync test compares a fresh copy with the checked-in one")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: opgen [-o directory] [gotch directory (default .)]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	dir := "."
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	if *out == "" {
		*out = dir
	}
	ops, err := parse(filepath.Join(dir, "ops.txt"))
	if err != nil {
		log.Fatal(err)
	}
	files, err := generate(ops)
	if err != nil {
		log.Fatal(err)
	}
	for path, data := range files {
		path = filepath.Join(*out, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
