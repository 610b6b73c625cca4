// floor_lib.cpp: libgolens_floor, the C++ floor (gpt2_floor.h) as a golens
// extension (gotch/csrc/golens_torch_ext.h) that a golens process loads
// (bench/floor, through gotch.OpenExtension) to run the floor on golens's
// own weight tensors, alternating with golens's passes. Measured so, both
// sides share the process, the heap, the threads and the very weight
// memory: the ratio is what golens's Go layer adds, not how two processes
// happened to be placed.
//
// It links libtorch only and reaches golens's tensors through the
// extension header's accessor, so it must be built against the torch golens
// runs on (gotch checks the version when it loads it): ./build.sh floor.
// Its three functions are gt_ext_fn; the model lives behind the state slot.
#include <memory>

#include "golens_torch_ext.h"
#include "gpt2_floor.h"

GT_EXTENSION()

extern "C" {

// floor_model_new builds a floor model in *state over tensors, the params,
// which it shares (no copy), in this order: W_E [vocab d_model], W_pos
// [n_ctx d_model]; per block ln1.w, ln1.b, W_QKV [3·heads·d_head d_model],
// b_QKV, W_O, b_O and, unless attn_only, ln2.w, ln2.b, W_in, b_in, W_out,
// b_out; then ln_final.w, ln_final.b, W_U [vocab_out d_model], b_U.
// ints: {heads, attn_only, shortformer}. *state must be empty; the caller
// frees the model with floor_model_free.
GT_EXT_EXPORT char *floor_model_new(void **state, const gt_tensor *tensors, int32_t n_tensors, const int64_t *ints,
                                    int32_t n_ints);

// floor_forward runs the floor's forward of the model in *state on
// tensors[0], tokens [batch pos] (int64). With tensors[1] non-NULL it
// copies the result into that tensor (for the check); with NULL the result
// is dropped, inside the call, as golens's benchmark frees its logits
// inside the timed pass. No ints.
GT_EXT_EXPORT char *floor_forward(void **state, const gt_tensor *tensors, int32_t n_tensors, const int64_t *ints,
                                  int32_t n_ints);

// floor_model_free frees the model in *state (its references to the
// weights) and empties the slot; an empty slot is allowed.
GT_EXT_EXPORT char *floor_model_free(void **state, const gt_tensor *tensors, int32_t n_tensors, const int64_t *ints,
                                     int32_t n_ints);

}  // extern "C"

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

char *floor_model_new(void **state, const gt_tensor *tensors, int32_t n_tensors, const int64_t *ints,
                      int32_t n_ints) {
  GT_EXT_TRY({
    TORCH_CHECK(*state == nullptr, "floor_model_new: the state slot already holds a model");
    TORCH_CHECK(n_ints == 3, "floor_model_new: want 3 ints (heads, attn_only, shortformer), got ", n_ints);
    std::vector<at::Tensor> params;
    params.reserve(n_tensors);
    for (int32_t i = 0; i < n_tensors; i++) {
      TORCH_CHECK(tensors[i] != nullptr, "floor_model_new: params[", i, "] is a nil tensor");
      params.push_back(gt_ext_tensor(tensors[i], "params"));
    }
    auto m = std::make_unique<gpt2_floor::Model>(model_from(params, ints[0], ints[1] != 0, ints[2] != 0));
    *state = m.release();
  })
}

char *floor_forward(void **state, const gt_tensor *tensors, int32_t n_tensors, const int64_t *, int32_t) {
  GT_EXT_TRY({
    TORCH_CHECK(*state != nullptr, "floor_forward: no model (freed, or never made)");
    TORCH_CHECK(n_tensors == 2, "floor_forward: want 2 tensors (tokens, logits or NULL), got ", n_tensors);
    const auto &model = *static_cast<gpt2_floor::Model *>(*state);
    at::Tensor out = gpt2_floor::forward(model, gt_ext_tensor(tensors[0], "tokens"));
    if (auto dst = gt_ext_opt_tensor(tensors[1])) {
      TORCH_CHECK(dst->sizes() == out.sizes() && dst->scalar_type() == out.scalar_type(), "floor_forward: logits is ",
                  dst->scalar_type(), dst->sizes(), ", the forward gives ", out.scalar_type(), out.sizes());
      dst->copy_(out);
    }
  })
}

char *floor_model_free(void **state, const gt_tensor *, int32_t, const int64_t *, int32_t) {
  GT_EXT_TRY({
    delete static_cast<gpt2_floor::Model *>(*state);
    *state = nullptr;
  })
}
