"""Training and encoding speed of mmcourse.tokenizers.ByteBPE against Hugging Face ``tokenizers``.

On 1 MB of Shakespeare, both learn a byte-level BPE of 256 + ``--merges`` tokens: ours in pure
Python (pre-token counts, incremental pair counts, a heap), Hugging Face's in Rust (its
GPT-2 pre-tokeniser, its own tie-breaking, all CPU cores). The script prints, as medians over
``--reps`` repetitions run interleaved so that machine noise hits both alike:

- training wall time (and, for ours, CPU time: on a busy machine it is the steadier figure);
- encoding throughput in MB/s, ours with an empty pre-token cache (a fresh tokenizer) and a
  warm one (the same text again), Hugging Face's on the text as one string (one thread) and
  as a batch of lines (all cores);
- compression in bytes per token, on the training text and on the next 1 MB (held out).

Nothing is downloaded. Run: ``python bench/bench_tokenizers.py [--reps 3] [--merges 1000]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mmcourse.data import shakespeare_text
from mmcourse.tokenizers import ByteBPE

MB = 1_000_000


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def train_hf(text: str, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator([text], trainer)
    return tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--merges", type=int, default=1000)
    args = parser.parse_args()

    corpus = shakespeare_text()
    text, held_out = corpus[:MB], corpus[MB:2 * MB]
    n_bytes, n_held = len(text.encode("utf-8")), len(held_out.encode("utf-8"))
    print(f"text: {n_bytes / MB:.2f} MB of Shakespeare, held out: {n_held / MB:.2f} MB; "
          f"{args.merges} merges, {args.reps} repetitions")

    times: dict[str, list[float]] = {k: [] for k in (
        "ours train wall", "ours train cpu", "hf train wall",
        "ours encode cold", "ours encode warm", "hf encode", "hf encode lines",
    )}
    lines = text.splitlines(keepends=True)
    for _ in range(args.reps):
        ours, wall, cpu = timed(lambda: ByteBPE.train(text, args.merges))
        times["ours train wall"].append(wall)
        times["ours train cpu"].append(cpu)
        hf, wall, _ = timed(lambda: train_hf(text, 256 + args.merges))
        times["hf train wall"].append(wall)

        fresh = ByteBPE(ours.merges)  # same merges, empty cache
        ids, wall, _ = timed(lambda: fresh.encode(text))
        times["ours encode cold"].append(wall)
        _, wall, _ = timed(lambda: fresh.encode(text))
        times["ours encode warm"].append(wall)
        hf_ids, wall, _ = timed(lambda: hf.encode(text).ids)
        times["hf encode"].append(wall)
        _, wall, _ = timed(lambda: hf.encode_batch(lines))
        times["hf encode lines"].append(wall)

    assert fresh.decode(ids) == text and hf.decode(hf_ids) == text
    med = {k: statistics.median(v) for k, v in times.items()}
    hf_merges = hf.get_vocab_size() - 256

    print("\ntraining (median)")
    print(f"  ByteBPE.train        {med['ours train wall']:7.2f} s wall, {med['ours train cpu']:.2f} s CPU")
    print(f"  HF BpeTrainer        {med['hf train wall']:7.2f} s wall  ({hf_merges} merges)")
    print(f"  time ratio ours / HF {med['ours train wall'] / med['hf train wall']:7.1f}x")
    print("\nencoding 1 MB (median)")
    for name, key in (("ByteBPE, cold cache", "ours encode cold"), ("ByteBPE, warm cache", "ours encode warm"),
                      ("HF, one string", "hf encode"), ("HF, batch of lines", "hf encode lines")):
        print(f"  {name:20} {n_bytes / MB / med[key]:7.2f} MB/s")
    print(f"  time ratio ours cold / HF one string {med['ours encode cold'] / med['hf encode']:.2f}x")
    print("\ncompression (bytes per token)")
    print(f"  ByteBPE  train {n_bytes / len(ids):.3f}   held out {n_held / len(fresh.encode(held_out)):.3f}")
    print(f"  HF       train {n_bytes / len(hf_ids):.3f}   held out {n_held / len(hf.encode(held_out).ids):.3f}")


if __name__ == "__main__":
    main()
