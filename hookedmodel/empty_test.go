package hookedmodel

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

// TestEmptyInputs calls the tokenizer-facing functions and the passes with
// empty and nil inputs: each gives an error that says what was empty, or
// its documented empty result, and none panics.
func TestEmptyInputs(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := gpt2TinyModel(t)
	dev := gotchtest.Device(t)
	s := gotch.NewScope()
	defer s.Close()
	zeros := func(dt gotch.DType, shape ...int64) *gotch.Tensor {
		return s.Attach(gotch.MustZeros(shape, dt, dev))
	}
	ctx := context.Background()
	noBOS := PrependBOS(false)
	// pass and cached turn a call's results into its error, freeing what it made.
	pass := func(out *Output, err error) error { out.Free(); return err }
	cached := func(out *Output, c *ActivationCache, err error) error { out.Free(); c.Free(); return err }
	shapeIs := func(want string) func(*gotch.Tensor, error) error {
		return func(x *gotch.Tensor, err error) error {
			if err != nil {
				return err
			}
			defer x.Free()
			if got := fmt.Sprint(x.Shape()); got != want {
				return fmt.Errorf("shape %s, want %s", got, want)
			}
			return nil
		}
	}
	strs := func(want string) func([]string, error) error {
		return func(got []string, err error) error {
			if err == nil && fmt.Sprintf("%q", got) != want {
				err = fmt.Errorf("got %q, want %s", got, want)
			}
			return err
		}
	}

	for _, tc := range []struct {
		name string
		call func() error
		want string // in the error; "" when the call succeeds with its documented empty result
	}{
		{"ToTokens(nil)", func() error { return shapeIs("")(m.ToTokens(nil)) }, "to tokens: no texts"},
		{"ToTokens([]string{})", func() error { return shapeIs("")(m.ToTokens([]string{})) }, "to tokens: no texts"},
		{`ToTokens("") is BOS`, func() error { return shapeIs("[1 1]")(m.ToTokens([]string{""})) }, ""},
		{`ToTokens("") without BOS is [1 0]`, func() error { return shapeIs("[1 0]")(m.ToTokens([]string{""}, noBOS)) }, ""},
		{`ToStrTokens("")`, func() error { return strs(`["<|endoftext|>"]`)(m.ToStrTokens("")) }, ""},
		{`ToStrTokens("") without BOS`, func() error { return strs(`[]`)(m.ToStrTokens("", noBOS)) }, ""},
		{"ToString(nil)", func() error {
			s, err := m.ToString(nil)
			if err == nil && s != "" {
				err = fmt.Errorf("got %q", s)
			}
			return err
		}, ""},
		{"ToString([]int64{})", func() error { _, err := m.ToString([]int64{}); return err }, ""},
		{`ToSingleToken("")`, func() error { _, err := m.ToSingleToken(""); return err }, `text "" is not a single token: it encodes to 0 tokens`},
		{"GetTokenPosition(nil token)", func() error { _, err := m.GetTokenPosition(nil, "a b", "first"); return err }, "token must be a string, int or int64, not <nil>"},
		{`GetTokenPosition("" token)`, func() error { _, err := m.GetTokenPosition("", "a b", "first"); return err }, "not a single token"},
		{"GetTokenPosition(nil input)", func() error { _, err := m.GetTokenPosition(" b", nil, "first"); return err }, "input must be a string, []int64 or []int, not <nil>"},
		{`GetTokenPosition("" input)`, func() error { _, err := m.GetTokenPosition(" b", "", "first", noBOS); return err }, "does not occur in the input"},
		{"GetTokenPosition([]int64{})", func() error { _, err := m.GetTokenPosition(5, []int64{}, "last"); return err }, "does not occur in the input"},
		{"GetTokenPosition(empty mode)", func() error { _, err := m.GetTokenPosition(5, []int64{5}, ""); return err }, `mode must be "first" or "last"`},
		{"Forward(nil input)", func() error { return pass(m.Forward(ctx, nil)) }, "no input"},
		{"Forward(Tokens(nil))", func() error { return pass(m.Forward(ctx, Tokens(nil))) }, "tokens: nil"},
		{"Forward(Tokens [0 5])", func() error { return pass(m.Forward(ctx, Tokens(zeros(gotch.Int64, 0, 5)))) }, "batch > 0 and pos > 0"},
		{"Forward(Tokens [2 0])", func() error { return pass(m.Forward(ctx, Tokens(zeros(gotch.Int64, 2, 0)))) }, "batch > 0 and pos > 0"},
		{"Forward(Tokens [0])", func() error { return pass(m.Forward(ctx, Tokens(zeros(gotch.Int64, 0)))) }, "batch > 0 and pos > 0"},
		{"Forward(Text())", func() error { return pass(m.Forward(ctx, Text())) }, "text input: no texts"},
		{`Forward(Text("")) without BOS`, func() error { return pass(m.Forward(ctx, Text(""), noBOS)) }, "the texts make no tokens"},
		{`Forward(Text("", "")) left-padded without BOS`, func() error {
			return pass(m.Forward(ctx, Text("", ""), noBOS, PaddingSide("left")))
		}, "the texts make no tokens"},
		{"Forward(Residual [0 3 d])", func() error {
			return pass(m.Forward(ctx, Residual(zeros(gotch.Float, 0, 3, 8)), StartAtLayer(0)))
		}, "batch > 0 and pos > 0"},
		{"Forward(Residual [1 0 d])", func() error {
			return pass(m.Forward(ctx, Residual(zeros(gotch.Float, 1, 0, 8)), StartAtLayer(0)))
		}, "batch > 0 and pos > 0"},
		{"Forward(Residual(nil))", func() error { return pass(m.Forward(ctx, Residual(nil))) }, "residual: nil"},
		{"RunWithCache(Text())", func() error { return cached(m.RunWithCache(ctx, Text())) }, "text input: no texts"},
		{"RunWithCache(Tokens [0 5])", func() error { return cached(m.RunWithCache(ctx, Tokens(zeros(gotch.Int64, 0, 5)))) }, "batch > 0 and pos > 0"},
		{"RunWithHooks(Text(), nil hooks)", func() error { return pass(m.RunWithHooks(ctx, Text(), nil)) }, "text input: no texts"},
		{"RunWithHooks(Tokens [2 0], no hooks)", func() error { return pass(m.RunWithHooks(ctx, Tokens(zeros(gotch.Int32, 2, 0)), []Hook{})) }, "batch > 0 and pos > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("panicked: %v", v)
					}
				}()
				err = tc.call()
			}()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want the documented empty result", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
