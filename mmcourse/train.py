"""The training loop of the course: progress bar, live curves, checkpoints and exact resume.

Introduced in notebook 00; used in every training notebook (02 to 10) and measured in notebook 12.

One call trains a model and returns its curves::

    history = fit(model, optimizer, get_batch, loss_fn, steps=500, evaluate=evaluate, eval_every=50)

The parts, in the order they compose:

- :class:`History`, the curves of a run: ``{name: {"step": [...], "value": [...]}}``;
- :func:`save_checkpoint` and :func:`load_checkpoint`: atomic writes, and loads that say what is wrong;
- the random state and the data position, which let a resumed run equal an uninterrupted one;
- live curves, redrawn in place in a notebook at most every few seconds;
- :func:`warmup_cosine`, the learning-rate schedule of the GPT notebooks (06 and later);
- :func:`fit`, the loop.

Counting: ``step`` is the number of optimizer updates done so far. The training loss logged at
step ``s`` is measured on batch ``s`` just before update ``s + 1``; an evaluation logged at step
``s`` sees the model after ``s`` updates.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import random
import secrets
import sys
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from mmcourse import viz

CHECKPOINT_FORMAT = "mmcourse.checkpoint"
CHECKPOINT_VERSION = 1
LIVE_MIN_INTERVAL_S = 2.0  # redraw the live figure at most this often...
LIVE_MAX_SHARE = 0.02  # ...and only while drawing, this redraw included, stays within this share of the run
PRECISIONS = ("auto", "bf16", "fp16", "off")


# --------------------------------------------------------------------------- history

class History:
    """The curves of a training run: for each name, the steps and the values logged at them.

    Introduced in notebook 00. :func:`fit` logs ``"train/loss"``, ``"train/<metric>"`` for the
    metrics ``loss_fn`` returns and ``"eval/<metric>"`` for those ``evaluate`` returns.
    :meth:`to_dict` gives the format :func:`mmcourse.viz.plot_curves` draws.
    """

    def __init__(self, curves: Mapping[str, Mapping[str, list]] | None = None) -> None:
        self._curves: dict[str, dict[str, list]] = {}
        if curves is None:
            return
        if not isinstance(curves, Mapping):
            raise TypeError(f"expected curves as a dict of name -> {{'step', 'value'}}, got {type(curves).__name__}")
        for name, curve in curves.items():
            if not isinstance(curve, Mapping) or set(curve) != {"step", "value"}:
                raise ValueError(f"expected curve {name!r} to have keys 'step' and 'value', got {curve!r:.80}")
            if len(curve["step"]) != len(curve["value"]):
                raise ValueError(f"curve {name!r} has {len(curve['step'])} steps but {len(curve['value'])} values")
            for step, value in zip(curve["step"], curve["value"]):
                self.log(name, step, value)

    def log(self, name: str, step: int, value: float) -> None:
        """Append ``value`` at ``step`` to the curve ``name``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"expected a curve name as a non-empty str, got {name!r}")
        curve = self._curves.setdefault(name, {"step": [], "value": []})
        curve["step"].append(int(step))
        curve["value"].append(float(value))

    @property
    def names(self) -> list[str]:
        """The curve names, in the order they were first logged."""
        return list(self._curves)

    def _curve(self, name: str) -> dict[str, list]:
        if name not in self._curves:
            raise KeyError(f"no curve named {name!r}; this history has {self.names}")
        return self._curves[name]

    def steps(self, name: str) -> list[int]:
        """The steps at which ``name`` was logged."""
        return list(self._curve(name)["step"])

    def values(self, name: str) -> list[float]:
        """The values of ``name``, one per step."""
        return list(self._curve(name)["value"])

    def last(self, name: str) -> float:
        """The latest value of ``name``, e.g. ``history.last("eval/accuracy")``."""
        return self._curve(name)["value"][-1]

    def to_dict(self) -> dict[str, dict[str, list]]:
        """A copy as ``{name: {"step": [...], "value": [...]}}``, the format of ``viz.plot_curves``."""
        return {name: {"step": list(c["step"]), "value": list(c["value"])} for name, c in self._curves.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history to ``path`` as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """Read a history written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no history file at {path}")
        try:
            curves = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON history file: {error}") from error
        return cls(curves)

    def __contains__(self, name: object) -> bool:
        return name in self._curves

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        parts = [f"{name}: {len(c['step'])} points, last {c['value'][-1]:.4g}" for name, c in self._curves.items()]
        return f"History({'; '.join(parts)})"


# --------------------------------------------------------------------------- checkpoints

class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, not written by mmcourse, or not fitting the model."""


_PLAIN_TYPES = (bool, int, float, str, bytes, type(None))  # exact types: NumPy's float64 is a float too


def _check_storable(value: Any, where: str) -> None:
    """Fail unless ``torch.load(weights_only=True)`` can read ``value`` back."""
    if isinstance(value, (torch.Tensor, torch.dtype, torch.device)) or type(value) in _PLAIN_TYPES:
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            _check_storable(key, f"a key of {where}")
            _check_storable(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple, torch.Size):
        for index, item in enumerate(value):
            _check_storable(item, f"{where}[{index}]")
        return
    raise TypeError(
        f"cannot store {where} in a checkpoint: it is a {type(value).__name__}; checkpoints hold "
        f"tensors, numbers, strings, None and lists, tuples or dicts of these (convert NumPy values "
        f"with float() or torch.from_numpy)"
    )


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """Write ``state`` to ``path`` atomically: a crash leaves the old file or the new one, never half.

    Introduced in notebook 00. ``save_checkpoint("runs/cnn/last.pt", model=model, optimizer=opt, step=100)``.
    Values with a ``state_dict()`` method (model, optimizer, scheduler) are stored as their state
    dict; all else must be tensors, numbers, strings, None, or lists, tuples and dicts of these, so
    that :func:`load_checkpoint` reads it with ``torch.load(weights_only=True)``, which runs no code
    from the file. The file is written next to ``path`` under a temporary name, flushed to disk,
    then renamed over ``path`` in one step.
    """
    path = Path(path)
    if not state:
        raise ValueError("save_checkpoint needs something to save, e.g. save_checkpoint(path, model=model)")
    payload: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    for key, value in state.items():
        if key in payload:
            raise ValueError(f"{key!r} is reserved for the checkpoint's own header; pick another name")
        if callable(getattr(value, "state_dict", None)):
            value = value.state_dict()
        _check_storable(value, key)
        payload[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself survive a power cut
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


def _check_model_fits(model: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [
        f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)}"
        for key in expected
        if key in state and isinstance(state[key], torch.Tensor) and state[key].shape != expected[key].shape
    ]
    if not (missing or unexpected or shapes):
        return
    lines = [f"the model does not fit the checkpoint {path}:"]
    if missing:
        lines.append(f"  in the model but not in the checkpoint: {missing}")
    if unexpected:
        lines.append(f"  in the checkpoint but not in the model: {unexpected}")
    if shapes:
        lines.append("  shapes differ: " + "; ".join(shapes))
    if unexpected and all(key.startswith("_orig_mod.") for key in unexpected):
        lines.append("  (the checkpoint comes from a torch.compile'd model: load it into the compiled one)")
    raise CheckpointError("\n".join(lines))


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, load it into the objects given, return it.

    Introduced in notebook 00. ``model``, ``optimizer`` and ``scheduler`` receive the states saved
    under those names. The file is read with ``torch.load(weights_only=True)``. Fails with
    ``FileNotFoundError`` for a missing file and :class:`CheckpointError` for a truncated or corrupt
    file, a file that is not an mmcourse checkpoint, or a model whose parameter names or shapes
    differ from the checkpoint's (the message lists them).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"expected a checkpoint file at {path}, found a folder")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is truncated or corrupt: it is not the zip archive torch.save writes "
            f"({path.stat().st_size} bytes)"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise CheckpointError(
                f"{path} holds Python objects besides tensors and plain values, so it is not an mmcourse "
                f"checkpoint, and loading it would run code from the file: {str(error).splitlines()[-1]}"
            ) from error
        raise CheckpointError(f"{path} is truncated or corrupt: {error}") from error
    except Exception as error:  # torch reports damage inside the archive in many ways
        raise CheckpointError(f"{path} is truncated or corrupt: {type(error).__name__}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = f"a dict with keys {list(payload)[:8]}" if isinstance(payload, dict) else f"a {type(payload).__name__}"
        raise CheckpointError(
            f"{path} is not an mmcourse checkpoint: expected a dict with format={CHECKPOINT_FORMAT!r}, "
            f"found {found}. A bare state dict loads with model.load_state_dict(torch.load(path))"
        )
    if payload.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload['version']}, newer than this mmcourse reads "
            f"({CHECKPOINT_VERSION}); update mmcourse"
        )
    targets = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    for name, target in targets.items():
        if target is not None and name not in payload:
            stored = [key for key in payload if key not in ("format", "version")]
            raise CheckpointError(f"{path} holds no {name} state; it holds {stored}")
    if model is not None:
        _check_model_fits(model, payload["model"], path)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"the optimizer state in {path} does not fit this optimizer: {error}") from error
    if model is not None:  # after the checks, so that a failed load changes nothing
        model.load_state_dict(payload["model"])
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    return payload


# --------------------------------------------------------------------------- random state and data position

def _rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and PyTorch's global generators, as tensors and plain values."""
    version, internal, gauss_next = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_initialized():  # CUDA's generators matter only once CUDA is in use
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    python, numpy = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    np.random.set_state((
        numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
        numpy["has_gauss"], numpy["cached_gaussian"],
    ))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def _loader_generators(source: Any) -> list[torch.Generator]:
    """The generators a DataLoader shuffles with: its own and its sampler's, when set."""
    batch_sampler = getattr(source, "batch_sampler", None)
    owners = (source, getattr(source, "sampler", None), getattr(batch_sampler, "sampler", None))
    found: list[torch.Generator] = []
    for owner in owners:
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


class _BatchStream:
    """Batch ``s`` for step ``s``: ``get_batch(s)``, or the next item of an iterable read epoch by epoch.

    To resume inside an epoch, the stream remembers the random state just before that epoch's
    ``iter()`` (global generators and the DataLoader's own) and how many batches it took. Resuming
    puts that state back, calls ``iter()`` again, so that a shuffling DataLoader draws the same
    order, and skips the batches already taken (it reads them: at most one epoch of loading).
    """

    def __init__(self, source: Callable[[int], Any] | Iterable, resumable: bool) -> None:
        self.source = source
        self.is_function = callable(source)
        self.resumable = resumable  # without a checkpoint, skip the per-epoch snapshot
        self.generators = [] if self.is_function else _loader_generators(source)
        self.epoch = 0
        self.taken = 0
        self.epoch_start: dict[str, Any] | None = None
        self.iterator = None

    def next(self, step: int) -> Any:
        if self.is_function:
            return self.source(step)
        if self.iterator is None:
            self._start_epoch()
        try:
            batch = next(self.iterator)
        except StopIteration:
            if self.taken == 0:
                raise ValueError("batches is empty: the iterable yielded no batch") from None
            if self.iterator is self.source:
                raise ValueError(
                    f"batches ran out after {step} steps: an iterator can be read only once; pass a list, "
                    f"a DataLoader or a function get_batch(step) to train for more steps"
                ) from None
            self.epoch += 1
            self._start_epoch()
            try:
                batch = next(self.iterator)
            except StopIteration:
                raise ValueError(f"batches yielded no batch in epoch {self.epoch}") from None
        self.taken += 1
        return batch

    def _start_epoch(self) -> None:
        if self.resumable:
            self.epoch_start = {"rng": _rng_state(), "generators": [g.get_state() for g in self.generators]}
        self.taken = 0
        self.iterator = iter(self.source)

    def state(self) -> dict[str, Any]:
        if self.is_function:
            return {"kind": "function"}
        return {
            "kind": "iterable",
            "epoch": self.epoch,
            "taken": self.taken,
            "epoch_start": self.epoch_start,
            "generators": [g.get_state() for g in self.generators],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Rebuild the position of ``state``; the caller then restores the global random state."""
        kind = "function" if self.is_function else "iterable"
        if state["kind"] != kind:
            described = {"function": "a function get_batch(step)", "iterable": "an iterable"}
            raise CheckpointError(
                f"the checkpoint was written while batches came from {described[state['kind']]}, now "
                f"they come from {described[kind]}; resume with the same kind of batches"
            )
        if self.is_function or state["epoch_start"] is None:
            return
        if len(state["generators"]) != len(self.generators):
            raise CheckpointError(
                f"the checkpoint's DataLoader shuffled with {len(state['generators'])} generator(s), "
                f"this one with {len(self.generators)}; build the DataLoader as before"
            )
        _set_rng_state(state["epoch_start"]["rng"])
        for generator, saved in zip(self.generators, state["epoch_start"]["generators"]):
            generator.set_state(saved)
        self.epoch, self.epoch_start = state["epoch"], state["epoch_start"]
        self.iterator = iter(self.source)
        for taken in range(state["taken"]):
            try:
                next(self.iterator)
            except StopIteration:
                raise CheckpointError(
                    f"batches has fewer batches per epoch ({taken}) than when the checkpoint was written "
                    f"(at least {state['taken']}); resume with the same data"
                ) from None
        self.taken = state["taken"]
        for generator, saved in zip(self.generators, state["generators"]):
            generator.set_state(saved)


# --------------------------------------------------------------------------- live curves

def _notebook_display() -> Callable[[bytes], None] | None:
    """A function that shows a PNG in one output of the running notebook, replacing the last one.

    None outside a notebook kernel (a script, a terminal, a test run): there nothing is drawn live.
    """
    if "IPython" not in sys.modules:  # no IPython loaded means no kernel; importing it to check costs time
        return None
    import IPython
    import IPython.display

    shell = IPython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    handle = None

    def show(png: bytes) -> None:
        nonlocal handle
        image = IPython.display.Image(data=png, format="png")
        if handle is None:
            handle = IPython.display.display(image, display_id=True)
        else:
            handle.update(image)

    return show


def _curves_figure(history: History, title: str) -> Figure:
    """Losses on the left; other metrics, if any, on the right, since their scales differ."""
    curves = history.to_dict()
    losses = {name: c for name, c in curves.items() if "loss" in name.rsplit("/", 1)[-1]}
    others = {name: c for name, c in curves.items() if name not in losses}
    width = 10 if others else 6
    figure = Figure(figsize=(width, 3.5))
    # fixed margins: a layout engine would lay the figure out twice, doubling the cost of a redraw
    figure.subplots_adjust(left=0.7 / width, right=1 - 0.2 / width, bottom=0.15, top=0.9, wspace=0.25)
    axes = figure.subplots(1, 2 if others else 1, squeeze=False)[0]
    viz.plot_curves(losses, ax=axes[0], xlabel="step (optimizer updates)", ylabel="loss", title=title)
    if others:
        viz.plot_curves(others, ax=axes[1], xlabel="step (optimizer updates)", ylabel="metric value")
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class _Curves:
    """The run's figure: redrawn in place in a notebook, saved with the history into ``run_dir``."""

    def __init__(self, live: bool, run_dir: Path | None, title: str) -> None:
        self.show = _notebook_display() if live else None
        self.run_dir = run_dir
        self.title = title
        self.started = self.last_draw = time.monotonic()
        self.drawing_s = self.last_cost_s = 0.0  # the next redraw is expected to cost as much as the last

    def update(self, history: History) -> None:
        if self.show is None:
            return
        now = time.monotonic()
        if now - self.last_draw < LIVE_MIN_INTERVAL_S:
            return
        if self.drawing_s + self.last_cost_s > LIVE_MAX_SHARE * (now - self.started):
            return
        self.show(_png(_curves_figure(history, self.title)))
        self.last_draw = time.monotonic()
        self.last_cost_s = self.last_draw - now
        self.drawing_s += self.last_cost_s

    def finish(self, history: History) -> None:
        if self.show is None and self.run_dir is None:
            return
        png = _png(_curves_figure(history, self.title))
        if self.show is not None:
            self.show(png)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            history.save(self.run_dir / "history.json")
            (self.run_dir / "curves.png").write_bytes(png)


# --------------------------------------------------------------------------- learning-rate schedule

def warmup_cosine(steps: int, warmup: int, floor: float = 0.1) -> Callable[[int], float]:
    """The learning rate as a factor of its peak: a linear warm-up, then half a cosine down to ``floor``.

    Introduced in notebook 06 (derived there), used in 10, 11 and 12. The returned ``factor(step)`` is

    - ``(step + 1) / warmup`` for ``step < warmup``: from ``1 / warmup`` up to 1, so the first
      updates, made while Adam's moment estimates are still poor, stay small;
    - then ``floor + (1 - floor) * (1 + cos(pi * (step - warmup) / (steps - warmup))) / 2``:
      from 1 down to ``floor`` at ``step = steps``, and ``floor`` after that.

    Hand it to PyTorch's scheduler, which multiplies each group's learning rate by it::

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, warmup=100))
    """
    _positive_int("steps", steps)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= steps:
        raise ValueError(f"expected warmup as an int from 0 to steps={steps}, got {warmup!r}")
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
        raise ValueError(f"expected floor in [0, 1] (a share of the peak rate), got {floor!r}")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        step = min(step, steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))

    return factor


# --------------------------------------------------------------------------- one step

def _positive_int(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")


def _autocast_dtype(mixed_precision: str | bool, device: torch.device) -> torch.dtype | None:
    """bf16 on a CUDA GPU that has it, else fp16 (with loss scaling); none on CPU and MPS."""
    choice = "off" if mixed_precision is False else mixed_precision
    if choice not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS} or False, got {mixed_precision!r}")
    if choice == "off" or (choice == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise ValueError(f"mixed_precision={choice!r} needs a CUDA device, but training runs on {device}")
    if choice == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if choice == "bf16" else torch.float16


def _autocast(dtype: torch.dtype | None):
    return nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (a tensor, or lists, tuples and dicts of them) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        items = [_to_device(item, device) for item in batch]
        if hasattr(batch, "_fields"):  # a namedtuple
            return type(batch)(*items)
        return type(batch)(items)
    return batch


def _number(value: Any, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    shape = f" of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else ""
    raise TypeError(f"{what} must be a number or a one-element tensor, got {type(value).__name__}{shape}")


def _split_loss(output: Any, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """``loss_fn``'s result as (scalar loss, metrics), or an error that says what arrived."""
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict):
        loss, metrics = output
    else:
        loss, metrics = output, {}
    if not isinstance(loss, torch.Tensor):
        raise TypeError(
            f"loss_fn must return a scalar loss tensor or (loss, metrics dict), got {type(loss).__name__} "
            f"at step {step} (return the tensor itself, not loss.item())"
        )
    if loss.dim() != 0:
        raise ValueError(
            f"loss_fn must return a scalar loss of shape (), got shape {tuple(loss.shape)} at step {step}; "
            f"reduce it, e.g. with .mean()"
        )
    if not loss.is_floating_point():
        raise TypeError(f"loss_fn must return a floating-point loss, got {loss.dtype} at step {step}")
    if not loss.requires_grad:
        raise ValueError(
            f"the loss at step {step} does not depend on any trainable parameter (no grad): was it "
            f"computed under torch.no_grad(), detached, or from frozen parameters only?"
        )
    return loss, metrics


def _train_step(model, optimizer, loss_fn, batch, step, params, clip_grad, dtype, scaler):
    """One update; returns the loss and the metrics of ``loss_fn`` as floats."""
    optimizer.zero_grad(set_to_none=True)
    with _autocast(dtype):
        loss, metrics = _split_loss(loss_fn(model, batch), step)
    value = loss.item()  # waits for the device: the price of a loss curve with every step in it
    if not math.isfinite(value):
        raise FloatingPointError(
            f"the loss is {value} at step {step}, so training stopped before updating with it; "
            f"try a lower learning rate, gradient clipping, or check the batch for nan/inf"
        )
    if scaler is None:
        loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        optimizer.step()
    else:  # fp16: scale the loss so small gradients do not underflow; unscale before clipping
        scaler.scale(loss).backward()
        if clip_grad is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        scaler.step(optimizer)
        scaler.update()
    return value, {name: _number(metric, f"metric {name!r} from loss_fn") for name, metric in metrics.items()}


def _evaluate(model: nn.Module, evaluate: Callable, dtype: torch.dtype | None) -> dict[str, float]:
    """Run ``evaluate(model)`` in eval mode without gradients, then put each module's mode back."""
    modes = [module.training for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), _autocast(dtype):
            results = evaluate(model)
    finally:
        for module, mode in zip(model.modules(), modes):
            module.training = mode
    if not isinstance(results, dict):
        raise TypeError(f"evaluate must return a dict of metric name -> number, got {type(results).__name__}")
    logged = {}
    for name, value in results.items():
        if not isinstance(name, str):
            raise TypeError(f"evaluate must return metric names as str, got {name!r}")
        logged[name if "/" in name else f"eval/{name}"] = _number(value, f"metric {name!r} from evaluate")
    return logged


# --------------------------------------------------------------------------- the loop

def _check_fit_arguments(model, optimizer, batches, loss_fn, steps, evaluate, eval_every, clip_grad,
                         scheduler, checkpoint, checkpoint_every, resume) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    model_params = {id(p) for p in model.parameters()}
    if not any(id(p) in model_params for group in optimizer.param_groups for p in group["params"]):
        raise ValueError(
            "the optimizer holds none of the model's parameters: build it from this model, "
            "e.g. torch.optim.AdamW(model.parameters(), lr=1e-3)"
        )
    if isinstance(batches, (torch.Tensor, Mapping, str)) or not (callable(batches) or isinstance(batches, Iterable)):
        raise TypeError(
            f"batches must be a function get_batch(step) -> batch, or an iterable of batches "
            f"(a list, a DataLoader), got {type(batches).__name__}"
        )
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function loss_fn(model, batch) -> loss, got {type(loss_fn).__name__}")
    _positive_int("steps", steps)
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be a function evaluate(model) -> dict, got {type(evaluate).__name__}")
    _positive_int("eval_every", eval_every, optional=True)
    if eval_every is not None and evaluate is None:
        raise ValueError("eval_every is set but evaluate is None: pass evaluate=... or drop eval_every")
    if clip_grad is not None:
        if isinstance(clip_grad, bool) or not isinstance(clip_grad, (int, float)):
            raise TypeError(f"clip_grad must be a positive number or None, got {type(clip_grad).__name__}")
        if not (clip_grad > 0 and math.isfinite(clip_grad)):
            raise ValueError(f"clip_grad must be a positive finite number or None (no clipping), got {clip_grad}")
    if scheduler is not None:
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise TypeError("ReduceLROnPlateau steps on a metric, not every update: step it inside evaluate")
        if not (callable(getattr(scheduler, "step", None)) and callable(getattr(scheduler, "state_dict", None))):
            raise TypeError(f"scheduler must be a torch.optim.lr_scheduler object, got {type(scheduler).__name__}")
    _positive_int("checkpoint_every", checkpoint_every, optional=True)
    if checkpoint is None and (checkpoint_every is not None or resume):
        raise ValueError("checkpoint_every and resume need a checkpoint path: pass checkpoint='runs/NAME/last.pt'")


def _training_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is None:
        first = next(model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asks for CUDA, but this PyTorch sees no CUDA GPU; "
                         f"mmcourse.runtime.device() picks one that exists")
    return device


def _save_run(path, model, optimizer, scheduler, scaler, step, history, stream) -> None:
    extra = {"scheduler": scheduler} if scheduler is not None else {}
    if scaler is not None:
        extra["scaler"] = scaler
    save_checkpoint(path, model=model, optimizer=optimizer, step=step, history=history.to_dict(),
                    rng=_rng_state(), data=stream.state(), **extra)


def _resume_run(path, model, optimizer, scheduler, scaler, stream, steps) -> tuple[int, History]:
    payload = load_checkpoint(path, model, optimizer, scheduler)
    lacking = [key for key in ("step", "history", "rng", "data") if key not in payload]
    if lacking:
        raise CheckpointError(f"{path} was not written by fit, so it cannot resume a run: it lacks {lacking}")
    if payload["step"] > steps:
        raise ValueError(f"the checkpoint {path} is at step {payload['step']}, beyond steps={steps}")
    if scaler is not None and "scaler" in payload:
        scaler.load_state_dict(payload["scaler"])
    stream.restore(payload["data"])
    _set_rng_state(payload["rng"])  # last: rebuilding the data position draws random numbers
    return payload["step"], History(payload["history"])


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Any] | Iterable,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor | tuple[torch.Tensor, dict]],
    steps: int,
    *,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    clip_grad: float | None = 1.0,
    scheduler: Any | None = None,
    device: str | torch.device | None = None,
    mixed_precision: str | bool = "auto",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    live: bool = True,
    progress: bool = True,
    run_dir: str | os.PathLike | None = None,
    desc: str = "train",
) -> History:
    """Train ``model`` for ``steps`` optimizer updates and return its :class:`History`.

    Introduced in notebook 00.

    - ``batches``: a function ``get_batch(step) -> batch`` (``step`` counts from 0), or an iterable
      of batches (a list, a DataLoader) read again from the start each time it runs out. Tensors in
      a batch (also inside lists, tuples and dicts) are moved to the model's device.
    - ``loss_fn(model, batch)`` returns a scalar loss tensor, or ``(loss, {"accuracy": ...})``;
      metrics are logged as ``train/<name>``. A nan or inf loss stops training with its step.
    - ``evaluate(model)`` returns ``{name: number}``, logged as ``eval/<name>``; it runs every
      ``eval_every`` steps and after the last one, in ``model.eval()`` mode under
      ``torch.no_grad()``; each module's mode is put back afterwards. The model is put in train
      mode when training starts.
    - ``clip_grad``: the largest global gradient norm (over all parameters together); None disables.
    - ``scheduler``: a learning-rate scheduler, stepped after every update.
    - ``device``: where to train; None keeps the model where it is.
    - ``mixed_precision``: ``"auto"`` uses bf16 autocast on a CUDA GPU that supports it, else fp16
      with loss scaling, and full precision on CPU and MPS; ``"bf16"``, ``"fp16"`` (CUDA only), ``"off"``.
    - ``checkpoint``: a file written every ``checkpoint_every`` steps and at the end with the model,
      optimizer, scheduler, step, history, random state and data position. With ``resume=True``
      and the file present, training continues from it to ``steps`` exactly as an uninterrupted
      run would have (on CPU, bit for bit). This holds for ``get_batch`` functions, for lists, and
      for DataLoaders, shuffling or not; for other iterables it holds when their order is fixed
      by the time ``iter()`` returns. Without the file, training starts from step 0.
    - ``live``: in a notebook, one figure of the curves redrawn in place every few seconds;
      elsewhere nothing is drawn. ``progress``: a progress bar showing the loss.
    - ``run_dir``: a folder that receives ``history.json`` and ``curves.png`` when training ends
      (also when it stops with an error).
    """
    _check_fit_arguments(model, optimizer, batches, loss_fn, steps, evaluate, eval_every, clip_grad,
                         scheduler, checkpoint, checkpoint_every, resume)
    device = _training_device(model, device)
    model.to(device)
    dtype = _autocast_dtype(mixed_precision, device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    stream = _BatchStream(batches, resumable=checkpoint is not None)
    step, history = 0, History()
    if resume and Path(checkpoint).exists():
        step, history = _resume_run(checkpoint, model, optimizer, scheduler, scaler, stream, steps)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    curves = _Curves(live, None if run_dir is None else Path(run_dir), desc)
    # a refresh every half second is plenty to read, and cheap even as a notebook widget
    bar = tqdm(total=steps, initial=step, desc=desc, disable=not progress, dynamic_ncols=True, mininterval=0.5)
    shown: dict[str, float] = {}
    first_step, started = step, time.perf_counter()
    try:
        while step < steps:
            batch = _to_device(stream.next(step), device)
            loss, metrics = _train_step(model, optimizer, loss_fn, batch, step, params, clip_grad, dtype, scaler)
            history.log("train/loss", step, loss)
            for name, value in metrics.items():
                history.log(f"train/{name}", step, value)
            if scheduler is not None:
                scheduler.step()
            step += 1
            shown["loss"] = loss
            if eval_every is not None and step % eval_every == 0:
                for name, value in _evaluate(model, evaluate, dtype).items():
                    history.log(name, step, value)
                    shown[name] = value
            if checkpoint is not None and (step == steps or (checkpoint_every and step % checkpoint_every == 0)):
                _save_run(checkpoint, model, optimizer, scheduler, scaler, step, history, stream)
            bar.update()
            bar.set_postfix_str(", ".join(f"{name}={value:.4g}" for name, value in shown.items()), refresh=False)
            curves.update(history)
        # after the final checkpoint, so that a run resumed from it logs what an uninterrupted run does
        if evaluate is not None and (eval_every is None or steps % eval_every != 0):
            for name, value in _evaluate(model, evaluate, dtype).items():
                history.log(name, steps, value)
    finally:
        bar.close()
        curves.finish(history)
    if progress:  # a saved notebook shows this line even where the progress widget does not render
        print(_summary(desc, history, step - first_step, time.perf_counter() - started))
    return history


def _summary(desc: str, history: History, steps_run: int, seconds: float) -> str:
    """One line: steps, time and the last value of every curve."""
    per_step = f" ({1000 * seconds / steps_run:.1f} ms/step)" if steps_run else ""
    last = " | ".join(f"{name} {history.last(name):.4g}" for name in history.names)
    return f"{desc}: {steps_run} steps in {seconds:.1f} s{per_step} | {last}"
