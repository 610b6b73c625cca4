package tokenizer

// symbol is one token of a word being merged; the live symbols form a
// doubly linked list over the word's byte positions.
type symbol struct {
	id         int32
	prev, next int32 // -1 at the ends
	dead       bool  // merged into its left neighbour
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
// and GPT-2's encoder.py both do. A heap keeps a long word (100k identical
// bytes) at O(n log n) where rescanning all pairs per merge is O(n²).
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

// bpe appends the ids of word's tokens to dst.
func (v *vocab) bpe(dst []int, word string) []int {
	syms := make([]symbol, len(word))
	for i := range len(word) {
		syms[i] = symbol{id: v.byteID[word[i]], prev: int32(i - 1), next: int32(i + 1)}
	}
	syms[len(syms)-1].next = -1

	var h candidates
	try := func(pos int32) {
		s := syms[pos]
		if s.next < 0 {
			return
		}
		if m, ok := v.merges[pairKey(s.id, syms[s.next].id)]; ok {
			h.push(candidate{rank: m.rank, pos: pos, id: m.id})
		}
	}
	for i := range int32(len(syms) - 1) {
		try(i)
	}
	for len(h) > 0 {
		c := h.pop()
		s := &syms[c.pos]
		if s.dead || s.next < 0 {
			continue
		}
		// Symbols only grow, so a changed pair merges to a longer, different
		// token: a candidate whose id no longer matches is stale.
		if m, ok := v.merges[pairKey(s.id, syms[s.next].id)]; !ok || m.id != c.id {
			continue
		}
		right := &syms[s.next]
		right.dead = true
		s.id = c.id
		s.next = right.next
		if s.next >= 0 {
			syms[s.next].prev = c.pos
		}
		if s.prev >= 0 {
			try(s.prev)
		}
		try(c.pos)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		dst = append(dst, int(syms[i].id))
	}
	return dst
}
