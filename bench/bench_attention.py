"""Forward + backward time of mmcourse.attention against PyTorch's own attention.

Compares, on the CPU (and on CUDA when there is one):

- ``scaled_dot_product_attention`` without weights (the fused path) vs ``F.scaled_dot_product_attention``;
- the explicit path (``return_weights=True``) vs the fused kernel, to show what fusing saves;
- ``MultiHeadAttention`` vs ``nn.MultiheadAttention(batch_first=True)`` with the same weights.

Candidates of one comparison run interleaved, repetition by repetition, so that machine noise
hits both alike; the script prints medians and the median of the per-repetition ratios
(candidate / reference). Run: ``python bench/bench_attention.py [--reps 31] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.attention import MultiHeadAttention, padding_mask, scaled_dot_product_attention

SIZES = [  # (B, H, T, D)
    (8, 4, 64, 32),
    (8, 4, 256, 32),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> Callable[[], float]:
    # On one CPU thread all work runs in this thread, so its CPU time leaves out the time the
    # scheduler gives to other processes; a shared machine then still gives steady figures.
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def _time_once(step: Callable[[], None], inner: int, device: torch.device) -> float:
    clock = _clock(device)
    _sync(device)
    start = clock()
    for _ in range(inner):
        step()
    _sync(device)
    return (clock() - start) / inner


def compare(
    label: str,
    candidates: dict[str, Callable[[], None]],
    reference: str,
    device: torch.device,
    reps: int,
    target_s: float = 0.01,
) -> None:
    """Time each candidate ``reps`` times, interleaved; print medians and ratios to ``reference``."""
    for step in candidates.values():  # warm-up: allocator, kernel selection, autograd graph
        for _ in range(3):
            step()
    probe = _time_once(candidates[reference], 3, device)
    inner = max(1, int(target_s / max(probe, 1e-7)))
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]  # alternate who goes first
        for name in order:
            times[name].append(_time_once(candidates[name], inner, device))
    ref_times = times[reference]
    print(f"  {label}")
    for name in names:
        median_ms = statistics.median(times[name]) * 1e3
        ratio = statistics.median(t / r for t, r in zip(times[name], ref_times))
        print(f"    {name:<34} {median_ms:9.3f} ms   ratio {ratio:5.2f}")


def _fwd_bwd(fn: Callable[[], torch.Tensor], leaves: list[torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        fn().sum().backward()

    return step


def bench_sdpa(B: int, H: int, T: int, D: int, device: torch.device, reps: int) -> None:
    gen = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(B, H, T, D, generator=gen).to(device).requires_grad_() for _ in range(3))
    lengths = torch.randint(T // 2, T + 1, (B,), generator=gen).to(device)
    pad = padding_mask(lengths, T)  # (B, 1, 1, T)
    leaves = [q, k, v]
    compare(
        "sdpa, no mask",
        {
            "mmcourse fused": _fwd_bwd(lambda: scaled_dot_product_attention(q, k, v), leaves),
            "F.sdpa": _fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v), leaves),
        },
        "F.sdpa", device, reps,
    )
    compare(
        "sdpa, causal",
        {
            "mmcourse fused": _fwd_bwd(lambda: scaled_dot_product_attention(q, k, v, is_causal=True), leaves),
            "F.sdpa": _fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), leaves),
        },
        "F.sdpa", device, reps,
    )
    compare(
        "sdpa, padding mask (B, 1, 1, T)",
        {
            "mmcourse fused": _fwd_bwd(lambda: scaled_dot_product_attention(q, k, v, pad), leaves),
            "F.sdpa": _fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=pad), leaves),
        },
        "F.sdpa", device, reps,
    )
    compare(
        "explicit weights vs fused, causal",
        {
            "mmcourse explicit (weights)": _fwd_bwd(
                lambda: scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)[0], leaves
            ),
            "F.sdpa": _fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), leaves),
        },
        "F.sdpa", device, reps,
    )


def bench_mha(B: int, H: int, T: int, D: int, device: torch.device, reps: int) -> None:
    C = H * D
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(C, H, batch_first=True).to(device)
    ours = MultiHeadAttention(C, H).to(device).load_from_torch(reference)
    x = torch.randn(B, T, C, device=device, requires_grad=True)
    causal = torch.ones(T, T, dtype=torch.bool, device=device).triu(1)  # nn.MHA: True = ignore
    leaves = [x, *ours.parameters(), *reference.parameters()]
    compare(
        "MultiHeadAttention, self-attention, no mask",
        {
            "mmcourse MultiHeadAttention": _fwd_bwd(lambda: ours(x), leaves),
            "nn.MultiheadAttention": _fwd_bwd(lambda: reference(x, x, x, need_weights=False)[0], leaves),
        },
        "nn.MultiheadAttention", device, reps,
    )
    compare(
        "MultiHeadAttention, self-attention, causal",
        {
            "mmcourse MultiHeadAttention": _fwd_bwd(lambda: ours(x, is_causal=True), leaves),
            "nn.MultiheadAttention": _fwd_bwd(
                lambda: reference(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)[0], leaves
            ),
        },
        "nn.MultiheadAttention", device, reps,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=31, help="interleaved repetitions per comparison")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="CPU threads; 1 keeps timings steady on a shared machine",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32, forward + backward")
    for device in devices:
        print(f"{device}: timed with {_clock(device).__name__}")
        for B, H, T, D in SIZES:
            print(f"{device} B={B} H={H} T={T} D={D}")
            bench_sdpa(B, H, T, D, device, args.reps)
            bench_mha(B, H, T, D, device, args.reps)


if __name__ == "__main__":
    main()
