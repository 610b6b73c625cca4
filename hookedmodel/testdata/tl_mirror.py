"""A stand-in for TransformerLens's HookedTransformer without its forward pass.

TransformerLens is not installed here; this script rebuilds its module tree
(modules, parameters and buffers in the order TransformerLens v3.5.1's
HookedTransformer.__init__ registers them) with plain torch.nn, so that torch's
own repr, state_dict and strict load_state_dict can be asked about the files and
trees golens produces. Written from TransformerLens's sources:
HookedTransformer.py, components/transformer_block.py,
components/abstract_attention.py, components/attention.py, components/mlps/mlp.py
and can_be_used_as_mlp.py, components/layer_norm.py, layer_norm_pre.py,
embed.py, pos_embed.py, unembed.py, hook_points.py.

Like golens's String, it leaves out the hook points golens does not have
(switched-off ones, unembed.hook_in/hook_out) and shows each module's
parameters as "name: [shape]" lines.

    python3 tl_mirror.py repr CONFIG.json OUT.txt [HOOK=NFWD,NBWD ...]
        print(model) into OUT.txt, with the hook points given that many hooks
    python3 tl_mirror.py save CONFIG.json SEED OUT.pt
        torch.save(model.state_dict()) of random weights
    python3 tl_mirror.py reload CONFIG.json IN.safetensors OUT.pt
        strict load_state_dict of a safetensors file, then torch.save(model.state_dict())

Several such jobs, separated by "--", run in one call (importing torch is slow).

CONFIG.json holds HookedTransformerConfig's fields (golens's Config as JSON).
Python's safetensors package is not installed here either, so reload reads the
format itself: an 8-byte little-endian header length, a JSON header of
{name: {dtype, shape, data_offsets}}, then the data.
"""

import json
import struct
import sys

import torch
import torch.nn as nn


class HookPoint(nn.Module):
    def __init__(self):
        super().__init__()
        self.name = None
        self.fwd_hooks, self.bwd_hooks = [], []

    def __repr__(self):  # hook_points.py, v3.3.0 on
        bits = [f"name={self.name!r}"] if self.name is not None else []
        if self.fwd_hooks:
            bits.append(f"{len(self.fwd_hooks)} fwd")
        if self.bwd_hooks:
            bits.append(f"{len(self.bwd_hooks)} bwd")
        return f"HookPoint({', '.join(bits)})" if bits else "HookPoint()"


class Mirror(nn.Module):
    """Shows its own parameters as golens's String does."""

    def extra_repr(self):
        return "\n".join(f"{n}: {list(p.shape)}" for n, p in self.named_parameters(recurse=False))


def param(*shape):
    return nn.Parameter(torch.randn(*shape))


class Embed(Mirror):
    def __init__(self, cfg):
        super().__init__()
        self.W_E = param(cfg["d_vocab"], cfg["d_model"])


class PosEmbed(Mirror):
    def __init__(self, cfg):
        super().__init__()
        self.W_pos = param(cfg["n_ctx"], cfg["d_model"])


class Unembed(Mirror):
    def __init__(self, cfg):
        super().__init__()
        self.W_U = param(cfg["d_model"], cfg["d_vocab_out"])
        self.b_U = param(cfg["d_vocab_out"])


class LayerNorm(Mirror):
    def __init__(self, cfg, length=None):
        super().__init__()
        length = length or cfg["d_model"]
        self.w = param(length)
        self.b = param(length)
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()


class LayerNormPre(Mirror):
    def __init__(self, cfg, length=None):
        super().__init__()
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()


def norm_layer(cfg):
    return {"LN": LayerNorm, "LNPre": LayerNormPre}.get(cfg.get("normalization_type"), lambda cfg: nn.Identity())


class Attention(Mirror):
    def __init__(self, cfg):
        super().__init__()
        h, d, dh, n = cfg["n_heads"], cfg["d_model"], cfg["d_head"], cfg["n_ctx"]
        # AbstractAttention
        self.W_Q = param(h, d, dh)
        self.W_O = param(h, dh, d)
        self.b_Q = param(h, dh)
        self.b_O = param(d)
        self.register_buffer("mask", torch.tril(torch.ones((n, n)).bool()))  # v3.4's; v3.5 holds [0 0]
        self.register_buffer("IGNORE", torch.tensor(-torch.inf))
        self.hook_k = HookPoint()
        self.hook_q = HookPoint()
        self.hook_v = HookPoint()
        self.hook_z = HookPoint()
        self.hook_attn_scores = HookPoint()
        self.hook_pattern = HookPoint()
        if cfg.get("use_attn_result"):
            self.hook_result = HookPoint()
        # Attention
        self.W_K = param(h, d, dh)
        self.W_V = param(h, d, dh)
        self.b_K = param(h, dh)
        self.b_V = param(h, dh)


class MLP(Mirror):
    def __init__(self, cfg):
        super().__init__()
        f, d = cfg["d_mlp"], cfg["d_model"]
        if cfg["act_fn"] == "solu_ln":  # select_activation_function
            self.hook_mid = HookPoint()
            self.ln = LayerNorm(cfg, f) if cfg.get("normalization_type") == "LN" else LayerNormPre(cfg)
        self.W_in = param(d, f)
        self.b_in = param(f)
        self.W_out = param(f, d)
        self.b_out = param(d)
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        attn_only = cfg.get("attn_only")
        self.ln1 = norm_layer(cfg)(cfg)
        if not attn_only:
            self.ln2 = norm_layer(cfg)(cfg)
        self.attn = Attention(cfg)
        if not attn_only:
            self.mlp = MLP(cfg)
        if cfg.get("use_attn_in"):
            self.hook_attn_in = HookPoint()
        if cfg.get("use_split_qkv_input"):
            self.hook_q_input = HookPoint()
            self.hook_k_input = HookPoint()
            self.hook_v_input = HookPoint()
        if cfg.get("use_hook_mlp_in"):
            self.hook_mlp_in = HookPoint()
        self.hook_attn_out = HookPoint()
        if not attn_only:
            self.hook_mlp_out = HookPoint()
        self.hook_resid_pre = HookPoint()
        if not attn_only:
            self.hook_resid_mid = HookPoint()
        self.hook_resid_post = HookPoint()


class TypedModuleList(nn.ModuleList):
    pass


class HookedTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()
        self.pos_embed = PosEmbed(cfg)
        self.hook_pos_embed = HookPoint()
        if cfg.get("use_hook_tokens"):
            self.hook_tokens = HookPoint()
        self.blocks = TypedModuleList([TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        if cfg.get("normalization_type") == "LN":
            self.ln_final = LayerNorm(cfg)
        elif cfg.get("normalization_type") == "LNPre":
            self.ln_final = LayerNormPre(cfg)
        self.unembed = Unembed(cfg)
        for name, mod in self.named_modules():  # HookedRootModule.setup
            if isinstance(mod, HookPoint):
                mod.name = name


def read_safetensors(path):
    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    data = bytearray(buf[8 + n:])
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = dtypes[info["dtype"]]
        t = torch.frombuffer(data[start:end], dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def run(job):
    mode, cfg = job[0], json.load(open(job[1]))
    if mode == "repr":
        model = HookedTransformer(cfg)
        hooks = dict(model.named_modules())
        for arg in job[3:]:
            name, counts = arg.split("=")
            nfwd, nbwd = map(int, counts.split(","))
            hooks[name].fwd_hooks += [None] * nfwd
            hooks[name].bwd_hooks += [None] * nbwd
        with open(job[2], "w") as f:
            print(model, file=f)
    elif mode == "save":
        torch.manual_seed(int(job[2]))
        torch.save(HookedTransformer(cfg).state_dict(), job[3])
    elif mode == "reload":
        model = HookedTransformer(cfg)
        for p in model.parameters():
            nn.init.zeros_(p)
        model.load_state_dict(read_safetensors(job[2]), strict=True)
        torch.save(model.state_dict(), job[3])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    job = []
    for arg in sys.argv[1:] + ["--"]:
        if arg == "--":
            run(job)
            job = []
        else:
            job.append(arg)
