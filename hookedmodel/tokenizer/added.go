package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens: text matched
// before the model sees it.
type addedToken struct {
	id                 int32
	content            string
	singleWord, lstrip bool
	rstrip, normalized bool
	special            bool
}

// trie finds added tokens in a text, leftmost first and, among those
// starting at the same byte, longest, as Hugging Face's Aho-Corasick
// matcher (MatchKind::LeftmostLongest) does.
type trie struct {
	first  [256]bool
	firsts []byte // the bytes of first, in order
	nodes  []trieNode
}

type trieNode struct {
	next  map[byte]int32
	token int32 // index into addedVocab.tokens, -1 if none ends here
}

func (t *trie) empty() bool { return len(t.nodes) <= 1 }

func (t *trie) insert(s string, token int32) {
	if len(t.nodes) == 0 {
		t.nodes = []trieNode{{token: -1}}
	}
	if s == "" {
		return
	}
	if !t.first[s[0]] {
		t.first[s[0]] = true
		t.firsts = append(t.firsts, s[0])
	}
	n := int32(0)
	for i := range len(s) {
		c, ok := t.nodes[n].next[s[i]]
		if !ok {
			c = int32(len(t.nodes))
			t.nodes = append(t.nodes, trieNode{token: -1})
			if t.nodes[n].next == nil {
				t.nodes[n].next = map[byte]int32{}
			}
			t.nodes[n].next[s[i]] = c
		}
		n = c
	}
	t.nodes[n].token = token
}

// longest returns the token and length of the longest match at s[0:], or
// -1, 0.
func (t *trie) longest(s string) (int32, int) {
	tok, size := int32(-1), 0
	n := int32(0)
	for i := range len(s) {
		c, ok := t.nodes[n].next[s[i]]
		if !ok {
			break
		}
		n = c
		if t.nodes[n].token >= 0 {
			tok, size = t.nodes[n].token, i+1
		}
	}
	return tok, size
}

// addedVocab holds the added tokens and their two matchers: tokens with
// normalized false are found in the input, the others in normalized text.
type addedVocab struct {
	tokens    []addedToken
	raw, norm trie
}

func newAddedVocab(tokens []addedToken) addedVocab {
	a := addedVocab{tokens: tokens}
	a.raw.insert("", -1)
	a.norm.insert("", -1)
	for i, tok := range tokens {
		if tok.normalized {
			a.norm.insert(tok.content, int32(i))
		} else {
			a.raw.insert(tok.content, int32(i))
		}
	}
	return a
}

// split cuts t at the added tokens that m finds, as Hugging Face's
// AddedVocabulary::find_matches does: emit gets each token (with the white
// space its lstrip and rstrip take) and the text between tokens, with id
// -1. With ordinary, special tokens are not looked for.
func (a *addedVocab) split(t text, m *trie, ordinary bool, emit func(piece text, id int32)) {
	if m.empty() {
		emit(t, -1)
		return
	}
	s := t.s
	done := 0 // end of the last token emitted
	for i := 0; i < len(s); {
		if len(m.firsts) == 1 {
			// One first byte ('<' for most vocabularies): jump to it.
			j := strings.IndexByte(s[i:], m.firsts[0])
			if j < 0 {
				break
			}
			i += j
		} else if !m.first[s[i]] {
			i++
			continue
		}
		k, n := m.longest(s[i:])
		if k < 0 {
			i++
			continue
		}
		tok := a.tokens[k]
		start, stop := i, i+n
		if ordinary && tok.special || tok.singleWord && !standsAlone(s, start, stop) {
			i = stop
			continue
		}
		if tok.lstrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), done)
		}
		if tok.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if start > done {
			emit(t.sub(done, start), -1)
		}
		emit(t.sub(start, stop), tok.id)
		done, i = stop, stop
	}
	if done < len(s) || len(s) == 0 {
		emit(t.sub(done, len(s)), -1)
	}
}

// standsAlone reports whether s[start:stop] has no word character right
// before or after it, as single_word requires.
func standsAlone(s string, start, stop int) bool {
	before, _ := utf8.DecodeLastRuneInString(s[:start])
	after, _ := utf8.DecodeRuneInString(s[stop:])
	isWord := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }
	return (start == 0 || !isWord(before)) && (stop == len(s) || !isWord(after))
}
