// op_floor: the floor under gotch's op benchmarks (BenchmarkOp in
// gotch/bench_test.go). The same small ATen ops in a plain C++ loop, each
// result destroyed within the iteration ("aten"), and the same ops through
// the shim's C ABI without Go ("shim"): golens minus aten is what golens
// adds per op, and shim minus aten is the shim's share of it.
//
//   op_floor [threads] [iterations]
//
// prints one JSON object per op and path, with the wall and the process's
// CPU time per op.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>

#include "golens_torch.h"

namespace {

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

// The process's CPU time: other programs on the same cores disturb it much
// less than the wall time.
double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

template <class F>
void bench(const char *op, const char *path, int64_t iters, F f) {
  for (int64_t i = 0; i < iters / 10 + 1; i++) f();  // warm-up
  double cpu0 = cpu_ns();
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; i++) f();
  std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - start;
  double cpu = cpu_ns() - cpu0;
  std::printf(
      "{\"op\":\"%s\",\"path\":\"%s\",\"ns_per_op\":%.1f,\"cpu_ns_per_op\":%.1f,"
      "\"iters\":%lld,\"threads\":%d,\"peak_rss_mb\":%.1f,\"torch\":\"%s\"}\n",
      op, path, d.count() / iters, cpu / iters, static_cast<long long>(iters),
      at::get_num_threads(), peak_rss_mb(), TORCH_VERSION);
  std::fflush(stdout);
}

// Exits on a shim error; the ops here never fail.
void check(gt_error e) {
  if (e != nullptr) {
    std::fprintf(stderr, "op_floor: %s\n", e->message);
    std::exit(1);
  }
}

gt_tensor handle(const at::Tensor &t) {
  gt_out out;
  check(gt_from_data(&out, t.data_ptr(), t.sizes().data(), static_cast<int32_t>(t.dim()),
                     GT_FLOAT32, GT_CPU, -1));
  return out.tensor;
}

// Calls an op through the shim as gotch does and frees the result as Free
// does.
template <class F>
void shim_bench(const char *op, int64_t iters, F call) {
  bench(op, "shim", iters, [&] {
    gt_out r;
    check(call(&r));
    gt_tensor_free(r.tensor);
  });
}

}  // namespace

int main(int argc, char **argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int64_t iters = argc > 2 ? std::atoll(argv[2]) : 200000;
  if (threads < 1 || iters < 1) {
    std::fprintf(stderr, "usage: op_floor [threads >= 1] [iterations >= 1]\n");
    return 2;
  }
  at::set_num_threads(threads);

  // The values gotch's benchmark uses: i/64 for i < 64.
  at::Tensor v = at::arange(64, at::kFloat).div_(64);
  at::Tensor x = v.slice(0, 0, 8).clone(), y = v.slice(0, 8, 16).clone();
  at::Tensor m = v.view({8, 8}).clone();
  gt_tensor hx = handle(x), hy = handle(y), hm = handle(m);

  bench("add", "aten", iters, [&] { at::Tensor r = at::add(x, y); });
  shim_bench("add", iters, [&](gt_out *r) { return gt_add(r, hx, hy); });
  bench("matmul", "aten", iters, [&] { at::Tensor r = at::matmul(m, m); });
  shim_bench("matmul", iters, [&](gt_out *r) { return gt_matmul(r, hm, hm); });
  bench("softmax", "aten", iters, [&] { at::Tensor r = at::softmax(m, -1); });
  shim_bench("softmax", iters, [&](gt_out *r) { return gt_softmax(r, hm, -1); });
  bench("transpose", "aten", iters, [&] { at::Tensor r = m.transpose(0, 1); });
  shim_bench("transpose", iters, [&](gt_out *r) { return gt_transpose(r, hm, 0, 1); });
  bench("add_", "aten", iters, [&] { x.add_(y); });
  bench("add_", "shim", iters, [&] {
    gt_out r;
    check(gt_add_(&r, hx, hy));
  });

  for (gt_tensor h : {hx, hy, hm}) gt_tensor_free(h);
  return 0;
}
