#!/usr/bin/env bash
# bench/gpu/run.sh OUTDIR: golens's GPU runbook.
#
# For a Linux machine with an NVIDIA GPU, PyTorch for python3 and a C++
# compiler, but no Go and no network. It runs inside the folder written by
# `./build.sh gpu-bundle` (or a checkout that has one under build/): it
# builds the shim against this machine's torch with CUDA, runs the carried
# Go test binaries with GOLENS_TEST_DEVICE=cuda, and writes summary.md and
# results.json into OUTDIR, printing the summary last. It stays within 8
# minutes.
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
"$BUNDLE/bin/golens" version --check --device "$DEVICE" >"$OUT/version.txt" 2>&1
log "$(head -c 2000 "$OUT/version.txt")"

# ---- the carried test binaries, one package at a time, from its folder
rows=() total_fail=0
for bin in "$BUNDLE"/bin/*.test; do
  name=$(basename "$bin" .test)
  left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 20 ]; then log "out of time before $name"; rows+=("$name|SKIPPED (time)|0|0|0|0"); continue; fi
  pkgdir="$BUNDLE/pkg/${name//_//}"; mkdir -p "$pkgdir" # holds its testdata
  start=$SECONDS
  (cd "$pkgdir" && GOLENS_TEST_DEVICE=$DEVICE timeout "$left" "$bin" -test.v -test.count=1 -test.timeout "${left}s") >"$OUT/$name.log" 2>&1
  rc=$?
  pass=$(grep -c -- '^--- PASS' "$OUT/$name.log"); fail=$(grep -c -- '^--- FAIL' "$OUT/$name.log"); skip=$(grep -c -- '^--- SKIP' "$OUT/$name.log")
  status=PASS; [ "$rc" -ne 0 ] && status="FAIL (exit $rc)" && total_fail=$((total_fail + 1))
  rows+=("$name|$status|$pass|$fail|$skip|$((SECONDS - start))")
  log "$name: $status, $pass passed, $fail failed, $skip skipped"
done

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
} >"$OUT/summary.md"
cat "$OUT/summary.md"
[ "$total_fail" -eq 0 ]
