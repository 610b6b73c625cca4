"""Writes gpt2-tiny-bin/: a tiny GPT-2 checkpoint in Hugging Face's layout
(config.json + pytorch_model.bin, as GPT2LMHeadModel.save_pretrained lays
it out: Conv1D weights [in, out], tied lm_head, attn.bias buffers), and
expected.json: the logits of a fixed token sequence computed by a float64
GPT-2 forward written here in plain torch, independent of golens.

Run with Debian's python3-torch:  /usr/bin/python3 gen_gpt2_bin.py
"""
import json
import math
import os

import torch

torch.manual_seed(0)
L, D, H, V, N, F = 2, 16, 4, 29, 16, 40
out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt2-tiny-bin")
os.makedirs(out_dir, exist_ok=True)

sd = {}
def p(name, *shape, scale=0.3):
    sd[name] = (torch.randn(*shape) * scale).float()

p("transformer.wte.weight", V, D)
p("transformer.wpe.weight", N, D)
for l in range(L):
    h = f"transformer.h.{l}."
    p(h + "ln_1.weight", D); sd[h + "ln_1.weight"] += 1
    p(h + "ln_1.bias", D)
    p(h + "attn.c_attn.weight", D, 3 * D)
    p(h + "attn.c_attn.bias", 3 * D)
    p(h + "attn.c_proj.weight", D, D)
    p(h + "attn.c_proj.bias", D)
    p(h + "ln_2.weight", D); sd[h + "ln_2.weight"] += 1
    p(h + "ln_2.bias", D)
    p(h + "mlp.c_fc.weight", D, F)
    p(h + "mlp.c_fc.bias", F)
    p(h + "mlp.c_proj.weight", F, D)
    p(h + "mlp.c_proj.bias", D)
    sd[h + "attn.bias"] = torch.tril(torch.ones(N, N, dtype=torch.uint8)).view(1, 1, N, N)
p("transformer.ln_f.weight", D); sd["transformer.ln_f.weight"] += 1
p("transformer.ln_f.bias", D)
sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied: one storage, two keys
torch.save(sd, os.path.join(out_dir, "pytorch_model.bin"))
with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": L, "n_embd": D,
               "n_head": H, "n_positions": N, "n_inner": F, "vocab_size": V,
               "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}, f, indent=1)

w = {k: v.double() for k, v in sd.items()}
def ln(x, g, b):
    x = x - x.mean(-1, keepdim=True)
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5) * g + b
def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
tokens = [3, 17, 0, 28, 5, 5, 11]
T = len(tokens)
x = w["transformer.wte.weight"][tokens] + w["transformer.wpe.weight"][:T]
for l in range(L):
    h = f"transformer.h.{l}."
    a = ln(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"])
    qkv = a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]
    q, k, v = qkv.split(D, dim=-1)
    q, k, v = (t.view(T, H, D // H).transpose(0, 1) for t in (q, k, v))
    s = q @ k.transpose(-1, -2) / math.sqrt(D // H)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    z = (s.softmax(-1) @ v).transpose(0, 1).reshape(T, D)
    x = x + z @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
    m = ln(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"])
    x = x + gelu_new(m @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"]) @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
logits = ln(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"]) @ w["transformer.wte.weight"].T
with open(os.path.join(out_dir, "expected.json"), "w") as f:
    json.dump({"tokens": tokens, "logits": logits.flatten().tolist()}, f)
print("wrote", out_dir)
