package tokenizer

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Tokenizer is a BPE tokenizer as a Hugging Face tokenizer.json describes
// it: added tokens, normalizer, pre-tokenizer, model, post-processor and
// decoder. It gives the ids of Hugging Face's tokenizers library and is
// safe for concurrent use.
type Tokenizer struct {
	model    *bpe
	added    addedVocab
	norm     normalizer                // nil: none
	pre      preTokenizer              // nil: none
	scan     func(s string, i int) int // pre's scanner, if it is one (see scanner)
	template []templateItem            // nil: adds nothing
	trim     *offsetTrim               // nil: offsets kept
	dec      decoder                   // nil: tokens joined by spaces
	config   Config

	// Tables of 50k to 260k entries, kept without a pointer per entry so
	// that the garbage collector need not scan them.
	tokens  strtab // id -> token as the file spells it; "" for unused ids
	special []bool // id -> is a special added token
	raw     strtab // id -> bytes, when the decoder is ByteLevel alone; else empty

	bos, eos, pad int // -1 if none
}

// templateItem is one entry of a TemplateProcessing "single" template: the
// encoded text, or the ids of a special token.
type templateItem struct {
	sequence bool
	ids      []int32
}

// Encoding is the result of EncodeOffsets.
type Encoding struct {
	IDs []int
	// Offsets[i] is the byte span [start, end) of the input that token i
	// came from, widened to whole runes ([0 0] for a token the template
	// adds). Hugging Face's Python and Node bindings give the same spans
	// counted in characters.
	Offsets [][2]int
}

// VocabSize returns the number of ids: the model's vocabulary and the added
// tokens.
func (t *Tokenizer) VocabSize() int { return t.tokens.len() }

// BOS returns the beginning-of-sequence id: tokenizer_config.json's
// bos_token, else the first token the template adds, else EOS (as
// TransformerLens sets bos_token to eos_token); -1 if none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end-of-sequence id (eos_token), -1 if none.
func (t *Tokenizer) EOS() int { return t.eos }

// Pad returns the padding id: pad_token, else EOS as TransformerLens pads.
func (t *Tokenizer) Pad() int { return t.pad }

// Config returns what tokenizer_config.json says.
func (t *Tokenizer) Config() Config { return t.config }

// ID returns the id of a token as the file spells it ("<s>", "▁the",
// "Ġthe"), and whether there is one.
func (t *Tokenizer) ID(token string) (int, bool) {
	for _, a := range t.added.tokens {
		if a.content == token {
			return int(a.id), true
		}
	}
	for id := range t.tokens.len() {
		if t.tokens.at(id) == token {
			return id, true
		}
	}
	return 0, false
}

// setSpecialIDs sets BOS, EOS and Pad from the config and the template, and
// the encoding and decoding shortcuts.
func (t *Tokenizer) setSpecialIDs() {
	t.scan = scanner(t.pre)
	idOf := func(s string) int {
		if s == "" {
			return -1
		}
		if id, ok := t.ID(s); ok {
			return id
		}
		return -1
	}
	t.eos = idOf(t.config.EOS)
	t.bos = idOf(t.config.BOS)
	if t.bos < 0 && len(t.template) > 0 && !t.template[0].sequence && len(t.template[0].ids) > 0 {
		t.bos = int(t.template[0].ids[0])
	}
	if t.bos < 0 {
		t.bos = t.eos
	}
	t.pad = idOf(t.config.Pad)
	if t.pad < 0 {
		t.pad = t.eos
	}
	if _, ok := t.dec.(byteLevelDecoder); ok {
		raw := make([]string, t.tokens.len())
		for id := range raw {
			raw[id] = string(appendByteLevel(nil, t.tokens.at(id)))
		}
		t.raw = newStrtab(raw)
	}
}

// Encode returns the ids of text without the tokens the post-processor adds
// (Hugging Face's add_special_tokens=False). Added tokens written in the
// text ("<|endoftext|>", "<s>") become their ids, as Hugging Face does by
// default; EncodeOrdinary encodes special ones as text.
func (t *Tokenizer) Encode(text string) []int { return t.run(text, false, false, false).IDs }

// EncodeSpecial returns the ids of text with the tokens the post-processor
// adds (a BOS for Llama 2 and Gemma): Hugging Face's default,
// add_special_tokens=True.
func (t *Tokenizer) EncodeSpecial(text string) []int { return t.run(text, true, false, false).IDs }

// EncodeOrdinary is Encode with special tokens written in the text encoded
// like any other text (Hugging Face's encode_special_tokens): use it for
// untrusted text that must not inject them.
func (t *Tokenizer) EncodeOrdinary(text string) []int { return t.run(text, false, true, false).IDs }

// EncodeOffsets returns the ids of text, with the post-processor's tokens if
// addSpecial, and the span of the input each came from.
func (t *Tokenizer) EncodeOffsets(text string, addSpecial bool) Encoding {
	return t.run(text, addSpecial, false, true)
}

// EncodeBatch encodes texts as Encode (or EncodeSpecial if addSpecial) does,
// on every core; the result does not depend on the scheduling.
func (t *Tokenizer) EncodeBatch(texts []string, addSpecial bool) [][]int {
	out := make([][]int, len(texts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(texts)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(texts); i = int(next.Add(1) - 1) {
				out[i] = t.run(texts[i], addSpecial, false, false).IDs
			}
		})
	}
	wg.Wait()
	return out
}

// encoder collects the tokens of one text.
type encoder struct {
	t       *Tokenizer
	ids     []int
	offs    [][2]int
	offsets bool
	buf     []piece
}

func (e *encoder) add(id int32, s span) {
	e.ids = append(e.ids, int(id))
	if e.offsets {
		e.offs = append(e.offs, [2]int{int(s.start), int(s.end)})
	}
}

// run encodes in: added tokens first, then for the text between them the
// normalizer, the added tokens that match normalized text, the
// pre-tokenizer and the model; then the template.
func (t *Tokenizer) run(in string, addSpecial, ordinary, offsets bool) Encoding {
	e := &encoder{t: t, offsets: offsets, ids: make([]int, 0, len(in)/4+2)}
	t.added.split(text{s: in, noAlign: !offsets}, &t.added.raw, ordinary, func(p text, id int32) {
		if id >= 0 {
			e.add(id, p.origin(0, len(p.s)))
			return
		}
		if t.norm != nil {
			p = t.norm.normalize(p)
		}
		t.added.split(p, &t.added.norm, ordinary, func(q text, id int32) {
			switch {
			case id >= 0:
				e.add(id, q.origin(0, len(q.s)))
			case t.scan != nil && !offsets:
				e.scan(q.s)
			case t.pre == nil:
				e.word(q)
			default:
				t.pre.split(q, e.word)
			}
		})
	})
	enc := Encoding{IDs: e.ids, Offsets: e.offs}
	if offsets {
		widen(enc.Offsets, in)
		if t.trim != nil {
			t.trim.apply(t, enc, in)
		}
	}
	if addSpecial && t.template != nil {
		enc = t.applyTemplate(enc, offsets)
	}
	return enc
}

// scan appends the ids of s, cut into words by the pre-tokenizer's scanner:
// the common case, without offsets, in one loop.
func (e *encoder) scan(s string) {
	// Locals, not e's fields, so the loop writes no pointers to the heap.
	m, end, ids, buf := e.t.model, e.t.scan, e.ids, e.buf
	for i := 0; i < len(s); {
		j := end(s, i)
		ids, buf = m.appendIDs(ids, s[i:j], buf)
		i = j
	}
	e.ids, e.buf = ids, buf
}

// word appends the model's tokens of one pre-tokenized word.
func (e *encoder) word(w text) {
	if w.s == "" {
		return
	}
	e.buf = e.t.model.tokenize(e.buf[:0], w.s)
	start := 0
	for _, p := range e.buf {
		end := int(p.end)
		e.ids = append(e.ids, int(p.id))
		if e.offsets {
			s := w.origin(start, end)
			e.offs = append(e.offs, [2]int{int(s.start), int(s.end)})
		}
		start = end
	}
}

// widen moves each span's ends out to rune boundaries of in, where a
// byte-level token holds part of a rune.
func widen(offs [][2]int, in string) {
	for i, o := range offs {
		for o[0] > 0 && o[0] < len(in) && !utf8.RuneStart(in[o[0]]) {
			o[0]--
		}
		for o[1] < len(in) && o[1] > 0 && !utf8.RuneStart(in[o[1]]) {
			o[1]++
		}
		offs[i] = o
	}
}

// offsetTrim is the ByteLevel post-processor's trim_offsets: each token's
// span loses the input under its leading and trailing spaces (Ġ, or
// whitespace in an added token), so that "Ġworld" spans "world". A first
// token keeps one leading space when add_prefix_space put it there.
type offsetTrim struct{ keepPrefixSpace bool }

func (tr offsetTrim) apply(t *Tokenizer, enc Encoding, in string) {
	isSpace := func(r rune) bool { return r == 'Ġ' || unicode.IsSpace(r) }
	for i, o := range enc.Offsets {
		tok := t.tokens.at(enc.IDs[i])
		lead := len(tok) - len(strings.TrimLeftFunc(tok, isSpace))
		trail := len(tok) - len(strings.TrimRightFunc(tok, isSpace))
		nLead := utf8.RuneCountInString(tok[:lead])
		if nLead == 1 && tr.keepPrefixSpace && (i == 0 || o[0] == 0) {
			nLead = 0
		}
		for ; nLead > 0 && o[0] < o[1]; nLead-- {
			_, n := utf8.DecodeRuneInString(in[o[0]:])
			o[0] = min(o[0]+n, o[1])
		}
		for n := utf8.RuneCountInString(tok[len(tok)-trail:]); n > 0 && o[1] > o[0]; n-- {
			_, w := utf8.DecodeLastRuneInString(in[:o[1]])
			o[1] = max(o[1]-w, o[0])
		}
		enc.Offsets[i] = o
	}
}

func (t *Tokenizer) applyTemplate(enc Encoding, offsets bool) Encoding {
	var out Encoding
	for _, it := range t.template {
		if it.sequence {
			out.IDs = append(out.IDs, enc.IDs...)
			out.Offsets = append(out.Offsets, enc.Offsets...)
			continue
		}
		for _, id := range it.ids {
			out.IDs = append(out.IDs, int(id))
			if offsets {
				out.Offsets = append(out.Offsets, [2]int{})
			}
		}
	}
	if out.IDs == nil {
		out.IDs = []int{}
	}
	return out
}

// Decode returns the text of ids as Hugging Face's decode does (special
// tokens kept, no clean-up of spaces, as TransformerLens passes
// clean_up_tokenization_spaces=False). Ids outside the vocabulary are
// skipped; bytes that do not form UTF-8 become U+FFFD.
func (t *Tokenizer) Decode(ids []int) string { return t.decode(ids, false) }

// DecodeSkipSpecial is Decode with special tokens left out
// (skip_special_tokens=True).
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int, skipSpecial bool) string {
	if t.raw.len() > 0 && !skipSpecial {
		// Unused ids have no bytes.
		data, off := t.raw.data, t.raw.off
		n := 0
		for _, id := range ids {
			if uint(id) < uint(len(off)-1) {
				n += int(off[id+1] - off[id])
			}
		}
		b := make([]byte, 0, n)
		for _, id := range ids {
			if uint(id) < uint(len(off)-1) {
				b = append(b, data[off[id]:off[id+1]]...)
			}
		}
		return lossyString(b)
	}
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if uint(id) < uint(t.tokens.len()) && t.tokens.at(id) != "" && !(skipSpecial && t.special[id]) {
			toks = append(toks, t.tokens.at(id))
		}
	}
	if t.dec == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(t.dec.decode(toks), "")
}

// Token returns the text of one token decoded on its own, as to_str_tokens
// shows it: a token that holds part of a multi-byte character decodes to
// U+FFFD.
func (t *Tokenizer) Token(id int) (string, error) {
	if err := t.check(int64(id)); err != nil {
		return "", err
	}
	return t.decode([]int{id}, false), nil
}

func (t *Tokenizer) check(id int64) error {
	if id < 0 || id >= int64(t.tokens.len()) {
		return fmt.Errorf("token id %d out of range [0, %d)", id, t.tokens.len())
	}
	if t.tokens.at(int(id)) == "" {
		return fmt.Errorf("token id %d is unused", id)
	}
	return nil
}

// byteRunes is GPT-2's bytes_to_unicode table: byte-level vocabulary files
// spell each byte as a printable rune, the printable Latin-1 bytes as
// themselves and the other 68 as 256, 257, ... in byte order.
var byteRunes = func() (m [256]rune) {
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
}()

// runeBytes inverts byteRunes; -1 marks runes that stand for no byte.
var runeBytes = func() (m [256 + 68]int16) {
	for i := range m {
		m[i] = -1
	}
	for b, r := range byteRunes {
		m[r] = int16(b)
	}
	return m
}()

func runeToByte(r rune) (byte, bool) {
	if r < 0 || r >= rune(len(runeBytes)) || runeBytes[r] < 0 {
		return 0, false
	}
	return byte(runeBytes[r]), true
}

// byteLevelBytes appends the bytes that s spells in a byte-level vocabulary.
func byteLevelBytes(dst []byte, s string) ([]byte, bool) {
	for _, r := range s {
		b, ok := runeToByte(r)
		if !ok {
			return dst, false
		}
		dst = append(dst, b)
	}
	return dst, true
}

// strtab is a table of strings held in one string, so that it has two
// pointers however many entries it has.
type strtab struct {
	data string
	off  []uint32 // entry i is data[off[i]:off[i+1]]
}

func newStrtab(strs []string) strtab {
	var b strings.Builder
	off := make([]uint32, len(strs)+1)
	for i, s := range strs {
		b.WriteString(s)
		off[i+1] = uint32(b.Len())
	}
	return strtab{b.String(), off}
}

func (s strtab) len() int { return max(len(s.off)-1, 0) }

func (s strtab) at(i int) string { return s.data[s.off[i]:s.off[i+1]] }
