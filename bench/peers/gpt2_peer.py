#!/usr/bin/env python3
"""The Python peer of golens's benchmark harness (bench/HARNESS.md): its workloads in PyTorch.

Two implementations, one JSON row per (shape, dtype, workload, grid point) on stdout:

  --impl pytorch       HARNESS.md's maths in plain PyTorch eager (GPT-2, and for pythia-160m, llama-1b and gemma2-2b
                       Hugging Face's: rotate-half rotary on the first rotary_dim dims of each head, NeoX's parallel
                       residual, grouped-query attention as repeat_kv, gated MLPs, RMSNorm and Gemma's (1 + w),
                       Gemma 2's soft caps, sliding window on the even layers, post-norms and embedding scale;
                       no biases where Hugging Face has none), written the way TransformerLens
                       writes it: an identity HookPoint module at every hook point, named as TransformerLens
                       names it (blocks.0.attn.hook_pattern, ...), hooks attached with register_forward_hook
                       (a hook may return a replacement tensor or change its argument in place), caching by
                       hooks that keep tensor.detach(), attention computed explicitly (scores, causal mask,
                       softmax, pattern @ v), greedy generation with and without a per-layer key-value cache.
                       Checked against a float64 copy of the same model on the CPU; that maths is checked against
                       golens's float64 reference (hookedmodel/reference) by bench/peer_test.go, through --dump.
  --impl transformers  Hugging Face transformers.GPT2LMHeadModel built from a GPT2Config of the same
                       dimensions, its weights copied from the pytorch peer's model of the same seed, checked
                       against the pytorch peer in float64 (an independent implementation check).
                       GPT2LMHeadModel ties lm_head to wte and has no unembedding bias, so for this impl the
                       peer's model is built with W_U = W_E^T and b_U = 0 (the row's "note" says so); the
                       attn-only-2l shape (no MLP, shortformer positions) and the non-GPT-2 shapes are not
                       expressible and give ERROR rows.

Each row first runs its workload on a small input (batch 1, seq 4; generation: 4 new tokens) and compares it
with the float64 reference (status OK / WRONG / ERROR, max_rel_err); only an OK row is timed: --warmup
untimed repetitions, then --reps timed ones (time.perf_counter, torch.cuda.synchronize on CUDA), under
torch.no_grad except train_step. Progress goes to stderr. Any exception in a row becomes an ERROR row and the
next row runs; the exit status is 0 unless the arguments are wrong.

Run with Debian's python (torch 1.13) here, or any python with torch 1.13 or 2.x:
  /usr/bin/python3 bench/peers/gpt2_peer.py --impl pytorch --shape toy --workload all --grid 1x32,8x128
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WORKLOADS = ["forward", "cache_all", "cache_all_cpu", "cache_pattern", "cache_resid", "hooks_noop", "hooks_modify",
             "generate_kv", "generate_nokv", "patching", "train_step"]

# HARNESS.md "Shapes": every W ~ normal(0, 0.02), biases 0, LayerNorm and RMSNorm w=1 (Gemma's (1 + w) RMSNorm: w=0),
# eps 1e-5 unless given. The keys after attn_only and positions (defaults in ARCH) choose the architecture.
SHAPES = {
    "toy": dict(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256, d_vocab=1000, n_ctx=128,
                attn_only=False, positions="standard"),
    "attn-only-2l": dict(n_layers=2, d_model=512, n_heads=8, d_head=64, d_mlp=0, d_vocab=48262, n_ctx=1024,
                         attn_only=True, positions="shortformer"),
    "gpt2-small": dict(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257, n_ctx=1024,
                       attn_only=False, positions="standard"),
    "gpt2-medium": dict(n_layers=24, d_model=1024, n_heads=16, d_head=64, d_mlp=4096, d_vocab=50257, n_ctx=1024,
                        attn_only=False, positions="standard"),
    # GPT-NeoX (EleutherAI/pythia-160m): rotary on 16 of 64 dims (rotary_pct 0.25), parallel attention and MLP
    "pythia-160m": dict(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50304, n_ctx=2048,
                        attn_only=False, positions="rotary", rotary_dim=16, act="gelu", parallel=True, nn_linear=True),
    # Llama 3.2 1B (untied W_U), with Llama 3.1's rope_scaling
    "llama-1b": dict(n_layers=16, d_model=2048, n_heads=32, n_kv_heads=8, d_head=64, d_mlp=8192, d_vocab=128256,
                     n_ctx=2048, attn_only=False, positions="rotary", rotary_base=500000.0,
                     rope_llama3=(32.0, 1.0, 4.0, 8192), norm="RMS", act="silu", gated=True, biases=False,
                     nn_linear=True),
    # google/gemma-2-2b (untied W_U; attn_scale: sqrt(query_pre_attn_scalar))
    "gemma2-2b": dict(n_layers=26, d_model=2304, n_heads=8, n_kv_heads=4, d_head=256, d_mlp=9216, d_vocab=256000,
                      n_ctx=8192, attn_only=False, positions="rotary", norm="RMS", eps=1e-6, norm_plus_one=True,
                      act="gelu_pytorch_tanh", gated=True, biases=False, post_norms=True, attn_scale=16.0,
                      attn_softcap=50.0, logit_softcap=30.0, window=4096, embed_scale=True, nn_linear=True),
}
EPS, INIT_STD = 1e-5, 0.02
# The architecture keys and GPT-2's values of them. n_kv_heads None: n_heads; rotary_dim None: d_head. biases: on
# every linear map and the unembedding (Hugging Face's Llama and Gemma have none). window: the sliding window of the
# even layers 0, 2, ... (Hugging Face's Gemma 2), 0 for none. Soft caps 0: none. rope_llama3: Llama 3.1's rope_scaling
# (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings), or None. attn_scale: what the scores
# are divided by, None for sqrt(d_head). nn_linear: matrices in nn.Linear's layout [out in], Hugging Face's for these
# architectures (F.linear; GPT-2's Conv1D is [in out], x @ W).
ARCH = dict(n_kv_heads=None, norm="LN", eps=EPS, norm_plus_one=False, act="gelu_new", gated=False, rotary_dim=None,
            rotary_base=10000.0, rope_llama3=None, parallel=False, biases=True, post_norms=False, attn_scale=None,
            attn_softcap=0.0, logit_softcap=0.0, window=0, embed_scale=False, nn_linear=False)
SHAPES = {name: dict(ARCH, **c) for name, c in SHAPES.items()}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HALF = (torch.float16, torch.bfloat16)


def complete(c):
    """c with n_kv_heads, rotary_dim and attn_scale set where they are None (after --sizes)."""
    return dict(c, n_kv_heads=c["n_kv_heads"] or c["n_heads"], rotary_dim=c["rotary_dim"] or c["d_head"],
                attn_scale=c["attn_scale"] or math.sqrt(c["d_head"]))


# Seeds: the model's weights, the timed input, the check input, patching's clean (A) and corrupted (B) tokens.
INPUT_SEED, CHECK_SEED, SEED_A, SEED_B = 1, 2, 3, 4
CHECK_BATCH, CHECK_SEQ, CHECK_NEW = 1, 4, 4
TIED_NOTE = ("transformers: GPT2LMHeadModel ties lm_head to wte and has no b_U, so the weights shared with "
             "the pytorch reference use a tied unembedding W_U = W_E^T and b_U = 0")


def log(*a):
    print("[gpt2_peer]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The model: TransformerLens's HookedTransformer, as HARNESS.md "The maths": GPT-2 (pre-LN), and Hugging Face's maths
# for the others under TransformerLens's hook names (rotate-half rotary on the first rotary_dim dims of each head,
# grouped-query attention as repeat_kv, gated MLPs, RMSNorm, NeoX's parallel residual, Gemma 2's soft caps, sliding
# window, post-norms and embedding scale).
# ---------------------------------------------------------------------------------------------------------------

class HookPoint(nn.Module):
    """An identity; a forward hook on it sees the activation and may return a replacement (TransformerLens)."""

    def forward(self, x):
        return x


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTS = {"gelu_new": gelu_new, "gelu": F.gelu, "silu": F.silu,
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


def normal(*shape):
    return nn.Parameter(torch.randn(*shape) * INIT_STD)


def zeros(*shape):
    return nn.Parameter(torch.zeros(*shape))


def weight(c, d_in, d_out):
    """A matrix from d_in to d_out: [d_in d_out] (GPT-2's Conv1D), or [d_out d_in] with c["nn_linear"]."""
    return normal(d_out, d_in) if c["nn_linear"] else normal(d_in, d_out)


def linear(x, w, b, nn_linear):
    """x w + b for w of weight's layout."""
    if nn_linear:
        return F.linear(x, w, b)
    return x @ w if b is None else x @ w + b


def soft_cap(x, cap):
    return cap * torch.tanh(x / cap) if cap else x


class Norm(nn.Module):
    """LayerNorm, or RMSNorm (c["norm"] "RMS"; scaling by 1 + w with c["norm_plus_one"], Gemma's), with
    TransformerLens's hooks."""

    def __init__(self, c):
        super().__init__()
        self.rms, self.plus_one, self.eps = c["norm"] == "RMS", c["norm_plus_one"], c["eps"]
        d = c["d_model"]
        self.w = nn.Parameter(torch.zeros(d) if self.plus_one else torch.ones(d))
        self.b = None if self.rms else zeros(d)
        self.hook_scale = HookPoint()       # [batch pos 1]
        self.hook_normalized = HookPoint()  # [batch pos d_model]

    def forward(self, x):  # [batch pos d_model]
        dtype = x.dtype
        if dtype in HALF:  # TransformerLens normalises in float32 when the model is 16-bit
            x = x.float()
        if self.rms:  # TransformerLens's RMSNorm: hook_normalized before the weight
            scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
            x = self.hook_normalized((x / scale).to(dtype))
            return x * (1 + self.w if self.plus_one else self.w)
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        # TransformerLens's hook_normalized is after the weight and bias
        return self.hook_normalized(x / scale * self.w + self.b).to(dtype)


def rotary_tables(c):
    """cos and sin [n_ctx rotary_dim] of Hugging Face's rotate-half rotary: position p times the frequencies
    base^(-2i/rotary_dim), the rotary_dim/2 of them twice over."""
    rd = c["rotary_dim"]
    inv_freq = 1.0 / c["rotary_base"] ** (torch.arange(0, rd, 2, dtype=torch.float64) / rd)
    if c["rope_llama3"]:
        inv_freq = llama3_frequencies(inv_freq, *c["rope_llama3"])
    angles = torch.arange(c["n_ctx"], dtype=torch.float64)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], -1)
    return angles.cos(), angles.sin()


def llama3_frequencies(inv_freq, factor, low, high, original):
    """Llama 3.1's rope_scaling (Hugging Face's _compute_llama3_parameters): frequencies whose wavelength is under
    original/high stay, those over original/low are divided by factor, those between are interpolated."""
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > original / low, inv_freq / factor, inv_freq)
    smooth = (original / wavelen - low) / (high - low)
    between = (wavelen >= original / high) & (wavelen <= original / low)
    return torch.where(between, (1 - smooth) * scaled / factor + smooth * scaled, scaled)


def rotate(x, cos, sin):
    """x [batch pos head d_head]: its first rotary_dim dims rotated as [x1 x2] -> x cos + [-x2 x1] sin, the rest
    unchanged; cos, sin [pos rotary_dim]."""
    rd = cos.shape[-1]
    rot, rest = x[..., :rd], x[..., rd:]
    x1, x2 = rot.chunk(2, -1)
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    rot = rot * cos + torch.cat([-x2, x1], -1) * sin
    return torch.cat([rot, rest], -1) if rest.shape[-1] else rot


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads, self.n_kv, self.d_head = c["n_heads"], c["n_kv_heads"], c["d_head"]
        self.scale, self.soft_cap = c["attn_scale"], c["attn_softcap"]
        hq, hkv = self.n_heads * self.d_head, self.n_kv * self.d_head
        # TransformerLens's W_Q [head d_model d_head] and W_K, W_V [kv_head d_model d_head] side by side, flattened as
        # [d_model (q heads, k heads, v heads) d_head] (one matmul, as GPT-2's c_attn, NeoX's query_key_value and
        # golens's W_QKV); W_O [head d_head d_model] as [(head d_head) d_model].
        self.nn = c["nn_linear"]
        self.W_QKV = weight(c, c["d_model"], hq + 2 * hkv)
        self.b_QKV = zeros(hq + 2 * hkv) if c["biases"] else None
        self.W_O = weight(c, hq, c["d_model"])
        self.b_O = zeros(c["d_model"]) if c["biases"] else None
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()  # [batch pos head d_head]
        self.rotary = c["positions"] == "rotary"
        if self.rotary:
            self.hook_rot_q, self.hook_rot_k = HookPoint(), HookPoint()               # [batch pos head d_head]
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()           # [batch head query key]
        self.hook_z = HookPoint()                                                      # [batch pos head d_head]

    def forward(self, xq, xv, mask, rot=None, past=None):
        # xq: the query and key input [batch pos d_model]; xv: the value input (the same tensor unless shortformer);
        # mask [query key], True where a query may not see a key; rot: the positions' rotary (cos, sin), or None
        b, n, _ = xq.shape
        hq, hkv = self.n_heads * self.d_head, self.n_kv * self.d_head
        if xq is xv:
            q, k, v = linear(xq, self.W_QKV, self.b_QKV, self.nn).split([hq, hkv, hkv], -1)
        else:
            w_qk, w_v = self.W_QKV.split([hq + hkv, hkv], 0 if self.nn else 1)
            b_qk, b_v = (None, None) if self.b_QKV is None else self.b_QKV.split([hq + hkv, hkv])
            q, k = linear(xq, w_qk, b_qk, self.nn).split([hq, hkv], -1)
            v = linear(xv, w_v, b_v, self.nn)
        q = self.hook_q(q.view(b, n, self.n_heads, self.d_head))
        k = self.hook_k(k.view(b, n, self.n_kv, self.d_head))
        v = self.hook_v(v.view(b, n, self.n_kv, self.d_head))
        if self.rotary:
            q, k = self.hook_rot_q(rotate(q, *rot)), self.hook_rot_k(rotate(k, *rot))
        if past is not None:  # key-value cache: this layer's keys and values of the earlier positions
            if "k" in past:
                k, v = torch.cat([past["k"], k], 1), torch.cat([past["v"], v], 1)
            past["k"], past["v"] = k, v
        if self.n_kv != self.n_heads:  # Hugging Face's repeat_kv: each kv head serves consecutive query heads
            g, t = self.n_heads // self.n_kv, k.shape[1]
            k = k[:, :, :, None].expand(b, t, self.n_kv, g, self.d_head).reshape(b, t, self.n_heads, self.d_head)
            v = v[:, :, :, None].expand(b, t, self.n_kv, g, self.d_head).reshape(b, t, self.n_heads, self.d_head)
        qs, ks = (q.float(), k.float()) if q.dtype in HALF else (q, k)  # TransformerLens: scores in float32 if 16-bit
        scores = qs.transpose(1, 2) @ ks.permute(0, 2, 3, 1) / self.scale  # [batch head query key]
        scores = soft_cap(scores, self.soft_cap)
        scores = self.hook_attn_scores(scores.masked_fill(mask, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(-1).to(v.dtype))                     # [batch head query key]
        z = self.hook_z((pattern @ v.transpose(1, 2)).transpose(1, 2))                  # [batch pos head d_head]
        return linear(z.reshape(b, n, hq), self.W_O, self.b_O, self.nn)                 # [batch pos d_model]


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        bias = c["biases"]
        self.act, self.gated, self.nn = ACTS[c["act"]], c["gated"], c["nn_linear"]
        self.W_in, self.b_in = weight(c, c["d_model"], c["d_mlp"]), zeros(c["d_mlp"]) if bias else None
        self.W_out, self.b_out = weight(c, c["d_mlp"], c["d_model"]), zeros(c["d_model"]) if bias else None
        self.hook_pre = HookPoint()             # [batch pos d_mlp]
        if self.gated:
            self.W_gate = weight(c, c["d_model"], c["d_mlp"])
            self.hook_pre_linear = HookPoint()  # [batch pos d_mlp]
        self.hook_post = HookPoint()            # [batch pos d_mlp]

    def forward(self, x):
        if self.gated:  # TransformerLens's GatedMLP: act(x W_gate) * (x W_in + b_in)
            pre = self.hook_pre(linear(x, self.W_gate, None, self.nn))
            post = self.hook_post(self.act(pre) * self.hook_pre_linear(linear(x, self.W_in, self.b_in, self.nn)))
        else:
            post = self.hook_post(self.act(self.hook_pre(linear(x, self.W_in, self.b_in, self.nn))))
        return linear(post, self.W_out, self.b_out, self.nn)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attn_only, self.parallel, self.post_norms = c["attn_only"], c["parallel"], c["post_norms"]
        self.hook_resid_pre = HookPoint()
        self.ln1 = Norm(c)
        self.attn = Attention(c)
        if self.post_norms:
            self.ln1_post = Norm(c)
        self.hook_attn_out = HookPoint()
        if not self.attn_only:
            if not self.parallel:
                self.hook_resid_mid = HookPoint()
            self.ln2 = Norm(c)
            self.mlp = MLP(c)
            if self.post_norms:
                self.ln2_post = Norm(c)
            self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid, mask, pos=None, rot=None, past=None):
        # pos: the positional embedding for shortformer (added to the query and key inputs only), else None
        resid = self.hook_resid_pre(resid)
        x = self.ln1(resid)
        attn_out = self.attn(x if pos is None else x + pos, x, mask, rot, past)
        if self.post_norms:
            attn_out = self.ln1_post(attn_out)
        attn_out = self.hook_attn_out(attn_out)
        if self.attn_only:
            return self.hook_resid_post(resid + attn_out)
        if self.parallel:  # NeoX: the MLP reads the block's input, not resid + attn_out
            mlp_out = self.hook_mlp_out(self.mlp(self.ln2(resid)))
            return self.hook_resid_post(resid + attn_out + mlp_out)
        resid = self.hook_resid_mid(resid + attn_out)
        mlp_out = self.mlp(self.ln2(resid))
        if self.post_norms:
            mlp_out = self.ln2_post(mlp_out)
        return self.hook_resid_post(resid + self.hook_mlp_out(mlp_out))


class Transformer(nn.Module):
    def __init__(self, c, tied=False):
        super().__init__()
        self.c, self.tied = c, tied
        self.W_E = normal(c["d_vocab"], c["d_model"])
        self.hook_embed = HookPoint()      # [batch pos d_model]
        self.rotary = c["positions"] == "rotary"
        if self.rotary:  # float64 tables: the float64 reference keeps them exact, .to(dtype) rounds them
            cos, sin = rotary_tables(c)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)
        else:
            self.W_pos = normal(c["n_ctx"], c["d_model"])
            self.hook_pos_embed = HookPoint()  # [batch pos d_model]
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["n_layers"]))
        self.ln_final = Norm(c)
        if tied:  # GPT2LMHeadModel's unembedding: W_U = W_E^T, no bias
            self.register_buffer("b_U", torch.zeros(c["d_vocab"]))
        else:
            self.W_U = weight(c, c["d_model"], c["d_vocab"])
            self.b_U = zeros(c["d_vocab"]) if c["biases"] else None
        self.points = [(name, m) for name, m in self.named_modules() if isinstance(m, HookPoint)]
        self.hook_dict = dict(self.points)  # as TransformerLens's mod_dict

    def masks(self, off, n, device):
        """[query key] masks, True where query off+i may not see key j: causal, and within the sliding window."""
        i = torch.arange(off, off + n, device=device)[:, None]
        j = torch.arange(off + n, device=device)[None]
        causal = j > i
        window = self.c["window"]
        return causal, (causal | (i - j >= window)) if window else causal

    def forward(self, tokens, past=None):
        # tokens [batch pos]; past: a list of one dict per layer (the key-value cache, filled here) or None
        c = self.c
        b, n = tokens.shape
        off = past[0]["k"].shape[1] if past is not None and "k" in past[0] else 0
        if off + n > c["n_ctx"]:
            raise ValueError(f"{off + n} positions exceed n_ctx {c['n_ctx']}")
        embed = self.W_E[tokens]
        if c["embed_scale"]:  # Gemma: times sqrt(d_model), rounded to the model's dtype
            embed = embed * torch.tensor(math.sqrt(c["d_model"]), dtype=embed.dtype)
        embed = self.hook_embed(embed)
        pos = rot = None
        if self.rotary:
            resid, rot = embed, (self.rotary_cos[off:off + n], self.rotary_sin[off:off + n])
        else:
            pos = self.hook_pos_embed(self.W_pos[off:off + n].unsqueeze(0).expand(b, n, -1))
            resid = embed if c["positions"] == "shortformer" else embed + pos
            if c["positions"] != "shortformer":
                pos = None
        causal, local = self.masks(off, n, tokens.device)
        for i, blk in enumerate(self.blocks):
            mask = local if i % 2 == 0 else causal  # Hugging Face's Gemma 2: the even layers slide
            resid = blk(resid, mask, pos, rot, None if past is None else past[i])
        x = self.ln_final(resid)
        logits = x @ self.W_E.t() if self.tied else linear(x, self.W_U, None, c["nn_linear"])
        if self.b_U is not None:
            logits = logits + self.b_U
        return soft_cap(logits, c["logit_softcap"])  # [batch pos d_vocab]

    def hook_points(self):
        return self.points


def build_peer(c, seed, tied=False):
    torch.manual_seed(seed)
    return Transformer(c, tied).eval()


def column_major(model):
    """model with the weights golens keeps column-major stored so (memory [in out], values and shapes unchanged):
    on the CPU, float32 MLP matrices and W_U [out in] whose d_in is a multiple of 1024 (hookedmodel/layout.go).
    F.linear then runs a GEMM with neither operand transposed."""
    for name, p in model.named_parameters():
        if (p.dim() == 2 and (".mlp.W_" in name or name == "W_U") and p.shape[1] % 1024 == 0
                and p.dtype == torch.float32 and p.device.type == "cpu"):
            p.data = p.data.t().contiguous().t()
    return model


def float64_on_use(model):
    """model, computing in float64 with its blocks' weights kept float32: each block (and the final norm) is float64
    only during its own forward (float32 values round-trip exactly), so besides the embeddings one block at a time is
    float64. A whole float64 copy of gemma2-2b would take 26 GB."""
    for p in model.parameters(recurse=False):
        p.data = p.data.double()
    for name, b in model.named_buffers(recurse=False):
        if b.is_floating_point():
            setattr(model, name, b.double())

    def widen(mod, args):
        mod.double()

    def narrow(mod, args, out):
        mod.float()

    for mod in [*model.blocks, model.ln_final]:
        mod.register_forward_pre_hook(widen)
        mod.register_forward_hook(narrow)
    return model


# ---------------------------------------------------------------------------------------------------------------
# The workloads on the peer (TransformerLens's run_with_hooks / run_with_cache: hooks added for the call, removed
# after it), and greedy generation.
# ---------------------------------------------------------------------------------------------------------------

def run_with_hooks(model, tokens, hooks):
    """hooks: (hook point name, fn(tensor) -> tensor or None) pairs."""
    points = model.hook_dict
    handles = [points[name].register_forward_hook(lambda mod, inp, out, fn=fn: fn(out)) for name, fn in hooks]
    try:
        return model(tokens)
    finally:
        for h in handles:
            h.remove()


def run_with_cache(model, tokens, keep, host=False):
    """host: store the cache in host memory, copied into pinned buffers without blocking the forward pass
    (cache_all_cpu; the caller's timing waits for the copies)."""
    cache = {}

    def saver(name):
        def save(t):
            t = t.detach()
            if host and t.device.type != "cpu":
                t = torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)
            cache[name] = t
        return save

    logits = run_with_hooks(model, tokens, [(name, saver(name)) for name, _ in model.hook_points() if keep(name)])
    return logits, cache


CACHE_FILTERS = {
    "cache_all": lambda name: True,
    "cache_all_cpu": lambda name: True,
    "cache_pattern": lambda name: name.endswith("hook_pattern"),
    "cache_resid": lambda name: name.endswith(("hook_resid_pre", "hook_resid_mid", "hook_resid_post")),
}


def ablate_head0(z):  # blocks.0.attn.hook_z [batch pos head d_head]
    z[:, :, 0, :] = 0
    return z


def generate(model, tokens, new, kv, step_logits=None):
    """Greedy: the new tokens [batch new] after the prompt tokens [batch pos]. step_logits, a list, gets each
    step's last-position logits [batch d_vocab]."""
    out = []
    if kv:
        past = [{} for _ in model.blocks]
        logits = model(tokens, past)
        for t in range(new):
            out.append(logits[:, -1].argmax(-1))
            if step_logits is not None:
                step_logits.append(logits[:, -1])
            if t + 1 < new:
                logits = model(out[-1][:, None], past)
    else:
        seq = tokens
        for t in range(new):
            last = model(seq)[:, -1]
            out.append(last.argmax(-1))
            if step_logits is not None:
                step_logits.append(last)
            if t + 1 < new:
                seq = torch.cat([seq, out[-1][:, None]], 1)
    return torch.stack(out, 1)


def metric(logits):  # HARNESS.md "patching"
    return (logits[:, -1, 1] - logits[:, -1, 2]).mean()


def sweep_cells(c, seq, only):
    if only is not None:
        return only
    return [(l, p, h) for l in range(c["n_layers"]) for p in range(seq) for h in range(c["n_heads"])]


def patching(model, clean, corrupted, only=None, progress=False):
    """Head x position activation patching of attn.hook_z: the metric grid [n_layers seq n_heads]
    (only the cells in only, if given)."""
    c = model.c
    _, cache = run_with_cache(model, clean, lambda name: name.endswith("attn.hook_z"))
    metric(model(corrupted))
    dtype = torch.float64 if model.W_E.dtype == torch.float64 else torch.float32  # the reference's is float64
    grid = torch.zeros(c["n_layers"], clean.shape[1], c["n_heads"], dtype=dtype, device=clean.device)
    for l, p, h in sweep_cells(c, clean.shape[1], only):
        clean_z = cache[f"blocks.{l}.attn.hook_z"]

        def patch(z, p=p, h=h, clean_z=clean_z):
            z[:, p, h, :] = clean_z[:, p, h, :]
            return z

        grid[l, p, h] = metric(run_with_hooks(model, corrupted, [(f"blocks.{l}.attn.hook_z", patch)]))
        if progress and p == clean.shape[1] - 1 and h == c["n_heads"] - 1:
            log(f"  patching: layer {l + 1}/{c['n_layers']} done")
    return grid


def adamw(model):
    ps = list(model.parameters())
    return torch.optim.AdamW([{"params": [p for p in ps if p.dim() >= 2], "weight_decay": 0.01},
                              {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


def next_token_loss(logits, tokens):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def train_stepper(model, loss_fn):
    """One AdamW step on the mean next-token cross-entropy: forward, backward, clip at 1, step, zero grads."""
    opt = adamw(model)

    def step(tokens):
        with torch.enable_grad():
            loss = loss_fn(tokens)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step


# ---------------------------------------------------------------------------------------------------------------
# The two implementations behind one interface: outputs(workload, inputs) for the check (named tensors), and
# prepare(workload, inputs) for the timing (a function of no arguments).
# ---------------------------------------------------------------------------------------------------------------

def tokens_of(batch, seq, vocab, seed, device):
    g = torch.Generator().manual_seed(seed * 1000003 + batch * 7919 + seq)
    return torch.randint(0, vocab, (batch, seq), generator=g).to(device)


class PeerImpl:
    name = "pytorch"
    note = ""

    def __init__(self, c, seed, dtype, device, tied=False, col_major=False):
        self.c, self.seed, self.dtype, self.device, self.tied = c, seed, dtype, device, tied
        self.col_major = col_major
        self.dirty = True
        self.model = None
        self.rebuild()

    def rebuild(self):
        if self.dirty:
            self.model = None
            gc.collect()
            self.model = build_peer(self.c, self.seed, self.tied).to(self.device, self.dtype)
            if self.col_major and self.c["nn_linear"]:  # the other shapes store [in out] already
                column_major(self.model)
            self.dirty = False

    def n_hooks(self):
        return len(self.model.hook_points())

    def outputs(self, workload, inp, only=None):
        m = self.model
        if workload in ("forward", "hooks_noop"):
            return {"logits": self._fn(workload, inp)()}
        if workload in CACHE_FILTERS:
            logits, cache = run_with_cache(m, inp["tokens"], CACHE_FILTERS[workload], workload == "cache_all_cpu")
            return dict(cache, logits=logits)
        if workload == "hooks_modify":
            return {"logits": run_with_hooks(m, inp["tokens"], [("blocks.0.attn.hook_z", ablate_head0)])}
        if workload in ("generate_kv", "generate_nokv"):
            steps = []
            ids = generate(m, inp["tokens"], inp["new"], workload == "generate_kv", steps)
            # the step logits are not compared: they tell how close a differing token was to a tie
            return {"ids": ids, "_step_logits": torch.stack(steps, 1)}
        if workload == "patching":
            grid = patching(m, inp["clean"], inp["corrupted"], only)
            return {"patching grid": torch.stack([grid[cell] for cell in only])}
        if workload == "train_step":
            self.dirty = True  # the step changes the weights: the next row rebuilds the model
            before = train_stepper(m, lambda t: next_token_loss(m(t), t))(inp["tokens"])
            with torch.no_grad():
                after = next_token_loss(m(inp["tokens"]), inp["tokens"])
            return {"loss before the step": before, "loss after the step": after}
        raise ValueError(f"unknown workload {workload}")

    def prepare(self, workload, inp):
        return self._fn(workload, inp)

    def _fn(self, workload, inp):
        m = self.model
        if workload == "forward":
            return lambda: m(inp["tokens"])
        if workload in CACHE_FILTERS:
            keep, host = CACHE_FILTERS[workload], workload == "cache_all_cpu"
            return lambda: run_with_cache(m, inp["tokens"], keep, host)
        if workload == "hooks_noop":
            hooks = [(name, lambda t: None) for name, _ in m.hook_points()]
            return lambda: run_with_hooks(m, inp["tokens"], hooks)
        if workload == "hooks_modify":
            return lambda: run_with_hooks(m, inp["tokens"], [("blocks.0.attn.hook_z", ablate_head0)])
        if workload in ("generate_kv", "generate_nokv"):
            return lambda: generate(m, inp["tokens"], inp["new"], workload == "generate_kv")
        if workload == "patching":
            return lambda: patching(m, inp["clean"], inp["corrupted"], progress=True)
        if workload == "train_step":
            self.dirty = True
            step = train_stepper(m, lambda t: next_token_loss(m(t), t))
            return lambda: step(inp["tokens"])
        raise ValueError(f"unknown workload {workload}")


class HFImpl:
    """transformers.GPT2LMHeadModel with the weights of the peer's tied model of the same seed."""
    name = "transformers"

    def __init__(self, c, seed, dtype, device, attn_impl):
        self.c, self.seed, self.dtype, self.device, self.attn_impl = c, seed, dtype, device, attn_impl
        self.dirty = True
        self.model = None
        self.note = TIED_NOTE
        self.rebuild()

    def rebuild(self):
        if not self.dirty:
            return
        from transformers import GPT2Config, GPT2LMHeadModel  # imported lazily: optional
        self.model = None
        gc.collect()
        c = self.c
        peer = build_peer(c, self.seed, tied=True)
        conf = GPT2Config(vocab_size=c["d_vocab"], n_positions=c["n_ctx"], n_embd=c["d_model"],
                          n_layer=c["n_layers"], n_head=c["n_heads"], n_inner=c["d_mlp"],
                          activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                          layer_norm_epsilon=EPS, scale_attn_weights=True, use_cache=True,
                          bos_token_id=None, eos_token_id=None, tie_word_embeddings=True,
                          attn_implementation=self.attn_impl)
        model = GPT2LMHeadModel(conf)
        have = getattr(model.config, "_attn_implementation", None)
        if have is not None and have != self.attn_impl and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(self.attn_impl)
        t = model.transformer

        def put(dst, src):
            if tuple(dst.shape) != tuple(src.shape):
                raise ValueError(f"weight shape {tuple(dst.shape)} != {tuple(src.shape)}")
            dst.copy_(src)

        with torch.no_grad():  # Conv1D keeps its weight as [in out], as the peer's matrices
            put(t.wte.weight, peer.W_E)
            put(t.wpe.weight, peer.W_pos)
            for blk, pb in zip(t.h, peer.blocks):
                put(blk.ln_1.weight, pb.ln1.w), put(blk.ln_1.bias, pb.ln1.b)
                put(blk.attn.c_attn.weight, pb.attn.W_QKV), put(blk.attn.c_attn.bias, pb.attn.b_QKV)
                put(blk.attn.c_proj.weight, pb.attn.W_O), put(blk.attn.c_proj.bias, pb.attn.b_O)
                put(blk.ln_2.weight, pb.ln2.w), put(blk.ln_2.bias, pb.ln2.b)
                put(blk.mlp.c_fc.weight, pb.mlp.W_in), put(blk.mlp.c_fc.bias, pb.mlp.b_in)
                put(blk.mlp.c_proj.weight, pb.mlp.W_out), put(blk.mlp.c_proj.bias, pb.mlp.b_out)
            put(t.ln_f.weight, peer.ln_final.w), put(t.ln_f.bias, peer.ln_final.b)
            tied = model.lm_head.weight.data_ptr() == t.wte.weight.data_ptr()
            if not tied:
                put(model.lm_head.weight, peer.W_E)
            if getattr(model.lm_head, "bias", None) is not None:
                model.lm_head.bias.zero_()
        del peer
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        import transformers
        self.note = (f"{TIED_NOTE}; transformers {transformers.__version__}, attn_implementation "
                     f"{getattr(self.model.config, '_attn_implementation', None)}"
                     + ("" if tied else ", lm_head not tied (a copy of wte)"))
        self.dirty = False

    def sites(self, what):
        """The submodules that correspond to TransformerLens hook points, as (TL name, module, "out" for a forward
        hook on the module's output or "pre" for a forward pre-hook on its first input). what: "all" (every one,
        for hooks_noop), "cache_all" or "cache_resid" (what output_hidden_states does not give)."""
        t, L = self.model.transformer, self.c["n_layers"]
        s = [] if what == "cache_resid" else [("hook_embed", t.wte, "out"), ("hook_pos_embed", t.wpe, "out")]
        for l, blk in enumerate(t.h):
            p = f"blocks.{l}."
            post = (p + "hook_resid_post", blk, "out")
            mid = (p + "hook_resid_mid", blk.ln_2, "pre")  # ln_2's input
            if what == "cache_resid":
                s.append(mid)
            else:
                if what == "all":
                    s.append((p + "hook_resid_pre", blk, "pre"))
                s += [(p + "ln1.hook_normalized", blk.ln_1, "out"), (p + "attn.hook_qkv", blk.attn.c_attn, "out"),
                      (p + "attn.hook_z", blk.attn.c_proj, "pre"),  # c_proj's input: the heads' z side by side
                      (p + "hook_attn_out", blk.attn, "out"), mid,
                      (p + "ln2.hook_normalized", blk.ln_2, "out"), (p + "mlp.hook_pre", blk.mlp.c_fc, "out")]
                act = getattr(blk.mlp, "act", None)
                # a function, not a module, in old transformers; a module shared by the layers would mix them up
                if isinstance(act, nn.Module) and all(act is not b.mlp.act for b in t.h if b is not blk):
                    s.append((p + "mlp.hook_post", act, "out"))
                s.append((p + "hook_mlp_out", blk.mlp, "out"))
                if what == "all":
                    s.append(post)
            if what != "all" and l == L - 1:  # hidden_states[-1] is after ln_f: the last resid_post needs a hook
                s.append(post)
        if what == "all":
            s.append(("ln_final.hook_normalized", t.ln_f, "out"))
        return s

    def n_hooks(self):
        return len(self.sites("all"))

    @staticmethod
    def attach(sites, fn):
        """fn(name, tensor) -> None or a replacement, on every site."""
        def first(o):
            return o[0] if isinstance(o, (tuple, list)) else o

        handles = []
        for name, mod, kind in sites:
            if kind == "out":
                def hook(m, inp, out, name=name):
                    r = fn(name, first(out))
                    if r is None:
                        return None
                    return (r,) + tuple(out[1:]) if isinstance(out, tuple) else r
                handles.append(mod.register_forward_hook(hook))
            else:
                def pre(m, args, name=name):
                    if not args:  # called with keyword arguments only: nothing to see
                        return None
                    r = fn(name, args[0])
                    return None if r is None else (r,) + tuple(args[1:])
                handles.append(mod.register_forward_pre_hook(pre))
        return handles

    def check_len(self, n):
        if n > self.c["n_ctx"]:
            raise ValueError(f"{n} positions exceed n_ctx {self.c['n_ctx']}")

    def forward(self, tokens, **kw):
        self.check_len(tokens.shape[1])
        return self.model(input_ids=tokens, use_cache=False, **kw)

    def run_with_cache(self, tokens, workload):
        c = self.c
        cache = {}
        hd = c["n_heads"] * c["d_head"]

        def save(name, t):
            t = t.detach()
            if name.endswith("attn.hook_qkv"):
                b, n, _ = t.shape
                for x, q in zip(t.split(hd, -1), "qkv"):
                    cache[name[:-3] + q] = x.view(b, n, c["n_heads"], c["d_head"])
            elif name.endswith("attn.hook_z"):
                cache[name] = t.view(t.shape[0], t.shape[1], c["n_heads"], c["d_head"])
            else:
                cache[name] = t

        handles = self.attach(self.sites(workload), save) if workload != "cache_pattern" else []
        try:
            out = self.forward(tokens, output_hidden_states=workload != "cache_pattern",
                               output_attentions=workload in ("cache_all", "cache_pattern"))
        finally:
            for h in handles:
                h.remove()
        L = c["n_layers"]
        if workload != "cache_pattern":
            hs = out.hidden_states  # (embeddings, block 0 out, ..., block L-2 out, ln_f(block L-1 out))
            for l in range(L):
                cache[f"blocks.{l}.hook_resid_pre"] = hs[l].detach()
                if l < L - 1:
                    cache[f"blocks.{l}.hook_resid_post"] = hs[l + 1].detach()
            if workload == "cache_all":
                cache["ln_final.hook_normalized"] = hs[L].detach()
        if workload in ("cache_all", "cache_pattern"):
            if out.attentions is None or len(out.attentions) != L or out.attentions[0] is None:
                raise RuntimeError("output_attentions gave no attention patterns (needs attn_implementation eager)")
            for l, a in enumerate(out.attentions):
                cache[f"blocks.{l}.attn.hook_pattern"] = a.detach()
        return out.logits, cache

    def run_with_hooks(self, tokens, fn, sites):
        handles = self.attach(sites, fn)
        try:
            return self.forward(tokens).logits
        finally:
            for h in handles:
                h.remove()

    def ablate(self, tokens):  # head 0 of block 0: its slice of attn.c_proj's input (the merged z)
        dh = self.c["d_head"]

        def zero(name, x):
            x[..., :dh] = 0
            return x

        return self.run_with_hooks(tokens, zero, [("blocks.0.attn.hook_z", self.model.transformer.h[0].attn.c_proj,
                                                   "pre")])

    def generate(self, tokens, new, kv):
        self.check_len(tokens.shape[1] + new - 1)  # the last new token is not fed back
        out = self.model.generate(input_ids=tokens, attention_mask=torch.ones_like(tokens), do_sample=False,
                                  num_beams=1, use_cache=kv, max_new_tokens=new, min_new_tokens=new,
                                  pad_token_id=0)
        return out[:, tokens.shape[1]:]

    def patching(self, clean, corrupted, only=None, progress=False):
        c, h_all = self.c, self.model.transformer.h
        dh = c["d_head"]
        zs = {}
        self.run_with_hooks(clean, lambda name, x: zs.__setitem__(name, x.detach()),
                            [(f"{l}", blk.attn.c_proj, "pre") for l, blk in enumerate(h_all)])
        metric(self.forward(corrupted).logits)
        grid = torch.zeros(c["n_layers"], clean.shape[1], c["n_heads"], device=clean.device)
        for l, p, h in sweep_cells(c, clean.shape[1], only):
            clean_z = zs[f"{l}"]

            def patch(name, x, p=p, h=h, clean_z=clean_z):
                x[:, p, h * dh:(h + 1) * dh] = clean_z[:, p, h * dh:(h + 1) * dh]
                return x

            grid[l, p, h] = metric(self.run_with_hooks(corrupted, patch, [("z", h_all[l].attn.c_proj, "pre")]))
            if progress and p == clean.shape[1] - 1 and h == c["n_heads"] - 1:
                log(f"  patching: layer {l + 1}/{c['n_layers']} done")
        return grid

    def stepper(self):
        m = self.model
        return train_stepper(m, lambda t: m(input_ids=t, labels=t, use_cache=False).loss)

    def outputs(self, workload, inp, only=None):
        if workload == "cache_all_cpu":
            raise NotImplementedError("cache_all_cpu is not implemented for transformers")
        if workload in ("forward", "hooks_noop"):
            return {"logits": self._fn(workload, inp)()}
        if workload in CACHE_FILTERS:
            logits, cache = self.run_with_cache(inp["tokens"], workload)
            return dict(cache, logits=logits)
        if workload == "hooks_modify":
            return {"logits": self.ablate(inp["tokens"])}
        if workload in ("generate_kv", "generate_nokv"):
            return {"ids": self.generate(inp["tokens"], inp["new"], workload == "generate_kv")}
        if workload == "patching":
            grid = self.patching(inp["clean"], inp["corrupted"], only)
            return {"patching grid": torch.stack([grid[cell] for cell in only])}
        if workload == "train_step":
            self.dirty = True
            before = self.stepper()(inp["tokens"])
            with torch.no_grad():
                m, t = self.model, inp["tokens"]
                after = m(input_ids=t, labels=t, use_cache=False).loss
            return {"loss before the step": before, "loss after the step": after}
        raise ValueError(f"unknown workload {workload}")

    def prepare(self, workload, inp):
        return self._fn(workload, inp)

    def _fn(self, workload, inp):
        if workload == "forward":
            return lambda: self.forward(inp["tokens"]).logits
        if workload in CACHE_FILTERS:
            return lambda: self.run_with_cache(inp["tokens"], workload)
        if workload == "hooks_noop":
            sites = self.sites("all")
            return lambda: self.run_with_hooks(inp["tokens"], lambda name, x: None, sites)
        if workload == "hooks_modify":
            return lambda: self.ablate(inp["tokens"])
        if workload in ("generate_kv", "generate_nokv"):
            return lambda: self.generate(inp["tokens"], inp["new"], workload == "generate_kv")
        if workload == "patching":
            return lambda: self.patching(inp["clean"], inp["corrupted"], progress=True)
        if workload == "train_step":
            self.dirty = True
            step = self.stepper()
            return lambda: step(inp["tokens"])
        raise ValueError(f"unknown workload {workload}")


# ---------------------------------------------------------------------------------------------------------------
# Inputs, FLOPs, the check, timing and memory.
# ---------------------------------------------------------------------------------------------------------------

def inputs(c, workload, batch, seq, new, device, check):
    if workload == "patching":
        return {"clean": tokens_of(batch, seq, c["d_vocab"], SEED_A, device),
                "corrupted": tokens_of(batch, seq, c["d_vocab"], SEED_B, device)}
    return {"tokens": tokens_of(batch, seq, c["d_vocab"], CHECK_SEED if check else INPUT_SEED, device), "new": new}


def check_cells(c, seq):
    """HARNESS.md: the patching grid at (0,0,0), (last layer, last pos, last head) and the middle one."""
    L, H = c["n_layers"], c["n_heads"]
    return [(0, 0, 0), (L - 1, seq - 1, H - 1), (L // 2, seq // 2, H // 2)]


def flops(c, workload, batch, seq, new):
    # HARNESS.md: W_Q, W_O of n_heads, W_K, W_V of n_kv_heads; two MLP matrices, three when gated
    mlp = 0 if c["attn_only"] else (3 if c["gated"] else 2) * c["d_model"] * c["d_mlp"]
    P = 2 * c["d_model"] * (c["n_heads"] + c["n_kv_heads"]) * c["d_head"] + mlp
    dense = 2 * (c["n_layers"] * P + c["d_model"] * c["d_vocab"])

    def fwd(b, s):
        return b * s * dense + b * c["n_layers"] * c["n_heads"] * 2 * 2 * s * s * c["d_head"]

    if workload == "train_step":
        return 3 * fwd(batch, seq)
    if workload == "patching":
        return (c["n_layers"] * seq * c["n_heads"] + 2) * fwd(batch, seq)
    if workload == "generate_nokv":
        return sum(fwd(batch, seq + t) for t in range(new))
    if workload == "generate_kv":
        return fwd(batch, seq) + sum(batch * dense + batch * c["n_layers"] * c["n_heads"] * 2 * 2 * (seq + t) * c["d_head"]
                                     for t in range(1, new))
    return fwd(batch, seq)


def tolerance(dtype, name):
    if dtype in HALF:
        return 5e-2
    return 1e-3 if name == "loss after the step" else 1e-4


def compare(out, ref, dtype):
    """(max_rel_err, problem or "", number compared): every name in both, relative Frobenius errors."""
    worst, bad, n = 0.0, [], 0
    for name, r in ref.items():
        if name not in out or name.startswith("_"):
            continue
        n += 1
        x = out[name].detach().to("cpu", torch.float64)
        r = r.detach().to("cpu", torch.float64)
        if name.endswith("hook_pos_embed") and x.shape != r.shape:  # transformers' wpe output has batch 1
            x = x.expand_as(r)
        if tuple(x.shape) != tuple(r.shape):
            bad.append((math.inf, f"{name}: shape {tuple(x.shape)} != reference {tuple(r.shape)}"))
            continue
        if name == "ids":  # generated tokens must equal the reference's greedy ones
            diff = (x != r)
            err = diff.double().mean().item()
            worst = max(worst, err)
            if err > 0:
                b, t = diff.nonzero()[0].tolist()
                got, want = int(x[b, t]), int(r[b, t])
                msg = (f"generated ids differ at {int(diff.sum())} of {diff.numel()} places, first at "
                       f"[batch {b}, new token {t}]: {got} != {want}")
                if "_step_logits" in ref:  # the prefix is the same there: how near a tie was it?
                    lg = ref["_step_logits"][b, t].double()
                    msg += f" (the reference's logits there: {lg[want]:.4g} vs {lg[got]:.4g})"
                bad.append((err, msg))
            continue
        finite = torch.isfinite(r)  # hook_attn_scores: compared only where the reference is finite
        if not bool(finite.all()):
            if not bool((torch.isfinite(x) == finite).all()):
                bad.append((math.inf, f"{name}: -inf (masked) places differ from the reference"))
                worst = math.inf
                continue
            x, r = x[finite], r[finite]
        den = r.norm().item()
        err = (x - r).norm().item() / den if den > 0 else (x - r).norm().item()
        if not math.isfinite(err):
            err = math.inf
        worst = max(worst, err)
        tol = tolerance(dtype, name)
        if not err <= tol:
            bad.append((err, f"{name}: rel err {err:.2g} > {tol:g}"))
    if n == 0:
        raise RuntimeError("nothing to compare with the reference")
    if bad:
        bad.sort(key=lambda e: -e[0])
        msg = bad[0][1] + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        return worst, msg, n
    return worst, "", n


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device):
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mb(device):
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, warmup, reps, device):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def machine():
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} x{os.cpu_count()}"


def errtext(e):
    msg = str(e).strip().splitlines()
    text = f"{type(e).__name__}: {msg[0] if msg else ''}".strip()
    return text[:500]


def clean_float(x):
    return x if isinstance(x, float) and math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------------------------
# Rows.
# ---------------------------------------------------------------------------------------------------------------

class Runner:
    def __init__(self, a):
        self.a = a
        self.machine = machine()
        self.gpu = torch.cuda.get_device_name() if a.device == "cuda" and torch.cuda.is_available() else ""

    def row(self, shape, dtype_name, workload, batch, seq, **kw):
        c = SHAPES[shape]
        gen = workload.startswith("generate")
        unit = "new_tokens/s" if gen else "passes/s" if workload == "patching" else "tokens/s"
        r = {"impl": self.a.impl, "workload": workload, "shape": shape, "batch": batch, "seq": seq,
             "dtype": dtype_name, "device": self.a.device, "status": "ERROR", "error": "", "max_rel_err": None,
             "median_ms": None, "min_ms": None, "reps": self.a.reps, "warmup": self.a.warmup,
             "throughput": None, "throughput_unit": unit,
             "flops": float(flops(c, workload, batch, seq, self.a.new_tokens)), "tflops": None, "peak_mem_mb": None,
             "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": self.machine,
             "gpu": self.gpu, "time": ""}
        if gen:
            r["new_tokens"] = self.a.new_tokens
        r.update(kw)
        return r

    def emit(self, r):
        r["time"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for k in ("max_rel_err", "median_ms", "min_ms", "throughput", "tflops", "peak_mem_mb"):
            r[k] = clean_float(r[k])
        print(json.dumps(r), flush=True)

    def references(self, c, shape, workloads, tied):
        """The float64 CPU reference's outputs on the check inputs, per workload (or the exception it raised)."""
        log(f"{shape}: float64 reference")
        ref = float64_on_use(build_peer(c, self.a.seed, tied))
        impl = PeerImpl.__new__(PeerImpl)
        impl.c, impl.model, impl.dirty = c, ref, False
        outs = {}
        with torch.no_grad():
            for w in workloads:
                impl.model = ref
                try:
                    inp = inputs(c, w, CHECK_BATCH, CHECK_SEQ, CHECK_NEW, "cpu", check=True)
                    if w == "generate_kv":  # the reference generates without the cache: kv must match it
                        inp_w = "generate_nokv"
                    else:
                        inp_w = w
                    if w == "train_step":  # a step needs every weight float64 at once
                        impl.model = build_peer(c, self.a.seed, tied).double()
                    outs[w] = impl.outputs(inp_w, inp, only=check_cells(c, CHECK_SEQ))
                except Exception as e:  # noqa: BLE001 - the row reports it
                    outs[w] = e
        del ref, impl
        gc.collect()
        return outs

    def one(self, impl, refs, shape, dtype_name, workload, batch, seq):
        a, c = self.a, SHAPES[shape]
        r = self.row(shape, dtype_name, workload, batch, seq)
        if impl.note:
            r["note"] = impl.note
        if workload == "hooks_noop":
            r["n_hooks"] = impl.n_hooks()
        try:
            impl.rebuild()
            with torch.no_grad():
                if a.check:
                    ref = refs[workload]
                    if isinstance(ref, Exception):
                        raise RuntimeError(f"the float64 reference failed: {errtext(ref)}")
                    inp = inputs(c, workload, CHECK_BATCH, CHECK_SEQ, CHECK_NEW, a.device, check=True)
                    out = impl.outputs(workload, inp, only=check_cells(c, CHECK_SEQ))
                    err, problem, n = compare(out, ref, DTYPES[dtype_name])
                    r["max_rel_err"], r["compared"] = err, n
                    del out
                    if problem:
                        r["status"], r["error"] = "WRONG", problem
                        return r
                    impl.rebuild()
                else:
                    r["note"] = (r.get("note", "") + "; " if r.get("note") else "") + "correctness check skipped"
                inp = inputs(c, workload, batch, seq, a.new_tokens, a.device, check=False)
                gc.collect()
                reset_peak(a.device)
                fn = impl.prepare(workload, inp)
                times = timed(fn, a.warmup, a.reps, a.device)
                r["peak_mem_mb"] = peak_mb(a.device)
            med = statistics.median(times)
            work = (batch * a.new_tokens if workload.startswith("generate")
                    else c["n_layers"] * seq * c["n_heads"] if workload == "patching" else batch * seq)
            r.update(status="OK", median_ms=med * 1e3, min_ms=min(times) * 1e3, throughput=work / med,
                     tflops=r["flops"] / med / 1e12)
        except Exception as e:  # noqa: BLE001 - every failure is a row
            r["status"], r["error"] = "ERROR", errtext(e)
            r["median_ms"] = r["min_ms"] = None
            if a.device == "cuda":
                torch.cuda.empty_cache()
        return r

    def run(self, shapes, dtypes, workloads, grid):
        a = self.a
        hf_error = None
        if a.impl == "transformers":
            try:
                import transformers  # noqa: F401
            except ImportError:
                hf_error = "transformers is not installed"
            except Exception as e:  # noqa: BLE001
                hf_error = f"transformers failed to import: {errtext(e)}"
        for shape in shapes:
            c = SHAPES[shape]
            shape_error = hf_error
            if a.impl == "transformers" and (c["attn_only"] or c["positions"] != "standard" or
                                             any(c[k] != v for k, v in ARCH.items() if v is not None)):
                shape_error = "not expressible as GPT2LMHeadModel"
            refs = None
            if shape_error is None and a.check:
                refs = self.references(c, shape, workloads, tied=a.impl == "transformers")
            for dtype_name in dtypes:
                impl, build_error = None, shape_error
                if build_error is None:
                    log(f"{shape} {dtype_name}: building the {a.impl} model on {a.device}")
                    try:
                        if a.impl == "pytorch":
                            impl = PeerImpl(c, a.seed, DTYPES[dtype_name], a.device, col_major=a.col_major)
                        else:
                            impl = HFImpl(c, a.seed, DTYPES[dtype_name], a.device, a.hf_attn)
                    except Exception as e:  # noqa: BLE001
                        build_error = f"building the model: {errtext(e)}"
                for workload in workloads:
                    for batch, seq in grid:
                        if build_error is not None:
                            r = self.row(shape, dtype_name, workload, batch, seq, error=build_error)
                        else:
                            log(f"{shape} {dtype_name} {workload} {batch}x{seq}")
                            r = self.one(impl, refs, shape, dtype_name, workload, batch, seq)
                            log(f"  {r['status']}" + (f" {r['median_ms']:.3f} ms" if r["median_ms"] else "")
                                + (f": {r['error']}" if r["error"] else ""))
                        self.emit(r)
                del impl
                gc.collect()
                if a.device == "cuda":
                    torch.cuda.empty_cache()


def tl_state_dict(m):
    """m's weights under TransformerLens's names and in its shapes (W_Q [head d_model d_head], W_K and W_V with
    n_kv_heads heads, W_O [head d_head d_model], b_Q [head d_head], ...); absent biases are left out."""
    c = m.c
    H, K, D, dm = c["n_heads"], c["n_kv_heads"], c["d_head"], c["d_model"]

    def tl(w):  # TransformerLens's [in out]
        return w.t() if c["nn_linear"] else w

    sd = {"embed.W_E": m.W_E}
    if not m.rotary:
        sd["pos_embed.W_pos"] = m.W_pos

    def norm(prefix, n):
        sd[prefix + ".w"] = n.w
        if n.b is not None:
            sd[prefix + ".b"] = n.b

    for l, blk in enumerate(m.blocks):
        p, a = f"blocks.{l}.", blk.attn
        for name in ("ln1", "ln1_post", "ln2", "ln2_post"):
            if hasattr(blk, name):
                norm(p + name, getattr(blk, name))
        for w, x, heads in zip("QKV", tl(a.W_QKV).split([H * D, K * D, K * D], -1), (H, K, K)):
            sd[p + "attn.W_" + w] = x.reshape(dm, heads, D).permute(1, 0, 2)
        if a.b_QKV is not None:
            for w, x, heads in zip("QKV", a.b_QKV.split([H * D, K * D, K * D]), (H, K, K)):
                sd[p + "attn.b_" + w] = x.reshape(heads, D)
        sd[p + "attn.W_O"] = tl(a.W_O).reshape(H, D, dm)
        if a.b_O is not None:
            sd[p + "attn.b_O"] = a.b_O
        if not blk.attn_only:
            for name in ("W_in", "b_in", "W_gate", "W_out", "b_out"):
                w = getattr(blk.mlp, name, None)
                if w is not None:
                    sd[p + "mlp." + name] = tl(w) if name.startswith("W") else w
    norm("ln_final", m.ln_final)
    sd["unembed.W_U"] = tl(m.W_U)
    if m.b_U is not None:
        sd["unembed.b_U"] = m.b_U
    return {k: v.detach().contiguous() for k, v in sd.items()}


def dump(c, seed, out):
    """For golens's test of this peer's maths against its float64 reference (bench/peer_test.go): the float64 model of
    seed, its norm weights and biases moved off 1 and 0 (so that the test sees them), as state_dict.pt (tl_state_dict)
    and its every hook point, logits and tokens on 2 x 6 check tokens as acts.pt."""
    m = build_peer(c, seed).double()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
        tokens = tokens_of(2, 6, c["d_vocab"], CHECK_SEED, "cpu")
        logits, cache = run_with_cache(m, tokens, lambda name: True)
    os.makedirs(out, exist_ok=True)
    torch.save(tl_state_dict(m), os.path.join(out, "state_dict.pt"))
    torch.save({k: v.contiguous() for k, v in dict(cache, logits=logits, tokens=tokens).items()},
               os.path.join(out, "acts.pt"))


def resize(shapes, sizes):
    """Changes the sizes of the shapes named (--sizes: a JSON object of SHAPES keys, for tests)."""
    try:
        new = json.loads(sizes)
    except ValueError as e:
        raise SystemExit(f"gpt2_peer.py: --sizes is not JSON: {e}")
    for name in shapes:
        for k, v in new.items():
            if k not in SHAPES[name]:
                raise SystemExit(f"gpt2_peer.py: --sizes: {k!r} is not a shape key (known: {', '.join(SHAPES[name])})")
            SHAPES[name][k] = v


def parse_list(s, allowed, what):
    items = [x.strip() for x in s.split(",") if x.strip()]
    if items == ["all"]:
        return list(allowed)
    for x in items:
        if x not in allowed:
            raise SystemExit(f"gpt2_peer.py: unknown {what} {x!r} (known: {', '.join(allowed)}, all)")
    return items


def parse_grid(s):
    out = []
    for x in s.split(","):
        try:
            b, n = x.lower().split("x")
            out.append((int(b), int(n)))
        except ValueError:
            raise SystemExit(f"gpt2_peer.py: a grid point is BATCHxSEQ, like 8x128, not {x!r}")
    return out


def main():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Prints one JSON row per (shape, dtype, workload, grid point) on stdout, in the schema of "
               "bench/HARNESS.md; progress on stderr. One model per (shape, dtype), reused across workloads "
               "and grid points (rebuilt from the seed after a train_step row).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--impl", choices=["pytorch", "transformers"], default="pytorch")
    p.add_argument("--shape", default="toy", help=f"comma-separated: {', '.join(SHAPES)}, or all")
    p.add_argument("--workload", default="forward", help=f"comma-separated: {', '.join(WORKLOADS)}, or all")
    p.add_argument("--grid", default="1x32", help="comma-separated BATCHxSEQ points (the prompt for generate_*)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", default="float32", help=f"comma-separated: {', '.join(DTYPES)}")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads(N); 0 leaves torch's default")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions (HARNESS.md asks for at least 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed repetitions before them")
    p.add_argument("--new-tokens", type=int, default=16, help="tokens generate_* makes after the prompt")
    p.add_argument("--seed", type=int, default=0, help="the weights' seed")
    p.set_defaults(check=True)
    p.add_argument("--no-check", dest="check", action="store_false", default=argparse.SUPPRESS,
                   help="skip the correctness check (rows are then OK with max_rel_err null)")
    p.add_argument("--sizes", default="", help="a JSON object changing the shapes' keys, e.g. "
                                                 "'{\"n_layers\": 2}' (for tests)")
    p.add_argument("--dump", default="", metavar="DIR",
                   help="instead of rows: write the first shape's float64 weights and activations to DIR for "
                        "golens's test of this peer (bench/peer_test.go)")
    p.add_argument("--col-major", action="store_true",
                   help="pytorch: keep the weights golens keeps column-major so (nn.Linear's [out in] shape in "
                        "TransformerLens's [in out] memory order; hookedmodel/layout.go says which)")
    p.add_argument("--hf-attn", default="eager",
                   help="transformers: attn_implementation (eager computes attention explicitly as "
                        "TransformerLens does, and is needed for output_attentions; sdpa is its default)")
    a = p.parse_args()
    shapes = parse_list(a.shape, SHAPES, "shape")
    if a.sizes:
        resize(shapes, a.sizes)
    for name in SHAPES:
        SHAPES[name] = complete(SHAPES[name])
    if a.dump:
        dump(SHAPES[shapes[0]], a.seed, a.dump)
        return
    workloads = parse_list(a.workload, WORKLOADS, "workload")
    dtypes = parse_list(a.dtype, DTYPES, "dtype")
    grid = parse_grid(a.grid)
    if a.reps < 1 or a.warmup < 0 or a.new_tokens < 1:
        raise SystemExit("gpt2_peer.py: --reps and --new-tokens must be positive, --warmup not negative")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        log("CUDA is not available: every row will be an ERROR")
    Runner(a).run(shapes, dtypes, workloads, grid)


if __name__ == "__main__":
    main()
