"""Data parallel: two processes launched by torchrun (gloo, CPU) take the same steps as one
process with the combined batch."""

import os
import subprocess
import sys

import pytest
import torch

from mmcourse import distributed, train
from mmcourse.distributed import Rank

ARGS = ["--steps", "6", "--batch-size", "8", "--block-size", "16", "--n-layer", "1", "--n-embd", "32",
        "--text-chars", "20000", "--lr", "3e-3"]


def run(command: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MMCOURSE_DEVICE="cpu")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_equal_one_process_with_the_combined_batch(tmp_path):
    run([sys.executable, "-m", "mmcourse.distributed", *ARGS, "--out", "one.pt"], tmp_path)
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "mmcourse.distributed", *ARGS, "--out", "two.pt"], tmp_path)
    assert "2 process(es), cpu" in two.stdout
    one, both = (train.load_checkpoint(tmp_path / name) for name in ("one.pt", "two.pt"))
    assert (one["world_size"], both["world_size"]) == (1, 2)
    torch.testing.assert_close(torch.tensor(both["losses"]), torch.tensor(one["losses"]), rtol=1e-5, atol=1e-5)
    assert one["losses"][-1] < one["losses"][0] - 0.3  # it really trained
    for name, weight in one["model"].items():
        torch.testing.assert_close(both["model"][name], weight, rtol=1e-4, atol=1e-5, msg=name)


def test_shard_splits_a_global_batch_evenly():
    batch = torch.arange(12).reshape(6, 2)
    parts = [distributed.shard(batch, r, 3) for r in range(3)]
    torch.testing.assert_close(torch.cat(parts), batch)
    assert parts[1].tolist() == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="divisible by the 4 processes, got 6"):
        distributed.shard(batch, 0, 4)
    with pytest.raises(ValueError, match="rank 3 of 3"):
        distributed.shard(batch, 3, 3)


def test_one_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("MMCOURSE_DEVICE", "cpu")
    where = distributed.setup()
    assert where == Rank(0, 1, torch.device("cpu")) and where.is_main
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    losses = distributed.train_data_parallel(
        model, optimizer, lambda step: (x, y), lambda m, a, b: ((m(a) - b) ** 2).mean(), 3, where
    )
    assert len(losses) == 3 and losses[2] < losses[0]


def test_setup_says_how_to_launch(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="launch with torchrun"):
        distributed.setup()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE to be a non-negative integer, got 'two'"):
        distributed.setup()
