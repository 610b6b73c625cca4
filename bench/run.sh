#!/usr/bin/env bash
# bench/run.sh: golens's CPU benchmarks; ./build.sh bench builds the shim,
# exports TORCH_INCS TORCH_LIB TORCH_ABI and calls this.
#
#   1. op round trip: gotch's BenchmarkOp against the same ATen ops in a
#      C++ loop (cpp/op_floor.cpp, which also calls them through the shim's
#      C ABI), interleaved, BENCH_ROUNDS times, with the same intra-op
#      thread count (BENCH_THREADS) on both sides.
#   2. intra-op threads: BenchmarkGPT2Block at 1 and 2 threads and at 2
#      with OMP_WAIT_POLICY=PASSIVE, one process per setting, interleaved;
#      also with each BLAS build in BENCH_BLAS_DIRS (see below).
#
# Both sides report wall time and the process's CPU time per op; the CPU
# time is what to compare when other programs share the cores. Medians over
# the rounds go to out/results.jsonl (one JSON object per row) and
# out/table.md. Knobs: BENCH_ROUNDS (5), BENCH_ITERS (200000 per op),
# BENCH_THREADS (1), BENCH_BLOCK_ROUNDS (3), BENCH_BLOCK_TIME (0.3s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out
ROUNDS=${BENCH_ROUNDS:-5}
ITERS=${BENCH_ITERS:-200000}
THREADS=${BENCH_THREADS:-1}
BLOCK_ROUNDS=${BENCH_BLOCK_ROUNDS:-3}
BLOCK_TIME=${BENCH_BLOCK_TIME:-0.3s}
: "${TORCH_INCS:?run me through ./build.sh bench}" "${TORCH_LIB:?}" "${TORCH_ABI:?}"

say() { printf 'bench: %s\n' "$*" >&2; }

build_floor() { # the C++ floor, with the shim's torch flags; cached
  local incs="" i std stamp
  for i in $TORCH_INCS; do [ "$i" = /usr/include ] || incs="$incs -isystem $i"; done
  stamp=$( { cat "$HERE/cpp/op_floor.cpp" "$ROOT"/gotch/csrc/golens_torch*.h
             echo "$incs $TORCH_LIB $TORCH_ABI ${CXX:-g++}"; } | sha256sum | cut -c1-16)
  [ -x "$OUT/op_floor" ] && [ "$(cat "$OUT/.op_floor.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  say "compiling the C++ floor"
  for std in c++17 c++20; do # as the shim: newer torch headers need C++20
    # shellcheck disable=SC2086
    ${CXX:-g++} -std=$std -O2 -D_GLIBCXX_USE_CXX11_ABI="$TORCH_ABI" $incs -I"$ROOT/gotch/csrc" \
      "$HERE/cpp/op_floor.cpp" -o "$OUT/op_floor" -L"$ROOT/gotch/lib" -L"$TORCH_LIB" \
      -Wl,-rpath,"$ROOT/gotch/lib:$TORCH_LIB" -lgolens_torch -ltorch_cpu -lc10 &&
      { echo "$stamp" >"$OUT/.op_floor.stamp"; return 0; }
  done
  say "error: the C++ floor does not compile"; return 1
}

# Raw rows, tab-separated: impl workload name config wall_ns cpu_ns peak_mb allocs
go_rows() { # Go benchmark lines; $1 workload, $2 config
  awk -v w="$1" -v c="$2" -v OFS='\t' '/^Benchmark/ {
    split($1, p, "/"); sub(/-[0-9]+$/, "", p[2]); delete m
    for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
    print "golens", w, p[2], c, m["ns/op"], m["cpu-ns/op"], m["peak-MB"], ("allocs/op" in m) ? m["allocs/op"] : "-"
  }'
}

cpp_rows() { # op_floor's JSON lines; path aten -> impl cpp, shim -> shim
  sed -E 's/.*"op":"([^"]*)","path":"([^"]*)","ns_per_op":([0-9.]+),"cpu_ns_per_op":([0-9.]+).*"peak_rss_mb":([0-9.]+).*/\2\top\t\1\tt'"$THREADS"'\t\3\t\4\t\5\t0/; s/^aten/cpp/'
}

gotch_test() { (cd "$ROOT/gotch" && "$OUT/gotch.test" -test.run '^$' "$@"); }

mkdir -p "$OUT"
build_floor
say "building the gotch benchmarks"
(cd "$ROOT" && go test -c -o "$OUT/gotch.test" ./gotch/)
TORCH=$("$OUT/op_floor" 1 1 | sed -nE '1s/.*"torch":"([^"]*)".*/\1/p')
RAW=$OUT/raw.tsv
: >"$RAW"

say "op round trip: $ROUNDS rounds of $ITERS iterations per op, $THREADS intra-op thread(s)"
golens_ops() {
  GOLENS_NUM_THREADS=$THREADS gotch_test -test.bench '^BenchmarkOp$' -test.benchtime "${ITERS}x" | go_rows op "t$THREADS"
}
for ((r = 1; r <= ROUNDS; r++)); do # alternate which side runs first
  if ((r % 2)); then
    "$OUT/op_floor" "$THREADS" "$ITERS" | cpp_rows >>"$RAW"; golens_ops >>"$RAW"
  else
    golens_ops >>"$RAW"; "$OUT/op_floor" "$THREADS" "$ITERS" | cpp_rows >>"$RAW"
  fi
done

# Intra-op threads, with the BLAS this libtorch loads and with each build
# in BENCH_BLAS_DIRS (folders holding another libblas.so.3, such as an
# unpacked libopenblas0-pthread, put first on LD_LIBRARY_PATH).
: >"$OUT/threads.log"
base_ldpath=${LD_LIBRARY_PATH:-}
for dir in "" ${BENCH_BLAS_DIRS:-}; do
  export LD_LIBRARY_PATH=$dir${dir:+${base_ldpath:+:}}$base_ldpath
  # the BLAS seen, and the count gotch picks by itself with it
  info=$(unset GOLENS_NUM_THREADS; gotch_test -test.run '^TestDefaultThreadsApplied$' -test.v)
  blas=$(sed -nE 's/.*blas: //p' <<<"$info")
  printf '%s\t%s\n' "$blas" "$(sed -nE 's/.*intra-op threads: //p' <<<"$info")" >>"$OUT/threads.log"
  say "intra-op threads with $blas: GPT-2 block pieces, $BLOCK_ROUNDS rounds of $BLOCK_TIME each"
  for ((r = 1; r <= BLOCK_ROUNDS; r++)); do
    for cfg in t1 t2 t2-passive; do
      (
        unset OMP_WAIT_POLICY
        if [ "$cfg" = t2-passive ]; then export OMP_WAIT_POLICY=PASSIVE; fi
        GOLENS_NUM_THREADS=${cfg:1:1} gotch_test -test.bench '^BenchmarkGPT2Block$' -test.benchtime "$BLOCK_TIME"
      ) | go_rows "gpt2-block:$blas" "$cfg" >>"$RAW"
    done
  done
done

# Medians per (impl, workload, name, config) of wall and CPU time; peak
# memory is the maximum.
awk -F'\t' -v OFS='\t' '
  function median(s,   a, n, i, j, x) {
    n = split(substr(s, 2), a, " ")
    for (i = 2; i <= n; i++) { x = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { k = $1 OFS $2 OFS $3 OFS $4; if (!(k in runs)) order[++nk] = k
    runs[k]++; wall[k] = wall[k] " " $5; cpu[k] = cpu[k] " " $6; if ($7 > peak[k]) peak[k] = $7; allocs[k] = $8 }
  END { for (i = 1; i <= nk; i++) { k = order[i]; print k, median(wall[k]), median(cpu[k]), peak[k], allocs[k], runs[k] } }
' "$RAW" >"$OUT/medians.tsv"
# medians.tsv: impl workload name config wall_ns cpu_ns peak_mb allocs runs

# The shim rows only split the overhead in table.md; results.jsonl has golens and cpp.
awk -F'\t' -v torch="$TORCH" '$1 != "shim" {
  op = $2 == "op"; blas = op ? "" : substr($2, index($2, ":") + 1)
  printf "{\"workload\":\"%s\",\"shape\":\"%s:%s\",\"batch\":1,\"seq\":%d,\"dtype\":\"float32\",\"device\":\"cpu\",", \
    op ? "op-roundtrip" : "gpt2-block-threads", op ? "op" : "block", $3, op ? 1 : 128
  printf "\"impl\":\"%s\",\"status\":\"OK\",\"median_ms\":%.6g,\"peak_mem_mb\":%.1f,\"torch\":\"%s\",", $1, $5 / 1e6, $7, torch
  printf "\"ns_per_op\":%.1f,\"cpu_ns_per_op\":%.1f,\"threads\":%s,\"omp_wait_policy\":\"%s\",\"blas\":\"%s\",\"runs\":%d}\n", \
    $5, $6, substr($4, 2, 1), $4 ~ /passive/ ? "PASSIVE" : "", blas, $9
}' "$OUT/medians.tsv" >"$OUT/results.jsonl"

op_table() { # $1: column of medians.tsv, 5 wall or 6 CPU
  echo "| op | golens ns | C++ ns | overhead ns | ratio | of it shim | of it Go | golens allocs/op |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  awk -F'\t' -v col="$1" '$2 == "op" { ns[$1, $3] = $col; if ($1 == "golens") al[$3] = $8; if (!($3 in seen)) { seen[$3]; order[++n] = $3 } }
    END { for (i = 1; i <= n; i++) { o = order[i]; g = ns["golens", o]; c = ns["cpp", o]; s = ns["shim", o]
      printf "| %s | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %s |\n", o, g, c, g - c, g / c, s - c, g - s, al[o] } }' "$OUT/medians.tsv"
}

{
  echo "# golens CPU benchmarks"
  echo
  echo "$(date -u +%Y-%m-%d), $(lscpu | sed -nE 's/^Model name: *//p' | head -1), $(nproc) CPUs, torch $TORCH, $(go env GOVERSION)"
  echo
  echo "## Op round trip, $THREADS intra-op thread(s): medians over $ROUNDS runs of $ITERS"
  echo
  echo "overhead = golens - C++ (ATen called directly); of it, shim = the op through the C ABI from C++ - C++; Go = golens - shim."
  echo
  echo "Process CPU time per op (robust when other programs share the cores):"
  echo
  op_table 6
  echo
  echo "Wall time per op:"
  echo
  op_table 5
  echo
  while IFS=$'\t' read -r blas choice; do
    echo "## GPT-2 block pieces through gotch, BLAS $blas: median wall ms over $BLOCK_ROUNDS runs"
    echo
    echo "gotch's own choice: $choice"
    echo
    echo "| piece | 1 thread | 2 threads | 2 threads, OMP_WAIT_POLICY=PASSIVE | 2 / 1 |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    awk -F'\t' -v w="gpt2-block:$blas" '$2 == w { ms[$3, $4] = $5 / 1e6; if (!($3 in seen)) { seen[$3]; order[++n] = $3 } }
      END { for (i = 1; i <= n; i++) { p = order[i]
        printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", p, ms[p, "t1"], ms[p, "t2"], ms[p, "t2-passive"], ms[p, "t2"] / ms[p, "t1"] } }' "$OUT/medians.tsv"
    echo
  done <"$OUT/threads.log"
} >"$OUT/table.md"

say "wrote $OUT/results.jsonl and $OUT/table.md"
cat "$OUT/table.md"
