"""Tests for mmcourse.train: the loop, exact resume, checkpoints, live curves and input checks."""

from __future__ import annotations

import fractions
import io
import random
import zipfile

import IPython
import IPython.display
import matplotlib.image
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mmcourse import train, viz
from mmcourse.runtime import seed_everything
from mmcourse.train import CheckpointError, History, fit, load_checkpoint, save_checkpoint

QUIET = {"live": False, "progress": False}


class Net(nn.Module):
    """A small regressor with dropout, so that training draws from torch's generator."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, width)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.hidden(x))))


def mse(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.mse_loss(model(x), y)


def noisy_batch(step: int):
    """Draws from Python's, NumPy's and torch's generators: resume must restore all three."""
    shift = random.random()
    noise = torch.from_numpy(np.random.randn(8, 1).astype(np.float32))
    x = torch.randn(8, 4)
    return x, x.sum(1, keepdim=True) + shift + 0.1 * noise


def noisy_evaluate(model: nn.Module) -> dict:
    x = torch.randn(16, 4)  # evaluation draws random numbers too
    return {"loss": F.mse_loss(model(x), x.sum(1, keepdim=True)).item()}


def setup(seed: int):
    seed_everything(seed)
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.7)
    return model, optimizer, scheduler


def assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), f"{name} differs"


# --------------------------------------------------------------------------- training itself

def test_same_seed_gives_same_losses_and_another_seed_does_not():
    def losses(seed):
        model, optimizer, scheduler = setup(seed)
        return fit(model, optimizer, noisy_batch, mse, 12, scheduler=scheduler, **QUIET).values("train/loss")

    first = losses(0)
    assert losses(0) == first
    assert losses(1) != first


def test_fit_reaches_the_least_squares_solution():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=generator)
    y = x @ torch.randn(5, 1, generator=generator) + 0.3 + 0.1 * torch.randn(200, 1, generator=generator)
    design = torch.cat([x, torch.ones(200, 1)], dim=1)  # (B, 6): a column of ones for the bias
    solution = torch.linalg.lstsq(design, y).solution  # (6, 1)
    best = F.mse_loss(design @ solution, y).item()

    model = nn.Linear(5, 1)
    history = fit(
        model, torch.optim.SGD(model.parameters(), lr=0.2), [(x, y)], mse, 150, clip_grad=None,
        evaluate=lambda m: {"mse": F.mse_loss(m(x), y)}, **QUIET,
    )
    assert history.values("train/loss")[0] > 10 * best
    assert history.last("eval/mse") == pytest.approx(best, rel=1e-5)
    torch.testing.assert_close(model.weight.detach().T, solution[:5], atol=1e-4, rtol=0)
    torch.testing.assert_close(model.bias.detach(), solution[5], atol=1e-4, rtol=0)


@pytest.mark.parametrize("clip", [None, 0.5, 100.0])
def test_clip_grad_bounds_the_global_gradient_norm(clip):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(8, 3), 10 * torch.randn(8, 2)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    # the gradient of the mean squared error by hand
    residual = x @ w0.T + b0 - y  # (B, 2)
    grad_w = 2 * residual.T @ x / residual.numel()
    grad_b = 2 * residual.sum(0) / residual.numel()
    norm = torch.cat([grad_w.flatten(), grad_b]).norm().item()
    scale = 1.0 if clip is None else min(1.0, clip / (norm + 1e-6))
    assert scale < 0.1 if clip == 0.5 else scale == 1.0  # one case clips hard, the others not at all
    # torch's own clipping of the same gradient, as a second reference
    reference = nn.Linear(3, 2)
    reference.load_state_dict(model.state_dict())
    mse(reference, (x, y)).backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(reference.parameters(), clip)

    # with plain SGD and lr = 1 the update is minus the (clipped) gradient
    fit(model, torch.optim.SGD(model.parameters(), lr=1.0), [(x, y)], mse, 1, clip_grad=clip, **QUIET)
    step_w, step_b = w0 - model.weight.detach(), b0 - model.bias.detach()
    torch.testing.assert_close(step_w, grad_w * scale, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step_b, grad_b * scale, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step_w, reference.weight.grad, rtol=1e-5, atol=1e-6)
    update_norm = torch.cat([step_w.flatten(), step_b]).norm().item()
    if clip is not None:
        assert update_norm <= clip * (1 + 1e-5)


def test_evaluate_runs_at_its_steps_without_grad_in_eval_mode_and_modes_come_back():
    model, optimizer, _ = setup(0)
    model.drop.eval()  # fit puts the whole model in train mode when it starts
    seen_in_training, seen_in_eval = [], []

    def loss_fn(m, batch):
        seen_in_training.append(m.training and m.drop.training)
        return mse(m, batch)

    def evaluate(m):
        seen_in_eval.append((m.training, m.drop.training, torch.is_grad_enabled()))
        return {"calls": len(seen_in_eval), "val/custom": 1.0}

    history = fit(model, optimizer, noisy_batch, loss_fn, 10, evaluate=evaluate, eval_every=3, **QUIET)
    assert history.steps("eval/calls") == [3, 6, 9, 10]
    assert history.values("eval/calls") == [1, 2, 3, 4]
    assert history.steps("val/custom") == [3, 6, 9, 10]  # names with a "/" are kept as they are
    assert seen_in_eval == [(False, False, False)] * 4
    assert seen_in_training == [True] * 10
    assert model.training and model.drop.training

    history = fit(model, optimizer, noisy_batch, mse, 10, evaluate=evaluate, eval_every=5, **QUIET)
    assert history.steps("eval/calls") == [5, 10]  # no second evaluation at the end


def test_loss_fn_metrics_are_logged_per_step():
    model, optimizer, _ = setup(0)

    def loss_fn(m, batch):
        loss = mse(m, batch)
        return loss, {"double": 2 * loss.detach(), "const": 3}

    history = fit(model, optimizer, noisy_batch, loss_fn, 4, **QUIET)
    assert history.steps("train/double") == [0, 1, 2, 3]
    assert history.values("train/double") == pytest.approx([2 * v for v in history.values("train/loss")])
    assert history.values("train/const") == [3.0] * 4


def test_iterables_are_cycled_epoch_after_epoch():
    seen = []
    batches = [(torch.full((2, 4), float(i)), torch.zeros(2, 1)) for i in range(3)]

    def loss_fn(m, batch):
        seen.append(int(batch[0][0, 0]))
        return mse(m, batch)

    model, optimizer, _ = setup(0)
    fit(model, optimizer, batches, loss_fn, 7, **QUIET)
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_mixed_precision_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert train._autocast_dtype("auto", cpu) is None
    assert train._autocast_dtype("off", cuda) is None
    assert train._autocast_dtype(False, cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert train._autocast_dtype("auto", cuda) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert train._autocast_dtype("auto", cuda) is torch.float16
    assert train._autocast_dtype("bf16", cuda) is torch.bfloat16
    with pytest.raises(ValueError, match="needs a CUDA device, but training runs on cpu"):
        train._autocast_dtype("fp16", cpu)


# --------------------------------------------------------------------------- exact resume

@pytest.mark.parametrize("eval_every", [3, 7])
def test_resume_equals_an_uninterrupted_run(tmp_path, eval_every):
    n = 7
    model, optimizer, scheduler = setup(0)
    options = {"evaluate": noisy_evaluate, "eval_every": eval_every, **QUIET}
    expected = fit(model, optimizer, noisy_batch, mse, 2 * n, scheduler=scheduler, **options)

    path = tmp_path / "last.pt"
    first = setup(0)
    fit(first[0], first[1], noisy_batch, mse, n, scheduler=first[2], checkpoint=path, **options)
    # as in a fresh process: other initial weights, other random state, new optimizer
    second = setup(123)
    history = fit(second[0], second[1], noisy_batch, mse, 2 * n, scheduler=second[2],
                  checkpoint=path, resume=True, **options)
    assert_same_parameters(second[0], model)
    assert history == expected
    assert second[2].state_dict() == scheduler.state_dict()


def test_resume_after_a_crash_between_checkpoints(tmp_path):
    model, optimizer, scheduler = setup(0)
    expected = fit(model, optimizer, noisy_batch, mse, 14, scheduler=scheduler, **QUIET)

    def crashing_batch(step):
        if step == 12:
            raise KeyboardInterrupt
        return noisy_batch(step)

    path = tmp_path / "last.pt"
    first = setup(0)
    with pytest.raises(KeyboardInterrupt):
        fit(first[0], first[1], crashing_batch, mse, 14, scheduler=first[2], checkpoint=path,
            checkpoint_every=5, **QUIET)
    assert load_checkpoint(path)["step"] == 10
    second = setup(99)
    history = fit(second[0], second[1], noisy_batch, mse, 14, scheduler=second[2], checkpoint=path,
                  checkpoint_every=5, resume=True, **QUIET)
    assert_same_parameters(second[0], model)
    assert history == expected


class NoisyDataset(Dataset):
    """Adds noise from torch's global generator when an item is read, like a random augmentation."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index] + 0.1 * torch.randn(4), self.y[index]


def make_batches(kind: str, shuffle_seed: int):
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(23, 4, generator=generator)
    y = x.sum(1, keepdim=True)
    if kind == "list":
        return [(x[i:i + 5], y[i:i + 5]) for i in range(0, 23, 5)]
    if kind == "loader with a seeded generator":
        return DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True,
                          generator=torch.Generator().manual_seed(shuffle_seed))
    if kind == "loader shuffling with the global generator":
        return DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True)
    return DataLoader(NoisyDataset(x, y), batch_size=5, shuffle=True)


@pytest.mark.parametrize("kind", ["list", "loader with a seeded generator",
                                  "loader shuffling with the global generator", "loader with random augmentation"])
def test_resume_inside_an_epoch_of_an_iterable(tmp_path, kind):
    n = 7  # 5 batches an epoch: the checkpoint falls inside the second epoch
    model, optimizer, _ = setup(0)
    expected = fit(model, optimizer, make_batches(kind, 0), mse, 2 * n, **QUIET)

    path = tmp_path / "last.pt"
    first = setup(0)
    fit(first[0], first[1], make_batches(kind, 0), mse, n, checkpoint=path, **QUIET)
    second = setup(5)
    history = fit(second[0], second[1], make_batches(kind, 5), mse, 2 * n, checkpoint=path, resume=True, **QUIET)
    assert_same_parameters(second[0], model)
    assert history == expected


def test_resume_without_a_checkpoint_file_starts_from_step_zero(tmp_path):
    model, optimizer, _ = setup(0)
    history = fit(model, optimizer, noisy_batch, mse, 3, checkpoint=tmp_path / "new.pt", resume=True, **QUIET)
    assert history.steps("train/loss") == [0, 1, 2]
    assert load_checkpoint(tmp_path / "new.pt")["step"] == 3


# --------------------------------------------------------------------------- checkpoint files

def test_save_and_load_round_trip(tmp_path):
    model, optimizer, scheduler = setup(0)
    fit(model, optimizer, noisy_batch, mse, 3, scheduler=scheduler, **QUIET)
    path = save_checkpoint(tmp_path / "sub" / "c.pt", model=model, optimizer=optimizer, scheduler=scheduler,
                           step=3, note="hello", dims=torch.Size([2, 3]))
    other, other_optimizer, other_scheduler = setup(1)
    payload = load_checkpoint(path, other, other_optimizer, other_scheduler)
    assert_same_parameters(other, model)
    assert other_scheduler.state_dict() == scheduler.state_dict()
    moments = [o.state_dict()["state"][0]["exp_avg"] for o in (other_optimizer, optimizer)]
    assert torch.equal(*moments)
    assert (payload["step"], payload["note"], payload["dims"]) == (3, "hello", (2, 3))


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, weights=torch.arange(4.0), step=1)
    real_save = torch.save

    def save_half_then_fail(obj, file, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, weights=torch.zeros(4), step=2)
    monkeypatch.undo()
    payload = load_checkpoint(path)
    assert payload["step"] == 1 and torch.equal(payload["weights"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_save_checkpoint_refuses_what_weights_only_loading_cannot_read(tmp_path):
    with pytest.raises(TypeError, match=r"extra\['lr'\] .* float64"):
        save_checkpoint(tmp_path / "c.pt", extra={"lr": np.float64(0.1)})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.pt", format="mine")
    with pytest.raises(ValueError, match="needs something to save"):
        save_checkpoint(tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []


def real_checkpoint_bytes(tmp_path) -> bytes:
    model, optimizer, _ = setup(0)
    return save_checkpoint(tmp_path / "good.pt", model=model, optimizer=optimizer).read_bytes()


def write_bad_pickle(path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"this is not a pickle")
        archive.writestr("archive/version", b"3\n")


@pytest.mark.parametrize("damage, match", [
    ("truncated", "truncated or corrupt: it is not the zip archive"),
    ("garbage", "truncated or corrupt: it is not the zip archive"),
    ("empty", "truncated or corrupt"),
    ("bad pickle", "truncated or corrupt"),
    ("bare state dict", "not an mmcourse checkpoint.*model.load_state_dict"),
    ("python object", "holds Python objects besides tensors"),
])
def test_load_checkpoint_names_what_is_wrong_with_the_file(tmp_path, damage, match):
    path = tmp_path / "bad.pt"
    if damage == "truncated":
        data = real_checkpoint_bytes(tmp_path)
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_text("certainly not a checkpoint")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "bad pickle":
        write_bad_pickle(path)
    elif damage == "bare state dict":
        torch.save(Net().state_dict(), path)
    else:
        torch.save({"format": train.CHECKPOINT_FORMAT, "value": fractions.Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path, Net())


def test_load_checkpoint_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    with pytest.raises(CheckpointError, match="found a folder"):
        load_checkpoint(tmp_path)


def test_load_checkpoint_names_the_keys_and_shapes_that_do_not_fit(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model=Net(width=16))

    class Wider(Net):
        def __init__(self):
            super().__init__(width=8)
            self.extra = nn.Linear(2, 2)

    model = Wider()
    before = model.hidden.weight.detach().clone()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, model)
    message = str(caught.value)
    assert "in the model but not in the checkpoint: ['extra.weight', 'extra.bias']" in message
    assert "hidden.weight: checkpoint (16, 4), model (8, 4)" in message
    assert "out.weight: checkpoint (1, 16), model (1, 8)" in message
    assert torch.equal(model.hidden.weight, before)  # nothing was loaded

    del model.extra
    save_checkpoint(path, model=Wider())
    with pytest.raises(CheckpointError, match=r"in the checkpoint but not in the model: \['extra.weight', 'extra.bi"):
        load_checkpoint(path, Net(width=8))


def test_load_checkpoint_missing_entries_and_mismatched_optimizer(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model=Net(), step=1)
    with pytest.raises(CheckpointError, match=r"holds no optimizer state; it holds \['model', 'step'\]"):
        load_checkpoint(path, optimizer=torch.optim.SGD(Net().parameters(), lr=0.1))
    model = Net()
    two_groups = torch.optim.SGD([{"params": model.hidden.parameters()}, {"params": model.out.parameters()}], lr=0.1)
    save_checkpoint(path, optimizer=two_groups)
    with pytest.raises(CheckpointError, match="optimizer state in .* does not fit this optimizer"):
        load_checkpoint(path, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    model, optimizer, _ = setup(0)
    save_checkpoint(path, model=model, optimizer=optimizer)
    with pytest.raises(CheckpointError, match=r"not written by fit.*\['step', 'history', 'rng', 'data'\]"):
        fit(model, optimizer, noisy_batch, mse, 3, checkpoint=path, resume=True, **QUIET)


# --------------------------------------------------------------------------- history, files and live curves

def test_history_format_last_and_json_round_trip(tmp_path):
    history = History()
    for step, value in [(0, 2.0), (1, 1.5), (2, 1.0)]:
        history.log("train/loss", step, value)
    history.log("eval/accuracy", 2, 0.75)
    assert history.to_dict() == {
        "train/loss": {"step": [0, 1, 2], "value": [2.0, 1.5, 1.0]},
        "eval/accuracy": {"step": [2], "value": [0.75]},
    }
    assert history.last("train/loss") == 1.0
    with pytest.raises(KeyError, match=r"no curve named 'eval/loss'; this history has \['train/loss', 'eval/acc"):
        history.last("eval/loss")
    assert History.load(history.save(tmp_path / "h.json")) == history
    ax = viz.plot_curves(history.to_dict())
    assert [line.get_label() for line in ax.get_lines()] == ["train/loss", "eval/accuracy"]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON history file"):
        History.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="has 2 steps but 1 values"):
        History({"a": {"step": [0, 1], "value": [1.0]}})


def test_headless_run_writes_history_and_curves_and_prints_nothing(tmp_path, capsys):
    model, optimizer, _ = setup(0)
    run_dir = tmp_path / "runs" / "demo"
    history = fit(model, optimizer, noisy_batch, mse, 6, evaluate=noisy_evaluate, eval_every=2,
                  live=True, progress=False, run_dir=run_dir)
    assert capsys.readouterr() == ("", "")
    assert History.load(run_dir / "history.json") == history
    assert (run_dir / "curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(run_dir / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0


def test_progress_bar_shows_the_loss_on_stderr(capsys):
    model, optimizer, _ = setup(0)
    fit(model, optimizer, noisy_batch, mse, 3, live=False, desc="demo")
    out, err = capsys.readouterr()
    assert out.startswith("demo: 3 steps in ") and out.count("\n") == 1  # only the summary line
    assert "demo" in err and "3/3" in err and "loss=" in err


def fake_notebook(monkeypatch) -> list:
    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj))

    def display(obj, display_id=None):
        calls.append(("display", obj, display_id))
        return Handle()

    class Shell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.setattr(IPython.display, "display", display)
    return calls


def test_in_a_notebook_one_figure_is_updated_in_place(monkeypatch):
    calls = fake_notebook(monkeypatch)
    monkeypatch.setattr(train, "LIVE_MIN_INTERVAL_S", 0.0)
    monkeypatch.setattr(train, "LIVE_MAX_SHARE", 1e9)
    model, optimizer, _ = setup(0)
    fit(model, optimizer, noisy_batch, mse, 3, evaluate=noisy_evaluate, eval_every=2, progress=False)
    assert calls[0][0] == "display" and calls[0][2] is True
    assert [call[0] for call in calls[1:]] == ["update"] * 3  # after steps 2 and 3, then the final figure
    assert all(call[1].data.startswith(b"\x89PNG") for call in calls)


def test_live_redraws_are_throttled_by_wall_time(monkeypatch):
    calls = fake_notebook(monkeypatch)
    monkeypatch.setattr(train, "LIVE_MIN_INTERVAL_S", 1e9)
    model, optimizer, _ = setup(0)
    fit(model, optimizer, noisy_batch, mse, 20, progress=False)
    assert [call[0] for call in calls] == ["display"]  # only the final figure
    calls.clear()
    fit(model, optimizer, noisy_batch, mse, 3, live=False, progress=False)
    assert calls == []


# --------------------------------------------------------------------------- input checks

def bad_loss(kind: str):
    """A loss_fn that goes wrong in the way ``kind`` names; "nan" does so at its third call (step 2)."""
    calls = 0

    def loss_fn(model, batch):
        nonlocal calls
        calls += 1
        loss = mse(model, batch)
        if kind == "vector":
            return F.mse_loss(model(batch[0]), batch[1], reduction="none").mean(1)
        if kind == "float":
            return loss.item()
        if kind == "no grad":
            return loss.detach()
        if kind == "integer":
            return torch.tensor(3)
        if kind == "bad metric":
            return loss, {"acc": torch.ones(3)}
        return loss * float("nan") if calls == 3 else loss

    return loss_fn


@pytest.mark.parametrize("kind, error, match", [
    ("vector", ValueError, r"scalar loss of shape \(\), got shape \(8,\) at step 0; reduce it"),
    ("float", TypeError, "got float at step 0 .*not loss.item"),
    ("no grad", ValueError, "loss at step 0 does not depend on any trainable parameter"),
    ("integer", TypeError, "floating-point loss, got torch.int64"),
    ("bad metric", TypeError, r"metric 'acc' from loss_fn must be a number .* shape \(3,\)"),
    ("nan", FloatingPointError, "the loss is nan at step 2"),
])
def test_bad_losses_are_named(kind, error, match):
    model, optimizer, _ = setup(0)
    with pytest.raises(error, match=match):
        fit(model, optimizer, noisy_batch, bad_loss(kind), 5, **QUIET)


def test_a_nan_loss_stops_before_the_update():
    model, optimizer, _ = setup(0)
    with pytest.raises(FloatingPointError):
        fit(model, optimizer, noisy_batch, bad_loss("nan"), 5, **QUIET)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("change, error, match", [
    ({"steps": 0}, ValueError, "steps must be a positive int, got 0"),
    ({"steps": 2.5}, TypeError, "steps must be a positive int, got float 2.5"),
    ({"steps": True}, TypeError, "steps must be a positive int, got bool"),
    ({"eval_every": 2}, ValueError, "eval_every is set but evaluate is None"),
    ({"evaluate": noisy_evaluate, "eval_every": -1}, ValueError, "eval_every must be a positive int, got -1"),
    ({"resume": True}, ValueError, "need a checkpoint path"),
    ({"checkpoint_every": 5}, ValueError, "need a checkpoint path"),
    ({"clip_grad": 0.0}, ValueError, "clip_grad must be a positive finite number or None"),
    ({"clip_grad": "1"}, TypeError, "clip_grad must be a positive number or None, got str"),
    ({"mixed_precision": "fp16"}, ValueError, "needs a CUDA device, but training runs on cpu"),
    ({"device": "gpu"}, ValueError, "device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"),
    ({"mixed_precision": "half"}, ValueError, r"mixed_precision must be one of \('auto', 'bf16', 'fp16', 'off'\)"),
    ({"batches": torch.zeros(3, 4)}, TypeError, "batches must be a function get_batch.*got Tensor"),
    ({"batches": 5}, TypeError, "batches must be a function get_batch.*got int"),
    ({"batches": []}, ValueError, "batches is empty"),
    ({"batches": iter([noisy_batch(0)] * 2)}, ValueError, "batches ran out after 2 steps: an iterator can be"),
    ({"loss_fn": "mse"}, TypeError, "loss_fn must be a function"),
    ({"evaluate": lambda m: 0.5}, TypeError, "evaluate must return a dict of metric name -> number, got float"),
    ({"model": "net"}, TypeError, "model must be a torch.nn.Module, got str"),
    ({"optimizer": torch.optim.SGD(Net().parameters(), lr=0.1)}, ValueError, "optimizer holds none of the model's"),
])
def test_bad_arguments_are_named(change, error, match):
    model, optimizer, _ = setup(0)
    arguments = {"model": model, "optimizer": optimizer, "batches": noisy_batch, "loss_fn": mse, "steps": 3, **change}
    with pytest.raises(error, match=match):
        fit(**arguments, **QUIET)


def test_scheduler_checks(tmp_path):
    model, optimizer, _ = setup(0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(TypeError, match="ReduceLROnPlateau steps on a metric"):
        fit(model, optimizer, noisy_batch, mse, 3, scheduler=plateau, **QUIET)
    path = tmp_path / "c.pt"
    fit(model, optimizer, noisy_batch, mse, 6, checkpoint=path, **QUIET)
    with pytest.raises(ValueError, match="at step 6, beyond steps=4"):
        fit(model, optimizer, noisy_batch, mse, 4, checkpoint=path, resume=True, **QUIET)
    with pytest.raises(CheckpointError, match="batches came from a function get_batch.*now they come from an iterable"):
        fit(model, optimizer, [noisy_batch(0)], mse, 8, checkpoint=path, resume=True, **QUIET)


def test_fit_ends_with_a_summary_line_when_progress_is_on(capsys):
    model = torch.nn.Linear(2, 1)
    batch = (torch.ones(4, 2), torch.zeros(4, 1))
    history = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), [batch],
                        lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]), 3,
                        evaluate=lambda m: {"bias": m.bias.item()}, live=False, progress=True)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("train: 3 steps in ")
    assert f"train/loss {history.last('train/loss'):.4g}" in line
    assert f"eval/bias {history.last('eval/bias'):.4g}" in line


# --------------------------------------------------------------------------- learning-rate schedule


def test_warmup_cosine_by_hand():
    factor = train.warmup_cosine(steps=10, warmup=2, floor=0.1)
    expected = {0: 0.5, 1: 1.0, 2: 1.0, 6: 0.1 + 0.9 * 0.5, 10: 0.1, 25: 0.1}  # step 6: half-way down the cosine
    for step, value in expected.items():
        assert factor(step) == pytest.approx(value, abs=1e-12), step
    assert train.warmup_cosine(4, 0, floor=0.0)(0) == 1.0  # no warm-up: starts at the peak


def test_warmup_cosine_equals_pytorchs_linear_then_cosine_schedulers():
    steps, warmup, floor, peak = 50, 5, 0.05, 2e-3

    def rates(make_scheduler) -> list[float]:
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=peak)
        scheduler = make_scheduler(optimizer)
        seen = []
        for _ in range(steps):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return seen

    ours = rates(lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, train.warmup_cosine(steps, warmup, floor)))
    reference = rates(lambda opt: torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warmup, eta_min=floor * peak),
    ], milestones=[warmup]))
    np.testing.assert_allclose(ours, reference, rtol=1e-9)


def test_warmup_cosine_rejects_bad_settings():
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        train.warmup_cosine(0, 0)
    with pytest.raises(ValueError, match="expected warmup as an int from 0 to steps=10, got 11"):
        train.warmup_cosine(10, 11)
    with pytest.raises(ValueError, match=r"expected floor in \[0, 1\] .*, got 1.5"):
        train.warmup_cosine(10, 2, floor=1.5)
