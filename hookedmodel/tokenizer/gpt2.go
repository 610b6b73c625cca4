package tokenizer

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// GPT-2's vocabulary files, byte-identical to Hugging Face's gpt2 vocab.json
// and merges.txt; see data/README.md for provenance.
var (
	//go:embed data/encoder.json
	encoderJSON []byte
	//go:embed data/vocab.bpe
	vocabBPE []byte
)

const (
	gpt2VocabSize = 50257
	gpt2Merges    = 50000
	endOfText     = "<|endoftext|>"
)

var gpt2 = sync.OnceValue(func() *Tokenizer {
	t, err := loadGPT2()
	if err != nil {
		// The files are embedded and checked by the tests: only a broken
		// build gets here.
		panic(fmt.Errorf("tokenizer: embedded GPT-2 vocabulary: %w", err))
	}
	return t
})

// GPT2 returns the GPT-2 tokenizer (also used by GPT-2's medium, large and
// xl sizes and by DistilGPT2), the tokenizer.json of Hugging Face's gpt2
// built from the embedded files. The vocabulary is parsed on the first
// call, which takes a few tens of milliseconds; later calls return the same
// Tokenizer.
func GPT2() *Tokenizer { return gpt2() }

// loadGPT2 builds what Hugging Face's gpt2 tokenizer.json says: byte-level
// BPE with GPT-2's split, <|endoftext|> a special added token, a ByteLevel
// decoder.
func loadGPT2() (*Tokenizer, error) {
	vocab := make(map[string]int32, gpt2VocabSize)
	if err := json.Unmarshal(encoderJSON, &vocab); err != nil {
		return nil, fmt.Errorf("parse encoder.json: %w", err)
	}
	if len(vocab) != gpt2VocabSize {
		return nil, fmt.Errorf("encoder.json: %d tokens, want %d", len(vocab), gpt2VocabSize)
	}
	if vocab[endOfText] != gpt2VocabSize-1 {
		return nil, fmt.Errorf("encoder.json: %q is %d, want %d", endOfText, vocab[endOfText], gpt2VocabSize-1)
	}
	// The first line is "#version: 0.2"; each other line is "left right".
	lines := strings.Split(strings.TrimSuffix(string(vocabBPE), "\n"), "\n")[1:]
	if len(lines) != gpt2Merges {
		return nil, fmt.Errorf("vocab.bpe: %d merges, want %d", len(lines), gpt2Merges)
	}
	merges := make([][2]string, len(lines))
	for i, line := range lines {
		l, r, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(r, " ") {
			return nil, fmt.Errorf("vocab.bpe line %d: %q is not a pair", i+2, line)
		}
		merges[i] = [2]string{l, r}
	}
	t := &Tokenizer{
		model:  &bpe{vocab: vocab, mergeList: merges, unk: -1, byteLevel: true},
		pre:    byteLevelPre{useRegex: true},
		dec:    byteLevelDecoder{},
		config: Config{BOS: endOfText, EOS: endOfText, Unk: endOfText, ModelMaxLength: 1024},
	}
	id, content := int32(gpt2VocabSize-1), endOfText
	if err := t.setVocab([]hfAddedToken{{ID: &id, Content: &content, Special: true}}); err != nil {
		return nil, err
	}
	if err := t.model.finish(); err != nil {
		return nil, err
	}
	t.setSpecialIDs()
	return t, nil
}
