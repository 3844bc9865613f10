"""Execute notebooks top to bottom on a fresh kernel, store their outputs, and time them.

    python scripts/run_notebooks.py                      # every notebook, full mode, in place
    python scripts/run_notebooks.py 00 01 --mode smoke --no-save
    python scripts/run_notebooks.py --record             # also store the times for the README (course_map.py)

Notebooks are committed with the outputs of a full run: run this before committing a change
to a notebook. Each run prints the wall time and the kernel's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import course_map  # noqa: E402  (a sibling script)

NOTEBOOKS = ROOT / "notebooks"


def select(names: list[str]) -> list[Path]:
    every = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        matches = [p for p in every if p.name.startswith(name) or p.stem == name]
        if len(matches) != 1:
            raise SystemExit(f"expected one notebook matching {name!r}, found {[p.name for p in matches]}")
        chosen.append(matches[0])
    return chosen


def peak_memory_mib(client: NotebookClient) -> float:
    """The kernel's peak resident memory, read from inside the kernel after the run."""
    cell = nbformat.v4.new_code_cell(
        "import resource, sys\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == 'darwin' else 2**10))"
    )
    client.nb.cells.append(cell)
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return float(cell.outputs[0]["text"])
    finally:
        client.nb.cells.pop()


def run(path: Path, mode: str, save: bool, timeout: int) -> tuple[float, float]:
    os.environ["MMCOURSE_MODE"] = mode
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        memory = peak_memory_mib(client)
    if save:
        nbformat.write(nb, path)
    return seconds, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook numbers or names (default: all)")
    parser.add_argument("--mode", choices=("full", "smoke"), default="full")
    parser.add_argument("--no-save", action="store_true", help="do not write the outputs back")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--record", action="store_true", help="store the times in notebooks/timings.json")
    args = parser.parse_args()
    for path in select(args.names):
        seconds, memory = run(path, args.mode, save=not args.no_save, timeout=args.timeout)
        print(f"{path.name}\t{args.mode}\t{seconds:.1f} s\t{memory:.0f} MiB peak", flush=True)
        if args.record:
            course_map.record(path.stem, args.mode, seconds, memory)


if __name__ == "__main__":
    sys.exit(main())
