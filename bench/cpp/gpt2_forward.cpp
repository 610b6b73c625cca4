// gpt2_forward: the floor under golens's forward pass. A GPT-2-style
// forward written directly against ATen, with the ops golens performs on
// its default path (no hooks, no cache):
//
//   embedding + positions (a copy of W_pos's rows, as golens makes), then
//   per block: layer_norm; one fused linear for Q, K and V; views, selects
//   and permutes; scaled dot-product attention with a causal mask; the
//   permute back and a reshape; the output linear; the residual add;
//   layer_norm; linear; gelu (tanh); linear; the residual add. Finally
//   layer_norm and the unembedding linear. Attention-only shapes have no
//   ln2 and MLP; shortformer shapes add the positions to the normalised
//   query and key inputs only (see forward()).
//
// Two modes.
//
// 1. hookedmodel's BenchmarkGPT2Forward floor (bench/run.sh):
//
//      gpt2_forward [threads] [iterations] [warm-up iterations]
//
//    gpt2-small's shape, float32 on the CPU, weights drawn as golens's New
//    draws them (every W normal with std 0.8/sqrt(d_model),
//    TransformerLens's default initializer_range; biases zero; LayerNorm
//    weights one), 1x128 random tokens. It prints one JSON object: the
//    median wall and process CPU time per forward in ms over the timed
//    iterations, and the page faults per forward.
//
// 2. The bench harness (bench/HARNESS.md), workload "forward" only:
//
//      gpt2_forward --json --shape S[,S...] [--batch B[,B...] --seq N[,N...]] [--grid BxN[,BxN...]]
//                   [--dtype float32|bfloat16|float16[,...]] [--device cpu|cuda]
//                   [--threads T] [--reps 5] [--warmup 2]
//
//    One model per (shape, dtype) (weights normal(0, 0.02), biases zero,
//    LayerNorm ones/zeros, in that dtype on that device), then one JSON row
//    per (batch, seq): the cross product of --batch and --seq, plus the
//    --grid pairs. Each row is checked first (batch 1, seq 4: the logits
//    against a float64 forward with explicit attention) and timed only when
//    the check passes; any exception gives an ERROR row. Every repetition
//    ends by reading one logit back to the CPU (the device sync). Extra
//    row fields: cpu_ms_median (process CPU time) and peak_mem_source
//    (VmHWM, ru_maxrss or cuda_allocator).
//
// Grad mode stays on, as in golens: the weights do not require grad, so no
// graph is built (no NoGradGuard on either side).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h> // not included by ATen/ATen.h since 2.0
#include <glob.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gpt2_floor.h"

// The CUDA caching allocator's peak, where torch exposes it through c10's
// device-generic allocator interface (c10::DeviceAllocator, torch >= 2.9 or
// so); with older torch, or a CPU-only one, peak_mem_mb is null on CUDA.
// Nothing here needs CUDA headers or libc10_cuda.
#if __has_include(<c10/core/CachingDeviceAllocator.h>)
#include <c10/core/CachingDeviceAllocator.h>
#endif
namespace c10 {
struct DeviceAllocator;  // complete only where the header above defines it
}

namespace {

using namespace gpt2_floor;

// ---------------------------------------------------------------- shapes

// bench/HARNESS.md's table (d_mlp of attn-only-2l unused).
const Shape kShapes[] = {
    {"toy", 2, 64, 4, 16, 256, 1000, 128, false, false},
    {"attn-only-2l", 2, 512, 8, 64, 0, 48262, 1024, true, true},
    {"gpt2-small", 12, 768, 12, 64, 3072, 50257, 1024, false, false},
    {"gpt2-medium", 24, 1024, 16, 64, 4096, 50257, 1024, false, false},
};

const Shape *find_shape(const std::string &name) {
  for (const Shape &s : kShapes)
    if (name == s.name) return &s;
  return nullptr;
}

// Draws every W as normal(0, std) in float32 on the CPU, from gen, in a
// fixed order (W_E, W_pos, per block W_QKV, W_O[, W_in, W_out], W_U), then
// converts it to dtype on device.
Model random_model(const Shape &s, double std, at::ScalarType dtype, at::Device device, at::Generator &gen) {
  auto place = [&](at::Tensor t) { return t.to(device, dtype); };
  auto normal = [&](at::IntArrayRef shape) { return place(at::randn(shape, gen, at::kFloat).mul_(std)); };
  auto zeros = [&](at::IntArrayRef shape) { return place(at::zeros(shape, at::kFloat)); };
  auto ln = [&] { return LN{place(at::ones({s.d_model}, at::kFloat)), zeros({s.d_model})}; };
  const int64_t hd = s.heads * s.d_head;
  Model m;
  m.shape = s;
  m.w_e = normal({s.vocab, s.d_model});
  m.w_pos = normal({s.n_ctx, s.d_model});
  for (int64_t l = 0; l < s.layers; l++) {
    BlockW b;
    b.ln1 = ln();
    b.w_qkv = normal({3 * hd, s.d_model});
    b.b_qkv = zeros({3 * hd});
    b.w_o = normal({s.d_model, hd});
    b.b_o = zeros({s.d_model});
    if (!s.attn_only) {
      b.ln2 = ln();
      b.w_in = normal({s.d_mlp, s.d_model});
      b.b_in = zeros({s.d_mlp});
      b.w_out = normal({s.d_model, s.d_mlp});
      b.b_out = zeros({s.d_model});
    }
    m.blocks.push_back(b);
  }
  m.ln_final = ln();
  m.w_u = normal({s.vocab, s.d_model});
  m.b_u = zeros({s.vocab});
  return m;
}

// The reference: the same maths in float64 on the CPU from the model's own
// weights (each converted when used), with explicit LayerNorm, gelu_new and
// attention (scores, causal mask, softmax, pattern @ v) instead of ATen's
// fused kernels.
at::Tensor reference_forward(const Model &m, const at::Tensor &tokens) {
  const Shape &s = m.shape;
  const int64_t b = tokens.size(0), n = tokens.size(1), hd = s.heads * s.d_head;
  auto d = [](const at::Tensor &t) { return t.to(at::kCPU, at::kDouble); };
  auto ln = [&](const at::Tensor &x, const LN &p) {
    at::Tensor xc = x - x.mean(at::IntArrayRef{-1}, /*keepdim=*/true);
    at::Tensor var = (xc * xc).mean(at::IntArrayRef{-1}, /*keepdim=*/true);
    return xc / (var + kEps).sqrt() * d(p.w) + d(p.b);
  };
  auto lin = [&](const at::Tensor &x, const at::Tensor &w, const at::Tensor &bias) {
    return at::matmul(x, d(w).t()) + d(bias);
  };
  at::Tensor embed = d(m.w_e.index_select(0, tokens.reshape({-1}))).view({b, n, s.d_model});
  at::Tensor pos = d(m.w_pos.narrow(0, 0, n)).unsqueeze(0);  // [1 seq d_model]
  at::Tensor resid = s.shortformer ? embed : embed + pos;
  at::Tensor ar = at::arange(n, at::kLong);
  at::Tensor future = ar.unsqueeze(0) > ar.unsqueeze(1);  // [query key]: key after query
  for (const BlockW &w : m.blocks) {
    at::Tensor x = ln(resid, w.ln1);
    at::Tensor xqk = s.shortformer ? x + pos : x;
    at::Tensor wqkv = d(w.w_qkv), bqkv = d(w.b_qkv);
    auto project = [&](const at::Tensor &in, int64_t i) {  // [batch head pos d_head]
      at::Tensor out = at::matmul(in, wqkv.narrow(0, i * hd, hd).t()) + bqkv.narrow(0, i * hd, hd);
      return out.view({b, n, s.heads, s.d_head}).permute({0, 2, 1, 3});
    };
    at::Tensor q = project(xqk, 0), k = project(xqk, 1), v = project(x, 2);
    at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(s.d_head));
    scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
    at::Tensor pattern = at::softmax(scores, -1);
    at::Tensor z = at::matmul(pattern, v).permute({0, 2, 1, 3}).reshape({b, n, hd});
    at::Tensor attn_out = lin(z, w.w_o, w.b_o);
    if (s.attn_only) {
      resid = resid + attn_out;
      continue;
    }
    at::Tensor mid = resid + attn_out;
    at::Tensor pre = lin(ln(mid, w.ln2), w.w_in, w.b_in);
    at::Tensor post = 0.5 * pre * (1 + at::tanh(std::sqrt(2.0 / std::acos(-1.0)) * (pre + 0.044715 * pre.pow(3))));
    resid = mid + lin(post, w.w_out, w.b_out);
  }
  return lin(ln(resid, m.ln_final), m.w_u, m.b_u);
}

// ---------------------------------------------------------------- measuring

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

long page_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt + ru.ru_majflt;
}

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Resets the kernel's resident-memory high-water mark (VmHWM); false when
// /proc/self/clear_refs cannot be written.
bool reset_hwm() {
  FILE *f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// VmHWM in MiB, or a negative number when it cannot be read.
double vm_hwm_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;  // kB
  return -1;
}

// The CUDA caching allocator's statistics through c10::DeviceAllocator,
// where this torch has it (A is c10::DeviceAllocator: complete, with these
// members, only then); otherwise the primary template, which has none.
template <class A, class = void>
struct CudaPeak {
  static bool reset(int) { return false; }
  static double mb(int) { return -1; }
};
template <class A>
struct CudaPeak<A, std::void_t<decltype(std::declval<A &>().getDeviceStats(c10::DeviceIndex(0)).allocated_bytes[0].peak),
                               decltype(std::declval<A &>().resetPeakStats(c10::DeviceIndex(0)))>> {
  static A *allocator() { return dynamic_cast<A *>(c10::GetAllocator(c10::DeviceType::CUDA)); }
  static bool reset(int dev) {  // a failure here costs the row its peak, not the row
    try {
      A *a = allocator();
      if (!a) return false;
      a->resetPeakStats(c10::DeviceIndex(dev));
      return true;
    } catch (const std::exception &) {
      return false;
    }
  }
  static double mb(int dev) {  // allocated_bytes[AGGREGATE].peak, as torch.cuda.max_memory_allocated
    try {
      A *a = allocator();
      return a ? double(a->getDeviceStats(c10::DeviceIndex(dev)).allocated_bytes[0].peak) / (1 << 20) : -1;
    } catch (const std::exception &) {
      return -1;
    }
  }
};
using CudaPeakStats = CudaPeak<c10::DeviceAllocator>;

// Waits for the device by reading one element back to the CPU (portable:
// no CUDA headers); on the CPU it costs next to nothing.
void sync_read(const at::Tensor &t) { (void)t.reshape({-1}).select(0, 0).item<double>(); }

// ---------------------------------------------------------------- JSON rows

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += char(c);
        }
    }
  }
  return o + "\"";
}

// A number, or null when it is not finite (or, with null_below_zero, < 0).
std::string json_num(double x, const char *fmt = "%.6g", bool null_below_zero = false) {
  if (!std::isfinite(x) || (null_below_zero && x < 0)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, model;
  int count = 0;
  while (std::getline(f, line)) {
    if (line.rfind("processor", 0) == 0) count++;
    if (model.empty() && line.rfind("model name", 0) == 0) {
      size_t i = line.find(':');
      if (i != std::string::npos) model = line.substr(line.find_first_not_of(" \t", i + 1));
    }
  }
  if (model.empty()) model = "unknown";
  return model + " x" + std::to_string(count);
}

// The first NVIDIA GPU's name from the driver's /proc files, else
// nvidia-smi's, else "".
std::string gpu_name() {
  std::string name;
  glob_t g{};
  if (glob("/proc/driver/nvidia/gpus/*/information", 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
    std::ifstream f(g.gl_pathv[0]);
    std::string line;
    while (name.empty() && std::getline(f, line))
      if (line.rfind("Model:", 0) == 0) {
        size_t i = line.find_first_not_of(" \t", 6);
        if (i != std::string::npos) name = line.substr(i);
      }
  }
  globfree(&g);
  if (name.empty()) {
    if (FILE *p = popen("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null", "r")) {
      char buf[256];
      if (std::fgets(buf, sizeof buf, p)) name = buf;
      while (std::fgets(buf, sizeof buf, p)) {
      }
      pclose(p);
    }
  }
  while (!name.empty() && std::isspace((unsigned char)name.back())) name.pop_back();
  return name;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string error_text(const std::exception &e) {
  if (auto *ce = dynamic_cast<const c10::Error *>(&e)) return ce->what_without_backtrace();
  return e.what();
}

struct Row {
  const Shape *shape;
  std::string dtype, device;
  int64_t batch, seq;
  std::string status = "ERROR", error;
  double max_rel_err = kNaN, median_ms = kNaN, min_ms = kNaN, cpu_ms = kNaN, peak_mb = kNaN;
  const char *peak_source = nullptr;
};

struct Env {
  std::string machine, gpu;
  int reps, warmup;
};

// F_fwd(batch, seq) of bench/HARNESS.md.
double forward_flops(const Shape &s, int64_t batch, int64_t seq) {
  double p_attn = 4.0 * s.d_model * (s.heads * s.d_head);
  double p_mlp = s.attn_only ? 0 : 2.0 * s.d_model * s.d_mlp;
  return double(batch) * seq * 2 * (s.layers * (p_attn + p_mlp) + double(s.d_model) * s.vocab) +
         double(batch) * s.layers * s.heads * 2 * 2 * double(seq) * seq * s.d_head;
}

void print_row(const Row &r, const Env &env) {
  bool timed = std::isfinite(r.median_ms);
  double flops = forward_flops(*r.shape, r.batch, r.seq);
  std::ostringstream o;
  o << "{\"impl\":\"cpp\",\"workload\":\"forward\",\"shape\":" << json_str(r.shape->name) << ",\"batch\":" << r.batch
    << ",\"seq\":" << r.seq << ",\"dtype\":" << json_str(r.dtype) << ",\"device\":" << json_str(r.device)
    << ",\"status\":" << json_str(r.status) << ",\"error\":" << json_str(r.error)
    << ",\"max_rel_err\":" << json_num(r.max_rel_err, "%.3e") << ",\"median_ms\":" << json_num(r.median_ms)
    << ",\"min_ms\":" << json_num(r.min_ms) << ",\"reps\":" << env.reps << ",\"warmup\":" << env.warmup
    << ",\"throughput\":" << (timed ? json_num(r.batch * r.seq / (r.median_ms / 1e3)) : "null")
    << ",\"throughput_unit\":\"tokens/s\",\"flops\":" << json_num(flops, "%.15g")
    << ",\"tflops\":" << (timed ? json_num(flops / (r.median_ms / 1e3) / 1e12) : "null")
    << ",\"peak_mem_mb\":" << json_num(r.peak_mb, "%.1f", true) << ",\"torch\":" << json_str(TORCH_VERSION)
    << ",\"threads\":" << at::get_num_threads() << ",\"machine\":" << json_str(env.machine)
    << ",\"gpu\":" << json_str(r.device == "cuda" ? env.gpu : "") << ",\"time\":" << json_str(utc_now())
    << ",\"cpu_ms_median\":" << json_num(r.cpu_ms) << ",\"peak_mem_source\":"
    << (r.peak_source ? json_str(r.peak_source) : "null") << "}\n";
  std::fputs(o.str().c_str(), stdout);
  std::fflush(stdout);
}

// ---------------------------------------------------------------- harness mode

struct Check {
  bool ok = false;
  std::string status = "ERROR", error;
  double err = kNaN;
};

// bench/HARNESS.md's correctness check of the forward: batch 1, seq 4
// logits against the float64 reference; the relative Frobenius error.
Check check_forward(const Model &m, at::ScalarType dtype, at::Device device) {
  Check c;
  try {
    at::Generator gen = at::detail::createCPUGenerator(12345);
    at::Tensor tokens = at::randint(0, m.shape.vocab, {1, 4}, gen, at::kLong).to(device);
    at::Tensor got = forward(m, tokens).to(at::kCPU, at::kDouble);
    at::Tensor ref = reference_forward(m, tokens);
    c.err = (got - ref).norm().item<double>() / ref.norm().item<double>();
    double tol = dtype == at::kFloat ? 1e-4 : 5e-2;
    if (std::isfinite(c.err) && c.err <= tol) {
      c.ok = true;
      c.status = "OK";
    } else {
      char buf[128];
      std::snprintf(buf, sizeof buf, "logits: rel err %.3g > %g", c.err, tol);
      c.status = "WRONG";
      c.error = buf;
    }
  } catch (const std::exception &e) {
    c.status = "ERROR";
    c.error = "check: " + error_text(e);
    c.err = kNaN;
  }
  return c;
}

void time_row(Row &r, const Model &m, at::Device device, const Env &env) {
  at::Generator gen = at::detail::createCPUGenerator(1);
  at::Tensor tokens = at::randint(0, m.shape.vocab, {r.batch, r.seq}, gen, at::kLong).to(device);
  bool cuda = device.is_cuda();
  int dev = cuda ? device.index() : 0;
  if (dev < 0) dev = 0;
  bool peak_ok = cuda ? CudaPeakStats::reset(dev) : reset_hwm();
  for (int i = 0; i < env.warmup; i++) sync_read(forward(m, tokens));
  std::vector<double> wall, cpu;
  for (int i = 0; i < env.reps; i++) {
    double c0 = cpu_ms();
    auto t0 = std::chrono::steady_clock::now();
    sync_read(forward(m, tokens));  // the logits are destroyed within the timed region, as golens frees them
    std::chrono::duration<double, std::milli> d = std::chrono::steady_clock::now() - t0;
    cpu.push_back(cpu_ms() - c0);
    wall.push_back(d.count());
  }
  r.median_ms = median(wall);
  r.min_ms = *std::min_element(wall.begin(), wall.end());
  r.cpu_ms = median(cpu);
  if (cuda) {
    if (peak_ok) {
      r.peak_mb = CudaPeakStats::mb(dev);
      r.peak_source = "cuda_allocator";
    }
  } else if (peak_ok && vm_hwm_mb() >= 0) {
    r.peak_mb = vm_hwm_mb();
    r.peak_source = "VmHWM";
  } else {
    r.peak_mb = peak_rss_mb();
    r.peak_source = "ru_maxrss";
  }
}

bool split_list(const std::string &s, std::vector<std::string> &out) {
  out.clear();
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return !out.empty();
}

bool parse_int(const std::string &s, int64_t &v, int64_t min) {
  char *end = nullptr;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || x < min) return false;
  v = x;
  return true;
}

int usage(const char *why) {
  std::fprintf(stderr,
               "gpt2_forward: %s\n"
               "usage: gpt2_forward [threads >= 1] [iterations >= 1] [warm-up >= 0]\n"
               "   or: gpt2_forward --json --shape S[,S...] [--batch B[,B...] --seq N[,N...]] [--grid BxN[,BxN...]]\n"
               "                    [--dtype float32|bfloat16|float16[,...]] [--device cpu|cuda]\n"
               "                    [--threads T] [--reps 5] [--warmup 2]\n"
               "shapes: toy attn-only-2l gpt2-small gpt2-medium\n",
               why);
  return 2;
}

int harness_main(int argc, char **argv) {
  std::vector<const Shape *> shapes;
  std::vector<std::pair<std::string, at::ScalarType>> dtypes;
  std::vector<int64_t> batches, seqs;
  std::vector<std::pair<int64_t, int64_t>> grid;
  std::string device_name = "cpu";
  int64_t threads = 0, reps = 5, warmup = 2;
  std::vector<std::string> items;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--json") continue;
    if (a == "-h" || a == "--help") {
      usage("help");
      return 0;
    }
    std::string v;
    size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      return usage(("missing value for " + a).c_str());
    }
    if (a == "--shape") {
      if (!split_list(v, items)) return usage("empty --shape");
      for (const std::string &s : items) {
        const Shape *sh = find_shape(s);
        if (!sh) return usage(("unknown shape " + s).c_str());
        shapes.push_back(sh);
      }
    } else if (a == "--dtype") {
      if (!split_list(v, items)) return usage("empty --dtype");
      for (const std::string &s : items) {
        if (s == "float32") dtypes.emplace_back(s, at::kFloat);
        else if (s == "bfloat16") dtypes.emplace_back(s, at::kBFloat16);
        else if (s == "float16") dtypes.emplace_back(s, at::kHalf);
        else return usage(("unknown dtype " + s).c_str());
      }
    } else if (a == "--batch" || a == "--seq") {
      if (!split_list(v, items)) return usage(("empty " + a).c_str());
      for (const std::string &s : items) {
        int64_t x;
        if (!parse_int(s, x, 1)) return usage(("bad " + a + " " + s).c_str());
        (a == "--batch" ? batches : seqs).push_back(x);
      }
    } else if (a == "--grid") {
      if (!split_list(v, items)) return usage("empty --grid");
      for (const std::string &s : items) {
        size_t x = s.find('x');
        int64_t b, n;
        if (x == std::string::npos || !parse_int(s.substr(0, x), b, 1) || !parse_int(s.substr(x + 1), n, 1))
          return usage(("bad --grid entry " + s + " (want BATCHxSEQ)").c_str());
        grid.emplace_back(b, n);
      }
    } else if (a == "--device") {
      if (v != "cpu" && v != "cuda") return usage(("unknown device " + v).c_str());
      device_name = v;
    } else if (a == "--threads") {
      if (!parse_int(v, threads, 1)) return usage("bad --threads");
    } else if (a == "--reps") {
      if (!parse_int(v, reps, 1)) return usage("bad --reps");
    } else if (a == "--warmup") {
      if (!parse_int(v, warmup, 0)) return usage("bad --warmup");
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  if (shapes.empty()) return usage("no --shape");
  if (dtypes.empty()) dtypes.emplace_back("float32", at::kFloat);
  if (batches.empty() != seqs.empty()) return usage("--batch and --seq go together");
  std::vector<std::pair<int64_t, int64_t>> cells;
  for (int64_t b : batches)
    for (int64_t n : seqs) cells.emplace_back(b, n);
  cells.insert(cells.end(), grid.begin(), grid.end());
  if (cells.empty()) return usage("no --batch/--seq or --grid");
  if (threads > 0) at::set_num_threads(int(threads));

  Env env;
  env.machine = cpu_model();
  env.reps = int(reps);
  env.warmup = int(warmup);
  bool cuda = device_name == "cuda";
  at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (cuda) env.gpu = gpu_name();

  for (const Shape *shape : shapes) {
    for (const auto &dt : dtypes) {
      Check check;
      Model model;
      bool have_model = false;
      try {
        if (cuda && !at::hasCUDA()) throw std::runtime_error("CUDA is not available (torch without CUDA, or no GPU)");
        at::Generator gen = at::detail::createCPUGenerator(0);
        std::fprintf(stderr, "gpt2_forward: making %s %s on %s\n", shape->name, dt.first.c_str(), device_name.c_str());
        model = random_model(*shape, 0.02, dt.second, device, gen);
        have_model = true;
        // The check's input does not depend on the row's batch and seq:
        // run it once per model, every row carries its result.
        check = check_forward(model, dt.second, device);
      } catch (const std::exception &e) {
        check.status = "ERROR";
        check.error = "model: " + error_text(e);
      }
      for (const auto &cell : cells) {
        Row r;
        r.shape = shape;
        r.dtype = dt.first;
        r.device = device_name;
        r.batch = cell.first;
        r.seq = cell.second;
        r.status = check.status;
        r.error = check.error;
        r.max_rel_err = check.err;
        if (check.ok && have_model) {
          if (r.seq > shape->n_ctx) {
            r.status = "ERROR";
            r.error = "seq " + std::to_string(r.seq) + " > n_ctx " + std::to_string(shape->n_ctx);
          } else {
            try {
              time_row(r, model, device, env);
            } catch (const std::exception &e) {
              r.status = "ERROR";
              r.error = error_text(e);
              r.median_ms = r.min_ms = r.cpu_ms = r.peak_mb = kNaN;
              r.peak_source = nullptr;
            }
          }
        }
        print_row(r, env);
      }
    }
  }
  return 0;
}

// ---------------------------------------------------------------- bench/run.sh's mode

int floor_main(int argc, char **argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int iters = argc > 2 ? std::atoi(argv[2]) : 8;
  int warmup = argc > 3 ? std::atoi(argv[3]) : 2;
  if (threads < 1 || iters < 1 || warmup < 0) return usage("bad arguments");
  at::set_num_threads(threads);

  const Shape &s = *find_shape("gpt2-small");
  at::Generator gen = at::detail::createCPUGenerator(0);
  Model m = random_model(s, 0.8 / std::sqrt(double(s.d_model)), at::kFloat, at::Device(at::kCPU), gen);
  at::Tensor tokens = at::randint(0, s.vocab, {1, 128}, gen, at::kLong);

  for (int i = 0; i < warmup; i++) forward(m, tokens);
  std::vector<double> wall, cpu;
  long faults0 = page_faults();
  for (int i = 0; i < iters; i++) {
    double c0 = cpu_ms();
    auto t0 = std::chrono::steady_clock::now();
    forward(m, tokens);  // the logits are destroyed within the timed region, as golens frees them
    std::chrono::duration<double, std::milli> d = std::chrono::steady_clock::now() - t0;
    cpu.push_back(cpu_ms() - c0);
    wall.push_back(d.count());
  }
  std::printf(
      "{\"workload\":\"forward\",\"impl\":\"cpp\",\"ms_median\":%.3f,\"cpu_ms_median\":%.3f,"
      "\"ms_min\":%.3f,\"faults_per_iter\":%.1f,\"iters\":%d,\"warmup\":%d,\"threads\":%d,\"grad_mode\":%s,"
      "\"peak_rss_mb\":%.1f,\"torch\":\"%s\"}\n",
      median(wall), median(cpu), *std::min_element(wall.begin(), wall.end()),
      double(page_faults() - faults0) / iters, iters, warmup,
      at::get_num_threads(), at::GradMode::is_enabled() ? "true" : "false", peak_rss_mb(), TORCH_VERSION);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc > 1 && std::strncmp(argv[1], "-", 1) == 0) return harness_main(argc, argv);
  return floor_main(argc, argv);
}
