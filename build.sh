#!/usr/bin/env bash
# build.sh: golens's one entry point for setup, build, test and benchmarks.
#
#   ./build.sh build          find libtorch, build the shim and bin/golens
#   ./build.sh test           everything CI runs: vet and the whole test suite
#   ./build.sh run [ARGS]     build, then run golens's main job: golens demo
#   ./build.sh bench          benchmarks (Go against the C++ floor) -> bench/out
#   ./build.sh golens ARGS... build if needed, then run the CLI
#   ./build.sh gpu-bundle [DIR]  carried test binaries + shim sources + runbook
#   ./build.sh floor          libgolens_floor (bench/floor's C++ floor) -> bench/floor/lib
#
# libtorch is looked for in $LIBTORCH, then in python3's torch package, then
# in the system; on Debian/Ubuntu as root, libtorch-dev is installed when
# nothing is found. The shim is rebuilt only when its sources, the torch
# found or the flags change.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CSRC=$ROOT/gotch/csrc
LIBDIR=$ROOT/gotch/lib
BIN=$ROOT/bin

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- finding libtorch: sets TORCH_FROM TORCH_INCS TORCH_LIB TORCH_ABI
torch_from_dir() { # $1 = a libtorch root with include/ and lib/
  TORCH_INCS="$1/include $1/include/torch/csrc/api/include"
  TORCH_LIB=$1/lib
  if nm -DC "$TORCH_LIB/libc10.so" 2>/dev/null | grep -q 'std::__cxx11::basic_string'; then
    TORCH_ABI=1
  else
    TORCH_ABI=0
  fi
}

torch_from_python() {
  local py=${PYTHON:-python3} info
  command -v "$py" >/dev/null 2>&1 || return 1
  info=$("$py" - 2>/dev/null <<'PY'
import os, torch
root = os.path.dirname(torch.__file__)
print(os.path.join(root, "include"), os.path.join(root, "include", "torch", "csrc", "api", "include"))
print(os.path.join(root, "lib"))
print(int(torch.compiled_with_cxx11_abi()))
PY
) || return 1
  TORCH_INCS=$(sed -n 1p <<<"$info")
  TORCH_LIB=$(sed -n 2p <<<"$info")
  TORCH_ABI=$(sed -n 3p <<<"$info")
  # Debian's python3-torch has no headers of its own: they are libtorch-dev's.
  [ -f "${TORCH_INCS%% *}/ATen/ATen.h" ] && [ -f "$TORCH_LIB/libc10.so" ]
}

torch_from_system() {
  local multi
  multi=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  [ -f /usr/include/ATen/ATen.h ] && [ -f "/usr/lib/$multi/libc10.so" ] || return 1
  TORCH_INCS="/usr/include /usr/include/torch/csrc/api/include"
  TORCH_LIB=/usr/lib/$multi
  TORCH_ABI=1 # Debian and Ubuntu build with the C++11 ABI
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

find_torch() {
  if [ -n "${LIBTORCH:-}" ]; then
    [ -d "$LIBTORCH/include" ] || die "LIBTORCH=$LIBTORCH has no include/ folder"
    torch_from_dir "$LIBTORCH"; TORCH_FROM="\$LIBTORCH ($LIBTORCH)"; return
  fi
  if torch_from_python; then TORCH_FROM="python torch ($TORCH_LIB)"; return; fi
  if torch_from_system; then TORCH_FROM="system libtorch ($TORCH_LIB)"; ensure_openblas; return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "no libtorch found: installing Debian's libtorch-dev"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq libtorch-dev >&2 || die "apt-get install libtorch-dev failed"
    torch_from_system && { TORCH_FROM="system libtorch ($TORCH_LIB, just installed)"; ensure_openblas; return; }
  fi
  die "no libtorch: set LIBTORCH to an unpacked libtorch, install torch for python3, or install libtorch-dev"
}

# ---- CUDA: sets CUDA_FLAGS and CUDA_LIBS when this torch has CUDA
find_cuda() {
  CUDA_FLAGS="" CUDA_LIBS="" CUDA_NOTE="no (CPU-only libtorch)"
  [ -f "$TORCH_LIB/libtorch_cuda.so" ] || return 0
  CUDA_LIBS="-Wl,--no-as-needed -ltorch_cuda -Wl,--as-needed"
  CUDA_NOTE="yes, without runtime statistics (cuda_runtime_api.h not found)"
  local d site
  site=$("${PYTHON:-python3}" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
  for d in ${CUDA_HOME:+$CUDA_HOME/include} /usr/local/cuda/include /usr/include \
           $(for s in $site; do ls -d "$s"/nvidia/*/include "$s"/nvidia/include 2>/dev/null; done); do
    if [ -f "$d/cuda_runtime_api.h" ]; then
      CUDA_FLAGS="-DGT_WITH_CUDA -isystem $d"
      CUDA_NOTE="yes (CUDA headers in $d)"
      return 0
    fi
  done
}

shim_lib() { if [ "$(uname)" = Darwin ]; then echo "$LIBDIR/libgolens_torch.dylib"; else echo "$LIBDIR/libgolens_torch.so"; fi; }

shim_cxxflags() { # $1 = C++ standard
  local incs="" i
  for i in $TORCH_INCS; do [ "$i" = /usr/include ] || incs="$incs -isystem $i"; done
  echo "-std=$1 -O2 -fPIC -Wall -Wextra -D_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI $CUDA_FLAGS $incs -I$CSRC"
}

compile_shim() { # $1 = C++ standard
  local objdir=$LIBDIR/obj flags i f pids=()
  mkdir -p "$objdir"
  flags=$(shim_cxxflags "$1")
  for f in "$CSRC"/*.cpp; do
    ${CXX:-g++} $flags -c "$f" -o "$objdir/$(basename "${f%.cpp}").o" 2>"$objdir/$(basename "$f").log" &
    pids+=($!)
  done
  local ok=0
  for i in "${pids[@]}"; do wait "$i" || ok=1; done
  return $ok
}

build_shim() {
  find_torch
  find_cuda
  local lib stamp
  lib=$(shim_lib)
  stamp=$( { cat "$CSRC"/*.h "$CSRC"/*.cpp; echo "$TORCH_INCS $TORCH_LIB $TORCH_ABI $CUDA_FLAGS $CUDA_LIBS ${CXX:-g++}"; \
             cat "${TORCH_INCS##* }/torch/version.h" 2>/dev/null || true; } | sha256sum | cut -c1-16)
  if [ -f "$lib" ] && [ "$(cat "$LIBDIR/.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  say "libtorch: $TORCH_FROM, C++11 ABI $TORCH_ABI; CUDA: $CUDA_NOTE"
  say "compiling the shim (a minute or two)"
  mkdir -p "$LIBDIR"
  if ! compile_shim c++17; then
    say "C++17 failed against these torch headers; trying C++20"
    compile_shim c++20 || { cat "$LIBDIR"/obj/*.log >&2; die "the shim does not compile against $TORCH_FROM"; }
  fi
  local rpath="-Wl,-rpath,$TORCH_LIB"
  ${CXX:-g++} -shared -o "$lib" "$LIBDIR"/obj/*.o -L"$TORCH_LIB" $rpath \
    $CUDA_LIBS -ltorch_cpu -lc10 -ltorch || die "linking the shim failed"
  echo "$stamp" >"$LIBDIR/.stamp"
  say "built $lib"
}

# libgolens_floor: the C++ floor (bench/cpp/gpt2_floor.h) as a golens
# extension (gotch/csrc/golens_torch_ext.h) that bench/floor loads into a
# golens process, to time it beside golens on the same weights. It links
# libtorch only, so it needs no shim; built against the torch found (which
# must be the one golens runs on: gotch checks) into bench/floor/lib, where
# bench/floor's Path looks.
build_floor() {
  find_torch
  find_cuda
  local lib stamp std src=$ROOT/bench/cpp dir=$ROOT/bench/floor/lib
  lib=$dir/libgolens_floor.so; [ "$(uname)" = Darwin ] && lib=$dir/libgolens_floor.dylib
  stamp=$( { cat "$src/gpt2_floor.h" "$src/floor_lib.cpp" "$CSRC/golens_torch.h" "$CSRC/golens_torch_ext.h"; \
             echo "$TORCH_INCS $TORCH_LIB $TORCH_ABI $CUDA_FLAGS ${CXX:-g++}"; \
             cat "${TORCH_INCS##* }/torch/version.h" 2>/dev/null || true; } | sha256sum | cut -c1-16)
  if [ -f "$lib" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  say "compiling the in-process C++ floor (bench/cpp/floor_lib.cpp) against $TORCH_FROM"
  mkdir -p "$dir"
  for std in c++17 c++20; do # as the shim
    # shellcheck disable=SC2046
    ${CXX:-g++} $(shim_cxxflags $std) -I"$src" -shared -o "$lib" "$src/floor_lib.cpp" \
      -L"$TORCH_LIB" -Wl,-rpath,"$TORCH_LIB" -ltorch_cpu -lc10 &&
      { echo "$stamp" >"$dir/.stamp"; say "built $lib"; return 0; }
  done
  die "bench/cpp/floor_lib.cpp does not compile against $TORCH_FROM"
}

ensure_go() {
  command -v go >/dev/null || die "Go is not installed (golens needs Go >= 1.26)"
}

build_cli() {
  ensure_go
  mkdir -p "$BIN"
  (cd "$ROOT" && go build -o "$BIN/golens" ./cmd/golens)
}

# The report package's browser test renders a page in headless Chromium and
# skips without it; as root with apt, install it when missing.
ensure_chromium() {
  command -v chromium >/dev/null && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
  say "installing chromium for the report's browser test"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } >&2 ||
    say "warning: could not install chromium; the report's browser test will skip"
}

cmd_test() {
  build_floor
  ensure_go
  ensure_chromium
  cd "$ROOT"
  say "go vet"
  go vet ./...
  say "go test (device: ${GOLENS_TEST_DEVICE:-cpu})"
  # bench/floor's tests fail, not skip, without the floor library built above
  GOLENS_REQUIRE_FLOOR=1 go test -count=1 -timeout 20m ./... 2>&1 | tee "$LIBDIR/test.log"
  local rc=${PIPESTATUS[0]}
  say "go test -race (concurrency)"
  go test -count=1 -race -timeout 10m -run 'Concurrent|Race|Scope|Free' ./gotch/ ./hookedmodel/ 2>&1 | tee -a "$LIBDIR/test.log"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
  local passed failed
  passed=$(grep -c '^ok ' "$LIBDIR/test.log" || true)
  failed=$(grep -c -E '^(FAIL|--- FAIL)' "$LIBDIR/test.log" || true)
  echo "packages: $passed passed, $failed failed"
  return "$rc"
}

cmd_bench() {
  build_floor
  ensure_go
  export TORCH_INCS TORCH_LIB TORCH_ABI
  "$ROOT/bench/run.sh" "$@"
}

cmd_gpu_bundle() {
  build_floor
  ensure_go
  local out=${1:-$ROOT/build/gpu-bundle}
  rm -rf "$out"; mkdir -p "$out/bin" "$out/gotch/csrc" "$out/pkg"
  cp "$ROOT/build.sh" "$ROOT/bench/gpu/run.sh" "$out/"
  mkdir -p "$out/bench/cpp"
  cp "$ROOT/bench/peers/gpt2_peer.py" "$ROOT/bench/HARNESS.md" "$out/bench/"
  cp "$ROOT/bench/cpp/gpt2_forward.cpp" "$ROOT/bench/cpp/gpt2_floor.h" "$ROOT/bench/cpp/floor_lib.cpp" "$out/bench/cpp/"
  cp "$CSRC"/*.h "$CSRC"/*.cpp "$out/gotch/csrc/"
  local pkg rel
  # Only packages that run on the device (cgo, or built on gotch): the pure-Go ones
  # test the same on any machine, and the bundle must stay small to travel.
  for pkg in $(cd "$ROOT" && go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{if .CgoFiles}}cgo{{end}} {{join .Deps " "}}{{end}}' ./... |
               awk '$2 == "cgo" || / github.com\/golens\/golens\/gotch( |$)/ {print $1}'); do
    rel=${pkg#github.com/golens/golens/}
    (cd "$ROOT" && go test -c -trimpath -ldflags='-s -w' -o "$out/bin/$(tr / _ <<<"$rel").test" "$pkg")
    mkdir -p "$out/pkg/$rel"
    [ -d "$ROOT/$rel/testdata" ] && cp -r "$ROOT/$rel/testdata" "$out/pkg/$rel/"
  done
  (cd "$ROOT" && go build -trimpath -ldflags='-s -w' -o "$out/bin/golens" ./cmd/golens)
  gzip -6 "$out"/bin/* # to travel within 64 MiB; run.sh unpacks them
  say "wrote $out ($(du -sh "$out" | cut -f1)); on the GPU machine: bash run.sh OUTDIR"
}

main() {
  local cmd=${1:-build}
  shift || true
  case "$cmd" in
    build) build_shim; build_cli ;;
    test) cmd_test ;;
    run) build_shim; build_cli; "$BIN/golens" version; exec "$BIN/golens" demo "$@" ;;
    bench) cmd_bench "$@" ;;
    golens) build_shim; build_cli; exec "$BIN/golens" "$@" ;;
    gpu-bundle) cmd_gpu_bundle "$@" ;;
    shim) build_shim ;;
    floor) build_floor ;;
    *) die "unknown command '$cmd' (want build, test, run, bench, golens, gpu-bundle, shim, floor)" ;;
  esac
}

main "$@"
