"""Measured run times of the notebooks, and the README's course map written from them.

    python scripts/run_notebooks.py --mode smoke --no-save --record   # time every notebook in smoke mode
    python scripts/run_notebooks.py --mode full --record              # run, save and time in full mode
    python scripts/course_map.py                                      # write the times into README.md

``run_notebooks.py --record`` stores each run in ``notebooks/timings.json``: per notebook, per
mode and per kind of machine (``cpu`` or ``gpu``), the wall time in seconds, the kernel's peak
memory, the machine, its load average over the run's last minute (other work slows a run) and
the date. This script then fills the time columns of the course map in
``README.md`` (the table between the ``course-map`` markers); the other columns are written by
hand. A notebook with no measurement shows an empty cell, never a guess.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

try:
    import fcntl  # POSIX; on Windows records are not locked, so time one notebook at a time there
except ImportError:
    fcntl = None

ROOT = Path(__file__).resolve().parent.parent
TIMINGS = ROOT / "notebooks" / "timings.json"
README = ROOT / "README.md"
START, END = "<!-- course-map:start -->", "<!-- course-map:end -->"
# The measured columns of the course map, in order: (header, mode, machine kind).
COLUMNS = (("smoke, CPU", "smoke", "cpu"), ("full, CPU", "full", "cpu"), ("full, GPU", "full", "gpu"))


def machine() -> tuple[str, str]:
    """The kind (``gpu`` or ``cpu``) and a short description of the machine the notebooks run on."""
    import torch

    if torch.cuda.is_available():
        return "gpu", torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    return "cpu", f"{model}, {os.cpu_count()} cores"


def load(path: Path = TIMINGS) -> dict:
    if not path.exists():
        return {}
    try:
        timings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SystemExit(f"{path} is not valid JSON ({error}); restore it with git or delete it") from error
    if not isinstance(timings, dict):
        raise SystemExit(f"{path}: expected an object keyed by notebook name, got {type(timings).__name__}")
    return timings


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s sibling ``.lock`` file: one read-modify-write at a time."""
    if fcntl is None:
        yield
        return
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record(notebook: str, mode: str, seconds: float, peak_mib: float, path: Path = TIMINGS) -> None:
    """Store one measured run, replacing an earlier one of the same notebook, mode and machine kind.

    Runs timed at the same moment (two ``run_notebooks.py --record`` in parallel) each keep their
    entry: the read, the change and the write happen under a file lock.
    """
    kind, description = machine()
    entry = {
        "seconds": round(seconds, 1),
        "peak_mib": round(peak_mib),
        "machine": description,
        "load_average": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
        "date": date.today().isoformat(),
    }
    with _locked(path):
        timings = load(path)
        timings.setdefault(notebook, {}).setdefault(mode, {})[kind] = entry
        text = json.dumps(dict(sorted(timings.items())), indent=2, ensure_ascii=False) + "\n"
        partial = path.with_suffix(f".json.partial{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)  # atomic: a crash never leaves half a file


def format_time(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def cell(timings: dict, notebook_number: str, mode: str, kind: str) -> str:
    for name, runs in timings.items():
        if name.startswith(notebook_number + "_") and kind in runs.get(mode, {}):
            return format_time(runs[mode][kind]["seconds"])
    return ""


def render(readme: str, timings: dict) -> str:
    """The README with the course map's measured columns filled from ``timings``."""
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no course map between {START} and {END}")
    head, rest = readme.split(START, 1)
    table, tail = rest.split(END, 1)
    lines = table.strip("\n").splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    missing = [name for name, _, _ in COLUMNS if name not in header]
    if missing:
        raise ValueError(f"the course map needs the columns {missing}; its header is {header}")
    out = lines[:2]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(header):
            raise ValueError(f"a course-map row has {len(cells)} cells, the header {len(header)}: {line!r}")
        for name, mode, kind in COLUMNS:
            cells[header.index(name)] = cell(timings, cells[0], mode, kind)
        out.append("| " + " | ".join(cells) + " |")
    return head + START + "\n" + "\n".join(out) + "\n" + END + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if README.md is not up to date")
    args = parser.parse_args()
    readme = README.read_text(encoding="utf-8")
    updated = render(readme, load())
    if args.check:
        if updated != readme:
            raise SystemExit("README.md's course map is out of date: run python scripts/course_map.py")
        return
    README.write_text(updated, encoding="utf-8")
    print(f"wrote the measured times into {README.name}")


if __name__ == "__main__":
    sys.exit(main())
