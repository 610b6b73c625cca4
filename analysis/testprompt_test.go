package analysis

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golens/golens/gotch/gotchtest"
	"github.com/golens/golens/hookedmodel"
)

// shippedModel loads the shipped induction-2l from the repository
// (package models is a layer above analysis).
func shippedModel(t *testing.T) *hookedmodel.HookedTransformer {
	t.Helper()
	path := filepath.Join("..", "models", "induction-2l", "model.safetensors")
	if _, err := os.Stat(path); err != nil {
		t.Skip("the shipped model's file is not here:", err)
	}
	m, err := hookedmodel.Load(context.Background(), path, hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// On a repeated random sequence the shipped induction model ranks every
// token of the second repeat first.
func TestTestPromptInduction(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := shippedModel(t)
	seq := []int64{12, 51, 7, 33, 60, 2, 45, 19, 28, 9}
	prompt := append(append([]int64{0}, seq...), seq[:3]...) // BOS, the sequence, the start of its repeat
	answer := seq[3:]
	res, err := TestPromptTokens(context.Background(), m, prompt, answer, TopK(3))
	if err != nil {
		t.Fatal(err)
	}
	if want := make([]int, len(answer)); !slices.Equal(res.Ranks(), want) {
		t.Errorf("ranks %v, want all 0\n%s", res.Ranks(), res)
	}
	for i, a := range res.Answers {
		if a.Pos != len(prompt)-1+i || a.Token != answer[i] || a.Str != strconv.FormatInt(answer[i], 10) || a.Prob < 0.5 ||
			len(a.Top) != 3 || a.Top[0].Token != a.Token || a.Top[0].Logit != a.Logit || a.Top[1].Logit > a.Top[0].Logit {
			t.Errorf("answer %d: %+v", i, a)
		}
	}
	// The first time through, the sequence is random: the same token is not predicted.
	first, err := TestPromptTokens(context.Background(), m, []int64{0, 12, 51, 7}, []int64{33})
	if err != nil {
		t.Fatal(err)
	}
	if first.Answers[0].Prob > res.Answers[0].Prob/2 || len(first.Answers[0].Top) != 10 {
		t.Errorf("first repeat: %+v", first.Answers[0])
	}
	s := res.String()
	for _, want := range []string{
		"Tokenized prompt: ['0', '12', '51', '7', '33', '60', '2', '45', '19', '28', '9', '12', '51', '7']\n",
		"Tokenized answer: ['33', '60', '2', '45', '19', '28', '9']\n",
		"Performance on answer token:\nRank: 0        Logit: ",
		"Top 2th token. Logit: ",
		"Ranks of the answer tokens: [('33', 0), ('60', 0), ('2', 0), ('45', 0), ('19', 0), ('28', 0), ('9', 0)]\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	for _, tc := range []struct {
		prompt, answer []int64
		opts           []Option
		want           string
	}{
		{nil, []int64{1}, nil, "prompt has no tokens"},
		{[]int64{0}, nil, nil, "answer has no tokens"},
		{make([]int64, 40), []int64{1}, nil, "exceed the model's context of 40"},
		{[]int64{0, 64}, []int64{1}, nil, "token 64 is outside"},
		{[]int64{0}, []int64{1}, []Option{TopK(65)}, "top-k 65"},
	} {
		if _, err := TestPromptTokens(context.Background(), m, tc.prompt, tc.answer, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TestPromptTokens(%v, %v): %v, want an error mentioning %q", tc.prompt, tc.answer, err, tc.want)
		}
	}
	if _, err := TestPrompt(context.Background(), m, "a", "b"); err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Errorf("TestPrompt on a model without a tokenizer: %v", err)
	}
}

// TestPrompt tokenizes as test_prompt: the prompt with BOS (or not, with
// PrependBOS(false)), the answer without, a space put before it.
func TestTestPromptText(t *testing.T) {
	gotchtest.CheckLeaks(t)
	c := hookedmodel.DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NHeads, c.NCtx, c.DVocab, c.ActFn = 1, 8, 4, 2, 16, 50257, "gelu_new"
	m, err := hookedmodel.New(c, hookedmodel.WithSeed(1), hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	ctx := context.Background()
	for _, tc := range []struct {
		name, answer     string
		opts             []Option
		prompt, answerIs []string
	}{
		{"defaults", "mat", nil, []string{"<|endoftext|>", "The", " cat", " sat"}, []string{" mat"}},
		{"answer with its space", " mat", nil, []string{"<|endoftext|>", "The", " cat", " sat"}, []string{" mat"}},
		{"no space", "mat", []Option{PrependSpaceToAnswer(false)}, []string{"<|endoftext|>", "The", " cat", " sat"}, []string{"mat"}},
		{"no BOS", "on the mat", []Option{PrependBOS(false)}, []string{"The", " cat", " sat"}, []string{" on", " the", " mat"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := TestPrompt(ctx, m, "The cat sat", tc.answer, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.PromptStrTokens, tc.prompt) || !slices.Equal(res.AnswerStrTokens, tc.answerIs) || len(res.Answers) != len(tc.answerIs) {
				t.Fatalf("tokenized %q and %q", res.PromptStrTokens, res.AnswerStrTokens)
			}
			// The same as on its ids.
			byIDs, err := TestPromptTokens(ctx, m, res.PromptTokens, res.AnswerTokens)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range res.Answers {
				b := byIDs.Answers[i]
				if a.Rank != b.Rank || a.Logit != b.Logit || a.Str != tc.answerIs[i] || len(a.Top) != 10 || a.Rank < 10 && a.Top[a.Rank].Logit != a.Logit {
					t.Errorf("answer %d: %+v, on ids %+v", i, a, b)
				}
			}
			if !strings.Contains(res.String(), "Tokenized prompt: ['") {
				t.Errorf("String():\n%s", res)
			}
		})
	}
}

// With several answers, test_prompt ranks the first token of each at the
// prompt's last position; each must agree with a single-answer test of that
// token, which runs the model on the prompt followed by it.
func TestTestPromptAnswers(t *testing.T) {
	gotchtest.CheckLeaks(t)
	c := hookedmodel.DefaultConfig()
	c.NLayers, c.DModel, c.DHead, c.NHeads, c.NCtx, c.DVocab, c.ActFn = 1, 8, 4, 2, 16, 50257, "gelu_new"
	m, err := hookedmodel.New(c, hookedmodel.WithSeed(2), hookedmodel.OnDevice(gotchtest.Device(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	ctx := context.Background()
	res, err := TestPromptAnswers(ctx, m, "The cat sat", []string{"mat", " on", "floor rug"}, TopK(3))
	if err != nil {
		t.Fatal(err)
	}
	wantAlt := [][]string{{" mat"}, {" on"}, {" floor", " rug"}}
	if len(res.Alternatives) != 3 || len(res.Answers) != 3 || !slices.Equal(res.AnswerStrTokens, []string{" mat", " on", " floor"}) {
		t.Fatalf("answers %q, alternatives %q", res.AnswerStrTokens, res.Alternatives)
	}
	var ranks []string
	for i, a := range res.Answers {
		if !slices.Equal(res.Alternatives[i], wantAlt[i]) {
			t.Errorf("alternative %d: %q, want %q", i, res.Alternatives[i], wantAlt[i])
		}
		single, err := TestPromptTokens(ctx, m, res.PromptTokens, []int64{a.Token}, TopK(3))
		if err != nil {
			t.Fatal(err)
		}
		b := single.Answers[0]
		if a.Pos != len(res.PromptTokens)-1 || a.Pos != b.Pos || a.Rank != b.Rank || math.Abs(a.Logit-b.Logit) > 1e-4*math.Abs(b.Logit) ||
			math.Abs(a.Prob-b.Prob) > 1e-4*b.Prob || len(a.Top) != 3 || a.Top[0].Token != b.Top[0].Token {
			t.Errorf("answer %d: %+v, alone %+v", i, a, b)
		}
		ranks = append(ranks, fmt.Sprintf("(%s, %d)", pyRepr(a.Str), a.Rank))
	}
	out := res.String()
	for _, want := range []string{
		"Tokenized answers: [[' mat'], [' on'], [' floor', ' rug']]\n",
		"Performance on answer tokens:\n",
		"Ranks of the answer tokens: [[" + strings.Join(ranks, ", ") + "]]\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "Top 0th token"); n != 1 {
		t.Errorf("String() shows the top tokens %d times, want once (one position):\n%s", n, out)
	}

	// One answer in a list is TestPrompt.
	one, err := TestPromptAnswers(ctx, m, "The cat sat", []string{"on the mat"})
	if err != nil {
		t.Fatal(err)
	}
	if one.Alternatives != nil || len(one.Answers) != 3 || !strings.Contains(one.String(), "Tokenized answer: [' on', ' the', ' mat']") {
		t.Errorf("one answer in a list:\n%s", one)
	}
	for _, bad := range []struct {
		answers []string
		want    string
	}{
		{nil, "no answers"},
		{[]string{}, "no answers"},
		{[]string{"mat", ""}, "answer 1 has no tokens"},
	} {
		if _, err := TestPromptAnswers(ctx, m, "The cat sat", bad.answers, PrependSpaceToAnswer(false)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("answers %q: %v, want an error containing %q", bad.answers, err, bad.want)
		}
	}
}

func TestPyRepr(t *testing.T) {
	for in, want := range map[string]string{
		" road": "' road'", "it's": `"it's"`, `say "it's"`: `'say "it\'s"'`, "a\nb": `'a\nb'`, `back\slash`: `'back\\slash'`,
	} {
		if got := pyRepr(in); got != want {
			t.Errorf("pyRepr(%q) = %s, want %s", in, got, want)
		}
	}
}
