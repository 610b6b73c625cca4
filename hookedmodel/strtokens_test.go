package hookedmodel

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// gpt2TinyModel is a one-layer model with GPT-2's tokenizer attached.
func gpt2TinyModel(t *testing.T) *HookedTransformer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NHeads, cfg.DMLP = 1, 8, 4, 2, 16
	cfg.NCtx, cfg.DVocab, cfg.ActFn = 16, 50257, "gelu_new"
	m, err := New(cfg, OnDevice(gotchtest.Device(t)), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// TestStrTokensForms: the string tokens of a text, of its ids, of a tensor
// of them and of a batch agree, and each empty input gives its documented
// empty result or an error, never a panic.
func TestStrTokensForms(t *testing.T) {
	m := gpt2TinyModel(t) // before CheckLeaks: freed by t.Cleanup, after it
	gotchtest.CheckLeaks(t)
	dev := gotchtest.Device(t)
	noBOS := PrependBOS(false)

	hello, err := m.ToStrTokens("Hello world")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"<|endoftext|>", "Hello", " world"}; !slices.Equal(hello, want) {
		t.Fatalf("ToStrTokens: %q, want %q", hello, want)
	}
	tokens, err := m.ToTokens([]string{"Hello world", "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Free()
	rows := gotch.MustToSlice[int64](tokens)

	// ids: the first row of the batch is "Hello world" with BOS.
	got, err := m.IDsToStrTokens(rows[:3])
	if err != nil || !slices.Equal(got, hello) {
		t.Errorf("IDsToStrTokens: %q, %v; want %q", got, err, hello)
	}

	// A batch tensor: the second row is padded with the pad token, which
	// for GPT-2 is <|endoftext|>, as to_str_tokens of the padded row shows.
	batch, err := m.TensorToStrTokens(tokens)
	want := [][]string{hello, {"<|endoftext|>", "Hi", "<|endoftext|>"}}
	if err != nil || fmt.Sprintf("%q", batch) != fmt.Sprintf("%q", want) {
		t.Errorf("TensorToStrTokens([2 3]): %q, %v; want %q", batch, err, want)
	}
	// One row, an int32 row, and a scalar.
	row := tokens.MustSelect(0, 0)
	defer row.Free()
	if got, err := m.TensorToStrTokens(row); err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", [][]string{hello}) {
		t.Errorf("TensorToStrTokens([3]): %q, %v", got, err)
	}
	row32 := row.MustTo(gotch.Int32)
	defer row32.Free()
	if got, err := m.TensorToStrTokens(row32); err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", [][]string{hello}) {
		t.Errorf("TensorToStrTokens(int32 [3]): %q, %v", got, err)
	}
	scalar := row.MustSelect(0, 1)
	defer scalar.Free()
	if got, err := m.TensorToStrTokens(scalar); err != nil || fmt.Sprintf("%q", got) != `[["Hello"]]` {
		t.Errorf("TensorToStrTokens(scalar): %q, %v", got, err)
	}

	// A batch of texts: each on its own, not padded.
	texts, err := m.TextsToStrTokens([]string{"Hello world", "Hi"}, noBOS)
	if err != nil || fmt.Sprintf("%q", texts) != `[["Hello" " world"] ["Hi"]]` {
		t.Errorf("TextsToStrTokens: %q, %v", texts, err)
	}

	s := gotch.NewScope()
	defer s.Close()
	zeros := func(dt gotch.DType, shape ...int64) *gotch.Tensor {
		return s.Attach(gotch.MustZeros(shape, dt, dev))
	}
	ids := func(v ...int64) *gotch.Tensor {
		return s.Attach(gotch.MustFromSlice(v, []int64{int64(len(v))}, dev))
	}
	freed := ids(1, 2)
	freed.Free()
	outOfRange := s.Attach(gotch.MustFromSlice([]int64{1, 2, 3, 50257}, []int64{2, 2}, dev))

	strs := func(got []string, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("%q", got)
	}
	batches := func(got [][]string, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("%q", got)
	}
	for _, tc := range []struct {
		name string
		call func() string
		want string // the result, or "error: " and a part of the error
	}{
		{"IDsToStrTokens(nil)", func() string { return strs(m.IDsToStrTokens(nil)) }, "[]"},
		{"IDsToStrTokens([]int64{})", func() string { return strs(m.IDsToStrTokens([]int64{})) }, "[]"},
		{"IDsToStrTokens(-1)", func() string { return strs(m.IDsToStrTokens([]int64{5, -1})) }, "error: to str tokens: position 1: token id -1 out of range [0, 50257)"},
		{"IDsToStrTokens(50257)", func() string { return strs(m.IDsToStrTokens([]int64{50257})) }, "error: to str tokens: position 0: token id 50257 out of range"},
		{"IDsToStrTokens(<|endoftext|>)", func() string { return strs(m.IDsToStrTokens([]int64{50256})) }, `["<|endoftext|>"]`},
		{"TextsToStrTokens(nil)", func() string { return batches(m.TextsToStrTokens(nil)) }, "[]"},
		{`TextsToStrTokens("")`, func() string { return batches(m.TextsToStrTokens([]string{"", ""})) }, `[["<|endoftext|>"] ["<|endoftext|>"]]`},
		{`TextsToStrTokens("") without BOS`, func() string { return batches(m.TextsToStrTokens([]string{""}, noBOS)) }, `[[]]`},
		{"TensorToStrTokens(nil)", func() string { return batches(m.TensorToStrTokens(nil)) }, "error: to str tokens: tokens: nil tensor"},
		{"TensorToStrTokens(freed)", func() string { return batches(m.TensorToStrTokens(freed)) }, "is freed"},
		{"TensorToStrTokens([0])", func() string { return batches(m.TensorToStrTokens(zeros(gotch.Int64, 0))) }, "[[]]"},
		{"TensorToStrTokens([2 0])", func() string { return batches(m.TensorToStrTokens(zeros(gotch.Int64, 2, 0))) }, "[[] []]"},
		{"TensorToStrTokens([0 5])", func() string { return batches(m.TensorToStrTokens(zeros(gotch.Int64, 0, 5))) }, "[]"},
		{"TensorToStrTokens(float)", func() string { return batches(m.TensorToStrTokens(zeros(gotch.Float, 2))) }, "want an integer dtype"},
		{"TensorToStrTokens(bool)", func() string { return batches(m.TensorToStrTokens(zeros(gotch.Bool, 2))) }, "want an integer dtype"},
		{"TensorToStrTokens([1 2 3])", func() string { return batches(m.TensorToStrTokens(zeros(gotch.Int64, 1, 2, 3))) }, "want [pos] or [batch pos]"},
		{"TensorToStrTokens(out of range)", func() string { return batches(m.TensorToStrTokens(outOfRange)) }, "error: to str tokens: batch row 1: position 1: token id 50257 out of range"},
		{"TensorToStrTokens([-3])", func() string { return batches(m.TensorToStrTokens(ids(-3))) }, "error: to str tokens: position 0: token id -3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("panicked: %v", v)
					}
				}()
				got = tc.call()
			}()
			if strings.HasPrefix(tc.want, "error: ") || !strings.HasPrefix(tc.want, "[") {
				if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
					t.Errorf("got %s, want an error saying %q", got, strings.TrimPrefix(tc.want, "error: "))
				}
				return
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestStrTokensNoTokenizer: each form says the model has no tokenizer.
func TestStrTokensNoTokenizer(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 1)
	defer m.Free()
	tokens := gotch.MustFromSlice([]int64{1, 2}, []int64{2}, gotchtest.Device(t))
	defer tokens.Free()
	var errs []error
	_, err := m.IDsToStrTokens([]int64{1})
	errs = append(errs, err)
	_, err = m.TensorToStrTokens(tokens)
	errs = append(errs, err)
	_, err = m.TextsToStrTokens([]string{"a"})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "has no tokenizer") {
			t.Errorf("call %d: %v, want an error saying the model has no tokenizer", i, err)
		}
	}
}
