"""Where the course runs: the mode (full or smoke), the device, and seeding.

Introduced in notebook 00. Every notebook starts with these three things:

- the **mode** comes from ``MMCOURSE_MODE``: ``full`` (the default, long enough to reach
  the published results) or ``smoke`` (tiny step counts, so CI runs every notebook fast).
  Notebooks take every step count and size from :func:`per_mode`, never from their own ``if``;
- the **device** is CUDA, then Apple MPS, then CPU, unless ``MMCOURSE_DEVICE`` names one;
- the **seed**: :func:`seed_everything` makes a CPU run repeat exactly.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

MODE_VARIABLE = "MMCOURSE_MODE"
DEVICE_VARIABLE = "MMCOURSE_DEVICE"
MODES = ("full", "smoke")

T = TypeVar("T")


# --------------------------------------------------------------------------- mode

def mode() -> str:
    """The course mode, ``"full"`` or ``"smoke"``, read from ``MMCOURSE_MODE`` (default ``full``)."""
    raw = os.environ.get(MODE_VARIABLE, "")
    value = raw.strip().lower() or "full"
    if value not in MODES:
        raise ValueError(f"{MODE_VARIABLE} must be one of {MODES}, got {raw!r}")
    return value


def is_smoke() -> bool:
    """True when the course runs in smoke mode (CI)."""
    return mode() == "smoke"


def per_mode(full: T, smoke: T) -> T:
    """Pick the value for the current mode: ``steps = per_mode(full=2000, smoke=20)``.

    The one place where notebooks choose step counts and sizes, so that smoke mode runs
    exactly the same code as full mode, only smaller.
    """
    if type(full) is not type(smoke):
        raise TypeError(
            f"per_mode expects full and smoke of the same type, got {type(full).__name__} "
            f"and {type(smoke).__name__}"
        )
    return full if mode() == "full" else smoke


# --------------------------------------------------------------------------- device

@dataclass(frozen=True)
class DeviceChoice:
    """A device and the reason it was chosen."""

    device: torch.device
    reason: str

    def __str__(self) -> str:
        return f"{self.device} ({self.reason})"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _check_available(device: torch.device) -> None:
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{DEVICE_VARIABLE}={device} asks for CUDA, but this PyTorch sees no CUDA GPU "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise RuntimeError(
                f"{DEVICE_VARIABLE}={device} asks for GPU {device.index}, "
                f"but only {count} CUDA device(s) exist"
            )
    elif device.type == "mps" and not _mps_available():
        raise RuntimeError(f"{DEVICE_VARIABLE}={device} asks for Apple MPS, which is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{DEVICE_VARIABLE} must be cpu, cuda, cuda:N or mps, got {str(device)!r}")


def choose_device() -> DeviceChoice:
    """Choose CUDA, then MPS, then CPU, and say why; ``MMCOURSE_DEVICE`` overrides the choice."""
    override = os.environ.get(DEVICE_VARIABLE, "").strip().lower()
    if override:
        try:
            device = torch.device(override)
        except RuntimeError as error:
            raise ValueError(
                f"{DEVICE_VARIABLE} must be cpu, cuda, cuda:N or mps, got {override!r}"
            ) from error
        _check_available(device)
        return DeviceChoice(device, f"set by {DEVICE_VARIABLE}")
    if torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), f"CUDA GPU found: {torch.cuda.get_device_name(0)}")
    if _mps_available():
        return DeviceChoice(torch.device("mps"), "Apple MPS found, no CUDA GPU")
    return DeviceChoice(torch.device("cpu"), "no CUDA GPU or Apple MPS found")


def device() -> torch.device:
    """The device the course uses (see :func:`choose_device`)."""
    return choose_device().device


def describe() -> str:
    """One line for the top of a notebook: mode, device and why, versions."""
    choice = choose_device()
    return (
        f"mode: {mode()} | device: {choice} | torch {torch.__version__} | "
        f"python {platform.python_version()} | CPU threads: {torch.get_num_threads()}"
    )


# --------------------------------------------------------------------------- seeding

def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators so that a CPU run repeats exactly."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))  # seeds every CUDA device too
