package tokenizer

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
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

// merge is what a pair of adjacent tokens becomes: the merged token, and the
// rank of the merge (lower merges first).
type merge struct {
	rank int32
	id   int32
}

// vocab is a byte-level BPE vocabulary.
type vocab struct {
	tokens [][]byte         // id -> raw bytes
	byteID [256]int32       // id of each single-byte token
	merges map[uint64]merge // pairKey(left, right) -> merge
}

func pairKey(left, right int32) uint64 { return uint64(left)<<32 | uint64(uint32(right)) }

// byteRunes is GPT-2's bytes_to_unicode table: the vocabulary files spell
// each byte as a printable rune, the printable Latin-1 bytes as themselves
// and the other 68 as 256, 257, ... in byte order.
func byteRunes() [256]rune {
	var m [256]rune
	n := rune(0)
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			m[b] = rune(b)
		} else {
			m[b] = 256 + n
			n++
		}
	}
	return m
}

// loadGPT2 parses the embedded files into a vocab.
func loadGPT2() (*vocab, error) {
	// runeByte inverts byteRunes; -1 marks runes that stand for no byte.
	var runeByte [256 + 68]int16
	for i := range runeByte {
		runeByte[i] = -1
	}
	for b, r := range byteRunes() {
		runeByte[r] = int16(b)
	}
	appendBytes := func(dst []byte, s string) ([]byte, error) {
		for _, r := range s {
			if r >= rune(len(runeByte)) || runeByte[r] < 0 {
				return nil, fmt.Errorf("token %q: rune %U stands for no byte", s, r)
			}
			dst = append(dst, byte(runeByte[r]))
		}
		return dst, nil
	}

	enc := make(map[string]int32, gpt2VocabSize)
	if err := json.Unmarshal(encoderJSON, &enc); err != nil {
		return nil, fmt.Errorf("parse encoder.json: %w", err)
	}
	if len(enc) != gpt2VocabSize {
		return nil, fmt.Errorf("encoder.json: %d tokens, want %d", len(enc), gpt2VocabSize)
	}
	v := &vocab{tokens: make([][]byte, gpt2VocabSize), merges: make(map[uint64]merge, gpt2Merges)}
	ids := make(map[string]int32, gpt2VocabSize) // raw bytes -> id
	for s, id := range enc {
		if id < 0 || id >= gpt2VocabSize || v.tokens[id] != nil {
			return nil, fmt.Errorf("encoder.json: token %q has bad or duplicate id %d", s, id)
		}
		b, err := appendBytes(nil, s)
		if err != nil {
			return nil, fmt.Errorf("encoder.json: %w", err)
		}
		v.tokens[id] = b
		ids[string(b)] = id
	}
	if string(v.tokens[gpt2VocabSize-1]) != endOfText {
		return nil, fmt.Errorf("encoder.json: id %d is %q, want %q", gpt2VocabSize-1, v.tokens[gpt2VocabSize-1], endOfText)
	}
	for b := range 256 {
		id, ok := ids[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("encoder.json: no token for byte %#02x", b)
		}
		v.byteID[b] = id
	}

	// The first line is "#version: 0.2"; each other line is "left right".
	lines := strings.Split(strings.TrimSuffix(string(vocabBPE), "\n"), "\n")[1:]
	if len(lines) != gpt2Merges {
		return nil, fmt.Errorf("vocab.bpe: %d merges, want %d", len(lines), gpt2Merges)
	}
	var buf []byte
	for rank, line := range lines {
		l, r, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(r, " ") {
			return nil, fmt.Errorf("vocab.bpe line %d: %q is not a pair", rank+2, line)
		}
		lb, err := appendBytes(buf[:0], l)
		if err == nil {
			buf, err = appendBytes(lb, r)
		}
		if err != nil {
			return nil, fmt.Errorf("vocab.bpe line %d: %w", rank+2, err)
		}
		left, ok1 := ids[string(buf[:len(lb)])]
		right, ok2 := ids[string(buf[len(lb):])]
		merged, ok3 := ids[string(buf)]
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("vocab.bpe line %d: %q names a token not in encoder.json", rank+2, line)
		}
		v.merges[pairKey(left, right)] = merge{rank: int32(rank), id: merged}
	}
	return v, nil
}
