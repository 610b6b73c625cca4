#!/usr/bin/env python3
"""The PyTorch peer of hookedmodel/train's BenchmarkTrainStep.

One training step of the same toy HookedTransformer on the same task, in
plain PyTorch: forward to the mean next-token loss, backward, clipping of
the global gradient norm to 1, torch.optim.AdamW (weight decay 0.01 on
matrices only, betas 0.9/0.999, eps 1e-8) at a warm-up-then-cosine learning
rate, zero_grad. The model is TransformerLens's layout: token and position
embeddings, pre-LayerNorm blocks of causal attention (fused QKV) and a
gelu_new MLP, a final LayerNorm and the unembedding. Batches are the
repeated-token task: BOS, then 63 random tokens written twice.

Run with Debian's python (torch 1.13): /usr/bin/python3 bench/peers/train_step.py
It prints one JSON object with the mean and median step times, the process's
CPU time per step (other programs on the cores disturb the median and the CPU
time less than the mean) and tokens/s (from the mean, as Go's benchmarks
report). It uses one intra-op thread, as golens does with OpenBLAS
(gotch/threads.go).
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, d_model, n_heads, d_head, d_mlp):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        self.ln1 = torch.nn.LayerNorm(d_model)
        self.qkv = torch.nn.Linear(d_model, 3 * n_heads * d_head)
        self.out = torch.nn.Linear(n_heads * d_head, d_model)
        self.ln2 = torch.nn.LayerNorm(d_model)
        self.mlp_in = torch.nn.Linear(d_model, d_mlp)
        self.mlp_out = torch.nn.Linear(d_mlp, d_model)

    def forward(self, resid, mask):
        b, n, _ = resid.shape
        qkv = self.qkv(self.ln1(resid)).view(b, n, 3, self.n_heads, self.d_head)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # [b head pos d_head]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.d_head)
        pattern = scores.masked_fill(mask[:n, :n], float("-inf")).softmax(-1)
        z = (pattern @ v).transpose(1, 2).reshape(b, n, -1)
        resid = resid + self.out(z)
        post = F.gelu(self.mlp_in(self.ln2(resid)), approximate="tanh")
        return resid + self.mlp_out(post)


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.W_E = torch.nn.Parameter(torch.randn(a.vocab, a.d_model) * 0.8 / math.sqrt(a.d_model))
        self.W_pos = torch.nn.Parameter(torch.randn(a.n_ctx, a.d_model) * 0.8 / math.sqrt(a.d_model))
        self.blocks = torch.nn.ModuleList(Block(a.d_model, a.heads, a.d_head, a.d_mlp) for _ in range(a.layers))
        self.ln_final = torch.nn.LayerNorm(a.d_model)
        self.unembed = torch.nn.Linear(a.d_model, a.vocab)
        self.register_buffer("mask", torch.ones(a.n_ctx, a.n_ctx, dtype=torch.bool).triu(1))

    def loss(self, tokens):
        n = tokens.shape[1]
        resid = self.W_E[tokens] + self.W_pos[:n]
        for blk in self.blocks:
            resid = blk(resid, self.mask)
        logits = self.unembed(self.ln_final(resid))
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def lr_at(step, a):
    if step < a.warmup:
        return (step + 1) / a.warmup
    return (1 + math.cos(math.pi * min(1.0, (step + 1 - a.warmup) / (a.total_steps - a.warmup)))) / 2


def batch(a, gen):
    seg = torch.randint(0, a.vocab - 1, (a.batch, a.seq // 2), generator=gen)
    bos = torch.full((a.batch, 1), a.vocab - 1)
    return torch.cat([bos, seg, seg], dim=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-head", type=int, default=32)
    p.add_argument("--d-mlp", type=int, default=512)
    p.add_argument("--n-ctx", type=int, default=128)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=127, help="tokens per row, BOS included")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--total-steps", type=int, default=1 << 30, help="the schedule's length")
    p.add_argument("--steps", type=int, default=30, help="timed steps, after 3 untimed")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    model = Model(a)
    decay = [q for q in model.parameters() if q.dim() >= 2]
    rest = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, a))

    def step():
        loss = model.loss(batch(a, gen))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(3):
        step()
    times = []
    cpu0 = time.process_time()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / a.steps
    mean, med = statistics.mean(times), statistics.median(times)
    print(json.dumps({
        "impl": "pytorch", "workload": "train_step",
        "shape": f"L{a.layers}-d{a.d_model}-h{a.heads}-mlp{a.d_mlp}-v{a.vocab}",
        "batch": a.batch, "seq": a.seq, "device": "cpu", "threads": a.threads,
        "mean_ms": mean * 1e3, "median_ms": med * 1e3, "cpu_ms": cpu * 1e3, "tokens_per_s": a.batch * a.seq / mean,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
