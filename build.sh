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
#   ./build.sh lanes [cpu|cuda|all]  the suite on Debian 13's libtorch 2.6, CPU and
#                             CUDA builds, in cached trixie chroots (root; see "lanes")
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
#   cpu:  libtorch-dev (2.6, CPU).
#   cuda: libtorch-cuda-dev (2.6, contrib) and the CUDA 12.4 headers and
#         libraries (nvidia-cuda-dev, non-free), no GPU: compile and link the
#         CUDA shim (-tags cuda), run the suite on the CPU, and check that
#         `golens version --check` names CUDA as unavailable and does not crash.
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
    cpu) echo "$common,libtorch-dev" ;;
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
apt-get install -y -q --no-install-recommends libtorch-cuda-dev nvidia-cuda-dev
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
    say "installing mmdebstrap"; apt-get install -y -qq mmdebstrap >&2 || die "lanes need mmdebstrap"; }
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
  else
    grep -E '^ *cuda: ' <<<"$out" | grep -q 'built without CUDA' ||
      { echo "CPU build: want the cuda line to say 'built without CUDA'"; return 1; }
  fi
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
step "go test" env GOLENS_REQUIRE_FLOOR=1 go test ${GOTAGS:+-tags $GOTAGS} -count=1 -timeout 20m ./...
step "golens version --check" version_check
if [ ${#failed[@]} -gt 0 ]; then printf '\nlane %s: failed: %s\n' "$LANE" "$(IFS=,; echo "${failed[*]}")"; exit 1; fi
INNER
}

# lanes_enter runs inside `unshare --mount --pid --fork`: it mounts what the
# lane needs onto the root filesystem $1 and runs the job in a chroot.
lanes_enter() {
  local R=$1 state=$2 lane=$3 gotags=$4 modproxy=$5 mounted=()
  unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  }
  trap unmount_all EXIT
  mnt() { mount "$@" && mounted+=("${@: -1}"); }
  mkdir -p "$R/usr/local/go" "$R/golens/src" "$R/golens/go" "$R/golens/modproxy"
  mount --make-rprivate / # nothing mounted here shows on the host
  mnt -t proc proc "$R/proc"
  mnt -t sysfs -o ro sysfs "$R/sys"
  mnt --rbind /dev "$R/dev"
  mnt -t tmpfs -o size=8g tmpfs "$R/tmp"
  mnt --bind /usr/local/go "$R/usr/local/go"; mount -o remount,bind,ro "$R/usr/local/go"
  mnt --bind "$modproxy" "$R/golens/modproxy"; mount -o remount,bind,ro "$R/golens/modproxy"
  mnt --bind "$state/src" "$R/golens/src"
  mnt --bind "$state/go" "$R/golens/go"
  chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 LANE="$lane" GOTAGS="$gotags" LANES_RUN="${GOLENS_LANES_RUN:-}" \
    PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOCACHE=/golens/go/cache GOPATH=/golens/go/path GOPROXY=file:///golens/modproxy GOSUMDB=off \
    GOTOOLCHAIN=local CGO_ENABLED=1 GOLENS_TEST_DEVICE="${GOLENS_TEST_DEVICE:-cpu}" \
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
    lanes "$LANES_DIR/$lane" "$state" "$lane" "$gotags" "$(cd "$ROOT" && go env GOMODCACHE)/cache/download" 2>&1 | tee "$state/log"
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
  say "downloading the modules for the lanes (go mod download all)"
  (cd "$ROOT" && go mod download all) || die "go mod download failed"
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
    build) build_shim; build_cli ;;
    test) cmd_test ;;
    run) build_shim; build_cli; "$BIN/golens" version; exec "$BIN/golens" demo "$@" ;;
    bench) cmd_bench "$@" ;;
    golens) build_shim; build_cli; exec "$BIN/golens" "$@" ;;
    gpu-bundle) cmd_gpu_bundle "$@" ;;
    shim) build_shim ;;
    floor) build_floor ;;
    lanes) cmd_lanes "$@" ;;
    *) die "unknown command '$cmd' (want build, test, run, bench, golens, gpu-bundle, shim, floor, lanes)" ;;
  esac
}

main "$@"
