// ops_helpers.cpp: the ops whose C++ needs more than one expression, or
// differs between torch versions.
#include <cmath>

#include "shim.h"

namespace gt {

std::atomic<int32_t> wanted_threads{0};
std::atomic<int32_t> threads_generation{0};

at::Scalar scalar(double v) {
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15)
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

at::Tensor multinomial(const at::Tensor &probs, int64_t n, bool replacement,
                       at::Generator &gen) {
  // The generator lives on the CPU, so sampling does too: a generation step
  // brings the sampled ids to the host anyway.
  if (probs.device().is_cpu()) return at::multinomial(probs, n, replacement, gen);
  return at::multinomial(probs.to(at::kCPU), n, replacement, gen).to(probs.device());
}

at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b) {
  // One row on the CPU (a generation step's token): BLAS's GEMM packs all
  // of w before it multiplies, which for one row costs 3-5x the
  // matrix-vector product itself (gpt2-small's unembedding: 10 ms against
  // 3.4 with OpenBLAS). The result is the same up to summation order.
  const int64_t k = x.dim() > 0 ? x.size(-1) : 0;
  const bool one_row = x.dim() > 0 && k > 0 && x.numel() == k;
  const auto st = x.scalar_type();
  const bool bias_ok = !b || !b->defined() || (b->dim() == 1 && b->scalar_type() == st);
  if (one_row && x.device().is_cpu() && x.layout() == at::kStrided && w.layout() == at::kStrided &&
      (st == at::kFloat || st == at::kDouble) && w.dim() == 2 && w.scalar_type() == st && w.size(1) == k &&
      bias_ok) {
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    at::Tensor v = x.reshape({k});
    at::Tensor y = b && b->defined() ? at::addmv(*b, w, v) : at::mv(w, v);
    return at::_unsafe_view(y, sizes);  // as at::linear: y has no other user
  }
  return at::linear(x, w, b);
}

at::Tensor sdpa(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                const c10::optional<at::Tensor> &mask, bool causal) {
#if GT_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask, 0.0, false, causal));
#endif
}

std::tuple<at::Tensor, at::Tensor> eigvals(const at::Tensor &self) {
  at::Tensor e = at::linalg_eigvals(self);
  return {at::real(e).contiguous(), at::imag(e).contiguous()};
}

void zero_grad(const at::Tensor &self) {
  // mutable_grad() is a non-const reference on every torch version we
  // support; resetting it frees the gradient's memory.
  const_cast<at::Tensor &>(self).mutable_grad().reset();
}

}  // namespace gt

