package tokenizer

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// bpe is a BPE model as Hugging Face's tokenizers runs it. Its vocabulary is
// keyed by the text a word is made of: raw bytes for a byte-level model
// (whose files spell each byte as a printable rune), the token string
// otherwise.
type bpe struct {
	vocab     map[string]int32
	merges    map[uint64]merge // pairKey(left, right) -> merge
	mergeList [][2]string      // the file's merges, until finish builds merges

	byteLevel    bool       // a word's units are bytes, else runes
	byteID       [256]int32 // byte-level: id of each single byte, -1 if none
	hasFallback  bool       // byte_fallback
	byteFallback [256]int32 // id of each <0xXX> token, -1 if none
	unk          int32      // -1 without unk_token
	fuseUnk      bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	// spmSplit turns on cutting words into chunks (see spmChunks).
	spmSplit   bool
	spmNoSplit map[rune]bool // runes after which a ▁ may still merge leftwards

	cache wordCache
}

// merge is what a pair of adjacent tokens becomes: the merged token, and the
// rank of the merge (lower merges first).
type merge struct {
	rank int32
	id   int32
}

func pairKey(left, right int32) uint64 { return uint64(left)<<32 | uint64(uint32(right)) }

// piece is one token of a word: its id and the end of its bytes in the word.
type piece struct {
	id  int32
	end int32
}

// symbol is one token of a word being merged; the live symbols form a
// doubly linked list.
type symbol struct {
	id         int32 // -1 once merged into its left neighbour
	end        int32 // end of its bytes in the word
	prev, next int32 // -1 at the ends
}

// candidate is a possible merge of the symbol at pos with its right neighbour.
type candidate struct {
	rank, pos, id int32
}

func (a candidate) less(b candidate) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// candidates is a binary min-heap ordered by (rank, pos): the lowest-ranked
// merge first and, among equal ranks, the leftmost, as Hugging Face's BPE
// does. A heap keeps a long word (100k identical bytes) at O(n log n) where
// rescanning all pairs per merge is O(n²).
type candidates []candidate

func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].less(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *candidates) pop() candidate {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(s) && s[l].less(s[m]) {
			m = l
		}
		if r := l + 1; r < len(s) && s[r].less(s[m]) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// tokenize appends the pieces of word to dst.
func (m *bpe) tokenize(dst []piece, word string) []piece {
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(dst, piece{id, int32(len(word))})
		}
	}
	if m.byteLevel && len(word) == 1 && m.byteID[word[0]] >= 0 {
		return append(dst, piece{m.byteID[word[0]], 1})
	}
	if !m.spmSplit {
		return m.cached(dst, word, 0)
	}
	for start, end := range m.spmChunks(word) {
		dst = m.cached(dst, word[start:end], int32(start))
	}
	return dst
}

// appendIDs appends the ids of word to ids, as tokenize but without ends,
// straight from the cache where it can; buf is scratch space.
func (m *bpe) appendIDs(ids []int, word string, buf []piece) ([]int, []piece) {
	if m.byteLevel && len(word) == 1 && m.byteID[word[0]] >= 0 {
		return append(ids, int(m.byteID[word[0]])), buf
	}
	if !m.spmSplit && len(word) <= cacheWordLen {
		if e, ok := m.cache.get(word); ok {
			return append(ids, e.ids...), buf
		}
	}
	buf = m.tokenize(buf[:0], word)
	ids = slices.Grow(ids, len(buf))
	for _, p := range buf {
		ids = append(ids, int(p.id))
	}
	return ids, buf
}

// spmChunks yields the chunks of a SentencePiece word that BPE can merge on
// their own: a chunk ends before each ▁ that follows a rune no vocabulary
// token has before a ▁ (only ▁ runs, and whatever spmNoSplit lists). No
// merge can join two chunks, so merging each on its own gives the result
// of merging the whole word, and chunks, unlike whole texts, repeat and are
// cached.
func (m *bpe) spmChunks(word string) func(func(int, int) bool) {
	return func(yield func(int, int) bool) {
		start := 0
		prev := rune(-1)
		for i, r := range word {
			if r == spmSpace && prev >= 0 && prev != spmSpace && !m.spmNoSplit[prev] {
				if !yield(start, i) {
					return
				}
				start = i
			}
			prev = r
		}
		if start < len(word) {
			yield(start, len(word))
		}
	}
}

// cached appends the pieces of word, whose ends are shifted by base, using
// and filling the word cache.
func (m *bpe) cached(dst []piece, word string, base int32) []piece {
	if len(word) > cacheWordLen {
		return shift(m.merge(dst, word), len(dst), base)
	}
	if e, ok := m.cache.get(word); ok {
		for _, p := range e.pieces {
			dst = append(dst, piece{p.id, p.end + base})
		}
		return dst
	}
	n := len(dst)
	dst = m.merge(dst, word)
	m.cache.put(word, dst[n:])
	return shift(dst, n, base)
}

func shift(dst []piece, from int, base int32) []piece {
	if base != 0 {
		for i := from; i < len(dst); i++ {
			dst[i].end += base
		}
	}
	return dst
}

// symbols returns the initial symbols of word: its units (bytes or runes)
// as vocabulary ids, with byte fallback and unknown-token fusing as
// Hugging Face's BPE::merge_word does them.
func (m *bpe) symbols(word string) []symbol {
	if syms := m.byteSymbols(word); syms != nil {
		return syms
	}
	syms := make([]symbol, 0, len(word))
	add := func(id int32, end int) {
		syms = append(syms, symbol{id: id, end: int32(end)})
	}
	unkStart, unkEnd := -1, -1
	flushUnk := func() {
		if unkStart >= 0 {
			add(m.unk, unkEnd)
			unkStart = -1
		}
	}
	for i := 0; i < len(word); {
		n := 1
		id := int32(-1)
		if m.byteLevel {
			id = m.byteID[word[i]]
		} else {
			_, n = utf8.DecodeRuneInString(word[i:])
			id = m.unitID(word, i, n)
		}
		if id >= 0 {
			flushUnk()
			add(id, i+n)
			i += n
			continue
		}
		if m.hasFallback && m.fallback(word[i:i+n]) {
			for j := i; j < i+n; j++ {
				add(m.byteFallback[word[j]], j+1)
			}
			i += n
			continue
		}
		if m.unk >= 0 {
			switch {
			case unkStart >= 0 && m.fuseUnk:
				unkEnd = i + n
			default:
				flushUnk()
				unkStart, unkEnd = i, i+n
			}
		}
		i += n
	}
	flushUnk()
	for i := range syms {
		syms[i].prev, syms[i].next = int32(i-1), int32(i+1)
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms
}

// byteSymbols returns the symbols of a word of a byte-level model whose
// every byte has a token, the common case, in one loop; else nil.
func (m *bpe) byteSymbols(word string) []symbol {
	if !m.byteLevel {
		return nil
	}
	syms := make([]symbol, len(word))
	for i := range len(word) {
		id := m.byteID[word[i]]
		if id < 0 {
			return nil
		}
		syms[i] = symbol{id: id, end: int32(i + 1), prev: int32(i - 1), next: int32(i + 1)}
	}
	syms[len(syms)-1].next = -1
	return syms
}

// unitID looks up the rune word[i:i+n], with the subword prefix unless it
// starts the word and the suffix if it ends it.
func (m *bpe) unitID(word string, i, n int) int32 {
	unit := word[i : i+n]
	if m.prefix != "" && i > 0 || m.suffix != "" && i+n == len(word) {
		var b strings.Builder
		if i > 0 {
			b.WriteString(m.prefix)
		}
		b.WriteString(unit)
		if i+n == len(word) {
			b.WriteString(m.suffix)
		}
		unit = b.String()
	}
	if id, ok := m.vocab[unit]; ok {
		return id
	}
	return -1
}

// fallback reports whether every byte of unit has a <0xXX> token.
func (m *bpe) fallback(unit string) bool {
	for j := range len(unit) {
		if m.byteFallback[unit[j]] < 0 {
			return false
		}
	}
	return true
}

// merge appends the pieces of word to dst, merging its symbols pair by pair,
// the lowest-ranked pair first.
func (m *bpe) merge(dst []piece, word string) []piece {
	syms := m.symbols(word)
	if len(syms) == 0 {
		return dst
	}
	h := make(candidates, 0, len(syms)) // room for the first candidates
	live := len(syms)
	try := func(pos int32) {
		s := syms[pos]
		if s.next < 0 {
			return
		}
		if mg, ok := m.merges[pairKey(s.id, syms[s.next].id)]; ok {
			h.push(candidate{rank: mg.rank, pos: pos, id: mg.id})
		}
	}
	for i := range int32(len(syms) - 1) {
		try(i)
	}
	for len(h) > 0 {
		c := h.pop()
		s := &syms[c.pos]
		if s.id < 0 || s.next < 0 {
			continue
		}
		// Symbols only grow, so a changed pair merges to a longer, different
		// token: a candidate whose id no longer matches is stale.
		if mg, ok := m.merges[pairKey(s.id, syms[s.next].id)]; !ok || mg.id != c.id {
			continue
		}
		right := &syms[s.next]
		right.id = -1
		live--
		s.id = c.id
		s.end = right.end
		s.next = right.next
		if s.next >= 0 {
			syms[s.next].prev = c.pos
		}
		if s.prev >= 0 {
			try(s.prev)
		}
		try(c.pos)
	}
	dst = slices.Grow(dst, live)
	for i := int32(0); i >= 0; i = syms[i].next {
		dst = append(dst, piece{syms[i].id, syms[i].end})
	}
	return dst
}

const (
	cacheWays    = 4       // entries a word may sit in
	cacheSets    = 1 << 13 // cacheWays × cacheSets words at most
	cacheWordLen = 64      // bytes; longer words are rare and not worth keeping
	spmSpace     = '▁'
)

var cacheSeed = maphash.MakeSeed()

// wordCache remembers the pieces of words already merged: ordinary text
// repeats a few thousand words, and merging dominates the cost of encoding.
// It is a set-associative table of immutable entries, read and written
// without locks (a lock's shared counter would serialise batch encoding
// on every core). A word may sit in any of its set's ways, so two frequent
// words whose hashes meet do not evict each other on every occurrence, as
// they did in a direct-mapped table (English prose ran 20% slower).
type wordCache struct {
	sets [cacheSets]cacheSet
	next atomic.Uint32 // the way the next new word replaces, round robin
}

// cacheSet is one cache line: each way's hash beside its entry, so that a
// lookup reads only the entry whose hash matches.
type cacheSet struct {
	hashes  [cacheWays]atomic.Uint64
	entries [cacheWays]atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	hash   uint64
	word   string
	pieces []piece
	ids    []int // pieces' ids, appended in one copy
}

func (c *wordCache) lookup(word string) (*cacheSet, uint64) {
	h := maphash.String(cacheSeed, word)
	return &c.sets[h&(cacheSets-1)], h
}

func (c *wordCache) get(word string) (*cacheEntry, bool) {
	set, h := c.lookup(word)
	for i := range set.hashes {
		if set.hashes[i].Load() != h {
			continue
		}
		// The entry is checked whole: a writer may be between storing
		// the hash and the entry.
		if e := set.entries[i].Load(); e != nil && e.hash == h && e.word == word {
			return e, true
		}
	}
	return nil, false
}

// put stores a copy of ps; word is cloned so the cache does not pin the text
// it was cut from.
func (c *wordCache) put(word string, ps []piece) {
	set, h := c.lookup(word)
	ids := make([]int, len(ps))
	for i, p := range ps {
		ids[i] = int(p.id)
	}
	e := &cacheEntry{h, strings.Clone(word), slices.Clone(ps), ids}
	way := -1
	for i := range set.entries {
		if set.entries[i].CompareAndSwap(nil, e) {
			way = i
			break
		}
	}
	if way < 0 {
		way = int(c.next.Add(1) % cacheWays)
		set.entries[way].Store(e)
	}
	set.hashes[way].Store(h)
}

// reset empties the cache; no one may use it meanwhile.
func (c *wordCache) reset() { *c = wordCache{} }
