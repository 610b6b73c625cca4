// gpt2_forward: the floor under hookedmodel's BenchmarkGPT2Forward. The
// same GPT-2-small forward pass, written directly against ATen, with the
// ops golens performs on its default path (no hooks, no cache):
//
//   embedding + positions (a copy of W_pos's rows, as golens makes), then
//   per block: layer_norm; one fused linear for Q, K and V; views, selects
//   and permutes; scaled dot-product attention with a causal mask; the
//   permute back and a reshape; the output linear; the residual add;
//   layer_norm; linear; gelu (tanh); linear; the residual add. Finally
//   layer_norm and the unembedding linear.
//
// Weights are random, of gpt2-small's shape (12 layers, d_model 768, 12
// heads, d_mlp 3072, vocab 50257, n_ctx 1024), drawn as golens's New draws
// them (every W normal with std 0.8/sqrt(d_model), TransformerLens's default
// initializer_range; biases zero; LayerNorm weights one), and
// the input is 1x128 random tokens. Grad mode stays on, as in golens: the
// weights do not require grad, so no graph is built (no NoGradGuard on
// either side).
//
//   gpt2_forward [threads] [iterations] [warm-up iterations]
//
// prints one JSON object: the median wall and process CPU time per
// forward in ms over the timed iterations, and the page faults per forward.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace {

constexpr int64_t kLayers = 12, kDModel = 768, kHeads = 12, kDHead = 64, kDMLP = 3072;
constexpr int64_t kVocab = 50257, kNCtx = 1024, kBatch = 1, kSeq = 128;
constexpr double kEps = 1e-5;
const double kStd = 0.8 / std::sqrt(double(kDModel));

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

struct LN {
  at::Tensor w, b;
};

struct BlockW {
  LN ln1, ln2;
  at::Tensor w_qkv, b_qkv, w_o, b_o;     // nn.Linear layout [out in]
  at::Tensor w_in, b_in, w_out, b_out;
};

struct Model {
  at::Tensor w_e, w_pos, w_u, b_u;
  std::vector<BlockW> blocks;
  LN ln_final;
};

Model random_model(at::Generator &gen) {
  auto normal = [&](at::IntArrayRef shape) { return at::randn(shape, gen, at::kFloat).mul_(kStd); };
  auto zeros = [](at::IntArrayRef shape) { return at::zeros(shape, at::kFloat); };
  auto ln = [&] { return LN{at::ones({kDModel}, at::kFloat), zeros({kDModel})}; };
  Model m;
  m.w_e = normal({kVocab, kDModel});
  m.w_pos = normal({kNCtx, kDModel});
  for (int64_t l = 0; l < kLayers; l++) {
    BlockW b;
    b.ln1 = ln();
    b.w_qkv = normal({3 * kHeads * kDHead, kDModel});
    b.b_qkv = zeros({3 * kHeads * kDHead});
    b.w_o = normal({kDModel, kHeads * kDHead});
    b.b_o = zeros({kDModel});
    b.ln2 = ln();
    b.w_in = normal({kDMLP, kDModel});
    b.b_in = zeros({kDMLP});
    b.w_out = normal({kDModel, kDMLP});
    b.b_out = zeros({kDModel});
    m.blocks.push_back(b);
  }
  m.ln_final = ln();
  m.w_u = normal({kVocab, kDModel});
  m.b_u = zeros({kVocab});
  return m;
}

at::Tensor sdpa(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, {}, 0.0, /*need_attn_weights=*/false,
                                                       /*is_causal=*/true));
#endif
}

at::Tensor layer_norm(const at::Tensor &x, const LN &ln) {
  return at::layer_norm(x, {x.size(-1)}, ln.w, ln.b, kEps);
}

at::Tensor forward(const Model &m, const at::Tensor &tokens) {
  int64_t b = tokens.size(0), n = tokens.size(1);
  at::Tensor embed = at::embedding(m.w_e, tokens);
  at::Tensor pos = m.w_pos.narrow(0, 0, n).unsqueeze(0).expand({b, n, -1}).clone();
  at::Tensor resid = embed.add(pos);
  for (const BlockW &w : m.blocks) {
    at::Tensor x = layer_norm(resid, w.ln1);
    at::Tensor qkv = at::linear(x, w.w_qkv, w.b_qkv).view({b, n, 3, kHeads, kDHead});
    at::Tensor q = qkv.select(2, 0), k = qkv.select(2, 1), v = qkv.select(2, 2);
    at::Tensor zh = sdpa(q.permute({0, 2, 1, 3}), k.permute({0, 2, 1, 3}), v.permute({0, 2, 1, 3}));
    at::Tensor z = zh.permute({0, 2, 1, 3});  // [batch query head d_head]
    at::Tensor attn_out = at::linear(z.reshape({b, n, kHeads * kDHead}), w.w_o, w.b_o);
    at::Tensor mid = resid.add(attn_out);
    at::Tensor pre = at::linear(layer_norm(mid, w.ln2), w.w_in, w.b_in);
    at::Tensor mlp_out = at::linear(at::gelu(pre, "tanh"), w.w_out, w.b_out);
    resid = mid.add(mlp_out);
  }
  return at::linear(layer_norm(resid, m.ln_final), m.w_u, m.b_u);
}

}  // namespace

int main(int argc, char **argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int iters = argc > 2 ? std::atoi(argv[2]) : 8;
  int warmup = argc > 3 ? std::atoi(argv[3]) : 2;
  if (threads < 1 || iters < 1 || warmup < 0) {
    std::fprintf(stderr, "usage: gpt2_forward [threads >= 1] [iterations >= 1] [warm-up >= 0]\n");
    return 2;
  }
  at::set_num_threads(threads);

  at::Generator gen = at::detail::createCPUGenerator(0);
  Model m = random_model(gen);
  at::Tensor tokens = at::randint(0, kVocab, {kBatch, kSeq}, gen, at::kLong);

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
