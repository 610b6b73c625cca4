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

