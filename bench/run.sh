#!/usr/bin/env bash
# bench/run.sh: golens's CPU benchmarks; ./build.sh bench builds the floor
# library and calls this (its C++ is built by ./build.sh cxx).
#
#   1. op round trip: gotch's BenchmarkOp against the same ATen ops in a
#      C++ loop (cpp/op_floor.cpp, which also calls them through the shim's
#      C ABI), interleaved, BENCH_ROUNDS times, with the same intra-op
#      thread count (BENCH_THREADS) on both sides.
#   2. GPT-2-small forward at 1x128 tokens: hookedmodel's BenchmarkGPT2Forward,
#      BenchmarkGPT2RunWithHooksNoop and BenchmarkGPT2RunWithCacheAll (one
#      process runs the three) against the same forward written in C++
#      against ATen (cpp/gpt2_forward.cpp), interleaved, BENCH_GPT2_ROUNDS
#      times, both at the intra-op thread count gotch chooses by itself.
#   2b. the same three beside the C++ floor in one golens process, on the
#      same weight tensors (bench/floor's BenchmarkGPT2SideBySide):
#      BENCH_SBS_RUNS processes (3) of BENCH_SBS_ROUNDS rounds (30).
#   3. intra-op threads: BenchmarkGPT2Block at 1 and 2 threads and at 2
#      with OMP_WAIT_POLICY=PASSIVE, one process per setting, interleaved;
#      also with each BLAS build in BENCH_BLAS_DIRS (see below).
#   4. the harness (bench/HARNESS.md): golens bench over the CPU grid below,
#      the Python PyTorch peer (peers/gpt2_peer.py, Debian's python3-torch)
#      at 1 and 2 intra-op threads, the transformers peer where transformers
#      is installed, and the C++ floor's forward rows; one JSON row each in
#      out/harness.jsonl, the ratio table in the "Harness" section of
#      out/table.md. BENCH_HARNESS=0 skips it; BENCH_HARNESS_REPS (5);
#      BENCH_HARNESS_LARGE=1 adds llama-1b (about 10 minutes, 8 GB free).
#
# Both sides report wall time and the process's CPU time per op; the CPU
# time is what to compare when other programs share the cores. Medians over
# the rounds go to out/results.jsonl (one JSON object per row) and
# out/table.md. Knobs: BENCH_ROUNDS (5), BENCH_ITERS (200000 per op),
# BENCH_THREADS (1), BENCH_GPT2_ROUNDS (3), BENCH_GPT2_ITERS (6 timed passes
# per process, after two untimed), BENCH_BLOCK_ROUNDS (3), BENCH_BLOCK_TIME
# (0.3s).
set -euo pipefail
# The benchmarks' processes opt in to what golens's CLI opts in to: the
# recommended intra-op thread count and the tuned C heap (gotch changes
# neither by itself).
export GOLENS_NUM_THREADS=${GOLENS_NUM_THREADS:-auto} GOLENS_MALLOC=${GOLENS_MALLOC:-tuned}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$HERE/out
ROUNDS=${BENCH_ROUNDS:-5}
ITERS=${BENCH_ITERS:-200000}
THREADS=${BENCH_THREADS:-1}
GPT2_ROUNDS=${BENCH_GPT2_ROUNDS:-3}
SBS_RUNS=${BENCH_SBS_RUNS:-3}
SBS_ROUNDS=${BENCH_SBS_ROUNDS:-30}
GPT2_ITERS=${BENCH_GPT2_ITERS:-6}
BLOCK_ROUNDS=${BENCH_BLOCK_ROUNDS:-3}
BLOCK_TIME=${BENCH_BLOCK_TIME:-0.3s}

say() { printf 'bench: %s\n' "$*" >&2; }

build_cpp() { # $1: a program in cpp/, built with golens's torch flags (build.sh's torch_cxx); cached
  local name=$1 extra=()
  # op_floor calls the shim's C ABI: the shim's C++ is compiled in.
  [ "$name" = op_floor ] && extra=("$ROOT/gotch/shim.cpp")
  "$ROOT/build.sh" cxx "cpp/$name.cpp" "$OUT/$name" "$HERE/cpp/$name.cpp" "${extra[@]}"
}

# Raw rows, tab-separated: impl workload name config wall_ns cpu_ns peak_mb allocs
# (and, for the GPT-2 forward, the round)
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
build_cpp op_floor
build_cpp gpt2_forward
say "building the gotch and hookedmodel benchmarks"
(cd "$ROOT" && go test -c -o "$OUT/gotch.test" ./gotch/ && go test -c -o "$OUT/hookedmodel.test" ./hookedmodel/ &&
  go test -c -o "$OUT/floor.test" ./bench/floor/ &&
  go build -o "$OUT/golens" ./cmd/golens)
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

# GPT-2-small forward, 1x128 tokens: the three hookedmodel benchmarks in one
# process, and the C++ forward, at the thread count gotch picks (or
# GOLENS_NUM_THREADS); rows "golens gpt2 NAME tN" and "cpp gpt2 forward tN",
# with the median wall and CPU time of one pass, and the page faults per
# pass in the allocs column.
info=$(gotch_test -test.run '^Test(RecommendedThreadsApplied|MallocTuning)$' -test.v)
GPT2_MALLOC=$(sed -nE 's/.*malloc: //p' <<<"$info")
GPT2_THREADS=$(sed -nE 's/.*intra-op threads: ([0-9]+).*/\1/p' <<<"$info")
GPT2_BLAS=$(sed -nE 's/.*blas: //p' <<<"$info")
say "GPT-2-small forward at 1x128: $GPT2_ROUNDS rounds of $GPT2_ITERS passes, $GPT2_THREADS intra-op thread(s), BLAS $GPT2_BLAS"
golens_gpt2() { # $1: the round
  (cd "$ROOT/hookedmodel" && "$OUT/hookedmodel.test" -test.run '^$' -test.benchtime "${GPT2_ITERS}x" \
    -test.bench '^BenchmarkGPT2(Forward|RunWithHooksNoop|RunWithCacheAll)$') |
    awk -v t="t$GPT2_THREADS" -v r="$1" -v OFS='\t' '/^BenchmarkGPT2/ {
      n = $1; sub(/-[0-9]+$/, "", n); sub(/^BenchmarkGPT2/, "", n)
      n = n == "Forward" ? "forward" : n == "RunWithHooksNoop" ? "run_with_hooks_noop" : "run_with_cache_all"
      delete m; for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
      print "golens", "gpt2", n, t, m["median-ns/op"], m["cpu-ns/op"], m["peak-MB"], m["faults/op"], r
    }'
}
cpp_gpt2() { # $1: the round
  "$OUT/gpt2_forward" "$GPT2_THREADS" "$GPT2_ITERS" 2 | # 2 untimed passes, as benchPasses
    sed -E 's/.*"ms_median":([0-9.]+),"cpu_ms_median":([0-9.]+).*"faults_per_iter":([0-9.]+).*"peak_rss_mb":([0-9.]+).*/\1\t\2\t\4\t\3/' |
    awk -F'\t' -v t="t$GPT2_THREADS" -v r="$1" -v OFS='\t' '{ print "cpp", "gpt2", "forward", t, $1 * 1e6, $2 * 1e6, $3, $4, r }'
}
: >"$OUT/gpt2_rounds.tsv"
for ((r = 1; r <= GPT2_ROUNDS; r++)); do # alternate which side runs first
  printf '%s\t%s\n' "$r" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/gpt2_rounds.tsv"
  if ((r % 2)); then
    cpp_gpt2 "$r" >>"$RAW"; golens_gpt2 "$r" >>"$RAW"
  else
    golens_gpt2 "$r" >>"$RAW"; cpp_gpt2 "$r" >>"$RAW"
  fi
done

# The same three passes beside the C++ floor in one process (bench/floor):
# rounds of floor, forward, no-op hooks and cache in rotating order on the
# same weights, SBS_RUNS processes of SBS_ROUNDS rounds.
say "GPT-2-small side by side with the C++ floor in one process: $SBS_RUNS runs of $SBS_ROUNDS rounds"
: >"$OUT/side_by_side.tsv"
for ((r = 1; r <= SBS_RUNS; r++)); do
  (cd "$ROOT/bench/floor" && timeout 600 "$OUT/floor.test" -test.run '^$' -test.bench '^BenchmarkGPT2SideBySide$' \
    -test.benchtime "${SBS_ROUNDS}x" || say "side-by-side run $r failed") |
    awk -v r="$r" -v OFS='\t' '/^BenchmarkGPT2SideBySide/ {
      for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
      print r, m["floor-ms"], m["forward-ms"], m["hooks-ms"], m["cache-ms"], m["forward/floor"], m["hooks/forward"], m["cache/forward"], m["forward/floor-paired"], m["hooks/forward-paired"], m["cache/forward-paired"]
    }' >>"$OUT/side_by_side.tsv"
done

# Intra-op threads, with the BLAS this libtorch loads and with each build
# in BENCH_BLAS_DIRS (folders holding another libblas.so.3, such as an
# unpacked libopenblas0-pthread, put first on LD_LIBRARY_PATH).
: >"$OUT/threads.log"
base_ldpath=${LD_LIBRARY_PATH:-}
for dir in "" ${BENCH_BLAS_DIRS:-}; do
  export LD_LIBRARY_PATH=$dir${dir:+${base_ldpath:+:}}$base_ldpath
  # the BLAS seen, and the count gotch picks by itself with it
  info=$(unset GOLENS_NUM_THREADS; gotch_test -test.run '^TestRecommendedThreadsApplied$' -test.v)
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

# The harness grid: "shape workloads batches seqs" per line, sized for the
# whole of ./build.sh bench to take under 10 minutes on 2 cores: patching,
# generation without the KV cache and training run on the toy shape only
# (a patching sweep is layers x seq x heads passes; a gpt2-small training
# step takes the PyTorch peer about 6 s). BENCH_HARNESS_LARGE=1 adds
# llama-1b's forward and cache_all at 1x128, about 10 minutes more (a pass
# takes seconds; the checks read the weights as float64 while they use
# them: peak 6.6 GB for golens and the peer), where 8 GB are free;
# gemma2-2b (peak 14.3 GB, 2 minutes a run) is for the GPU runbook.
HARNESS=${BENCH_HARNESS:-1}
HREPS=${BENCH_HARNESS_REPS:-5}
PY=${BENCH_PYTHON:-/usr/bin/python3}
HARNESS_GRID=${BENCH_HARNESS_GRID:-"toy all 1 32
toy forward,cache_all,cache_pattern,cache_resid,hooks_noop,hooks_modify,train_step 8 128
attn-only-2l forward,cache_all,cache_pattern,cache_resid,hooks_noop,hooks_modify,generate_kv 1 128
gpt2-small forward,cache_all,hooks_noop,hooks_modify 1 128
gpt2-small generate_kv 1 32
gpt2-medium forward 1 64
pythia-160m forward,cache_all 1 128"}
if [ "${BENCH_HARNESS_LARGE:-0}" = 1 ]; then
  HARNESS_GRID="$HARNESS_GRID
llama-1b forward,cache_all 1 128"
fi
# the shapes the C++ floor (GPT-2's forward) has
floor_has() { case $1 in toy | attn-only-2l | gpt2-small | gpt2-medium) return 0 ;; esac; return 1; }
# the memory (GB) a shape's rows need free: the model and its float64 reference
need_gb() { case $1 in llama-1b) echo 8 ;; gemma2-2b) echo 16 ;; *) echo 0 ;; esac; }
harness() {
  local shape works batches seqs grid b s t hj=$OUT/harness.jsonl
  : >"$hj"
  while read -r shape works batches seqs; do
    [ -n "$shape" ] || continue
    grid=""; for b in ${batches//,/ }; do for s in ${seqs//,/ }; do grid="$grid${grid:+,}${b}x$s"; done; done
    free_gb=$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)
    if [ "${free_gb:-0}" -lt "$(need_gb "$shape")" ]; then
      say "harness: skipping $shape ($(need_gb "$shape") GB needed, $free_gb GB available)"
      continue
    fi
    say "harness: $shape $works at $grid"
    "$OUT/golens" bench --json --device cpu --shape "$shape" --workload "$works" --batch "$batches" --seq "$seqs" \
      --reps "$HREPS" >>"$hj" 2>>"$OUT/harness.log" || say "golens bench failed: see $OUT/harness.log"
    for t in 1 2; do
      "$PY" "$HERE/peers/gpt2_peer.py" --impl pytorch --device cpu --threads "$t" --shape "$shape" --workload "$works" \
        --grid "$grid" --reps "$HREPS" >>"$hj" 2>>"$OUT/harness.log" || say "the PyTorch peer failed: see $OUT/harness.log"
    done
    if "$PY" -c 'import transformers' 2>/dev/null; then
      "$PY" "$HERE/peers/gpt2_peer.py" --impl transformers --device cpu --shape "$shape" --workload "$works" \
        --grid "$grid" --reps "$HREPS" >>"$hj" 2>>"$OUT/harness.log" || say "the transformers peer failed: see $OUT/harness.log"
    fi
    if [[ ",$works," == *,forward,* || $works == all ]] && floor_has "$shape"; then
      "$OUT/gpt2_forward" --json --device cpu --threads "$GPT2_THREADS" --shape "$shape" --grid "$grid" \
        --reps "$HREPS" >>"$hj" 2>>"$OUT/harness.log" || say "the C++ floor failed: see $OUT/harness.log"
    fi
  done <<<"$HARNESS_GRID"
}
if [ "$HARNESS" != 0 ]; then
  : >"$OUT/harness.log"
  harness
fi

# Medians per (impl, workload, name, config) of wall and CPU time; peak
# memory is the maximum.
awk -F'\t' -v OFS='\t' '
  function median(s,   a, n, i, j, x) {
    n = split(substr(s, 2), a, " ")
    for (i = 2; i <= n; i++) { x = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { k = $1 OFS $2 OFS $3 OFS $4; if (!(k in runs)) order[++nk] = k
    runs[k]++; wall[k] = wall[k] " " $5; cpu[k] = cpu[k] " " $6; if ($7 > peak[k]) peak[k] = $7
    allocs[k] = allocs[k] " " $8; last[k] = $8; if ($8 !~ /^[0-9.]+$/) other[k] }
  END { for (i = 1; i <= nk; i++) { k = order[i]
    print k, median(wall[k]), median(cpu[k]), peak[k], (k in other) ? last[k] : median(allocs[k]), runs[k] } }
' "$RAW" >"$OUT/medians.tsv"
# medians.tsv: impl workload name config wall_ns cpu_ns peak_mb allocs runs
# (allocs: the median where numeric, else the last value)

# The shim rows only split the overhead in table.md; results.jsonl has golens and cpp.
awk -F'\t' -v torch="$TORCH" -v gblas="$GPT2_BLAS" '$1 != "shim" {
  op = $2 == "op"; fwd = $2 == "gpt2"; blas = op ? "" : fwd ? gblas : substr($2, index($2, ":") + 1)
  if (fwd) { workload = $3; shape = "gpt2-small" }
  else { workload = op ? "op-roundtrip" : "gpt2-block-threads"; shape = (op ? "op:" : "block:") $3 }
  printf "{\"workload\":\"%s\",\"shape\":\"%s\",\"batch\":1,\"seq\":%d,\"dtype\":\"float32\",\"device\":\"cpu\",", \
    workload, shape, op ? 1 : 128
  printf "\"impl\":\"%s\",\"status\":\"OK\",\"median_ms\":%.6g,\"peak_mem_mb\":%.1f,\"torch\":\"%s\",", $1, $5 / 1e6, $7, torch
  printf "\"ns_per_op\":%.1f,\"cpu_ns_per_op\":%.1f,\"threads\":%s,\"omp_wait_policy\":\"%s\",\"blas\":\"%s\",\"runs\":%d}\n", \
    $5, $6, substr($4, 2, 1), $4 ~ /passive/ ? "PASSIVE" : "", blas, $9
}' "$OUT/medians.tsv" >"$OUT/results.jsonl"
[ -s "$OUT/harness.jsonl" ] && cat "$OUT/harness.jsonl" >>"$OUT/results.jsonl"

gpt2_table() {
  echo "| workload | golens wall ms | golens CPU ms | golens faults/pass | C++ wall ms | C++ CPU ms | C++ faults/pass |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  awk -F'\t' '$2 == "gpt2" { k = $1 "/" $3; w[k] = $5 / 1e6; c[k] = $6 / 1e6; f[k] = $8 }
    END { split("forward run_with_hooks_noop run_with_cache_all", n, " ")
      for (i = 1; i <= 3; i++) { g = "golens/" n[i]; q = "cpp/" n[i]
        printf "| %s | %.1f | %.1f | %.0f | %s | %s | %s |\n", n[i], w[g], c[g], f[g], \
          (q in w) ? sprintf("%.1f", w[q]) : "", (q in c) ? sprintf("%.1f", c[q]) : "", (q in f) ? sprintf("%.0f", f[q]) : "" } }' "$OUT/medians.tsv"
  echo
  echo "| ratio | target | of the medians, wall | met | of the medians, CPU | per round, wall: median (min-max) |"
  echo "| --- | ---: | ---: | --- | ---: | ---: |"
  # per round: golens's forward over the same round's C++ forward; hooks
  # and cache over the forward of the same process
  awk -F'\t' -v med="$OUT/medians.tsv" '
    BEGIN { while ((getline l <med) > 0) { split(l, f, "\t"); if (f[2] == "gpt2") { w[f[1] "/" f[3]] = f[5]; c[f[1] "/" f[3]] = f[6] } } }
    $2 == "gpt2" { r[$1 "/" $3, $9] = $5; if (!($9 in seen)) { seen[$9]; rounds[++nr] = $9 } }
    function row(label, target, a, b,   i, j, n, x, v, m) {
      n = 0
      for (i = 1; i <= nr; i++) if (((a, rounds[i]) in r) && ((b, rounds[i]) in r)) {
        x = r[a, rounds[i]] / r[b, rounds[i]]
        for (j = n; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]
        v[j + 1] = x; n++ }
      m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      printf "| %s | %.2f | %.3f | %s | %.3f | %.3f (%.3f-%.3f) |\n", label, target, w[a] / w[b], \
        w[a] / w[b] <= target ? "yes" : "no", c[a] / c[b], m, v[1], v[n]
    }
    END {
      row("forward / C++ forward", 1.05, "golens/forward", "cpp/forward")
      row("run_with_hooks_noop / forward", 1.05, "golens/run_with_hooks_noop", "golens/forward")
      row("run_with_cache_all / forward", 1.10, "golens/run_with_cache_all", "golens/forward")
    }' "$RAW"
}

sbs_table() {
  echo "| run | floor ms | forward ms | hooks ms | cache ms | forward / floor (target 1.05) | hooks / forward (1.05) | cache / forward (1.10) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  awk -F'\t' '{ printf "| %s | %.1f | %.1f | %.1f | %.1f | %.3f (paired %.3f) | %.3f (%.3f) | %.3f (%.3f) |\n", $1, $2, $3, $4, $5, $6, $9, $7, $10, $8, $11 }' \
    "$OUT/side_by_side.tsv"
  awk -F'\t' 'function med(c,   i, j, n, v, x) { n = 0
      for (i = 1; i <= NR; i++) { x = col[i, c]; for (j = n; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x; n++ }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
    { for (c = 2; c <= NF; c++) col[NR, c] = $c }
    END { if (NR) printf "| median | %.1f | %.1f | %.1f | %.1f | **%.3f** (%.3f) | **%.3f** (%.3f) | **%.3f** (%.3f) |\n", \
      med(2), med(3), med(4), med(5), med(6), med(9), med(7), med(10), med(8), med(11) }' "$OUT/side_by_side.tsv"
}

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
  echo "## GPT-2-small forward at 1x128, $GPT2_THREADS intra-op thread(s), BLAS $GPT2_BLAS: medians over $GPT2_ROUNDS runs of $GPT2_ITERS passes"
  echo
  echo "malloc: $GPT2_MALLOC. Load average (1, 5, 15 min) at the start of each round: $(cut -f2 "$OUT/gpt2_rounds.tsv" | paste -sd';' | sed 's/;/; /g')."
  echo
  gpt2_table
  echo
  echo "## GPT-2-small at 1x128 beside the C++ floor in one process (bench/floor): $SBS_RUNS runs of $SBS_ROUNDS rounds"
  echo
  echo "Each round runs the floor (bench/cpp/gpt2_floor.h on golens's own weight tensors), Forward, RunWithHooks with a no-op hook on every hook point and RunWithCache of everything, in rotating order; ratios of the medians, and in brackets the median of each round's ratio."
  echo
  sbs_table
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
  if [ -s "$OUT/harness.jsonl" ]; then
    echo "## Harness: golens against its peers, median ms of $HREPS repetitions (golens / peer below 1: golens is faster)"
    echo
    echo "The PyTorch peer at its faster of 1 and 2 intra-op threads; golens at the count it picks itself ($GPT2_THREADS)."
    echo
    "$OUT/golens" bench table "$OUT/harness.jsonl"
  fi
} >"$OUT/table.md"

say "wrote $OUT/results.jsonl and $OUT/table.md"
cat "$OUT/table.md"
