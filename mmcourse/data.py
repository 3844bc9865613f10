"""The course's data sets, read from the files committed in ``data/``.

Introduced in notebook 00. Three data sets are files, converted once by the scripts in
``data/`` and committed, so that nothing is downloaded while the course runs:

- handwritten digits (MNIST): :class:`MnistDigits`, images (1, 28, 28) in [0, 1];
- spoken digits and words in synthetic voices: :class:`SpokenWords`, waveforms (T,) with
  T = 8000 samples, one second at :data:`SAMPLE_RATE`;
- Shakespeare's plays as ``SPEAKER:`` text: :func:`shakespeare_text`, :func:`shakespeare_plays`.

The fourth data set, the shapes world, is generated from a seed by ``mmcourse.shapes``.

Before a file is read, its SHA-256 is compared with :data:`CHECKSUMS` (the same values as in
``data/README.md``); a missing or damaged file raises :class:`DataFileError`, which says how to
fix it. The variable ``MMCOURSE_DATA`` points the loaders at another folder. Loaded arrays are
cached, so building a second data set from the same file costs almost nothing.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

DATA_VARIABLE = "MMCOURSE_DATA"
SPLITS = ("train", "val", "test")

# The one place in code that records what the committed files must be; data/README.md shows
# the same values and tests/test_data.py checks that the two agree.
CHECKSUMS = {
    "mnist.npz": "8b55127bc81efe2dacc796d06797dc68b308851871e90e026361305d86b073d9",
    "spoken.npz": "4846ec6e96d966389ae03f6b1f9dbebbbe89c9e154e1f4bcf985681b5d280e8c",
    "shakespeare.txt.gz": "978bb89256f6a24505d23ce164698ac7864720b337cd4ee07f42229365f4761b",
    "shakespeare_plays.json": "a3edd30c8e31cafcd429af6ff7491a929f772e8ca47be487d903a015ca0e0022",
}
MAKERS = {
    "mnist.npz": "data/make_mnist.py",
    "spoken.npz": "data/make_spoken.py",
    "shakespeare.txt.gz": "data/make_shakespeare.py",
    "shakespeare_plays.json": "data/make_shakespeare.py",
}

SAMPLE_RATE = 8000
WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "red", "green", "blue", "yellow", "purple",
    "circle", "square", "triangle",
)
DIGIT_WORDS = WORDS[:10]


# --------------------------------------------------------------------------- files

class DataFileError(OSError):
    """A data file is missing or its contents are not what :data:`CHECKSUMS` records."""


def data_dir() -> Path:
    """The folder the data files are read from: ``data/`` beside the package, or ``MMCOURSE_DATA``."""
    override = os.environ.get(DATA_VARIABLE, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_fix(name: str) -> str:
    where = (
        f" ({DATA_VARIABLE} is set to {os.environ[DATA_VARIABLE]!r}; unset it to use the "
        "repository's data/ folder)" if os.environ.get(DATA_VARIABLE, "").strip() else ""
    )
    return (
        f"Restore the committed file (re-clone the repository, or `git checkout -- data/{name}`) "
        f"or rebuild it with `python {MAKERS[name]}`{where}."
    )


# Files whose checksum already matched, keyed by (path, size, modification time).
_VERIFIED: set[tuple[str, int, int]] = set()
_LOADED: dict[tuple[str, int, int], Any] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def data_file(name: str) -> Path:
    """Path of the data file ``name`` after checking it exists and has the recorded SHA-256."""
    if name not in CHECKSUMS:
        raise ValueError(f"unknown data file {name!r}; expected one of {sorted(CHECKSUMS)}")
    path = data_dir() / name
    expected = CHECKSUMS[name]
    if not path.is_file():
        raise DataFileError(
            f"data file {name} is missing: expected {path} with SHA-256 {expected}, "
            f"found no file. {_how_to_fix(name)}"
        )
    key = _file_key(path)
    if key not in _VERIFIED:
        found = _sha256(path)
        if found != expected:
            raise DataFileError(
                f"data file {name} is damaged or out of date: expected SHA-256 {expected}, "
                f"found {found} in {path}. {_how_to_fix(name)}"
            )
        _VERIFIED.add(key)
    return path


def _load_npz(name: str) -> dict[str, np.ndarray]:
    path = data_file(name)
    key = _file_key(path)
    if key not in _LOADED:
        with np.load(path, allow_pickle=False) as archive:
            _LOADED[key] = {field: archive[field] for field in archive.files}
    return _LOADED[key]


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays like ``np.savez_compressed``, but with the same bytes on every run.

    ``np.savez_compressed`` stamps each member with the current time; the scripts in ``data/``
    use this instead so that re-running them reproduces the committed files exactly.
    """
    with zipfile.ZipFile(path, "w") as archive:
        for field, value in arrays.items():
            member = zipfile.ZipInfo(f"{field}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            with archive.open(member, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(value), allow_pickle=False)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _check_index(index: int, length: int, owner: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"{owner} index must be an int, got {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"{owner} index {index} out of range for {length} items")
    return int(index) % length


# --------------------------------------------------------------------------- handwritten digits

class MnistDigits(Dataset):
    """Handwritten digits (MNIST): items ``(image, label)``, image float32 (1, 28, 28) in [0, 1].

    Introduced in notebook 00; notebook 02 trains a CNN on it. The file holds 10,000 digits,
    split once at random with seed 0 (not stratified) into 8000 train, 1000 val and 1000 test
    images; the split is stored in the file, so it never changes.

    Attributes: ``images`` uint8 (N, 28, 28) in 0..255, ``labels`` int64 (N,) in 0..9 and
    ``indices`` (N,), the rows of the file this split holds. :meth:`tensors` gives the whole
    split at once, ready for full-batch training.
    """

    def __init__(self, split: str = "train") -> None:
        self.split = _check_split(split)
        arrays = _load_npz("mnist.npz")
        self.indices = np.flatnonzero(arrays["split"] == SPLITS.index(split))
        self.images = torch.from_numpy(arrays["images"][self.indices])  # (N, 28, 28) uint8
        self.labels = torch.from_numpy(arrays["labels"][self.indices].astype(np.int64))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = _check_index(index, len(self), f"MnistDigits({self.split!r})")
        image = self.images[i].unsqueeze(0).float() / 255.0  # (1, 28, 28)
        return image, int(self.labels[i])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images float32 (N, 1, 28, 28) in [0, 1] and labels int64 (N,)."""
        return self.images.unsqueeze(1).float() / 255.0, self.labels.clone()

    def __repr__(self) -> str:
        return f"MnistDigits(split={self.split!r}, {len(self)} images)"


# --------------------------------------------------------------------------- spoken words

@dataclass(frozen=True)
class ClipInfo:
    """What one spoken clip is: the word, the synthetic voice, and its speed and pitch."""

    word: str
    voice: str
    speed: str
    pitch: str


def _check_words(words: Iterable[str] | None) -> tuple[str, ...]:
    if words is None:
        return WORDS
    if isinstance(words, str):
        raise TypeError(
            f"words must be a list of words such as ['red', 'blue'], got the string {words!r}"
        )
    chosen = tuple(words)
    unknown = [word for word in chosen if word not in WORDS]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"words must be distinct words from WORDS {WORDS}, got {list(chosen)}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    return chosen


class SpokenWords(Dataset):
    """Spoken digits and words in synthetic voices: items ``(waveform, label)``.

    Introduced in notebook 00; notebook 04 trains an audio encoder on it. The waveform is
    float32 (T,) with T = 8000 (one second at :data:`SAMPLE_RATE`), in [-1, 1]; the word sits in
    the middle with silence around it. The voices are synthetic (39 voices of the speech
    synthesisers espeak-ng, flite and MBROLA); each word is spoken by each voice at two speeds
    and two pitches.

    ``words`` picks some of :data:`WORDS` (default: all 18); labels are then positions in
    ``words``, so ``self.words[label]`` is always the word. Splits are speaker-disjoint: each
    voice belongs to exactly one split (stored in the file), so no test voice is heard in
    training. :meth:`info` tells the word, voice, speed and pitch of a clip; ``voices`` lists
    the voices of this split. :meth:`tensors` gives the whole split at once.
    """

    def __init__(self, split: str = "train", words: Iterable[str] | None = None) -> None:
        self.split = _check_split(split)
        self.words = _check_words(words)
        arrays = _load_npz("spoken.npz")
        voice_in_split = arrays["voice_split"][arrays["voice"]] == SPLITS.index(split)
        file_labels = arrays["label"]
        wanted = np.isin(file_labels, [WORDS.index(word) for word in self.words])
        self.indices = np.flatnonzero(voice_in_split & wanted)
        self.waveforms = torch.from_numpy(arrays["waveform"][self.indices])  # (N, T) int16
        relabel = np.full(len(WORDS), -1, dtype=np.int64)
        relabel[[WORDS.index(word) for word in self.words]] = np.arange(len(self.words))
        self.labels = torch.from_numpy(relabel[file_labels[self.indices]])
        self._arrays = arrays
        names = arrays["voice_names"]
        self.voices = tuple(str(names[v]) for v in np.unique(arrays["voice"][self.indices]))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = _check_index(index, len(self), f"SpokenWords({self.split!r})")
        return self.waveforms[i].float() / 32768.0, int(self.labels[i])

    def info(self, index: int) -> ClipInfo:
        """Word, voice name, speed (``slow``/``fast``) and pitch (``low``/``high``) of one clip."""
        i = self.indices[_check_index(index, len(self), f"SpokenWords({self.split!r})")]
        a = self._arrays
        return ClipInfo(
            word=str(a["words"][a["label"][i]]),
            voice=str(a["voice_names"][a["voice"][i]]),
            speed=str(a["speed_names"][a["speed"][i]]),
            pitch=str(a["pitch_names"][a["pitch"][i]]),
        )

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All waveforms float32 (N, T) in [-1, 1] and labels int64 (N,)."""
        return self.waveforms.float() / 32768.0, self.labels.clone()

    def __repr__(self) -> str:
        return (f"SpokenWords(split={self.split!r}, {len(self)} clips, {len(self.words)} words, "
                f"{len(self.voices)} voices)")


# --------------------------------------------------------------------------- Shakespeare

def _play_index() -> list[dict[str, Any]]:
    path = data_file("shakespeare_plays.json")
    key = _file_key(path)
    if key not in _LOADED:
        _LOADED[key] = json.loads(path.read_text(encoding="ascii"))["plays"]
    return _LOADED[key]


def _corpus() -> str:
    path = data_file("shakespeare.txt.gz")
    key = _file_key(path)
    if key not in _LOADED:
        _LOADED[key] = gzip.decompress(path.read_bytes()).decode("ascii")
    return _LOADED[key]


def shakespeare_plays() -> tuple[str, ...]:
    """Titles of the 38 plays in the corpus, in the order they appear in the text."""
    return tuple(play["title"] for play in _play_index())


def shakespeare_text(plays: str | Iterable[str] | None = None) -> str:
    """Shakespeare's plays as plain text: ``SPEAKER:`` on a line, the lines, a blank line.

    Introduced in notebook 00; notebook 06 pretrains a GPT on it. ``plays`` is one title,
    several titles (their texts are joined in the order given) or ``None`` for all plays
    (about 4.8 million characters). Only spoken words are kept, no stage directions.
    """
    index = {play["title"]: play for play in _play_index()}
    if plays is None:
        chosen = list(index)
    elif isinstance(plays, str):
        chosen = [plays]
    else:
        chosen = list(plays)
    if not chosen:
        raise ValueError("plays must name at least one play; see shakespeare_plays()")
    for title in chosen:
        if title not in index:
            close = difflib.get_close_matches(str(title), index, n=3)
            hint = f"did you mean {close}? " if close else ""
            raise ValueError(
                f"unknown play {title!r}; {hint}shakespeare_plays() lists all {len(index)} titles"
            )
    text = _corpus()
    return "".join(text[index[title]["start"]:index[title]["end"]] for title in chosen)
