package main

import (
	"encoding/json"
	"fmt"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/hookedmodel"
	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	var mf modelFlags
	var in inputFlags
	var asJSON bool
	var topK int
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a model: the loss and the most likely next tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			res, err := summarize(m, out, topK)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(res)
			}
			fmt.Fprintf(w, "model %s on %s: %d×%d tokens, loss %.4f\n", res.Model, res.Device, len(res.Tokens), len(res.Tokens[0]), res.Loss)
			for b, row := range res.Next {
				fmt.Fprintf(w, "row %d, next token:", b)
				for _, p := range row {
					fmt.Fprintf(w, "  %q %.3f", p.Str, p.Prob)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	mf.register(cmd)
	in.register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&topK, "top", 5, "how many next-token predictions to show per row")
	return cmd
}

type runResult struct {
	Model  string       `json:"model"`
	Device string       `json:"device"`
	Tokens [][]int64    `json:"tokens"`
	Loss   float64      `json:"loss"`
	Next   [][]nextProb `json:"next"` // per row: the most likely tokens after the last position
	// Processing is the weight processing the model went through: each
	// step asked for, whether it ran, and why not.
	Processing []hookedmodel.ProcessingStep `json:"processing"`
}

type nextProb struct {
	Token int64   `json:"token"`
	Str   string  `json:"str,omitempty"`
	Prob  float64 `json:"prob"`
}

func summarize(m *hookedmodel.HookedTransformer, out *hookedmodel.Output, k int) (res runResult, err error) {
	res = runResult{Model: m.Cfg.ModelName, Device: m.Device().String(), Processing: m.Processing().Steps}
	s := gotch.NewScope()
	defer s.Close()
	err = gotch.Try(func() {
		res.Loss = out.Loss.MustItem()
		res.Tokens = rows(gotch.MustToSlice[int64](out.Tokens), out.Tokens.Size(1))
		logits, _ := s.Borrow(out.Logits)
		last := logits.MustSelect(1, logits.Size(1)-1).MustSoftmax(-1)
		probs, ids := last.MustTopk(int64(min(k, m.Cfg.DVocabOut)), -1, true, true)
		p, id := gotch.MustToSlice[float64](probs), gotch.MustToSlice[int64](ids)
		n := int(probs.Size(1))
		for b := range int(probs.Size(0)) {
			var row []nextProb
			for i := range n {
				np := nextProb{Token: id[b*n+i], Prob: p[b*n+i]}
				if m.Tokenizer != nil {
					np.Str, _ = m.Tokenizer.Token(int(np.Token))
				}
				row = append(row, np)
			}
			res.Next = append(res.Next, row)
		}
	})
	return res, err
}

func rows(flat []int64, n int64) [][]int64 {
	var out [][]int64
	for i := int64(0); i < int64(len(flat)); i += n {
		out = append(out, flat[i:i+n])
	}
	return out
}
