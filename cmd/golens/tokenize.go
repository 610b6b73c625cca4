package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/golens/golens/hookedmodel"
	"github.com/golens/golens/hookedmodel/safefile"
	"github.com/golens/golens/hookedmodel/tokenizer"
	"github.com/golens/golens/models"
	"github.com/spf13/cobra"
)

func newTokenizeCmd() *cobra.Command {
	var model, tokPath, text, file, jsonl string
	var noBOS, asJSON, withStr bool
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Tokenize text with a model's tokenizer or a tokenizer.json (offline; no weights needed)",
		Long: "tokenize prints the token ids of --text or --file (one line of ids, or --json), or reads " +
			"--jsonl (one JSON object with a \"text\" field per line) and writes one JSON array of ids per line. " +
			"The tokenizer is --model's, or --tokenizer's: a Hugging Face tokenizer.json, or a directory holding one " +
			"(and tokenizer_config.json). Tokens are TransformerLens's to_tokens: the tokenizer's special tokens, " +
			"BOS first (once) unless --no-bos.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := tokenizerFor(model, tokPath)
			if err != nil {
				return err
			}
			if _, _, err := tok.ToTokens(nil, tokenizer.PrependBOS(!noBOS)); err != nil {
				return err // a BOS asked for and none
			}
			encode := func(s string) []int {
				rows, _, _ := tok.ToTokens([]string{s}, tokenizer.PrependBOS(!noBOS))
				ids := make([]int, len(rows[0]))
				for i, id := range rows[0] {
					ids[i] = int(id)
				}
				return ids
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			// --json prints {"ids": [...], "str_tokens": [...]}; --jsonl
			// prints a bare array of ids per line, which batch scripts read,
			// and the same objects with --str.
			record := func(s string) any {
				ids := encode(s)
				if jsonl != "" && !withStr {
					return ids
				}
				return tokenized{IDs: ids, StrTokens: strTokens(tok, ids)}
			}
			if jsonl != "" {
				return tokenizeJSONL(jsonl, w, record)
			}
			if file != "" {
				b, err := safefile.Read(file, safefile.TokensLimit)
				if err != nil {
					return err
				}
				text = string(b)
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetEscapeHTML(false) // "<|endoftext|>" as it is
				return enc.Encode(record(text))
			}
			ids := encode(text)
			if withStr { // the string tokens quoted, as Go quotes them, on one line
				for i, st := range strTokens(tok, ids) {
					if i > 0 {
						fmt.Fprint(w, " ")
					}
					fmt.Fprintf(w, "%q", st)
				}
				_, err = fmt.Fprintln(w)
				return err
			}
			strs := make([]string, len(ids))
			for i, id := range ids {
				strs[i] = fmt.Sprint(id)
			}
			_, err = fmt.Fprintln(w, strings.Join(strs, " "))
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "a model name or checkpoint whose tokenizer to use (gpt2 works offline)")
	fl.StringVar(&tokPath, "tokenizer", "", "a Hugging Face tokenizer.json, or a directory holding one, to use instead of --model's")
	fl.StringVar(&text, "text", "", "text to tokenize")
	fl.StringVar(&file, "file", "", "a file whose whole content to tokenize")
	fl.StringVar(&jsonl, "jsonl", "", `a file of JSON objects {"text": ...}, one per line`)
	fl.BoolVar(&noBOS, "no-bos", false, "do not prepend the BOS token")
	fl.BoolVar(&asJSON, "json", false, `print a JSON object {"ids": [...], "str_tokens": [...]}`)
	fl.BoolVar(&withStr, "str", false, `print the string tokens: quoted on one line, or with --jsonl an object {"ids": [...], "str_tokens": [...]} per line`)
	cmd.MarkFlagsOneRequired("model", "tokenizer")
	cmd.MarkFlagsMutuallyExclusive("model", "tokenizer")
	cmd.MarkFlagsOneRequired("text", "file", "jsonl")
	cmd.MarkFlagsMutuallyExclusive("text", "file", "jsonl")
	return cmd
}

// tokenized is what tokenize --str prints with --json or --jsonl.
type tokenized struct {
	IDs       []int    `json:"ids"`
	StrTokens []string `json:"str_tokens"`
}

// strTokens are the strings of ids, as TransformerLens's to_str_tokens.
func strTokens(tok *tokenizer.Tokenizer, ids []int) []string {
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i], _ = tok.Token(id)
	}
	return strs
}

func tokenizeJSONL(path string, w io.Writer, encode func(string) any) error {
	f, err := safefile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, safefile.TokensLimit))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Text == nil {
			return fmt.Errorf("%s:%d: want a JSON object with a \"text\" string field", path, n)
		}
		if err := enc.Encode(encode(*rec.Text)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// tokenizerFor reads the tokenizer at path if given, else finds the one a
// model loads with, without loading its weights: hookedmodel.TokenizerOf,
// or none for a shipped model.
func tokenizerFor(model, path string) (*tokenizer.Tokenizer, error) {
	if path != "" {
		return tokenizer.Load(path)
	}
	if _, err := os.Stat(model); err != nil && models.Has(model) {
		return nil, fmt.Errorf("the shipped model %q has no tokenizer: its inputs are token ids (give them with --tokens-file)", model)
	}
	return hookedmodel.TokenizerOf(model)
}
