#!/bin/sh
# bench.sh compares golens's tokenizers with Hugging Face's on the same ~10
# MB mixed corpus, one thread each: the Go benchmark (BenchmarkHFEncode,
# GOMAXPROCS=1) writes the corpus and times golens, then bench.js times
# the Node binding of Hugging Face's Rust library. Needs ./fetch.sh --node.
#
#   hookedmodel/tokenizer/testdata/hf/bench.sh [NAME...]   (default llama3 gemma3)
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
names="${*:-llama3 gemma3}"
corpus="$(mktemp)"
trap 'rm -f "$corpus"' EXIT
pattern="$(echo "$names" | tr ' ' '|')"
cd "$here/../.."
GOLENS_BENCH_CORPUS_OUT="$corpus" GOMAXPROCS=1 go test -run '^$' -bench "^BenchmarkHFEncode\$/^($pattern)\$" -benchtime 3x -count 1 . |
	awk '/^Benchmark/ { for (i = 3; i < NF; i++) v[$(i+1)] = $i
		printf "golens %s: %.2f MB/s %.3f Mtokens/s (%d tokens)\n", $1, v["MB/s"], v["tokens/s"] / 1e6, v["tokens/op"] }'
# shellcheck disable=SC2086
node "$here/bench.js" "$corpus" $names
