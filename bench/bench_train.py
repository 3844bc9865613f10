"""Time per step of ``mmcourse.train.fit`` against a bare PyTorch loop that does the same work.

    python bench/bench_train.py [--steps 1000] [--repeats 3] [--threads 1]

The model is an MLP (256 -> 512 -> 512 -> 10, GELU) trained with AdamW on synthetic data, batch
64: a few milliseconds a step on one CPU thread, so the loop's own cost is not hidden. Variants,
run in turn within every repetition so that machine noise hits them alike:

- ``bare``: zero_grad, forward, cross-entropy, ``loss.item()`` kept in a list, backward,
  gradient clipping, optimizer step, written out by hand;
- ``fit, live off``: ``fit(..., live=False)`` with its progress bar (on stderr);
- ``fit, live on``: ``fit(..., live=True)`` as in a notebook: the figure is rendered at the
  throttled rate and at the end, then handed to a display that shows it nowhere.

Each timing covers the whole call, set-up and the final figure included, and is taken twice: wall
time, and this process's CPU time, which other programs on a busy machine disturb far less (hence
one torch thread by default). Prints, for each variant, the median time per step and the median
of its ratios to ``bare`` within a repetition (the goal: at most 1.05), then the time of one render
of the figure, which is what live curves cost each time they are redrawn.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse import train
from mmcourse.runtime import seed_everything

BATCH = 64
SAMPLES = 8192


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 10))


generator = torch.Generator().manual_seed(0)
inputs = torch.randn(SAMPLES, 256, generator=generator)
labels = torch.randint(0, 10, (SAMPLES,), generator=generator)


def get_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    start = (step * BATCH) % SAMPLES
    return inputs[start:start + BATCH], labels[start:start + BATCH]


def loss_fn(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def bare(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    losses = []
    model.train()
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, get_batch(step))
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return losses


def with_fit(live: bool):
    def run(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
        history = train.fit(model, optimizer, get_batch, loss_fn, steps, clip_grad=1.0, live=live, desc="bench")
        return history.values("train/loss")

    return run


def emulate_notebook() -> None:
    """Make fit believe it runs in a notebook, so that live=True renders its figure as it would there."""
    train._notebook_display = lambda: (lambda png: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    emulate_notebook()
    variants = {"bare": bare, "fit, live off": with_fit(False), "fit, live on": with_fit(True)}
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    times = {(name, clock): [] for name in variants for clock in clocks}
    reference_losses = None
    for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
        for name, run in variants.items():
            seed_everything(0)
            model = make_model()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            starts = {clock: read() for clock, read in clocks.items()}
            losses = run(model, optimizer, args.steps)
            ends = {clock: read() for clock, read in clocks.items()}
            # the same work: every variant must compute exactly the same losses
            reference_losses = reference_losses or losses
            assert losses == reference_losses, f"{name} computed other losses than bare"
            if repeat:
                for clock in clocks:
                    times[name, clock].append((ends[clock] - starts[clock]) / args.steps)

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread(s), {args.steps} steps x {args.repeats} repeats")
    print(f"{'variant':<15} {'wall ms/step':>13} {'ratio':>7} {'cpu ms/step':>13} {'ratio':>7}")
    for name in variants:
        cells = []
        for clock in clocks:
            values = times[name, clock]
            ratios = [value / base for value, base in zip(values, times["bare", clock])]
            cells.append(f"{1e3 * statistics.median(values):>13.3f} {statistics.median(ratios):>7.3f}")
        print(f"{name:<15} {' '.join(cells)}")

    # what live=True adds: one render per redraw (at most every few seconds) and one at the end
    history = train.History({"train/loss": {"step": list(range(args.steps)), "value": reference_losses}})
    renders = {clock: [] for clock in clocks}
    for _ in range(3):
        starts = {clock: read() for clock, read in clocks.items()}
        train._png(train._curves_figure(history, "bench"))
        for clock, read in clocks.items():
            renders[clock].append(read() - starts[clock])
    print("one render of the figure: " + ", ".join(
        f"{clock} {1e3 * statistics.median(values):.0f} ms" for clock, values in renders.items()))


if __name__ == "__main__":
    main()
