package analysis

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
)

// PromptTest is how a model does on a prompt's answer, token by token:
// TransformerLens's utils.test_prompt, returned instead of printed
// (String prints it as test_prompt does).
type PromptTest struct {
	// PromptTokens are the prompt's ids, BOS first when prepended, and
	// PromptStrTokens their strings; AnswerTokens and AnswerStrTokens
	// the answer's, tokenized without BOS. A model without a tokenizer
	// shows each token as its id in decimal.
	PromptTokens    []int64
	PromptStrTokens []string
	AnswerTokens    []int64
	AnswerStrTokens []string
	// Alternatives, set only by TestPromptAnswers with several answers,
	// are each answer's string tokens; then only each answer's first
	// token is tested (AnswerTokens holds them), all at the prompt's last
	// position, as test_prompt does with a list of answers.
	Alternatives [][]string
	// Answers has one entry per answer token, in order.
	Answers []AnswerPerformance
}

// AnswerPerformance is the model's prediction of one answer token.
type AnswerPerformance struct {
	// Pos is the position of the prompt+answer sequence whose logits
	// predict this token (the one before it).
	Pos   int
	Token int64
	Str   string
	// Rank is 0 when the token is the most likely one: how many tokens
	// have a larger logit (ties go to the answer).
	Rank  int
	Logit float64
	Prob  float64
	// Top are the TopK most likely tokens at Pos, most likely first.
	Top []Prediction
}

// Prediction is one of a position's most likely tokens.
type Prediction struct {
	Token int64
	Str   string
	Logit float64
	Prob  float64
}

// Ranks are the answer tokens' ranks, in order.
func (r *PromptTest) Ranks() []int {
	ranks := make([]int, len(r.Answers))
	for i, a := range r.Answers {
		ranks[i] = a.Rank
	}
	return ranks
}

// String prints the result as TransformerLens's test_prompt does with
// print_details: the tokenized prompt and answer, then for each answer
// token its rank, logit and probability and the top-k tokens, then the
// ranks of the answer tokens.
func (r *PromptTest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tokenized prompt: %s\n", pyList(r.PromptStrTokens))
	// Several answers share one position: one block, ranks in one list.
	blocks := make([][]AnswerPerformance, len(r.Answers))
	for i := range r.Answers {
		blocks[i] = r.Answers[i : i+1]
	}
	if r.Alternatives != nil {
		lists := make([]string, len(r.Alternatives))
		for i, a := range r.Alternatives {
			lists[i] = pyList(a)
		}
		fmt.Fprintf(&b, "Tokenized answers: [%s]\n", strings.Join(lists, ", "))
		blocks = [][]AnswerPerformance{r.Answers}
	} else {
		fmt.Fprintf(&b, "Tokenized answer: %s\n", pyList(r.AnswerStrTokens))
	}
	ranks := make([]string, len(blocks))
	for i, block := range blocks {
		plural := map[bool]string{true: "s"}[len(block) > 1]
		fmt.Fprintf(&b, "Performance on answer token%s:\n", plural)
		pairs := make([]string, len(block))
		for j, a := range block {
			fmt.Fprintf(&b, "Rank: %-8d Logit: %5.2f Prob: %5.2f%% Token: |%s|\n", a.Rank, a.Logit, 100*a.Prob, a.Str)
			pairs[j] = fmt.Sprintf("(%s, %d)", pyRepr(a.Str), a.Rank)
		}
		for j, p := range block[0].Top {
			fmt.Fprintf(&b, "Top %dth token. Logit: %5.2f Prob: %5.2f%% Token: |%s|\n", j, p.Logit, 100*p.Prob, p.Str)
		}
		ranks[i] = pairs[0]
		if r.Alternatives != nil {
			ranks[i] = "[" + strings.Join(pairs, ", ") + "]"
		}
	}
	fmt.Fprintf(&b, "Ranks of the answer tokens: [%s]\n", strings.Join(ranks, ", "))
	return b.String()
}

// pyList writes strs as Python prints a list of strings.
func pyList(strs []string) string {
	q := make([]string, len(strs))
	for i, s := range strs {
		q[i] = pyRepr(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// pyRepr quotes s as Python's repr does: single quotes unless s holds a
// single quote and no double quote.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, c := range s {
		switch {
		case c == '\\' || c == rune(quote):
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// TestPrompt runs the model on prompt followed by answer and reports the
// rank, logit and probability of each answer token and the top-k tokens
// where it is predicted, as TransformerLens's utils.test_prompt: the
// prompt is tokenized with BOS first as the model's default_prepend_bos
// says (PrependBOS overrides it), the answer without BOS and, unless
// PrependSpaceToAnswer(false), with a space put before it when it has
// none. The model needs a tokenizer; TestPromptTokens takes ids.
// Options: TopK (default 10, as test_prompt's), PrependBOS,
// PrependSpaceToAnswer.
func TestPrompt(ctx context.Context, m *hookedmodel.HookedTransformer, prompt, answer string, opts ...Option) (*PromptTest, error) {
	o, err := collect("TestPrompt", opts, promptOptions)
	if err != nil {
		return nil, err
	}
	return testPromptText(ctx, m, prompt, []string{answer}, o)
}

// promptOptions are the options TestPrompt and TestPromptAnswers read.
const promptOptions = optTopK | optPrependBOS | optAnswerSpace

// TestPromptAnswers is TestPrompt with a list of answers, as test_prompt
// takes one: with a single answer it is TestPrompt; with several, the
// first token of each is ranked at the prompt's last position (the rest of
// each answer is shown in Alternatives but not tested). Options: those of
// TestPrompt.
func TestPromptAnswers(ctx context.Context, m *hookedmodel.HookedTransformer, prompt string, answers []string, opts ...Option) (*PromptTest, error) {
	o, err := collect("TestPromptAnswers", opts, promptOptions)
	if err != nil {
		return nil, err
	}
	return testPromptText(ctx, m, prompt, answers, o)
}

// testPromptText tokenizes prompt and answers as TestPrompt says, and
// tests them.
func testPromptText(ctx context.Context, m *hookedmodel.HookedTransformer, prompt string, answers []string, o options) (*PromptTest, error) {
	if m == nil {
		return nil, fmt.Errorf("test prompt: nil model")
	}
	if m.Tokenizer == nil {
		return nil, fmt.Errorf("test prompt: model %s has no tokenizer (TestPromptTokens takes token ids)", m.Cfg.ModelName)
	}
	if len(answers) == 0 {
		return nil, fmt.Errorf("test prompt: no answers")
	}
	var run []hookedmodel.RunOption
	if o.prependBOS != nil {
		run = append(run, hookedmodel.PrependBOS(*o.prependBOS))
	}
	promptIDs, err := idsOf(m, prompt, run...)
	if err != nil {
		return nil, fmt.Errorf("test prompt: prompt: %w", err)
	}
	answerIDs := make([][]int64, len(answers))
	for i, answer := range answers {
		if o.answerSpace && !strings.HasPrefix(answer, " ") {
			answer = " " + answer
		}
		if answerIDs[i], err = idsOf(m, answer, hookedmodel.PrependBOS(false)); err != nil {
			return nil, fmt.Errorf("test prompt: answer %q: %w", answers[i], err)
		}
	}
	return testPrompt(ctx, m, promptIDs, answerIDs, o)
}

// idsOf tokenizes one text into ids.
func idsOf(m *hookedmodel.HookedTransformer, text string, opts ...hookedmodel.RunOption) ([]int64, error) {
	t, err := m.ToTokens([]string{text}, opts...)
	if err != nil {
		return nil, err
	}
	defer t.Free()
	return gotch.ToSlice[int64](t)
}

// TestPromptTokens is TestPrompt on token ids: prompt (with BOS if the
// model expects one: nothing is prepended) and answer. Options: TopK.
func TestPromptTokens(ctx context.Context, m *hookedmodel.HookedTransformer, prompt, answer []int64, opts ...Option) (*PromptTest, error) {
	o, err := collect("TestPromptTokens", opts, optTopK)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("test prompt: nil model")
	}
	return testPrompt(ctx, m, prompt, [][]int64{answer}, o)
}

// testPrompt ranks one answer token by token after prompt, or, given
// several answers, the first token of each after prompt.
func testPrompt(ctx context.Context, m *hookedmodel.HookedTransformer, prompt []int64, answers [][]int64, o options) (*PromptTest, error) {
	// tested are the tokens ranked; follow those fed after the prompt.
	tested, follow := answers[0], answers[0]
	if len(answers) > 1 {
		tested, follow = make([]int64, len(answers)), nil
		for i, a := range answers {
			if len(a) == 0 {
				return nil, fmt.Errorf("test prompt: answer %d has no tokens", i)
			}
			tested[i] = a[0]
		}
	}
	np, na := len(prompt), len(follow)
	switch {
	case np == 0:
		return nil, fmt.Errorf("test prompt: the prompt has no tokens (nothing predicts the answer's first token)")
	case len(tested) == 0:
		return nil, fmt.Errorf("test prompt: the answer has no tokens")
	case np+na > m.Cfg.NCtx:
		return nil, fmt.Errorf("test prompt: %d prompt and %d answer tokens exceed the model's context of %d", np, na, m.Cfg.NCtx)
	}
	vocab := m.Cfg.DVocabOut
	k := 10
	if o.topKSet {
		k = o.topK
	}
	if k < 0 || k > vocab {
		return nil, fmt.Errorf("test prompt: top-k %d is not within [0, %d]", k, vocab)
	}
	for _, id := range append(append([]int64{}, prompt...), tested...) {
		if id < 0 || id >= int64(m.Cfg.DVocab) {
			return nil, fmt.Errorf("test prompt: token %d is outside the vocabulary [0, %d)", id, m.Cfg.DVocab)
		}
	}
	rows := max(na, 1) // the logits at positions np-1 .. np+rows-2 predict the tested tokens
	logits, err := logitRows(ctx, m, append(append([]int64{}, prompt...), follow...), np-1, rows)
	if err != nil {
		return nil, fmt.Errorf("test prompt: %w", err)
	}

	str := func(id int64) string {
		if m.Tokenizer == nil {
			return strconv.FormatInt(id, 10)
		}
		s, _ := m.Tokenizer.Token(int(id))
		return s
	}
	strs := func(ids []int64) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = str(id)
		}
		return out
	}
	res := &PromptTest{PromptTokens: prompt, PromptStrTokens: strs(prompt), AnswerTokens: tested, AnswerStrTokens: strs(tested)}
	if len(answers) > 1 {
		for _, a := range answers {
			res.Alternatives = append(res.Alternatives, strs(a))
		}
	}
	order := make([]int, vocab)
	for i, tok := range tested {
		r := min(i, rows-1)
		row := logits[r*vocab : (r+1)*vocab]
		probs := softmax(row)
		a := AnswerPerformance{Pos: np - 1 + r, Token: tok, Str: str(tok), Logit: row[tok], Prob: probs[tok]}
		for _, l := range row {
			if l > a.Logit {
				a.Rank++
			}
		}
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(x, y int) bool { return row[order[x]] > row[order[y]] })
		for _, j := range order[:k] {
			a.Top = append(a.Top, Prediction{Token: int64(j), Str: str(int64(j)), Logit: row[j], Prob: probs[j]})
		}
		res.Answers = append(res.Answers, a)
	}
	return res, nil
}

// logitRows runs the model on seq and returns, in float64, the logits
// [n vocab] at positions from .. from+n-1.
func logitRows(ctx context.Context, m *hookedmodel.HookedTransformer, seq []int64, from, n int) ([]float64, error) {
	tokens, err := gotch.FromSlice(seq, []int64{1, int64(len(seq))}, m.Device())
	if err != nil {
		return nil, err
	}
	defer tokens.Free()
	out, err := m.Forward(ctx, hookedmodel.Tokens(tokens), hookedmodel.Return(hookedmodel.ReturnLogits))
	if err != nil {
		return nil, err
	}
	defer out.Free()
	var logits []float64
	err = gotch.Try(func() {
		s := gotch.NewScope()
		defer s.Close()
		l := must(s.Borrow(out.Logits)) // [1 pos d_vocab]
		logits = must(gotch.ToSlice[float64](l.MustSelect(0, 0).MustNarrow(0, int64(from), int64(n)).MustTo(gotch.Double)))
	})
	return logits, err
}

// softmax of a row, in float64.
func softmax(row []float64) []float64 {
	mx := row[0]
	for _, v := range row {
		mx = max(mx, v)
	}
	out := make([]float64, len(row))
	var sum float64
	for i, v := range row {
		out[i] = math.Exp(v - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}
