package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var asJSON, allPositions bool
	var topK int
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a model: the loss and the most likely next tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := atLeast("top", topK, 1); err != nil {
				return err
			}
			m, input, done, err := loadWithInput(cmd, &mf, &in)
			if err != nil {
				return err
			}
			defer done()
			out, err := m.Forward(cmd.Context(), input, hookedmodel.Return(hookedmodel.ReturnBoth))
			if err != nil {
				return err
			}
			defer out.Free()
			res, err := summarize(m, out, topK, allPositions)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(res)
			}
			fmt.Fprintf(w, "model %s on %s: %d×%d tokens, loss %.4f\n", res.Model, res.Device, len(res.Tokens), len(res.Tokens[0]), res.Loss)
			for b, row := range res.Next {
				fmt.Fprintf(w, "row %d, tokens:", b)
				for p := range res.Tokens[b] {
					fmt.Fprintf(w, " %s", res.tokenLabel(b, p))
				}
				fmt.Fprintln(w)
				for p, preds := range res.positions(b) {
					fmt.Fprintf(w, "row %d, after position %d %s:", b, p, res.tokenLabel(b, p))
					printPreds(w, preds)
				}
				fmt.Fprintf(w, "row %d, next token:", b)
				printPreds(w, row)
			}
			return nil
		},
	}
	mf.register(cmd)
	in.register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&topK, "top", 5, "how many next-token predictions to show per row (and per position)")
	cmd.Flags().BoolVar(&allPositions, "all-positions", false, "also show the top predictions after every position, not only the last")
	return cmd
}

type runResult struct {
	Model  string       `json:"model"`
	Device string       `json:"device"`
	Tokens [][]int64    `json:"tokens"`
	Loss   number       `json:"loss"`
	Next   [][]nextProb `json:"next"` // per row: the most likely tokens after the last position
	// StrTokens are the tokens as strings, per row (absent for a model
	// without a tokenizer, whose tokens are only ids).
	StrTokens [][]string `json:"str_tokens,omitempty"`
	// Positions, with --all-positions, are the most likely tokens after
	// every position: [row][pos][rank]. Its last position is Next.
	Positions [][][]nextProb `json:"positions,omitempty"`
	// Processing is the weight processing the model went through: each
	// step asked for, whether it ran, and why not.
	Processing []hookedmodel.ProcessingStep `json:"processing"`
}

type nextProb struct {
	Token int64  `json:"token"`
	Str   string `json:"str,omitempty"`
	Prob  number `json:"prob"`
}

// number is a float64 that JSON encodes as null when it is NaN or
// infinite (JSON has no such numbers), so --json prints what a model with
// non-finite weights (--allow-nonfinite) computes instead of failing.
type number float64

func (x number) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(x))
}

// summarize reads the loss and the k (at least 1) most likely next tokens.
func summarize(m *hookedmodel.HookedTransformer, out *hookedmodel.Output, k int, allPositions bool) (res runResult, err error) {
	res = runResult{Model: m.Cfg.ModelName, Device: m.Device().String(), Processing: m.Processing().Steps}
	tokenStr := func(id int64) string {
		if m.Tokenizer == nil {
			return ""
		}
		s, _ := m.Tokenizer.Token(int(id))
		return s
	}
	s := gotch.NewScope()
	defer s.Close()
	err = gotch.Try(func() {
		res.Loss = number(out.Loss.MustItem())
		res.Tokens = rows(gotch.MustToSlice[int64](out.Tokens), out.Tokens.Size(1))
		if m.Tokenizer != nil {
			for _, r := range res.Tokens {
				strs := make([]string, len(r))
				for i, id := range r {
					strs[i] = tokenStr(id)
				}
				res.StrTokens = append(res.StrTokens, strs)
			}
		}
		logits, _ := s.Borrow(out.Logits)
		n := logits.Size(1)
		if !allPositions {
			logits = logits.MustNarrow(1, n-1, 1)
		}
		probs, ids := logits.MustSoftmax(-1).MustTopk(int64(min(k, m.Cfg.DVocabOut)), -1, true, true) // [batch pos' k]
		p, id := gotch.MustToSlice[float64](probs), gotch.MustToSlice[int64](ids)
		nb, np, nk := int(probs.Size(0)), int(probs.Size(1)), int(probs.Size(2))
		for b := range nb {
			var perPos [][]nextProb
			for q := range np {
				var preds []nextProb
				for i := range nk {
					j := (b*np+q)*nk + i
					preds = append(preds, nextProb{Token: id[j], Str: tokenStr(id[j]), Prob: number(p[j])})
				}
				perPos = append(perPos, preds)
			}
			res.Next = append(res.Next, perPos[np-1])
			if allPositions {
				res.Positions = append(res.Positions, perPos)
			}
		}
	})
	return res, err
}

// tokenLabel is row b's token at position p as the text output shows it:
// its string quoted, or its id for a model without a tokenizer.
func (r *runResult) tokenLabel(b, p int) string {
	if r.StrTokens != nil {
		return fmt.Sprintf("%q", r.StrTokens[b][p])
	}
	return fmt.Sprint(r.Tokens[b][p])
}

// positions are row b's predictions after every position but the last
// (which the "next token" line shows), or none without --all-positions.
func (r *runResult) positions(b int) [][]nextProb {
	if r.Positions == nil {
		return nil
	}
	return r.Positions[b][:len(r.Positions[b])-1]
}

func printPreds(w io.Writer, preds []nextProb) {
	for _, p := range preds {
		if p.Str != "" {
			fmt.Fprintf(w, "  %q %.3f", p.Str, p.Prob)
		} else {
			fmt.Fprintf(w, "  %d %.3f", p.Token, p.Prob)
		}
	}
	fmt.Fprintln(w)
}

func rows(flat []int64, n int64) [][]int64 {
	var out [][]int64
	for i := int64(0); i < int64(len(flat)); i += n {
		out = append(out, flat[i:i+n])
	}
	return out
}
