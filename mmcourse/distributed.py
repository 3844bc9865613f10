"""Data-parallel training: one copy of the model per process, gradients averaged between them.

Introduced in notebook 12, for when one machine's worth of compute is not enough. Every process
(a *rank*) holds the whole model, takes its own slice of each global batch, computes gradients
on it, and ``DistributedDataParallel`` averages the gradients across the ranks during the
backward pass, so that every rank applies the same update. With equal slices, the average of
the slices' mean losses is the mean loss of the whole batch, so ``W`` processes with ``B / W``
examples each take exactly the steps one process takes with ``B`` (up to float rounding).

Launched by ``torchrun``, which starts the processes and tells each its rank::

    torchrun --standalone --nproc_per_node=2 -m mmcourse.distributed --steps 50 --out runs/ddp.pt

The same command without ``torchrun`` is one process with the whole batch: the reference.
The parts, in the order they compose:

- :func:`setup` joins the process group: ``gloo`` on CPU, ``nccl`` on CUDA GPUs;
- :func:`shard`: a rank's slice of a global batch;
- :func:`train_data_parallel`: the loop, the same code for one process and for many;
- :func:`main`: a small character GPT on the Shakespeare corpus, the demonstration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mmcourse import runtime

# --------------------------------------------------------------------------- process group


@dataclass(frozen=True)
class Rank:
    """Where this process stands: its rank among ``world_size`` processes, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise ValueError(f"expected the environment variable {name} to be a non-negative integer, got {value!r}")
    return int(value)


def setup() -> Rank:
    """Join the process group that ``torchrun`` describes in ``RANK``, ``WORLD_SIZE`` and
    ``LOCAL_RANK``; without them, this is the only process (rank 0 of 1, no group).

    Introduced in notebook 12. On CUDA each process takes the GPU ``LOCAL_RANK`` and the
    ``nccl`` backend; otherwise the CPU and ``gloo``.
    """
    world_size = _env_int("WORLD_SIZE")
    device = runtime.device()
    if world_size is None or world_size == 1:
        return Rank(0, 1, device)
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    if rank is None or local_rank is None:
        raise RuntimeError("WORLD_SIZE is set but RANK or LOCAL_RANK is not: launch with torchrun")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"rank {rank} wants GPU {local_rank}, but only {torch.cuda.device_count()} exist")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return Rank(rank, world_size, device)


def teardown() -> None:
    """Leave the process group, if there is one."""
    if dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- the loop


def shard(batch: Tensor, rank: int, world_size: int) -> Tensor:
    """Rank ``rank``'s slice of a global batch ``(B, ...)``: rows ``rank * B/W`` to ``(rank+1) * B/W``.

    Introduced in notebook 12. ``B`` must be a multiple of ``world_size`` so that every rank
    holds as many examples and the averaged gradient is the whole batch's.
    """
    if not isinstance(batch, Tensor) or batch.ndim == 0:
        raise TypeError(f"expected a batch tensor of shape (B, ...), got {getattr(batch, 'shape', type(batch))}")
    if not 0 <= rank < world_size:
        raise ValueError(f"expected 0 <= rank < world_size, got rank {rank} of {world_size}")
    if len(batch) % world_size:
        raise ValueError(f"expected a batch size divisible by the {world_size} processes, got {len(batch)}")
    per_rank = len(batch) // world_size
    return batch[rank * per_rank : (rank + 1) * per_rank]


def train_data_parallel(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    get_batch: Callable[[int], tuple[Tensor, Tensor]],
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
    steps: int,
    where: Rank,
) -> list[float]:
    """Train for ``steps`` updates; return the mean loss over the whole global batch at each step.

    Introduced in notebook 12. ``get_batch(step)`` must give every rank the same global batch
    ``(x, y)`` (seed it by the step); each rank keeps its :func:`shard`. With more than one
    process the model is wrapped in ``DistributedDataParallel``, which averages the gradients
    during ``backward``; the returned losses are averaged over the ranks too, so every rank
    returns the same list.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"expected steps to be a positive int, got {steps!r}")
    model = model.to(where.device)
    parallel = where.world_size > 1
    wrapped = DistributedDataParallel(model, device_ids=[where.device] if where.device.type == "cuda" else None) \
        if parallel else model
    losses = []
    for step in range(steps):
        x, y = (shard(t, where.rank, where.world_size).to(where.device) for t in get_batch(step))
        loss = loss_fn(wrapped, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP, the gradients arrive here already averaged over the ranks
        optimizer.step()
        mean_loss = loss.detach().clone()
        if parallel:
            dist.all_reduce(mean_loss, op=dist.ReduceOp.AVG)
        losses.append(mean_loss.item())
    return losses


# --------------------------------------------------------------------------- demonstration


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a small character GPT, data-parallel under torchrun.")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch, split over the processes")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-chars", type=int, default=200_000, help="characters of the corpus to train on")
    parser.add_argument("--out", default=None, help="checkpoint to write (rank 0): weights, losses, settings")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[float]:
    """Train the demonstration GPT; print one line per 10 steps on rank 0; return the losses."""
    from mmcourse import data, gpt, tokenizers, train  # the demonstration's needs, not the module's

    args = _arguments(argv)
    where = setup()
    try:
        text = data.shakespeare_text()[: args.text_chars]
        chars = tokenizers.CharTokenizer.train(text)
        ids = torch.tensor(chars.encode(text))
        torch.manual_seed(args.seed)  # the same initial weights on every rank
        config = gpt.GPTConfig(vocab_size=chars.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                               n_head=4, n_embd=args.n_embd, dropout=0.0)
        model = gpt.GPT(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)

        def get_batch(step: int) -> tuple[Tensor, Tensor]:
            generator = torch.Generator().manual_seed(args.seed * 100_003 + step)  # same on every rank
            starts = torch.randint(len(ids) - args.block_size - 1, (args.batch_size,), generator=generator)
            x = torch.stack([ids[s : s + args.block_size] for s in starts.tolist()])  # (B, T)
            return x, torch.stack([ids[s + 1 : s + 1 + args.block_size] for s in starts.tolist()])

        losses = train_data_parallel(model, optimizer, get_batch, lambda m, x, y: m(x, y).loss, args.steps, where)
        if where.is_main:
            for step in range(0, args.steps, 10):
                print(f"step {step:4d}  loss {losses[step]:.4f}  ({where.world_size} process(es), {where.device})")
            print(f"final loss {losses[-1]:.4f}")
            if args.out:
                train.save_checkpoint(args.out, model=model, losses=losses, world_size=where.world_size,
                                      config=asdict(config), settings=vars(args))
        if where.world_size > 1:
            # Leave together: a rank that tears down its gloo links while rank 0 still writes the
            # checkpoint can abort ("terminate called without an active exception").
            dist.barrier()
        return losses
    finally:
        teardown()


if __name__ == "__main__":
    main(sys.argv[1:])
