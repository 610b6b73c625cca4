// gpt2_floor.h: the floor under golens's forward pass, shared by the
// gpt2_forward program and libgolens_floor (floor_lib.cpp, which runs it
// in golens's own process on golens's own weights). A GPT-2-style forward
// written directly against ATen, with the ops golens performs on its
// default path (no hooks, no cache): see gpt2_forward.cpp's header.
#pragma once

#include <ATen/ATen.h>
#include <torch/version.h>

#include <vector>

namespace gpt2_floor {

struct Shape {
  const char *name;
  int64_t layers, d_model, heads, d_head, d_mlp, vocab, n_ctx;
  bool attn_only, shortformer;
};

inline constexpr double kEps = 1e-5;

// ---------------------------------------------------------------- the model

struct LN {
  at::Tensor w, b;
};

struct BlockW {
  LN ln1, ln2;
  at::Tensor w_qkv, b_qkv, w_o, b_o;  // nn.Linear layout [out in]; W_Q's rows, then W_K's, then W_V's
  at::Tensor w_in, b_in, w_out, b_out;  // undefined when attn_only
};

struct Model {
  Shape shape;
  at::Tensor w_e, w_pos, w_u, b_u;
  std::vector<BlockW> blocks;
  LN ln_final;
};

inline at::Tensor sdpa(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, {}, 0.0, /*need_attn_weights=*/false,
                                                       /*is_causal=*/true));
#endif
}

inline at::Tensor layer_norm(const at::Tensor &x, const LN &ln) {
  return at::layer_norm(x, {x.size(-1)}, ln.w, ln.b, kEps);
}

// The fast forward: logits [batch seq vocab] in the model's dtype.
inline at::Tensor forward(const Model &m, const at::Tensor &tokens) {
  const Shape &s = m.shape;
  const int64_t b = tokens.size(0), n = tokens.size(1), hd = s.heads * s.d_head;
  at::Tensor embed = at::embedding(m.w_e, tokens);
  at::Tensor pos = m.w_pos.narrow(0, 0, n).unsqueeze(0).expand({b, n, -1}).clone();
  at::Tensor resid = s.shortformer ? embed : embed.add(pos);
  for (const BlockW &w : m.blocks) {
    at::Tensor x = layer_norm(resid, w.ln1);
    at::Tensor q, k, v;
    if (s.shortformer) {
      // Shortformer: Q and K read x + pos, V reads x, so the one fused QKV
      // linear cannot serve. One linear computes Q and K together on
      // x + pos, with the first 2*n_heads*d_head rows of W_QKV (a
      // contiguous narrow: no copy); a second computes V on x with the last
      // n_heads*d_head rows. (golens itself does three linears on narrowed
      // weights and two adds; this is the cheapest equivalent.)
      at::Tensor qk = at::linear(x.add(pos), w.w_qkv.narrow(0, 0, 2 * hd), w.b_qkv.narrow(0, 0, 2 * hd))
                          .view({b, n, 2, s.heads, s.d_head});
      q = qk.select(2, 0);
      k = qk.select(2, 1);
      v = at::linear(x, w.w_qkv.narrow(0, 2 * hd, hd), w.b_qkv.narrow(0, 2 * hd, hd)).view({b, n, s.heads, s.d_head});
    } else {
      at::Tensor qkv = at::linear(x, w.w_qkv, w.b_qkv).view({b, n, 3, s.heads, s.d_head});
      q = qkv.select(2, 0);
      k = qkv.select(2, 1);
      v = qkv.select(2, 2);
    }
    at::Tensor zh = sdpa(q.permute({0, 2, 1, 3}), k.permute({0, 2, 1, 3}), v.permute({0, 2, 1, 3}));
    at::Tensor z = zh.permute({0, 2, 1, 3});  // [batch query head d_head]
    at::Tensor attn_out = at::linear(z.reshape({b, n, hd}), w.w_o, w.b_o);
    if (s.attn_only) {
      resid = resid.add(attn_out);
      continue;
    }
    at::Tensor mid = resid.add(attn_out);
    at::Tensor pre = at::linear(layer_norm(mid, w.ln2), w.w_in, w.b_in);
    at::Tensor mlp_out = at::linear(at::gelu(pre, "tanh"), w.w_out, w.b_out);
    resid = mid.add(mlp_out);
  }
  return at::linear(layer_norm(resid, m.ln_final), m.w_u, m.b_u);
}

}  // namespace gpt2_floor
