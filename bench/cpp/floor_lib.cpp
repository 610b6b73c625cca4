// floor_lib.cpp: libgolens_floor, the C++ floor (gpt2_floor.h) as a shared
// library that a golens process loads (bench/floor) to run the floor on
// golens's own weight tensors, alternating with golens's passes. Measured
// so, both sides share the process, the heap, the threads and the very
// weight memory: the ratio is what golens's Go layer adds, not how two
// processes happened to be placed.
//
// The C ABI follows golens_torch.h's conventions (gt_error, gt_tensor
// handles the caller owns); it reads the handles through the shim's
// internal header, so it is built against the same shim and torch.
#include <exception>
#include <memory>

#include "gpt2_floor.h"
#include "shim.h"

extern "C" {

typedef struct floor_model_s *floor_model;

// The handles' ABI this library was compiled against.
int32_t floor_abi_version(void) { return GT_ABI_VERSION; }

// floor_model_new builds a floor model over params, which it shares (no
// copy), in this order: W_E [vocab d_model], W_pos [n_ctx d_model]; per
// block ln1.w, ln1.b, W_QKV [3·heads·d_head d_model], b_QKV, W_O, b_O and,
// unless attn_only, ln2.w, ln2.b, W_in, b_in, W_out, b_out; then
// ln_final.w, ln_final.b, W_U [vocab_out d_model], b_U.
gt_error floor_model_new(floor_model *out, const gt_tensor *params, int32_t n, int64_t heads, int32_t attn_only,
                         int32_t shortformer);

// floor_forward runs the floor's forward on tokens [batch pos] (int64).
// With logits non-NULL it copies the result into that tensor (for the
// check); with NULL the result is dropped, inside the call, as golens's
// benchmark frees its logits inside the timed pass.
gt_error floor_forward(floor_model m, gt_tensor tokens, gt_tensor logits);

void floor_model_free(floor_model m);

}  // extern "C"

struct floor_model_s {
  gpt2_floor::Model model;
};

namespace {

// The floor's model over params in floor_model_new's order; throws on a
// count or shape that does not fit.
gpt2_floor::Model model_from(const std::vector<at::Tensor> &p, int64_t heads, bool attn_only, bool shortformer) {
  const size_t per_block = attn_only ? 6 : 12, n = p.size();
  TORCH_CHECK(n > 6 && (n - 6) % per_block == 0, "floor_model_new: ", n, " params do not make whole blocks of ",
              per_block);
  TORCH_CHECK(heads > 0, "floor_model_new: heads must be positive, got ", heads);
  gpt2_floor::Model m;
  size_t i = 0;
  auto next = [&] { return p[i++]; };
  auto ln = [&] { return gpt2_floor::LN{next(), next()}; };  // braced: weight, then bias
  m.w_e = next();
  m.w_pos = next();
  for (size_t l = 0; l < (n - 6) / per_block; l++) {
    gpt2_floor::BlockW b;
    b.ln1 = ln();
    b.w_qkv = next(), b.b_qkv = next(), b.w_o = next(), b.b_o = next();
    if (!attn_only) {
      b.ln2 = ln();
      b.w_in = next(), b.b_in = next(), b.w_out = next(), b.b_out = next();
    }
    m.blocks.push_back(b);
  }
  m.ln_final = ln();
  m.w_u = next();
  m.b_u = next();
  TORCH_CHECK(m.w_e.dim() == 2 && m.blocks[0].w_qkv.dim() == 2, "floor_model_new: W_E and W_QKV must be matrices");
  const int64_t qkv_rows = m.blocks[0].w_qkv.size(0);
  TORCH_CHECK(qkv_rows % (3 * heads) == 0, "floor_model_new: W_QKV's ", qkv_rows, " rows are not 3 x ", heads,
              " heads");
  m.shape = gpt2_floor::Shape{"golens",       int64_t(m.blocks.size()),
                              m.w_e.size(1),  heads,
                              qkv_rows / (3 * heads), attn_only ? 0 : m.blocks[0].w_in.size(0),
                              m.w_u.size(0),  m.w_pos.size(0),
                              attn_only,      shortformer};
  return m;
}

}  // namespace

gt_error floor_model_new(floor_model *out, const gt_tensor *params, int32_t n, int64_t heads, int32_t attn_only,
                         int32_t shortformer) {
  GT_TRY({
    TORCH_CHECK(out != nullptr, "floor_model_new: out is NULL");
    *out = nullptr;
    auto m = std::make_unique<floor_model_s>();
    m->model = model_from(gt::list(params, n, "params"), heads, attn_only != 0, shortformer != 0);
    *out = m.release();
  })
}

gt_error floor_forward(floor_model m, gt_tensor tokens, gt_tensor logits) {
  GT_TRY({
    TORCH_CHECK(m != nullptr, "floor_forward: the model is NULL");
    at::Tensor out = gpt2_floor::forward(m->model, gt::arg(tokens, "tokens"));
    if (logits) {
      at::Tensor &dst = const_cast<at::Tensor &>(gt::arg(logits, "logits"));
      TORCH_CHECK(dst.sizes() == out.sizes() && dst.scalar_type() == out.scalar_type(), "floor_forward: logits is ",
                  dst.scalar_type(), dst.sizes(), ", the forward gives ", out.scalar_type(), out.sizes());
      dst.copy_(out);
    }
  })
}

void floor_model_free(floor_model m) { delete m; }
