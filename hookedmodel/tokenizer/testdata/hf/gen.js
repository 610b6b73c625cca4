// gen.js writes the Hugging Face goldens: corpus.json (the texts) and, for
// each tokenizer fetched by fetch.sh, golden-NAME.json with the ids,
// offsets and decodings that Hugging Face's tokenizers library (its Node
// binding, the npm package `tokenizers`, pinned in package.json) gives.
//
//   ./fetch.sh --node && node gen.js
//
// corpus.json: [{name, text}] or, for byte strings that are not UTF-8,
// [{name, hex, text}], where text is what a UTF-8 reader with replacement
// (TextDecoder, Python's errors="replace") makes of the bytes, which is what
// Hugging Face tokenizes.
//
// golden-variants.json: the same for the tokenizers of variants.json, each a
// fetched tokenizer.json with some fields replaced (components the listed
// tokenizers do not use: Metaspace, Digits, Split behaviors, lstrip and
// rstrip, ...), on every third text of the corpus and the special/ and
// affix/ ones:
// {tokenizers, texts: [corpus index], variants: {NAME: {encode: [...]}}}.
//
// golden-NAME.json: {tokenizers, file, sha256, encode: [{ids, plain,
// offsets, decode, decodeSkip}], decode: [{ids, text, textSkip}]}: encode[i]
// is corpus[i] encoded with special tokens (ids) and without (plain);
// offsets are plain's character (code point) spans; decode and decodeSkip
// decode ids without and with skip_special_tokens. decode holds seeded
// random id sequences.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Tokenizer } = require('tokenizers');

const here = __dirname;
const cache = process.env.GOLENS_HF_TOKENIZERS || path.join(require('os').homedir(), '.cache/golens/hf-tokenizers');
const version = require('tokenizers/package.json').version;

// mulberry32, seeded, so the output is reproducible.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The corpus: the texts of the GPT-2 goldens (../golden.json: prose,
// contractions, whitespace, numbers, code, scripts, emoji, control
// characters, random strings) and the cases below, aimed at the other
// tokenizers' special tokens, normalizers and regexes.
function corpus() {
  const out = [];
  const names = new Set();
  const add = (name, text, hex) => {
    if (names.has(name)) throw new Error('duplicate case ' + name);
    names.add(name);
    out.push(hex === undefined ? { name, text } : { name, hex, text });
  };
  for (const c of require('../golden.json').encode) add('gpt2/' + c.name, c.text);

  const specials = ['<|endoftext|>', '<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>', '<|start_header_id|>',
    '<|im_start|>', '<|im_end|>', '<s>', '</s>', '<unk>', '<pad>', '<bos>', '<eos>', '<start_of_turn>', '<end_of_turn>',
    '<mask>', '[multimodal]', '<start_of_image>', '<|reserved_special_token_5|>', '<think>', '</think>', '<|fim_prefix|>'];
  specials.forEach((s, i) => {
    add(`special/${i}/alone`, s);
    add(`special/${i}/inside`, `Hello${s}world`);
    add(`special/${i}/spaced`, ` before ${s} after `);
    add(`special/${i}/twice`, `${s}${s}\n${s}`);
  });
  add('special/partial', '<|endoftext| <|im_start <s </s <bo s> |>');
  add('special/chat', '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n');
  add('special/gemma-chat', '<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>');
  add('special/llama3-chat', '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>');

  const extra = {
    spm: ['▁', '▁▁', 'a▁b', ' ▁ ', '▁hello', 'hello▁', '  leading two', 'trailing two  ', '   ', ' ', 'x  y   z    w',
      '\u2581\u2581 x', 'sentencepiece-style ▁ markers ▁▁▁ inside'],
    digits: ['1', '12', '123', '1234', '12345', '123456', '1234567', '2024 12 31', '3.141592653589793',
      'a1b22c333d4444', '١٢٣٤٥', '𝟙𝟚𝟛𝟜', '૧૨૩૪', '10,000,000.00', '0000000000000000'],
    case: ["HE'S", "We'RE", "THEY'LL", "I'D", "You'VE", "it'S", "'S'T'RE", "don'T"],
    newline: ['a\r\nb', '\r\n\r\n', 'x \r\n y', '  \n\n  z', '.\n\n', '!!!\n', '?\r\n', 'end.\r', '\r', ' \r ', 'a\n\r\nb',
      'tab\tthen\ttabs\t\t\tend', '\t\n\t\n', 'x\u00a0\u00a0y', '\u00a0\n'],
    normalize: ['e\u0301', 'é', 'A\u030a', 'Å', '\u1e9b\u0323', 'ﬁ', '①', '㎏', 'Ｆｕｌｌｗｉｄｔｈ', 'ｶﾀｶﾅ',
      '\u0041\u0308\u0304', 'ǅ', 'Ⅻ', '\u00bd', '\u2126', '\u212b', 'ḱṷṓn', '한글', '\u1100\u1161\u11a8',
      '\u0958', '\ufb2c', 'q\u0307\u0323'],
    rare: ['𓀀𓁐𓂀', '𐍈𐌰𐌹', '🜁🜂🜃', '꧁꧂', 'ꙮ', '\u{10FFFD}', '\u{E0041}', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '⿰⿱', '\u0378',
      '\u{1F9D1}\u{200D}\u{1F91D}\u{200D}\u{1F9D1}', '\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}',
      '\u{1F468}\u{1F3FD}\u{200D}\u{1F4BB}', '🇺🇳🇪🇺', '#\u{FE0F}\u{20E3}', '\u{FE0F}', '\u{1FAE8}\u{1FAE9}'],
    long: ['a'.repeat(300), 'ab'.repeat(200), ' '.repeat(300), '\n'.repeat(100), '.'.repeat(200),
      'Pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(8), '9'.repeat(100), '😀'.repeat(50),
      'αβγδεζηθικλμνξοπρστυφχψω'.repeat(10), '漢'.repeat(100), 'x'.repeat(5000)],
    affix: ['abc ab ba cab bca aab c', 'a', 'abcabc', 'ab\tbc  cc', 'xab abx'],
    mixed: ['The price is $1,234.56 (≈ €1.100) — cheap!', 'Zeit für Tee: 15:30 Uhr, 25°C.',
      'print(f"{x!r:>10}")  # 日本語 comment', '<div>\n\t<span>\u00a0</span>\n</div>', 'naïve café déjà vu coöperate',
      'I’m “quoted” ‘single’ «guillemets» „low“', 'a—b–c‐d', 'ok…', 'x  \t \n  y', '   indented\n      more\n'],
  };
  for (const [k, texts] of Object.entries(extra)) texts.forEach((t, i) => add(`${k}/${i}`, t));

  // Byte strings that are not UTF-8, decoded with replacement as Hugging
  // Face sees them.
  const bad = ['ff', 'fffe', '61ff62', 'c3', 'c328', 'e282', 'e28228', 'f09f98', 'f09f9880ff', 'eda080', 'c0af', 'f4908080',
    '80', '80bf', 'e0800a', 'efbbbf68656c6c6f', '68c3a96cff6c6f20f09f98', 'fe20ff20', '3c73ff3e', '3c7c656e64ff6f66746578747c3e'];
  const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  bad.forEach((h, i) => add(`invalid/${i}`, dec.decode(Buffer.from(h, 'hex')), h));

  // Random code points over a few scripts, and random word salad.
  const r = rng(16);
  const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f],
    [0x3040, 0x30ff], [0x4e00, 0x4fff], [0xac00, 0xacff], [0x1f300, 0x1f64f], [0x2000, 0x206f], [0x300, 0x36f], [0x9, 0xd]];
  for (let i = 0; i < 60; i++) {
    let s = '';
    const n = 1 + Math.floor(r() * 40);
    for (let j = 0; j < n; j++) {
      const [lo, hi] = ranges[Math.floor(r() * ranges.length)];
      s += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
    }
    add(`random/${i}`, s);
  }
  return out;
}

// randomIDs returns seeded id sequences for decode goldens: ordinary ids,
// special ids, and runs of neighbouring ids (byte tokens, partial UTF-8).
function randomIDs(tk, seed) {
  const r = rng(seed);
  const n = tk.getVocabSize(true);
  const special = Object.values(tk.getVocab(true)).filter((id) => id >= tk.getVocabSize(false)).sort((a, b) => a - b);
  const seqs = [];
  for (let i = 0; i < 60; i++) {
    const len = 1 + Math.floor(r() * 12);
    const ids = [];
    for (let j = 0; j < len; j++) {
      const u = r();
      if (u < 0.1 && special.length) ids.push(special[Math.floor(r() * special.length)]);
      else if (u < 0.4) ids.push(Math.floor(r() * Math.min(n, 600)));
      else ids.push(Math.floor(r() * n));
    }
    seqs.push(ids);
  }
  return seqs;
}

// variant returns the tokenizer.json of a variant: its base (a fetched
// tokenizer, or a file here such as tiny-prefix.json) with the fields
// of set (dotted paths) replaced and add_tokens appended to added_tokens.
// The Go test applies the same edits.
function variant(v) {
  const file = v.base.endsWith('.json') ? path.join(here, v.base) : path.join(cache, v.base, 'tokenizer.json');
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const [key, value] of Object.entries(v.set || {})) {
    const keys = key.split('.');
    let o = j;
    for (const k of keys.slice(0, -1)) o = o[k];
    o[keys[keys.length - 1]] = value;
  }
  j.added_tokens.push(...(v.add_tokens || []));
  return j;
}

async function encodeAll(tk, texts) {
  const out = [];
  for (const text of texts) {
    const e = await tk.encode(text, null, { addSpecialTokens: true });
    const p = await tk.encode(text, null, { addSpecialTokens: false });
    const ids = e.getIds();
    out.push({
      ids, plain: p.getIds(), offsets: p.getOffsets(),
      decode: await tk.decode(ids, false), decodeSkip: await tk.decode(ids, true),
    });
  }
  return out;
}

async function main() {
  const texts = corpus();
  fs.writeFileSync(path.join(here, 'corpus.json'), JSON.stringify(texts) + '\n');
  const names = fs.readFileSync(path.join(here, 'tokenizers.txt'), 'utf8').split('\n')
    .filter((l) => l && !l.startsWith('#')).map((l) => l.split(' ')[0]);
  for (const [k, name] of names.entries()) {
    const file = path.join(cache, name, 'tokenizer.json');
    const tk = Tokenizer.fromFile(file);
    const encode = await encodeAll(tk, texts.map((c) => c.text));
    const decode = [];
    for (const ids of randomIDs(tk, 100 + k)) {
      decode.push({ ids, text: await tk.decode(ids, false), textSkip: await tk.decode(ids, true) });
    }
    const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const out = { tokenizers: version, file: name + '/tokenizer.json', sha256, encode, decode };
    fs.writeFileSync(path.join(here, `golden-${name}.json`), JSON.stringify(out) + '\n');
    console.log(`golden-${name}.json: ${encode.length} texts, ${decode.length} id sequences`);
  }

  const index = texts.map((c, i) => i).filter((i) => i % 3 === 0 || /^(special|affix)\//.test(texts[i].name));
  const variants = {};
  for (const v of JSON.parse(fs.readFileSync(path.join(here, 'variants.json'), 'utf8'))) {
    const tk = Tokenizer.fromString(JSON.stringify(variant(v)));
    variants[v.name] = { encode: await encodeAll(tk, index.map((i) => texts[i].text)) };
  }
  fs.writeFileSync(path.join(here, 'golden-variants.json'), JSON.stringify({ tokenizers: version, texts: index, variants }) + '\n');
  console.log(`golden-variants.json: ${Object.keys(variants).length} variants, ${index.length} texts`);
}

main().catch((e) => { console.error(e); process.exit(1); });
