// bench.js times Hugging Face's tokenizers (the Node binding) on the
// documents of a corpus file (a JSON array of strings, written by the Go
// benchmark),
// one encode at a time: MB/s and tokens/s per tokenizer, timed inside Node.
//
//   node bench.js CORPUS NAME...
'use strict';

const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const cache = process.env.GOLENS_HF_TOKENIZERS || path.join(require('os').homedir(), '.cache/golens/hf-tokenizers');

async function main() {
  const [corpusFile, ...names] = process.argv.slice(2);
  const docs = JSON.parse(fs.readFileSync(corpusFile, 'utf8'));
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  for (const name of names) {
    let t0 = process.hrtime.bigint();
    const tk = Tokenizer.fromFile(path.join(cache, name, 'tokenizer.json'));
    const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const d of docs.slice(0, 50)) await tk.encode(d, null, { addSpecialTokens: false }); // warm up
    let best = Infinity;
    let tokens = 0;
    for (let run = 0; run < 3; run++) {
      tokens = 0;
      t0 = process.hrtime.bigint();
      for (const d of docs) tokens += (await tk.encode(d, null, { addSpecialTokens: false })).getLength();
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    console.log(`hf ${name}: ${(bytes / 1e6 / best).toFixed(2)} MB/s ${(tokens / best / 1e6).toFixed(3)} Mtokens/s ` +
      `(${tokens} tokens, ${(bytes / 1e6).toFixed(1)} MB, best of 3: ${best.toFixed(2)} s; load ${loadS.toFixed(2)} s)`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
