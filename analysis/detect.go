package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// ErrorMeasure is how head detection compares a head's attention pattern
// with a detection pattern, TransformerLens's error_measure.
type ErrorMeasure string

const (
	// Mul is the share of the head's attention that falls where the
	// detection pattern is 1: sum(pattern ⊙ detection) / sum(pattern).
	// Meant for 0/1 detection patterns; it scores 1 for a perfect head.
	Mul ErrorMeasure = "mul"
	// Abs is 1 - sum|pattern - detection| / seq_len, rounded to three
	// decimals as TransformerLens rounds it: 1 for an exact match, down
	// to -1 for the opposite.
	Abs ErrorMeasure = "abs"
)

// Pattern makes the detection pattern for one sequence of tokens: the
// attention [query][key] a head of its kind would have, lower triangular.
type Pattern func(tokens []int64) [][]float64

// The built-in detection patterns. The first three are TransformerLens's
// head_detector patterns; CurrentTokenHead and FirstTokenHead are ARENA's
// current- and first-token detectors written as patterns.
var (
	// PreviousTokenHead attends from each position to the one before.
	PreviousTokenHead Pattern = previousTokenPattern
	// DuplicateTokenHead attends from a token to its earlier occurrences.
	DuplicateTokenHead Pattern = duplicateTokenPattern
	// InductionHead attends from a token to the positions right after its
	// earlier occurrences.
	InductionHead Pattern = inductionPattern
	// CurrentTokenHead attends from each position to itself.
	CurrentTokenHead Pattern = currentTokenPattern
	// FirstTokenHead attends from every position to the first (BOS).
	FirstTokenHead Pattern = firstTokenPattern
)

var patternNames = map[string]Pattern{
	"previous_token_head":  PreviousTokenHead,
	"duplicate_token_head": DuplicateTokenHead,
	"induction_head":       InductionHead,
	"current_token_head":   CurrentTokenHead,
	"first_token_head":     FirstTokenHead,
}

// PatternNames lists the names PatternByName knows.
func PatternNames() []string {
	names := make([]string, 0, len(patternNames))
	for n := range patternNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PatternByName is the built-in pattern of a TransformerLens head name
// ("previous_token_head", "duplicate_token_head", "induction_head") or of
// "current_token_head" or "first_token_head".
func PatternByName(name string) (Pattern, error) {
	if p, ok := patternNames[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown head pattern %q (want one of %v)", name, PatternNames())
}

// FixedPattern is a custom detection pattern [query][key] used as it is
// for every sequence; its size must be the sequence length.
func FixedPattern(p [][]float64) Pattern {
	return func([]int64) [][]float64 { return p }
}

func square(n int) [][]float64 {
	p := make([][]float64, n)
	for i := range p {
		p[i] = make([]float64, n)
	}
	return p
}

func previousTokenPattern(tok []int64) [][]float64 {
	p := square(len(tok))
	for i := 1; i < len(tok); i++ {
		p[i][i-1] = 1
	}
	return p
}

func duplicateTokenPattern(tok []int64) [][]float64 {
	p := square(len(tok))
	for i := range tok {
		for j := range i {
			if tok[i] == tok[j] {
				p[i][j] = 1
			}
		}
	}
	return p
}

// inductionPattern is the duplicate-token pattern shifted one key to the
// right: a query attends to the token after each earlier occurrence of its
// own. The shift can put a 1 on the diagonal (a token repeated at once),
// which TransformerLens keeps; its lower triangle is all it keeps.
func inductionPattern(tok []int64) [][]float64 {
	dup := duplicateTokenPattern(tok)
	p := square(len(tok))
	for i := range p {
		for j := 1; j <= i; j++ {
			p[i][j] = dup[i][j-1]
		}
	}
	return p
}

func currentTokenPattern(tok []int64) [][]float64 {
	p := square(len(tok))
	for i := range p {
		p[i][i] = 1
	}
	return p
}

func firstTokenPattern(tok []int64) [][]float64 {
	p := square(len(tok))
	for i := range p {
		p[i][0] = 1
	}
	return p
}

// checkPattern checks a detection pattern as TransformerLens does: square
// of the sequence's length and lower triangular.
func checkPattern(p [][]float64, n int) error {
	if len(p) != n {
		return fmt.Errorf("the detection pattern must be a lower triangular matrix of shape (%d, %d), the sequence's length; got %d rows", n, n, len(p))
	}
	for i, row := range p {
		if len(row) != n {
			return fmt.Errorf("the detection pattern must be a lower triangular matrix of shape (%d, %d); row %d has %d entries", n, n, i, len(row))
		}
		for j := i + 1; j < n; j++ {
			if row[j] != 0 {
				return fmt.Errorf("the detection pattern must be lower triangular; entry [%d][%d] is %g", i, j, row[j])
			}
		}
	}
	return nil
}

// DetectHead scores every head of the model for how closely its attention
// on tokens ([batch pos]) follows pattern, as TransformerLens's
// detect_head does, and returns the scores [layer head]; with a batch, the
// mean of the rows' scores. Options: ExcludeBOS, ExcludeCurrentToken,
// WithErrorMeasure, OnlyHeads.
func DetectHead(ctx context.Context, m *hookedmodel.HookedTransformer, tokens *gotch.Tensor, pattern Pattern, opts ...Option) (*Table, error) {
	o, err := collect("DetectHead", opts, optExcludeBOS|optExcludeCurrent|optErrorMeasure|optOnlyHeads)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("detect head: nil model")
	}
	if pattern == nil {
		return nil, fmt.Errorf("detect head: no pattern")
	}
	if o.errorMeasure != Mul && o.errorMeasure != Abs {
		return nil, fmt.Errorf("detect head: error measure %q is not %q or %q", o.errorMeasure, Mul, Abs)
	}
	if tokens == nil || tokens.Freed() {
		return nil, fmt.Errorf("detect head: nil or freed tokens")
	}
	if tokens.Dim() == 1 { // [pos]: a batch of one
		s := gotch.NewScope()
		defer s.Close()
		if err := gotch.Try(func() { tokens = must(s.Borrow(tokens)).MustUnsqueeze(0) }); err != nil {
			return nil, err
		}
	}
	if tokens.Dim() != 2 || tokens.Size(1) < 2 {
		return nil, fmt.Errorf("detect head: the sequence must be [batch pos] with more than one position, got %v", tokens.Spec())
	}
	ids, err := gotch.ToSlice[int64](tokens)
	if err != nil {
		return nil, err
	}
	b, n := int(tokens.Size(0)), int(tokens.Size(1))
	detections := make([][][]float64, b)
	for r := range b {
		detections[r] = pattern(ids[r*n : (r+1)*n])
		if err := checkPattern(detections[r], n); err != nil {
			return nil, fmt.Errorf("detect head: %w", err)
		}
	}
	nl, nh := len(m.Blocks), m.Cfg.NHeads
	wanted := make([]bool, nl*nh)
	if len(o.heads) == 0 {
		for i := range wanted {
			wanted[i] = true
		}
	}
	for _, h := range o.heads {
		if h.Layer < 0 || h.Layer >= nl || h.Head < 0 || h.Head >= nh {
			return nil, fmt.Errorf("detect head: head %v is not in a model of %d layers of %d heads", h, nl, nh)
		}
		wanted[h.Layer*nh+h.Head] = true
	}

	layers := map[string]bool{}
	for l := range nl {
		if slices.Contains(wanted[l*nh:(l+1)*nh], true) {
			layers[fmt.Sprintf("blocks.%d.attn.hook_pattern", l)] = true
		}
	}
	out, cache, err := m.RunWithCache(ctx, hookedmodel.Tokens(tokens), hookedmodel.NamesFilter(func(s string) bool { return layers[s] }),
		hookedmodel.Return(hookedmodel.ReturnNone))
	if err != nil {
		return nil, fmt.Errorf("detect head: %w", err)
	}
	defer out.Free()
	defer cache.Free()

	scores := NewTable([]string{"layer", "head"}, nl, nh)
	for i := range scores.Data {
		scores.Data[i] = -1
	}
	for l := range nl {
		if !layers[fmt.Sprintf("blocks.%d.attn.hook_pattern", l)] {
			continue
		}
		vals, err := gotch.ToSlice[float64](cache.MustGet("pattern", l)) // [batch head query key]
		if err != nil {
			return nil, err
		}
		for h := range nh {
			if !wanted[l*nh+h] {
				continue
			}
			var sum float64
			for r := range b {
				att := vals[(r*nh+h)*n*n:][:n*n]
				sum += similarity(att, detections[r], n, &o)
			}
			scores.Set(sum/float64(b), l, h)
		}
	}
	return scores, nil
}

// similarity is TransformerLens's compute_head_attention_similarity_score
// of one head's attention att ([query key], flat) and a detection pattern.
func similarity(att []float64, det [][]float64, n int, o *options) float64 {
	skip := func(q, k int) bool { return (o.excludeBOS && k == 0) || (o.excludeCurrent && q == k) }
	if o.errorMeasure == Abs {
		var diff float64
		for q := range n {
			for k := range n {
				if !skip(q, k) {
					diff += math.Abs(att[q*n+k] - det[q][k])
				}
			}
		}
		return 1 - math.Round(diff/float64(n)*1000)/1000
	}
	var hit, total float64
	for q := range n {
		for k := range n {
			if skip(q, k) {
				continue
			}
			hit += att[q*n+k] * det[q][k]
			total += att[q*n+k]
		}
	}
	return hit / total
}
