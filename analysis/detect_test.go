package analysis

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// repeated makes the tests' repeated-token batch on the model's device.
func repeated(t *testing.T, im *InductionModel, seed uint64) *gotch.Tensor {
	t.Helper()
	tok, err := RepeatedTokens(im.Model, repeatOpts(im, seed)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tok.Free)
	return tok
}

func TestDetectHeadOnTheConstruction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 5)
	ctx := context.Background()
	detect := func(t *testing.T, p Pattern, opts ...Option) *Table {
		t.Helper()
		s, err := DetectHead(ctx, im.Model, tok, p, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if s.Shape[0] != 2 || s.Shape[1] != 3 {
			t.Fatalf("scores of shape %v, want [2 3]", s.Shape)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		pattern Pattern
		want    HeadID
		opts    []Option
	}{
		{"previous token", PreviousTokenHead, im.PrevToken, nil},
		{"previous token without BOS", PreviousTokenHead, im.PrevToken, []Option{ExcludeBOS()}},
		{"previous token, abs", PreviousTokenHead, im.PrevToken, []Option{WithErrorMeasure(Abs), ExcludeBOS()}},
		{"induction", InductionHead, im.Induction, nil},
		{"induction without BOS and current", InductionHead, im.Induction, []Option{ExcludeBOS(), ExcludeCurrentToken()}},
		{"current token", CurrentTokenHead, im.CurrentToken, nil},
		// The induction head's default is BOS: no other head attends there
		// as much.
		{"first token", FirstTokenHead, im.Induction, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := detect(t, tc.pattern, tc.opts...)
			t.Logf("\n%v", s)
			if got := s.Argmax(); got[0] != tc.want.Layer || got[1] != tc.want.Head {
				t.Errorf("best head %v, want %v", got, tc.want)
			}
		})
	}

	// DESIGN §7: a hand-built previous-token head scores 1.
	for _, m := range []ErrorMeasure{Mul, Abs} {
		s := detect(t, PreviousTokenHead, ExcludeBOS(), WithErrorMeasure(m))
		if got := s.At(im.PrevToken.Layer, im.PrevToken.Head); math.Abs(got-1) > 1e-4 {
			t.Errorf("%s: the previous-token head scores %.6f, want 1", m, got)
		}
	}
	// Without BOS, all of the induction head's attention in the second
	// repeat is where the induction pattern says.
	s := detect(t, InductionHead, ExcludeBOS())
	if got := s.At(im.Induction.Layer, im.Induction.Head); got < 0.99 {
		t.Errorf("the induction head scores %.4f without BOS, want about 1", got)
	}

	t.Run("custom pattern", func(t *testing.T) {
		ids := gotchtest.Values(t, tok)
		n := int(tok.Size(1))
		row := make([]int64, n)
		for i := range row {
			row[i] = int64(ids[i])
		}
		first := tok.MustNarrow(0, 0, 1)
		defer first.Free()
		want, err := DetectHead(ctx, im.Model, first, PreviousTokenHead)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DetectHead(ctx, im.Model, first, FixedPattern(previousTokenPattern(row)))
		if err != nil {
			t.Fatal(err)
		}
		gotchtest.Close(t, "fixed previous-token pattern", got.Data, want.Data, 1e-12)
	})

	t.Run("only some heads", func(t *testing.T) {
		s := detect(t, PreviousTokenHead, OnlyHeads(im.PrevToken, HeadID{1, 0}))
		for l := range 2 {
			for h := range 3 {
				id := HeadID{l, h}
				if v := s.At(l, h); (id == im.PrevToken || id == HeadID{1, 0}) == (v == -1) {
					t.Errorf("head %v scores %g", id, v)
				}
			}
		}
	})
}

// TestSimilarity checks the two error measures and the exclusions on a
// pattern worked by hand.
func TestSimilarity(t *testing.T) {
	att := []float64{
		1, 0, 0,
		0.5, 0.5, 0,
		0.2, 0.6, 0.2,
	}
	det := previousTokenPattern([]int64{7, 8, 9})
	for _, tc := range []struct {
		name string
		o    options
		want float64
	}{
		// (0.5 + 0.6) / 3
		{"mul", options{errorMeasure: Mul}, 1.1 / 3},
		// column 0 out: (0 + 0.6) / (0.5 + 0.6 + 0.2)
		{"mul without BOS", options{errorMeasure: Mul, excludeBOS: true}, 0.6 / 1.3},
		// diagonal out: (0.5 + 0.6) / (0.5 + 0.2 + 0.6)
		{"mul without current", options{errorMeasure: Mul, excludeCurrent: true}, 1.1 / 1.3},
		// |diff| sums to 1 + (0.5 + 0.5) + (0.2 + 0.4 + 0.2) = 2.8; 1 - 2.8/3
		{"abs", options{errorMeasure: Abs}, 1 - 0.933},
		// column 0 out: 1 - (0.5 + 0.4 + 0.2)/3 = 1 - 0.3667
		{"abs without BOS", options{errorMeasure: Abs, excludeBOS: true}, 1 - 0.367},
	} {
		if got := similarity(att, det, 3, &tc.o); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: %.6f, want %.6f", tc.name, got, tc.want)
		}
	}
}

func TestBuiltinPatterns(t *testing.T) {
	tok := []int64{5, 6, 5, 6, 6}
	want := map[string][][]float64{
		"duplicate_token_head": {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {0, 1, 0, 0, 0}, {0, 1, 0, 1, 0}},
		// shifted right: key j+1 for every earlier occurrence j; [4][4]
		// comes from the occurrence at 3, on the diagonal.
		"induction_head":     {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 1, 0, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, 1, 0, 1}},
		"first_token_head":   {{1, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {1, 0, 0, 0, 0}, {1, 0, 0, 0, 0}},
		"current_token_head": {{1, 0, 0, 0, 0}, {0, 1, 0, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, 0, 1, 0}, {0, 0, 0, 0, 1}},
	}
	for name, w := range want {
		p, err := PatternByName(name)
		if err != nil {
			t.Fatal(err)
		}
		got := p(tok)
		for i := range w {
			for j := range w[i] {
				if got[i][j] != w[i][j] {
					t.Errorf("%s: row %d is %v, want %v", name, i, got[i], w[i])
					break
				}
			}
		}
	}
	if _, err := PatternByName("nope"); err == nil || !strings.Contains(err.Error(), "previous_token_head") {
		t.Errorf("an unknown name gave %v, want an error listing the names", err)
	}
}

func TestDetectHeadErrors(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 6)
	one := gotch.MustFromSlice([]int64{0}, []int64{1, 1}, gotchtest.Device(t))
	defer one.Free()
	upper := FixedPattern([][]float64{{0, 1}, {0, 0}})
	two := tok.MustNarrow(1, 0, 2)
	defer two.Free()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		tok     *gotch.Tensor
		pattern Pattern
		opts    []Option
		want    string
	}{
		{"one position", one, PreviousTokenHead, nil, "more than one position"},
		{"wrong size", tok, FixedPattern([][]float64{{1}}), nil, "shape (21, 21)"},
		{"not lower triangular", two, upper, nil, "lower triangular"},
		{"bad measure", tok, PreviousTokenHead, []Option{WithErrorMeasure("sq")}, "error measure"},
		{"bad head", tok, PreviousTokenHead, []Option{OnlyHeads(HeadID{2, 0})}, "not in a model"},
		{"no pattern", tok, nil, nil, "no pattern"},
	} {
		_, err := DetectHead(ctx, im.Model, tc.tok, tc.pattern, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestDetectHeadOnOneSequence(t *testing.T) {
	gotchtest.CheckLeaks(t)
	im := inductionModel(t)
	tok := repeated(t, im, 7)
	row := tok.MustSelect(0, 2) // [pos]
	defer row.Free()
	batch := tok.MustNarrow(0, 2, 1) // [1 pos]
	defer batch.Free()
	ctx := context.Background()
	a, err := DetectHead(ctx, im.Model, row, InductionHead)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DetectHead(ctx, im.Model, batch, InductionHead)
	if err != nil {
		t.Fatal(err)
	}
	gotchtest.Close(t, "[pos] and [1 pos] scores", a.Data, b.Data, 1e-12)
}
