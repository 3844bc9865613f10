"""Training-step and generation speed of mmcourse.gpt against a bare GPT written here in plain PyTorch.

Training step = forward + backward + AdamW step on a character-level model of notebook 06's size
(4 layers, 4 heads, width 128, block 64, batch 12, vocabulary 65). Candidates:

- ``bare reference``: the same architecture in as few lines as PyTorch allows — one packed
  q/k/v projection, ``F.scaled_dot_product_attention(is_causal=True)``, fused AdamW;
- ``mmcourse``: :class:`mmcourse.gpt.GPT` with :func:`mmcourse.gpt.configure_optimizer`;
- ``mmcourse, foreach AdamW``: the same with the multi-tensor (not fused) AdamW;
- ``mmcourse, explicit attention``: ``return_attention=True``, which computes the weights step by
  step instead of calling the fused kernel.

Generation: 200 new tokens after an 8-token prompt, greedy, with and without the KV cache, on the
same widths with ``block_size=256`` so that the whole sequence fits (past ``block_size`` both
paths recompute the window, see :func:`mmcourse.gpt.generate`).

Candidates of one comparison run interleaved, repetition by repetition, so that machine noise hits
all alike; printed are medians and the median of per-repetition ratios to the reference. With one
thread (the default) the clock is the thread's CPU time, which leaves out time the scheduler gives
to other processes on a shared machine; with more threads or on CUDA it is wall time.
Run: ``python bench/bench_gpt.py [--reps 15] [--threads 1] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.gpt import GPT, GPTConfig, configure_optimizer, generate

VOCAB, BLOCK, N_LAYER, N_HEAD, N_EMBD, BATCH = 65, 64, 4, 4, 128, 12


# --------------------------------------------------------------------------- bare reference

class BareBlock(nn.Module):
    def __init__(self, C: int, H: int) -> None:
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.out = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(self.ln_1(x)).view(B, T, 3, self.H, C // self.H)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, T, D) each
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.out(y)
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class BareGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, N_EMBD), nn.Embedding(BLOCK, N_EMBD)
        self.blocks = nn.Sequential(*(BareBlock(N_EMBD, N_HEAD) for _ in range(N_LAYER)))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.head = nn.Linear(N_EMBD, VOCAB, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
        logits = self.head(self.ln_f(self.blocks(x)))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def bare_optimizer(model: nn.Module) -> torch.optim.AdamW:
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), fused=True)


# --------------------------------------------------------------------------- timing

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> Callable[[], float]:
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def compare(label: str, candidates: dict[str, Callable[[], None]], reference: str, device: torch.device,
            reps: int, unit: Callable[[float], str]) -> dict[str, float]:
    """Time each candidate once per repetition, interleaved; print medians and ratios to ``reference``.

    Returns the median time ratio (candidate / reference) of each candidate.
    """
    for step in candidates.values():  # warm-up: allocator, kernel choice, autograd graph
        step()
    clock = _clock(device)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:  # alternate who goes first
            _sync(device)
            start = clock()
            candidates[name]()
            _sync(device)
            times[name].append(clock() - start)
    print(f"\n{label}")
    ratios = {}
    for name in names:
        median = statistics.median(times[name])
        ratios[name] = statistics.median(t / r for t, r in zip(times[name], times[reference]))
        print(f"  {name:30s} {median * 1e3:9.2f} ms  {unit(median):>14s}  time ×{ratios[name]:5.2f} of {reference}")
    return ratios


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="repetitions of each training step")
    parser.add_argument("--gen-reps", type=int, default=5, help="repetitions of each generation")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared CPU)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} thread(s), "
          f"clock: {'thread CPU time' if _clock(device) is time.thread_time else 'wall time'}")

    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (BATCH, BLOCK), device=device)
    y = torch.randint(0, VOCAB, (BATCH, BLOCK), device=device)
    config = GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD)
    bare = BareGPT().to(device)
    ours = GPT(config).to(device)
    assert sum(p.numel() for p in bare.parameters()) == sum(p.numel() for p in ours.parameters())
    print(f"model: {ours.num_params(non_embedding=False) / 1e6:.2f} M parameters, batch {BATCH} × {BLOCK} tokens")

    def train_step(loss_of: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer) -> Callable[[], None]:
        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_of().backward()
            optimizer.step()
        return step

    fused_opt, foreach_opt = configure_optimizer(ours, lr=1e-3), configure_optimizer(ours, lr=1e-3, fused=False)
    tokens = BATCH * BLOCK
    compare(
        "training step (forward + backward + AdamW)",
        {
            "bare reference": train_step(lambda: bare(x, y), bare_optimizer(bare)),
            "mmcourse": train_step(lambda: ours(x, y).loss, fused_opt),
            "mmcourse, foreach AdamW": train_step(lambda: ours(x, y).loss, foreach_opt),
            "mmcourse, explicit attention": train_step(lambda: ours(x, y, return_attention=True).loss, fused_opt),
        },
        "bare reference", device, args.reps, unit=lambda s: f"{tokens / s:,.0f} tok/s",
    )

    gen_model = GPT(GPTConfig(vocab_size=VOCAB, block_size=256, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD))
    gen_model = gen_model.to(device).eval()
    prompt = torch.randint(0, VOCAB, (1, 8), device=device)
    n = args.new_tokens
    if prompt.shape[1] + n > 256:
        raise SystemExit(f"--new-tokens {n} does not fit block_size 256 with an 8-token prompt")
    cached, uncached = (generate(gen_model, prompt, n, greedy=True, use_cache=c) for c in (True, False))
    same = torch.equal(cached, uncached)
    ratios = compare(
        f"greedy generation of {n} tokens, batch 1 (cached and uncached tokens equal: {same})",
        {
            "without KV cache": lambda: generate(gen_model, prompt, n, greedy=True, use_cache=False),
            "with KV cache": lambda: generate(gen_model, prompt, n, greedy=True, use_cache=True),
        },
        "without KV cache", device, args.gen_reps, unit=lambda s: f"{n / s:,.0f} tok/s",
    )
    print(f"  KV cache speed-up: {1 / ratios['with KV cache']:.1f}×")


if __name__ == "__main__":
    main()
