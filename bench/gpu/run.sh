#!/usr/bin/env bash
# bench/gpu/run.sh OUTDIR: golens's GPU runbook.
#
# For a Linux machine with an NVIDIA GPU, PyTorch for python3 and a C++
# compiler, but no Go and no network. It runs inside the folder written by
# `./build.sh gpu-bundle` (or a checkout that has one under build/): it
# builds the shim and the C++ floor library against this machine's torch
# with CUDA, runs the carried Go test binaries with GOLENS_TEST_DEVICE=cuda,
# times golens beside the floor in one process (bench/floor), runs the
# benchmark harness
# (bench/HARNESS.md: golens bench, the PyTorch and transformers peers, the
# C++ floor, and the device's measured matmul peak) on the same GPU, and
# writes summary.md, results.json and harness.jsonl into OUTDIR, printing
# the summary last. It stays within 8 minutes: the tests get until
# TEST_BUDGET seconds (default 180), the harness the rest.
#
#   GOLENS_GPU_DRYRUN=1 bash run.sh OUT   the same on a CPU machine, with
#                                         GOLENS_TEST_DEVICE=cpu
set -uo pipefail

OUT=${1:?usage: run.sh OUTDIR}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The bundle root holds build.sh and gotch/csrc; in a checkout it is build/gpu-bundle.
if [ -f "$HERE/build.sh" ] && [ -d "$HERE/bin" ]; then BUNDLE=$HERE
elif [ -d "$HERE/../../build/gpu-bundle/bin" ]; then BUNDLE=$(cd "$HERE/../../build/gpu-bundle" && pwd)
else echo "run.sh: no bundle next to me; run ./build.sh gpu-bundle first" >&2; exit 2; fi

DEADLINE=$((SECONDS + 8 * 60 - 20))
# the binaries travel compressed (xz, or gzip from a machine without xz);
# python3's lzma and gzip unpack them where the tools are missing
for z in "$BUNDLE"/bin/*.xz "$BUNDLE"/bin/*.gz; do
  [ -e "$z" ] || continue
  case $z in *.xz) tool="xz -d -f" mod=lzma ;; *) tool="gunzip -f" mod=gzip ;; esac
  $tool "$z" 2>/dev/null || ${PYTHON:-python3} -c "import $mod as z, os, shutil, sys; src = sys.argv[1]
with z.open(src) as i, open(src[:-3], 'wb') as o: shutil.copyfileobj(i, o)
os.chmod(src[:-3], 0o755); os.remove(src)" "$z"
done
DEVICE=cuda
[ -n "${GOLENS_GPU_DRYRUN:-}" ] && DEVICE=cpu
log() { printf '[run.sh %3ds] %s\n' "$SECONDS" "$*" | tee -a "$OUT/run.log" >&2; }

# ---- machine
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  ${PYTHON:-python3} -c 'import torch; print("torch:", torch.__version__, "cuda:", torch.version.cuda)' 2>&1
} >"$OUT/machine.txt"
log "machine: $(tr '\n' ';' <"$OUT/machine.txt")"

# ---- the shim, against this machine's torch
log "building the shim"
if ! (cd "$BUNDLE" && bash ./build.sh shim) >"$OUT/shim-build.log" 2>&1; then
  log "shim build FAILED; see shim-build.log"; tail -30 "$OUT/shim-build.log" >&2
  echo '{"shim":"FAILED"}' >"$OUT/results.json"; exit 1
fi
export LD_LIBRARY_PATH="$BUNDLE/gotch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# the in-process C++ floor (bench/floor), against the same torch
if (cd "$BUNDLE" && bash ./build.sh floor) >"$OUT/floor-lib-build.log" 2>&1; then
  export GOLENS_REQUIRE_FLOOR=1
  # where build.sh put it; the -trimpath test binary cannot find its source folder
  export GOLENS_FLOOR_LIB="$BUNDLE/bench/floor/lib/libgolens_floor.so"
else
  log "libgolens_floor did not build; see floor-lib-build.log (bench/floor's tests skip)"
fi
"$BUNDLE/bin/golens" version --check --device "$DEVICE" >"$OUT/version.txt" 2>&1
log "$(head -c 2000 "$OUT/version.txt")"

# ---- the carried test binaries, one package at a time, from its folder
TEST_DEADLINE=$((SECONDS + ${TEST_BUDGET:-180}))
rows=() total_fail=0
for bin in "$BUNDLE"/bin/*.test; do
  name=$(basename "$bin" .test)
  left=$((TEST_DEADLINE - SECONDS))
  if [ "$left" -lt 20 ]; then log "out of time before $name"; rows+=("$name|SKIPPED (time)|0|0|0|0"); continue; fi
  pkgdir="$BUNDLE/pkg/${name//_//}"; mkdir -p "$pkgdir" # holds its testdata
  start=$SECONDS
  # The CLI's fault suite (160 golens processes on bad input) checks what
  # no device changes; the lanes and CI run it, the GPU's minutes go elsewhere.
  skip='^$'; [ "$name" = cmd_golens ] && skip='^(TestFaults|TestTrainInterrupted|TestReportFolderOwnership)$'
  (cd "$pkgdir" && GOLENS_TEST_DEVICE=$DEVICE timeout "$left" "$bin" -test.v -test.count=1 -test.skip "$skip" -test.timeout "${left}s") >"$OUT/$name.log" 2>&1
  rc=$?
  pass=$(grep -c -- '^--- PASS' "$OUT/$name.log"); fail=$(grep -c -- '^--- FAIL' "$OUT/$name.log"); skip=$(grep -c -- '^--- SKIP' "$OUT/$name.log")
  status=PASS; [ "$rc" -ne 0 ] && status="FAIL (exit $rc)" && total_fail=$((total_fail + 1))
  rows+=("$name|$status|$pass|$fail|$skip|$((SECONDS - start))")
  log "$name: $status, $pass passed, $fail failed, $skip skipped"
done

# ---- golens beside the C++ floor in one process (bench/floor): forward,
# no-op hooks and cache against the floor on the same weights
sbs="$BUNDLE/bin/bench_floor.test"
if [ -x "$sbs" ] && [ -n "${GOLENS_REQUIRE_FLOOR:-}" ] && [ $((DEADLINE - SECONDS)) -gt 240 ]; then
  (cd "$BUNDLE/pkg/bench/floor" 2>/dev/null || cd "$BUNDLE"
   GOLENS_TEST_DEVICE=$DEVICE timeout 120 "$sbs" -test.run '^$' -test.bench '^BenchmarkGPT2SideBySide$' \
     -test.benchtime 30x) >"$OUT/side_by_side.txt" 2>&1 || log "side-by-side benchmark failed; see side_by_side.txt"
  log "side by side: $(grep '^BenchmarkGPT2SideBySide' "$OUT/side_by_side.txt")"
fi

# ---- the harness: golens, its peers and the C++ floor on this device
HJ=$OUT/harness.jsonl; : >"$HJ"
PY=${PYTHON:-python3}
# the C++ floor, built against this machine's torch
floor=""
if info=$($PY - 2>>"$OUT/floor-build.log" <<'PYEOF'
import os, torch
from torch.utils import cpp_extension as ce
print("TI='%s' TL='%s' ABI=%d" % (" ".join(ce.include_paths()), os.path.join(os.path.dirname(torch.__file__), "lib"), int(torch._C._GLIBCXX_USE_CXX11_ABI)))
PYEOF
) && eval "$info"; then
  incs=""; for i in $TI; do incs="$incs -isystem $i"; done
  cudalibs=""; ls "$TL"/libtorch_cuda.so >/dev/null 2>&1 && cudalibs="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"
  for std in c++17 c++20; do
    # shellcheck disable=SC2086
    g++ -std=$std -O2 -D_GLIBCXX_USE_CXX11_ABI=$ABI $incs "$BUNDLE/bench/cpp/gpt2_forward.cpp" -o "$OUT/gpt2_forward" \
      -L"$TL" -Wl,-rpath,"$TL" -ltorch_cpu -lc10 $cudalibs >"$OUT/floor-build.log" 2>&1 && { floor=$OUT/gpt2_forward; break; }
  done
fi
[ -n "$floor" ] || log "the C++ floor did not build; see floor-build.log"
HAVE_TF=0; $PY -c 'import transformers' 2>/dev/null && HAVE_TF=1
# the device's matmul peak, as a row each for float32 (TF32 off, as golens) and bfloat16
$PY - "$DEVICE" >>"$HJ" 2>>"$OUT/harness.log" <<'PYEOF'
import json, sys, time, torch
dev = sys.argv[1]
n = 8192 if dev == "cuda" else 1024
for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
    a = torch.randn(n, n, device=dev, dtype=dt); b = torch.randn(n, n, device=dev, dtype=dt)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    for _ in range(3): a @ b
    sync(); ts = []
    for _ in range(10):
        t = time.perf_counter(); a @ b; sync(); ts.append(time.perf_counter() - t)
    med = sorted(ts)[len(ts) // 2]
    print(json.dumps({"impl": "pytorch", "workload": "matmul_peak", "shape": "%dx%d" % (n, n), "batch": 1, "seq": n, "dtype": name,
        "device": dev, "status": "OK", "error": "", "median_ms": med * 1e3, "flops": 2.0 * n ** 3, "tflops": 2.0 * n ** 3 / med / 1e12,
        "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if dev == "cuda" else ""}), flush=True)
PYEOF
# "shape workloads batches seqs dtypes" per line, most important first: what
# the time does not reach is skipped and said so.
GRID=${GOLENS_GPU_GRID:-"gpt2-small forward,hooks_noop,cache_all,cache_all_cpu,cache_pattern 1 64 float32
gpt2-small forward 16 1024 bfloat16,float32
pythia-160m forward 16 1024 bfloat16
llama-1b forward 16 1024 bfloat16
gemma2-2b forward 16 1024 bfloat16
gpt2-small generate_kv,generate_nokv 1 32 float32
toy forward,cache_all,hooks_noop 1 32 float32
attn-only-2l forward,cache_all 1 128 float32,bfloat16
gpt2-small train_step 8 256 bfloat16
gpt2-medium forward,cache_all 1 128 float32,bfloat16
gpt2-small patching 1 8 float32"}
harness_rows=0
# the shapes the C++ floor (GPT-2's forward) has
floor_has() { case $1 in toy | attn-only-2l | gpt2-small | gpt2-medium) return 0 ;; esac; return 1; }
while read -r shape works batches seqs dtypes; do
  [ -n "$shape" ] || continue
  if [ $((DEADLINE - SECONDS)) -lt 45 ]; then log "harness: out of time before $shape $works $batches x $seqs"; continue; fi
  grid=""; for b in ${batches//,/ }; do for s in ${seqs//,/ }; do grid="$grid${grid:+,}${b}x$s"; done; done
  log "harness: $shape $works at $grid in $dtypes"
  tl() { echo $((DEADLINE - SECONDS - 10)); }
  for dt in ${dtypes//,/ }; do
    timeout "$(tl)" "$BUNDLE/bin/golens" bench --json --device "$DEVICE" --shape "$shape" --workload "$works" \
      --batch "$batches" --seq "$seqs" --dtype "$dt" >>"$HJ" 2>>"$OUT/harness.log"
    timeout "$(tl)" $PY "$BUNDLE/bench/gpt2_peer.py" --impl pytorch --device "$DEVICE" --shape "$shape" --workload "$works" \
      --grid "$grid" --dtype "$dt" >>"$HJ" 2>>"$OUT/harness.log"
    [ "$HAVE_TF" = 1 ] && timeout "$(tl)" $PY "$BUNDLE/bench/gpt2_peer.py" --impl transformers --device "$DEVICE" --shape "$shape" \
      --workload "$works" --grid "$grid" --dtype "$dt" >>"$HJ" 2>>"$OUT/harness.log"
    if [ -n "$floor" ] && [[ ",$works," == *,forward,* ]] && floor_has "$shape"; then
      timeout "$(tl)" "$floor" --json --device "$DEVICE" --shape "$shape" --grid "$grid" --dtype "$dt" >>"$HJ" 2>>"$OUT/harness.log"
    fi
  done
done <<<"$GRID"
harness_rows=$(grep -c . "$HJ")
"$BUNDLE/bin/golens" bench table "$HJ" >"$OUT/harness.md" 2>>"$OUT/harness.log" || log "harness table failed"
log "harness: $harness_rows rows"

# ---- results
{
  printf '{"device":"%s","machine":"%s","packages":[' "$DEVICE" "$(tr '\n"' '; ' <"$OUT/machine.txt")"
  sep=""
  for r in "${rows[@]}"; do
    IFS='|' read -r n s p f k t <<<"$r"
    printf '%s{"package":"%s","status":"%s","passed":%s,"failed":%s,"skipped":%s,"seconds":%s}' "$sep" "$n" "$s" "$p" "$f" "$k" "$t"
    sep=","
  done
  printf ']}\n'
} >"$OUT/results.json"
{
  echo "# golens GPU run ($DEVICE)"
  echo
  sed 's/^/    /' "$OUT/machine.txt"
  echo
  echo "| package | status | passed | failed | skipped | seconds |"
  echo "|---|---|---|---|---|---|"
  for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
  echo
  echo "## golens beside the C++ floor, one process (bench/floor, gpt2-small 1x128)"
  echo
  grep '^BenchmarkGPT2SideBySide' "$OUT/side_by_side.txt" 2>/dev/null | sed 's/^/    /'
  echo
  echo "## Harness ($harness_rows rows in harness.jsonl)"
  echo
  grep '"matmul_peak"' "$HJ" | sed -E 's/.*"dtype": *"([^"]*)".*"tflops": *([0-9.]+).*/matmul peak \1: \2 TFLOP\/s/'
  echo
  cat "$OUT/harness.md" 2>/dev/null
} >"$OUT/summary.md"
cat "$OUT/summary.md"
[ "$total_fail" -eq 0 ]
