package analysis

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
)

// optionSamples are one of each option, by its name.
func optionSamples() map[string]Option {
	return map[string]Option{
		"WithProgress": WithProgress(nil), "WithSeed": WithSeed(1),
		"ExcludeBOS": ExcludeBOS(), "ExcludeCurrentToken": ExcludeCurrentToken(), "WithErrorMeasure": WithErrorMeasure(Abs), "OnlyHeads": OnlyHeads(),
		"SeqLen": SeqLen(3), "BatchSize": BatchSize(1), "BOS": BOS(0), "TokenRange": TokenRange(1, 4),
		"Reference": Reference(nil), "WithMetric": WithMetric(nil), "CleanCache": CleanCache(nil),
		"AtPosition": AtPosition(0), "TopK": TopK(1), "PrependBOS": PrependBOS(false), "PrependSpaceToAnswer": PrependSpaceToAnswer(false),
		"BaselineSamples": BaselineSamples(2), "BlockRows": BlockRows(8), "SplitOver": SplitOver(newMemGroup(1)[0]),
	}
}

// optionEntry is an entry point taking options: the options its doc says
// it reads, and a call of it with nil inputs. Options are checked before
// the inputs, so an option it reads gets as far as the nil-input error.
type optionEntry struct {
	name  string
	reads []string
	call  func(opts ...Option) error
}

func optionEntries() []optionEntry {
	ctx := context.Background()
	repeated := []string{"SeqLen", "BatchSize", "BOS", "TokenRange", "WithSeed"}
	prompt := []string{"TopK", "PrependBOS", "PrependSpaceToAnswer"}
	return []optionEntry{
		{"AblationTable", []string{"Reference", "WithSeed", "WithMetric", "WithProgress", "SplitOver"}, func(o ...Option) error {
			return errOf(AblationTable(ctx, nil, nil, ZeroAblation, o...))
		}},
		{"ActivationPatching", []string{"CleanCache", "WithProgress", "SplitOver"}, func(o ...Option) error {
			return errOf(ActivationPatching(ctx, nil, nil, nil, nil, ResidPre, o...))
		}},
		{"AttributionPatching", nil, func(o ...Option) error {
			return errOf(AttributionPatching(ctx, nil, nil, nil, nil, []Sweep{ResidPre}, o...))
		}},
		{"CircuitAccuracy", []string{"TopK", "BlockRows", "WithProgress"}, func(o ...Option) error {
			_, err := CircuitAccuracy(ctx, nil, o...)
			return err
		}},
		{"CompositionScores", []string{"BaselineSamples", "WithSeed"}, func(o ...Option) error { return errOf(CompositionScores(ctx, nil, o...)) }},
		{"DetectHead", []string{"ExcludeBOS", "ExcludeCurrentToken", "WithErrorMeasure", "OnlyHeads"}, func(o ...Option) error {
			return errOf(DetectHead(ctx, nil, nil, nil, o...))
		}},
		{"Induction", repeated, func(o ...Option) error { return errOf(Induction(ctx, nil, o...)) }},
		{"LogitAttribution", []string{"AtPosition"}, func(o ...Option) error {
			return errOf(LogitAttribution(ctx, nil, nil, nil, nil, o...))
		}},
		{"LogitLens", []string{"TopK"}, func(o ...Option) error { return errOf(LogitLens(ctx, nil, nil, o...)) }},
		{"NewAblation", []string{"Reference", "WithSeed"}, func(o ...Option) error {
			return errOf(NewAblation(ctx, nil, ZeroAblation, nil, o...))
		}},
		{"RepeatedTokens", repeated, func(o ...Option) error { return errOf(RepeatedTokens(nil, o...)) }},
		{"TestPrompt", prompt, func(o ...Option) error { return errOf(TestPrompt(ctx, nil, "", "", o...)) }},
		{"TestPromptAnswers", prompt, func(o ...Option) error { return errOf(TestPromptAnswers(ctx, nil, "", nil, o...)) }},
		{"TestPromptTokens", []string{"TopK"}, func(o ...Option) error { return errOf(TestPromptTokens(ctx, nil, nil, nil, o...)) }},
		{"Workflow", append(slices.Clone(repeated), "BaselineSamples", "WithProgress"), func(o ...Option) error {
			_, _, err := Workflow(ctx, nil, nil, o...)
			return err
		}},
	}
}

// TestOptionsApply: every entry point accepts each option it reads and
// refuses each other one with an error naming the option, the entry point
// and what it reads.
func TestOptionsApply(t *testing.T) {
	gotchtest.CheckLeaks(t)
	samples := optionSamples()
	for _, e := range optionEntries() {
		for name, opt := range samples {
			err := e.call(opt, nil) // a nil option is ignored
			if slices.Contains(e.reads, name) {
				if err == nil || strings.Contains(err.Error(), "does not apply") {
					t.Errorf("%s(%s): error %v, want the option accepted (and the nil-input error)", e.name, name, err)
				}
				continue
			}
			prefix := e.name + ": option " + name + " does not apply (it reads "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), ")") {
				t.Errorf("%s(%s): error %v, want %q...", e.name, name, err, prefix)
				continue
			}
			if got := readList(strings.TrimSuffix(strings.TrimPrefix(err.Error(), prefix), ")")); !slices.Equal(got, sorted(e.reads)) {
				t.Errorf("%s(%s): the error lists %v as read, want %v", e.name, name, got, sorted(e.reads))
			}
		}
	}
	_, err := DetectHead(context.Background(), nil, nil, nil, BlockRows(8))
	if want := "DetectHead: option BlockRows does not apply (it reads ExcludeBOS, ExcludeCurrentToken, WithErrorMeasure, OnlyHeads)"; err == nil || err.Error() != want {
		t.Errorf("DetectHead(BlockRows): error %v, want %q", err, want)
	}
}

func readList(s string) []string {
	if s == "none" {
		return nil
	}
	return sorted(strings.Split(s, ", "))
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestOptionsCovered: the tables above hold every option and every entry
// point taking options that the package exports, and each option reports
// itself under its own name.
func TestOptionsCovered(t *testing.T) {
	if _, err := os.Stat("options.go"); err != nil {
		t.Skip("the package's source is not here (a test binary run elsewhere, as in the GPU bundle)")
	}
	var exported, entries []string
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for file, f := range pkgs["analysis"].Files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !fn.Name.IsExported() {
				continue
			}
			if r := fn.Type.Results; r != nil && len(r.List) == 1 && isIdent(r.List[0].Type, "Option") {
				exported = append(exported, fn.Name.Name)
			}
			if p := fn.Type.Params.List; len(p) > 0 {
				if el, ok := p[len(p)-1].Type.(*ast.Ellipsis); ok && isIdent(el.Elt, "Option") {
					entries = append(entries, fn.Name.Name)
				}
			}
		}
	}
	samples := optionSamples()
	if got := slices.Sorted(maps.Keys(samples)); !slices.Equal(got, sorted(exported)) {
		t.Errorf("option samples %v, want the exported options %v", got, sorted(exported))
	}
	var tabled []string
	for _, e := range optionEntries() {
		tabled = append(tabled, e.name)
	}
	if !slices.Equal(sorted(tabled), sorted(entries)) {
		t.Errorf("option entries %v, want the exported functions taking ...Option %v", sorted(tabled), sorted(entries))
	}
	for name, opt := range samples {
		var o options
		opt(&o)
		if o.given.String() != name {
			t.Errorf("option %s reports itself as %s", name, o.given)
		}
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// only keeps the options an entry point reads, in order, and the others
// are left out, not applied.
func TestOnly(t *testing.T) {
	var o options
	for _, f := range only([]Option{TopK(3), WithSeed(7), nil, SeqLen(2)}, optSeed|optSeqLen) {
		f(&o)
	}
	if o.given != optSeed|optSeqLen || o.seed != 7 || o.seqLen != 2 || o.topKSet {
		t.Errorf("only kept %v (seed %d, seq_len %d)", o.given, o.seed, o.seqLen)
	}
}
