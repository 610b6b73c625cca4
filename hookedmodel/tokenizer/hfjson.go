package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unicode"

	"github.com/golens/golens/hookedmodel/safefile"
	"golang.org/x/text/unicode/norm"
)

// Load reads a Hugging Face tokenizer: a tokenizer.json file, or a
// directory holding one and, optionally, tokenizer_config.json.
func Load(path string) (*Tokenizer, error) {
	file, dir := path, filepath.Dir(path)
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	} else if st.IsDir() {
		file, dir = filepath.Join(path, "tokenizer.json"), path
	}
	data, err := safefile.Read(file, safefile.JSONLimit)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cfg, err := safefile.Read(filepath.Join(dir, "tokenizer_config.json"), safefile.JSONLimit)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", file, err)
	}
	return t, nil
}

// hfFile is the top level of tokenizer.json but the model.
type hfFile struct {
	AddedTokens   []hfAddedToken
	Normalizer    json.RawMessage
	PreTokenizer  json.RawMessage
	PostProcessor json.RawMessage
	Decoder       json.RawMessage
}

// field returns where the value of a top-level key goes.
func (f *hfFile) field(key string) any {
	switch key {
	case "added_tokens":
		return &f.AddedTokens
	case "normalizer":
		return &f.Normalizer
	case "pre_tokenizer":
		return &f.PreTokenizer
	case "post_processor":
		return &f.PostProcessor
	case "decoder":
		return &f.Decoder
	}
	return new(json.RawMessage) // version, truncation, padding: not used
}

type hfAddedToken struct {
	ID         *int32  `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized *bool   `json:"normalized"`
	Special    bool    `json:"special"`
}

// hfBPE is the model but its vocab and merges, which scanModel reads.
type hfBPE struct {
	Type                    string   `json:"type"`
	UnkToken                *string  `json:"unk_token"`
	ContinuingSubwordPrefix *string  `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string  `json:"end_of_word_suffix"`
	FuseUnk                 bool     `json:"fuse_unk"`
	ByteFallback            bool     `json:"byte_fallback"`
	IgnoreMerges            bool     `json:"ignore_merges"`
	Dropout                 *float64 `json:"dropout"`
}

// hfPattern is a Split or Replace pattern: {"String": s} or {"Regex": r}.
type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// component is one normalizer, pre-tokenizer, post-processor or decoder:
// every field any of them has, read by type.
type component struct {
	Type string `json:"type"`

	Normalizers   []json.RawMessage `json:"normalizers"`
	PreTokenizers []json.RawMessage `json:"pretokenizers"`
	Processors    []json.RawMessage `json:"processors"`
	Decoders      []json.RawMessage `json:"decoders"`

	Prepend        string          `json:"prepend"`
	Pattern        *hfPattern      `json:"pattern"`
	Content        json.RawMessage `json:"content"`
	StripLeft      bool            `json:"strip_left"`
	StripRight     bool            `json:"strip_right"`
	Start          int             `json:"start"`
	Stop           int             `json:"stop"`
	Behavior       string          `json:"behavior"`
	Invert         bool            `json:"invert"`
	AddPrefixSpace *bool           `json:"add_prefix_space"`
	UseRegex       *bool           `json:"use_regex"`
	TrimOffsets    *bool           `json:"trim_offsets"`
	Replacement    string          `json:"replacement"`
	PrependScheme  string          `json:"prepend_scheme"`
	Split          *bool           `json:"split"`
	Individual     bool            `json:"individual_digits"`
	Suffix         string          `json:"suffix"`

	Single        []hfTemplateItem          `json:"single"`
	SpecialTokens map[string]hfTemplateSpec `json:"special_tokens"`
}

type hfTemplateItem struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type hfTemplateSpec struct {
	IDs []int32 `json:"ids"`
}

// fieldError is a wrong field of tokenizer.json.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return "tokenizer.json: " + e.field + ": " + e.msg }

func parseError(field string, format string, args ...any) error {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}

// inField names field in err unless it names one already.
func inField(field string, err error) error {
	var fe *fieldError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return parseError(field, "%v", err)
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func readComponent(field string, raw json.RawMessage) (component, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, parseError(field, "%v", err)
	}
	if c.Type == "" {
		return c, parseError(field+".type", "missing")
	}
	return c, nil
}

// Parse builds a tokenizer from the bytes of tokenizer.json and, if not nil,
// tokenizer_config.json.
func Parse(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	var f hfFile
	var model *bpe
	s := &jsonScanner{b: tokenizerJSON}
	err := s.object(func(key string) error {
		if key == "model" {
			var err error
			model, err = scanModel(s)
			return err
		}
		raw, err := s.skip()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, f.field(key)); err != nil {
			return parseError(key, "%v", err)
		}
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, inField("top level", err)
	}
	if model == nil {
		return nil, parseError("model", "missing")
	}
	t := &Tokenizer{model: model}
	if err := t.setVocab(f.AddedTokens); err != nil {
		return nil, err
	}
	if !isNull(f.Normalizer) {
		if t.norm, err = parseNormalizer("normalizer", f.Normalizer); err != nil {
			return nil, err
		}
	}
	if !isNull(f.PreTokenizer) {
		if t.pre, err = parsePreTokenizer("pre_tokenizer", f.PreTokenizer, t.model); err != nil {
			return nil, err
		}
		if err := checkByteLevelLast("pre_tokenizer", t.pre); err != nil {
			return nil, err
		}
	}
	if !isNull(f.PostProcessor) {
		p, err := parsePostProcessor("post_processor", f.PostProcessor)
		if err != nil {
			return nil, err
		}
		t.template, t.trim = p.template, p.trim
	}
	if !isNull(f.Decoder) {
		if t.dec, err = parseDecoder("decoder", f.Decoder); err != nil {
			return nil, err
		}
	}
	if err := t.model.finish(); err != nil {
		return nil, err
	}
	if configJSON != nil {
		if t.config, err = parseConfig(configJSON); err != nil {
			return nil, err
		}
	}
	t.setSpecialIDs()
	t.configTemplate()
	return t, nil
}

// templateClasses are the tokenizer classes whose fast tokenizer in
// transformers rebuilds the template from add_bos_token and add_eos_token
// (update_post_processor), which default to true and false.
var templateClasses = map[string]bool{
	"LlamaTokenizer": true, "LlamaTokenizerFast": true, "CodeLlamaTokenizer": true, "CodeLlamaTokenizerFast": true,
	"GemmaTokenizer": true, "GemmaTokenizerFast": true,
}

// configTemplate rebuilds the template as transformers does for those
// classes, so that the tokens are those a checkpoint's users get.
func (t *Tokenizer) configTemplate() {
	c := t.config
	if !templateClasses[c.Class] || c.AddBOS == nil && c.AddEOS == nil {
		return
	}
	var items []templateItem
	if (c.AddBOS == nil || *c.AddBOS) && t.bos >= 0 {
		items = append(items, templateItem{ids: []int32{int32(t.bos)}})
	}
	items = append(items, templateItem{sequence: true})
	if c.AddEOS != nil && *c.AddEOS && t.eos >= 0 {
		items = append(items, templateItem{ids: []int32{int32(t.eos)}})
	}
	t.template = items
}

// scanModel reads the model: vocab and merges with s, the rest with
// encoding/json.
func scanModel(s *jsonScanner) (*bpe, error) {
	var vocab map[string]int32
	var merges [][2]string
	rest := map[string]json.RawMessage{}
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "vocab":
			if s.peek() != '{' {
				return parseError("model.vocab", "want an object of token ids")
			}
			vocab, err = scanVocab(s)
		case "merges":
			merges, err = scanMerges(s)
			err = inField("model.merges", err)
		default:
			rest[key], err = s.skip()
		}
		return err
	})
	if err != nil {
		return nil, inField("model", err)
	}
	var h hfBPE
	if b, err := json.Marshal(rest); err != nil {
		return nil, parseError("model", "%v", err)
	} else if err := json.Unmarshal(b, &h); err != nil {
		return nil, parseError("model", "%v", err)
	}
	if h.Type != "BPE" {
		if h.Type == "" {
			return nil, parseError("model.type", "missing")
		}
		return nil, parseError("model.type", "%q is not supported (only BPE is)", h.Type)
	}
	if h.Dropout != nil && *h.Dropout != 0 {
		return nil, parseError("model.dropout", "%v is not supported (only null or 0)", *h.Dropout)
	}
	if len(vocab) == 0 {
		return nil, parseError("model.vocab", "missing or empty")
	}
	m := &bpe{
		vocab: vocab, mergeList: merges, unk: -1, fuseUnk: h.FuseUnk, ignoreMerges: h.IgnoreMerges,
		hasFallback: h.ByteFallback,
	}
	if h.ContinuingSubwordPrefix != nil {
		m.prefix = *h.ContinuingSubwordPrefix
	}
	if h.EndOfWordSuffix != nil {
		m.suffix = *h.EndOfWordSuffix
	}
	if h.UnkToken != nil {
		id, ok := vocab[*h.UnkToken]
		if !ok {
			return nil, parseError("model.unk_token", "%q is not in model.vocab", *h.UnkToken)
		}
		m.unk = id
	}
	return m, nil
}

// scanVocab reads model.vocab, token -> id.
func scanVocab(s *jsonScanner) (map[string]int32, error) {
	// A vocabulary takes about a third of a file, some 40 bytes a token.
	vocab := make(map[string]int32, min(len(s.b)/120, 1<<20))
	err := s.object(func(tok string) error {
		id, err := s.int32()
		if err != nil {
			return parseError("model.vocab", "token %q: %v", tok, err)
		}
		if id < 0 {
			return parseError("model.vocab", "token %q has negative id %d", tok, id)
		}
		vocab[tok] = id
		return nil
	})
	return vocab, err
}

// scanPair reads ["left", "right"].
func scanPair(s *jsonScanner) (pair [2]string, err error) {
	if err = s.expect('['); err != nil {
		return pair, err
	}
	if pair[0], err = s.str(); err != nil {
		return pair, err
	}
	if err = s.expect(','); err != nil {
		return pair, err
	}
	if pair[1], err = s.str(); err != nil {
		return pair, err
	}
	return pair, s.expect(']')
}

// scanMerges reads model.merges, either "left right" strings or [left,
// right] pairs.
func scanMerges(s *jsonScanner) ([][2]string, error) {
	if s.peek() == 'n' {
		_, err := s.skip() // null
		return nil, err
	}
	merges := make([][2]string, 0, 1<<16)
	err := s.array(func(i int) error {
		field := func() string { return fmt.Sprintf("model.merges[%d]", i) }
		if s.peek() == '[' {
			pair, err := scanPair(s)
			if err != nil {
				return parseError(field(), "want [left, right]: %v", err)
			}
			merges = append(merges, pair)
			return nil
		}
		l, err := s.str()
		if err != nil {
			return parseError(field(), "%v", err)
		}
		left, right, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(right, " ") {
			return parseError(field(), "%q is not two tokens separated by one space", l)
		}
		merges = append(merges, [2]string{left, right})
		return nil
	})
	return merges, err
}

// finish builds the merge table, in raw bytes for a byte-level model, and
// the byte tables.
func (m *bpe) finish() error {
	for i := range m.byteID {
		m.byteID[i], m.byteFallback[i] = -1, -1
	}
	if m.byteLevel {
		raw := make(map[string]int32, len(m.vocab))
		var buf []byte
		for s, id := range m.vocab {
			b, ok := byteLevelBytes(buf[:0], s)
			if !ok {
				continue // not a byte-level token: no word can spell it
			}
			raw[string(b)] = id
			buf = b
		}
		m.vocab = raw
		for b := range 256 {
			if id, ok := raw[string([]byte{byte(b)})]; ok {
				m.byteID[b] = id
			}
		}
	}
	if m.hasFallback {
		for b := range 256 {
			if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
				m.byteFallback[b] = id
			}
		}
	}
	// Looking the tokens up dominates loading: do it on every core, then
	// fill the map in rank order (a repeated pair keeps its last rank, as
	// in Hugging Face's HashMap).
	keys := make([]uint64, len(m.mergeList))
	vals := make([]merge, len(m.mergeList))
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(keys)/workers, (w+1)*len(keys)/workers
		wg.Go(func() { errs[w] = m.resolveMerges(lo, hi, keys, vals) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.merges = make(map[uint64]merge, len(keys))
	for i, k := range keys {
		m.merges[k] = vals[i]
	}
	m.mergeList = nil
	m.setSPMSplit()
	if m.byteLevel && !m.ignoreMerges {
		m.vocab = nil // words are looked up byte by byte; spare the collector 50k+ strings
	}
	return nil
}

// resolveMerges fills keys and vals for the merges of ranks lo to hi.
func (m *bpe) resolveMerges(lo, hi int, keys []uint64, vals []merge) error {
	var lb, rb, merged []byte
	for rank := lo; rank < hi; rank++ {
		p := m.mergeList[rank]
		ok1, ok2 := true, true
		if m.byteLevel {
			lb, ok1 = byteLevelBytes(lb[:0], p[0])
			rb, ok2 = byteLevelBytes(rb[:0], p[1])
		} else {
			lb, rb = append(lb[:0], p[0]...), append(rb[:0], p[1]...)
		}
		if !ok1 || !ok2 {
			return parseError(fmt.Sprintf("model.merges[%d]", rank), "%q %q is not byte-level text", p[0], p[1])
		}
		l, ok1 := m.vocab[string(lb)]
		r, ok2 := m.vocab[string(rb)]
		merged = append(append(merged[:0], lb...), bytes.TrimPrefix(rb, []byte(m.prefix))...)
		id, ok3 := m.vocab[string(merged)]
		if !ok1 || !ok2 || !ok3 {
			return parseError(fmt.Sprintf("model.merges[%d]", rank), "%q %q names a token not in model.vocab", p[0], p[1])
		}
		keys[rank], vals[rank] = pairKey(l, r), merge{rank: int32(rank), id: id}
	}
	return nil
}

// setSPMSplit turns on chunking of the words of a model that is not
// byte-level (see spmChunks), noting the runes that some token has right
// before a ▁.
func (m *bpe) setSPMSplit() {
	if m.byteLevel || m.prefix != "" || m.suffix != "" {
		return
	}
	m.spmSplit = true
	m.spmNoSplit = map[rune]bool{}
	for tok := range m.vocab {
		prev := rune(-1)
		for _, r := range tok {
			if r == spmSpace && prev >= 0 && prev != spmSpace {
				m.spmNoSplit[prev] = true
			}
			prev = r
		}
	}
}

// setVocab fills the id -> token table from the model's vocabulary and the
// added tokens, and sets up their matching. Added tokens get their ids as
// Hugging Face's AddedVocabulary::add_tokens gives them, in file order (the
// file's ids only serve as a check there): a token already in the model's
// vocabulary or added before keeps that id, a new one takes the next id
// after the vocabulary and the added tokens.
func (t *Tokenizer) setVocab(added []hfAddedToken) error {
	vocabLen := int32(len(t.model.vocab))
	size := int32(0)
	for _, id := range t.model.vocab {
		size = max(size, id+1)
	}
	ids := map[string]int32{}
	maxID := int32(-1)
	toks := make([]addedToken, len(added))
	for i, a := range added {
		field := fmt.Sprintf("added_tokens[%d]", i)
		if a.ID == nil || *a.ID < 0 {
			return parseError(field+".id", "missing or negative")
		}
		if a.Content == nil || *a.Content == "" {
			return parseError(field+".content", "missing or empty")
		}
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		id, ok := ids[*a.Content]
		if !ok {
			id, ok = t.model.vocab[*a.Content]
		}
		if !ok {
			id = vocabLen
			if maxID >= vocabLen || vocabLen == 0 {
				id = maxID + 1
			}
		}
		ids[*a.Content] = id
		maxID = max(maxID, id)
		toks[i] = addedToken{id: id, content: *a.Content, singleWord: a.SingleWord, lstrip: a.LStrip,
			rstrip: a.RStrip, normalized: normalized, special: a.Special}
		size = max(size, id+1)
	}
	tokens := make([]string, size)
	t.special = make([]bool, size)
	for s, id := range t.model.vocab {
		tokens[id] = s
	}
	for _, a := range toks {
		tokens[a.id] = a.content
		t.special[a.id] = a.special
	}
	t.tokens = newStrtab(tokens)
	t.added = newAddedVocab(toks)
	return nil
}

// parseEach parses the components of a Sequence, naming each field.key[i]
// in its errors.
func parseEach[T any](field, key string, raws []json.RawMessage, parse func(string, json.RawMessage) (T, error)) ([]T, error) {
	out := make([]T, 0, len(raws))
	for i, r := range raws {
		v, err := parse(fmt.Sprintf("%s.%s[%d]", field, key, i), r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func parseNormalizer(field string, raw json.RawMessage) (normalizer, error) {
	c, err := readComponent(field, raw)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		ns, err := parseEach(field, "normalizers", c.Normalizers, parseNormalizer)
		if err != nil {
			return nil, err
		}
		return normalizers(ns), nil
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFD":
		return unicodeNorm{norm.NFD}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "NFKD":
		return unicodeNorm{norm.NFKD}, nil
	case "Lowercase":
		return lowercase{}, nil
	case "StripAccents":
		return stripAccents{}, nil
	case "Prepend":
		return prepend{c.Prepend}, nil
	case "Strip":
		return strip{c.StripLeft, c.StripRight}, nil
	case "Replace":
		pat, content, err := literalReplace(field, c)
		if err != nil {
			return nil, err
		}
		return replace{pat, content}, nil
	}
	return nil, parseError(field+".type", "normalizer %q is not supported", c.Type)
}

// literalReplace reads the pattern and content of a Replace, which must be a
// literal string.
func literalReplace(field string, c component) (pattern, content string, err error) {
	if c.Pattern == nil || c.Pattern.String == nil {
		return "", "", parseError(field+".pattern", "only {\"String\": ...} is supported")
	}
	if err := json.Unmarshal(c.Content, &content); err != nil {
		return "", "", parseError(field+".content", "want a string: %v", err)
	}
	return *c.Pattern.String, content, nil
}

func parsePreTokenizer(field string, raw json.RawMessage, m *bpe) (preTokenizer, error) {
	c, err := readComponent(field, raw)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		ps, err := parseEach(field, "pretokenizers", c.PreTokenizers, func(f string, r json.RawMessage) (preTokenizer, error) {
			return parsePreTokenizer(f, r, m)
		})
		if err != nil {
			return nil, err
		}
		return preTokenizers(ps), nil
	case "ByteLevel":
		m.byteLevel = true
		return byteLevelPre{addPrefixSpace: orTrue(c.AddPrefixSpace), useRegex: orTrue(c.UseRegex)}, nil
	case "Split":
		b, ok := behaviors[c.Behavior]
		if !ok {
			return nil, parseError(field+".behavior", "unknown %q", c.Behavior)
		}
		var match matcher
		var end func(string, int) int
		switch {
		case c.Pattern != nil && c.Pattern.String != nil:
			match = literal(*c.Pattern.String)
		case c.Pattern != nil && c.Pattern.Regex != nil:
			if match, err = compileRegex(*c.Pattern.Regex); err != nil {
				return nil, parseError(field+".pattern.Regex", "%v", err)
			}
			end = knownScanner(*c.Pattern.Regex)
		default:
			return nil, parseError(field+".pattern", "missing String or Regex")
		}
		return splitter{match: match, end: end, behavior: b, invert: c.Invert}, nil
	case "Metaspace":
		scheme, err := prependScheme(field, c)
		if err != nil {
			return nil, err
		}
		rep := c.Replacement
		if rep == "" {
			rep = string(spmSpace)
		}
		return metaspace{replacement: rep, scheme: scheme, splitWords: orTrue(c.Split)}, nil
	case "Digits":
		if c.Individual {
			return splitter{match: eachRune(unicode.IsNumber), behavior: isolated, invert: false}, nil
		}
		return splitter{match: eachRune(unicode.IsNumber), behavior: contiguous, invert: false}, nil
	case "Punctuation":
		b := isolated
		if c.Behavior != "" {
			if b, err = behaviorOf(field, c.Behavior); err != nil {
				return nil, err
			}
		}
		return splitter{match: eachRune(isPunctuation), behavior: b, invert: false}, nil
	case "Whitespace":
		return splitter{match: wordRuns, behavior: removed, invert: true}, nil
	case "WhitespaceSplit":
		return splitter{match: eachRune(isSpace), behavior: removed, invert: false}, nil
	}
	return nil, parseError(field+".type", "pre-tokenizer %q is not supported", c.Type)
}

func isSpace(r rune) bool {
	return r < 0x80 && asciiClass[r] == space || r >= 0x80 && classOf(r) == space
}

func behaviorOf(field, s string) (behavior, error) {
	b, ok := behaviors[s]
	if !ok {
		return 0, parseError(field+".behavior", "unknown %q", s)
	}
	return b, nil
}

// prependScheme reads a Metaspace's prepend_scheme, or its older
// add_prefix_space.
func prependScheme(field string, c component) (string, error) {
	switch c.PrependScheme {
	case "always", "first", "never":
		return c.PrependScheme, nil
	case "":
		if c.AddPrefixSpace == nil || *c.AddPrefixSpace {
			return "always", nil
		}
		return "never", nil
	}
	return "", parseError(field+".prepend_scheme", "unknown %q", c.PrependScheme)
}

// checkByteLevelLast refuses a ByteLevel pre-tokenizer followed by others:
// we map bytes in the model, so later splits would see raw bytes where
// Hugging Face's see the printable runes.
func checkByteLevelLast(field string, p preTokenizer) error {
	ps, ok := p.(preTokenizers)
	if !ok {
		return nil
	}
	for i, q := range ps {
		if _, isBL := q.(byteLevelPre); isBL && i != len(ps)-1 {
			return parseError(fmt.Sprintf("%s.pretokenizers[%d]", field, i), "ByteLevel must be the last pre-tokenizer")
		}
	}
	return nil
}

// orTrue reads an optional flag that defaults to true.
func orTrue(b *bool) bool { return b == nil || *b }

// postProcessor is what a post_processor does to an encoding here: a
// template, and ByteLevel's offset trimming.
type postProcessor struct {
	template []templateItem // nil: adds nothing
	trim     *offsetTrim    // nil: offsets kept
}

func parsePostProcessor(field string, raw json.RawMessage) (postProcessor, error) {
	c, err := readComponent(field, raw)
	if err != nil {
		return postProcessor{}, err
	}
	switch c.Type {
	case "ByteLevel":
		if !orTrue(c.TrimOffsets) {
			return postProcessor{}, nil
		}
		return postProcessor{trim: &offsetTrim{keepPrefixSpace: orTrue(c.AddPrefixSpace)}}, nil
	case "Sequence":
		var out postProcessor
		for i, r := range c.Processors {
			f := fmt.Sprintf("%s.processors[%d]", field, i)
			p, err := parsePostProcessor(f, r)
			if err != nil {
				return postProcessor{}, err
			}
			if p.template != nil && out.template != nil || p.trim != nil && out.trim != nil {
				return postProcessor{}, parseError(f, "a second processor of the same kind")
			}
			if p.template != nil {
				out.template = p.template
			}
			if p.trim != nil {
				out.trim = p.trim
			}
		}
		return out, nil
	case "TemplateProcessing":
		items := []templateItem{}
		for i, it := range c.Single {
			f := fmt.Sprintf("%s.single[%d]", field, i)
			switch {
			case it.Sequence != nil:
				items = append(items, templateItem{sequence: true})
			case it.SpecialToken != nil:
				spec, ok := c.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return postProcessor{}, parseError(f, "special token %q is not in special_tokens", it.SpecialToken.ID)
				}
				items = append(items, templateItem{ids: spec.IDs})
			default:
				return postProcessor{}, parseError(f, "neither Sequence nor SpecialToken")
			}
		}
		return postProcessor{template: items}, nil
	}
	return postProcessor{}, parseError(field+".type", "post-processor %q is not supported", c.Type)
}

func parseDecoder(field string, raw json.RawMessage) (decoder, error) {
	c, err := readComponent(field, raw)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		ds, err := parseEach(field, "decoders", c.Decoders, parseDecoder)
		if err != nil {
			return nil, err
		}
		return decoders(ds), nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var content string
		if err := json.Unmarshal(c.Content, &content); err != nil || len([]rune(content)) != 1 {
			return nil, parseError(field+".content", "want a one-character string")
		}
		return stripDecoder{content: []rune(content)[0], start: c.Start, stop: c.Stop}, nil
	case "Replace":
		pat, content, err := literalReplace(field, c)
		if err != nil {
			return nil, err
		}
		return replaceDecoder{pat, content}, nil
	case "Metaspace":
		scheme, err := prependScheme(field, c)
		if err != nil {
			return nil, err
		}
		rep := c.Replacement
		if rep == "" {
			rep = string(spmSpace)
		}
		return metaspaceDecoder{replacement: rep, prepend: scheme != "never"}, nil
	case "BPEDecoder":
		suffix := c.Suffix
		if suffix == "" {
			suffix = "</w>"
		}
		return bpeSuffixDecoder{suffix}, nil
	}
	return nil, parseError(field+".type", "decoder %q is not supported", c.Type)
}

// Config is what tokenizer_config.json says about a tokenizer that
// tokenizer.json does not.
type Config struct {
	// AddBOS and AddEOS are add_bos_token and add_eos_token; nil if absent.
	AddBOS, AddEOS *bool
	// ModelMaxLength is model_max_length, 0 if absent or a placeholder
	// (Hugging Face writes 1e30 for "no limit").
	ModelMaxLength int
	// PaddingSide is padding_side, "" if absent.
	PaddingSide string
	// BOS, EOS, Pad and Unk are the special tokens' strings, "" if none.
	BOS, EOS, Pad, Unk string
	// Class is tokenizer_class.
	Class string
}

type hfConfig struct {
	AddBOS         *bool           `json:"add_bos_token"`
	AddEOS         *bool           `json:"add_eos_token"`
	ModelMaxLength *float64        `json:"model_max_length"`
	PaddingSide    string          `json:"padding_side"`
	BOS            json.RawMessage `json:"bos_token"`
	EOS            json.RawMessage `json:"eos_token"`
	Pad            json.RawMessage `json:"pad_token"`
	Unk            json.RawMessage `json:"unk_token"`
	Class          string          `json:"tokenizer_class"`
}

func parseConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	c := Config{AddBOS: h.AddBOS, AddEOS: h.AddEOS, Class: h.Class}
	if h.ModelMaxLength != nil && *h.ModelMaxLength > 0 && *h.ModelMaxLength < math.MaxInt32 {
		c.ModelMaxLength = int(*h.ModelMaxLength)
	}
	switch h.PaddingSide {
	case "", "left", "right":
		c.PaddingSide = h.PaddingSide
	default:
		return c, fmt.Errorf("tokenizer_config.json: padding_side: %q is neither \"left\" nor \"right\"", h.PaddingSide)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"bos_token", h.BOS, &c.BOS}, {"eos_token", h.EOS, &c.EOS}, {"pad_token", h.Pad, &c.Pad}, {"unk_token", h.Unk, &c.Unk}} {
		s, err := tokenString(f.raw)
		if err != nil {
			return c, fmt.Errorf("tokenizer_config.json: %s: %w", f.name, err)
		}
		*f.dst = s
	}
	return c, nil
}

// tokenString reads a special token of tokenizer_config.json: null, a
// string, or an object with "content".
func tokenString(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", fmt.Errorf("want null, a string or {\"content\": ...}")
	}
	return *obj.Content, nil
}
