"""Tests for mmcourse.data: the committed files, the loaders, the splits and the error messages."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcourse import data
from mmcourse.data import (
    CHECKSUMS, SAMPLE_RATE, SPLITS, WORDS, DataFileError, MnistDigits, SpokenWords,
    shakespeare_plays, shakespeare_text, write_npz,
)

DATA = Path(__file__).resolve().parent.parent / "data"
README_ROW = re.compile(r"^\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", re.MULTILINE)


@pytest.fixture(autouse=True)
def _repository_data(monkeypatch):
    monkeypatch.delenv(data.DATA_VARIABLE, raising=False)


def readme_table() -> dict[str, tuple[int, str]]:
    rows = README_ROW.findall((DATA / "README.md").read_text(encoding="utf-8"))
    return {name: (int(size.replace(",", "")), digest) for name, size, digest in rows}


# --------------------------------------------------------------------------- files

def test_readme_records_every_data_file_with_its_size_and_checksum():
    table = readme_table()
    on_disk = {p.name for p in DATA.iterdir() if p.is_file() and p.suffix not in (".py", ".md")}
    assert set(table) == on_disk == set(CHECKSUMS)
    for name, (size, digest) in table.items():
        content = (DATA / name).read_bytes()
        assert len(content) == size, name
        assert hashlib.sha256(content).hexdigest() == digest == CHECKSUMS[name], name


def test_data_folder_stays_under_30_mb():
    files = [p for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    assert total < 30 * 2**20


def test_data_dir_is_repository_folder_unless_overridden(monkeypatch, tmp_path):
    assert data.data_dir() == DATA
    monkeypatch.setenv(data.DATA_VARIABLE, str(tmp_path))
    assert data.data_dir() == tmp_path


# --------------------------------------------------------------------------- handwritten digits

def test_mnist_items_have_stated_shapes_types_and_ranges():
    digits = MnistDigits("val")
    image, label = digits[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert isinstance(label, int) and 0 <= label <= 9
    images, labels = digits.tensors()
    assert images.shape == (1000, 1, 28, 28) and labels.shape == (1000,) and labels.dtype == torch.int64
    # The raw file, read with NumPy alone, must agree with the data set.
    raw = np.load(DATA / "mnist.npz")
    row = digits.indices[0]
    assert torch.equal(image[0], torch.from_numpy(raw["images"][row]).float() / 255)
    assert label == raw["labels"][row]


def test_mnist_pixels_match_known_statistics():
    images, _ = MnistDigits("train").tensors()
    # MNIST's mean pixel is 0.1307 and about 19 % of its pixels carry ink.
    assert images.mean().item() == pytest.approx(0.1307, abs=0.01)
    assert (images > 0).float().mean().item() == pytest.approx(0.19, abs=0.02)


def test_mnist_splits_are_fixed_sizes_disjoint_and_cover_the_file():
    parts = {split: MnistDigits(split) for split in SPLITS}
    assert [len(parts[s]) for s in SPLITS] == [8000, 1000, 1000]
    indices = np.concatenate([parts[s].indices for s in SPLITS])
    assert np.array_equal(np.sort(indices), np.arange(10000))


def test_mnist_every_digit_is_present_in_every_split():
    for split in SPLITS:
        share = np.bincount(MnistDigits(split).labels.numpy(), minlength=10) / len(MnistDigits(split))
        assert share.min() > 0.07 and share.max() < 0.14, (split, share)


# --------------------------------------------------------------------------- spoken words

def test_spoken_constants_match_the_file():
    raw = np.load(DATA / "spoken.npz")
    assert SAMPLE_RATE == int(raw["sample_rate"]) == 8000
    assert tuple(raw["words"]) == WORDS and len(WORDS) == 18
    assert WORDS[:10] == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert raw["waveform"].shape == (2808, 8000) and raw["waveform"].dtype == np.int16


def test_spoken_items_have_stated_shapes_types_and_ranges():
    clips = SpokenWords("test")
    waveform, label = clips[5]
    assert waveform.shape == (SAMPLE_RATE,) and waveform.dtype == torch.float32
    assert -1.0 <= waveform.min() and waveform.max() <= 1.0
    assert waveform.pow(2).mean().sqrt() > 0.01  # a word, not silence
    assert isinstance(label, int) and clips.info(5).word == WORDS[label]
    waveforms, labels = clips.tensors()
    assert waveforms.shape == (len(clips), SAMPLE_RATE) and labels.shape == (len(clips),)
    assert waveforms.abs().amax(dim=1).min() > 0.85  # each clip was scaled to a peak of 0.9


def test_spoken_words_sit_in_the_middle_of_the_second():
    waveforms, _ = SpokenWords("val").tensors()
    for clip in waveforms.numpy():
        sound = np.flatnonzero(clip)
        # Equal silence before and after, within one 10 ms frame (a word fades in and out).
        assert abs(sound[0] - (SAMPLE_RATE - 1 - sound[-1])) <= SAMPLE_RATE // 100


def test_spoken_slow_clips_last_longer_than_fast_ones():
    clips = SpokenWords("train")
    spans = {}
    for i in range(len(clips)):
        info = clips.info(i)
        sound = np.flatnonzero(clips.waveforms[i].numpy())
        spans[(info.voice, info.word, info.pitch, info.speed)] = sound[-1] - sound[0]
    slow_longer = [
        spans[v, w, p, "slow"] > spans[v, w, p, "fast"] for v, w, p, s in spans if s == "slow"
    ]
    assert len(slow_longer) == len(clips) // 2 and np.mean(slow_longer) > 0.95


def test_spoken_splits_never_share_a_voice():
    voices = {}
    for split in SPLITS:
        clips = SpokenWords(split)
        voices[split] = {clips.info(i).voice for i in range(len(clips))}
        assert voices[split] == set(clips.voices)
    assert [len(voices[s]) for s in SPLITS] == [28, 5, 6]
    assert not voices["train"] & voices["test"]
    assert not voices["train"] & voices["val"]
    assert not voices["val"] & voices["test"]


def test_spoken_every_split_has_both_sexes_and_every_engine():
    # each held-out voice is a new speaker of a kind training has: same engine, same sex
    raw = np.load(DATA / "spoken.npz")
    kinds = {split: set() for split in SPLITS}
    for name, sex, split in zip(raw["voice_names"], raw["voice_sex"], raw["voice_split"]):
        kinds[SPLITS[split]].add((str(name).split()[0], str(sex)))
    engines = {"espeak-ng", "flite", "mbrola"}
    assert {engine for engine, _ in kinds["train"]} == engines
    assert kinds["train"] == {(engine, sex) for engine in engines for sex in ("female", "male")}
    for split in ("val", "test"):
        assert kinds[split] <= kinds["train"]
        assert {sex for _, sex in kinds[split]} == {"female", "male"}
        assert {engine for engine, _ in kinds[split]} == engines


def test_spoken_every_word_equally_often_in_every_split():
    for split in SPLITS:
        clips = SpokenWords(split)
        counts = np.bincount(clips.labels.numpy(), minlength=len(WORDS))
        assert (counts == len(clips.voices) * 4).all()  # 2 speeds x 2 pitches per voice
        infos = {(clips.info(i).speed, clips.info(i).pitch) for i in range(len(clips))}
        assert infos == {("slow", "low"), ("slow", "high"), ("fast", "low"), ("fast", "high")}


def test_spoken_word_subset_relabels_to_positions():
    clips = SpokenWords("val", words=["triangle", "red"])
    assert clips.words == ("triangle", "red")
    assert set(clips.labels.tolist()) == {0, 1} and len(clips) == 2 * 5 * 4
    for i in range(len(clips)):
        assert clips.info(i).word == clips.words[clips[i][1]]


# --------------------------------------------------------------------------- Shakespeare

def test_shakespeare_holds_known_lines_under_the_right_speaker():
    assert len(shakespeare_plays()) == 38
    hamlet = shakespeare_text("Hamlet")
    assert "HAMLET:\nTo be, or not to be: that is the question:\n" in hamlet
    romeo = "ROMEO:\nHe jests at scars that never felt a wound.\nBut, soft! what light through yonder"
    assert romeo in shakespeare_text("Romeo and Juliet")
    antony = "ANTONY:\nFriends, Romans, countrymen, lend me your ears;\n"
    assert antony in shakespeare_text("Julius Caesar")
    assert "To be, or not to be" not in shakespeare_text("Macbeth")


def test_shakespeare_text_is_speaker_blocks_without_stage_directions():
    text = shakespeare_text()
    assert text.isascii() and 4_000_000 < len(text) < 5_500_000
    assert not re.search(r"[_*#\[\]\\]", text)  # no Markdown, no bracketed directions
    assert text.endswith("\n\n")
    for block in text[:-2].split("\n\n"):
        speaker, *lines = block.split("\n")
        assert re.fullmatch(r"[A-Z][A-Z '&-]*:", speaker), speaker
        assert lines and all(line.strip() == line and line for line in lines), block


def test_shakespeare_plays_join_in_the_order_given():
    plays = shakespeare_plays()
    assert shakespeare_text() == "".join(shakespeare_text(title) for title in plays)
    both = shakespeare_text(["Macbeth", "Hamlet"])
    assert both == shakespeare_text("Macbeth") + shakespeare_text("Hamlet")
    with gzip.open(DATA / "shakespeare.txt.gz", "rt", encoding="ascii") as file:
        assert file.read() == shakespeare_text()


# --------------------------------------------------------------------------- errors and caching

LOADERS = {
    "mnist.npz": lambda: MnistDigits("train"),
    "spoken.npz": lambda: SpokenWords("train"),
    "shakespeare.txt.gz": lambda: shakespeare_text("Hamlet"),
    "shakespeare_plays.json": shakespeare_plays,
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_damaged_file_gives_a_clear_error(name, monkeypatch, tmp_path):
    for other in CHECKSUMS:
        shutil.copy(DATA / other, tmp_path / other)
    damaged = bytearray((tmp_path / name).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(damaged))
    monkeypatch.setenv(data.DATA_VARIABLE, str(tmp_path))
    found = hashlib.sha256(damaged).hexdigest()
    expected = rf"{re.escape(name)} is damaged .* expected SHA-256 {CHECKSUMS[name]}, found {found}"
    with pytest.raises(DataFileError, match=expected) as error:
        LOADERS[name]()
    assert "python data/make_" in str(error.value) and "MMCOURSE_DATA" in str(error.value)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_missing_file_gives_a_clear_error(name, monkeypatch, tmp_path):
    for other in set(CHECKSUMS) - {name}:
        shutil.copy(DATA / other, tmp_path / other)
    monkeypatch.setenv(data.DATA_VARIABLE, str(tmp_path))
    message = rf"{re.escape(name)} is missing: expected .* found no file\. .*re-clone"
    with pytest.raises(DataFileError, match=message):
        LOADERS[name]()


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'val', 'test'\), got 'tra"):
        MnistDigits("training")
    with pytest.raises(ValueError, match=r"split must be one of .* got 'dev'"):
        SpokenWords("dev")
    with pytest.raises(ValueError, match=r"unknown: \['pink'\]"):
        SpokenWords("train", words=["red", "pink"])
    with pytest.raises(ValueError, match=r"distinct words"):
        SpokenWords("train", words=["red", "red"])
    with pytest.raises(TypeError, match=r"list of words .* got the string 'red'"):
        SpokenWords("train", words="red")
    with pytest.raises(ValueError, match=r"unknown play 'Hamlett'; did you mean \['Hamlet'\]"):
        shakespeare_text("Hamlett")
    with pytest.raises(ValueError, match=r"at least one play"):
        shakespeare_text([])
    with pytest.raises(IndexError, match=r"index 1000 out of range for 1000 items"):
        MnistDigits("test")[1000]
    with pytest.raises(TypeError, match=r"index must be an int, got float"):
        SpokenWords("test")[1.0]
    with pytest.raises(ValueError, match=r"unknown data file 'cifar.npz'"):
        data.data_file("cifar.npz")


def test_loaded_arrays_are_cached_between_data_sets():
    first, second = MnistDigits("train"), MnistDigits("test")
    assert data._load_npz("mnist.npz") is data._load_npz("mnist.npz")
    assert len(first) + len(second) == 9000


def test_write_npz_repeats_its_bytes_and_round_trips(tmp_path, monkeypatch):
    arrays = {"x": np.arange(12, dtype=np.int16).reshape(3, 4), "names": np.array(["a", "bc"])}
    write_npz(tmp_path / "a.npz", **arrays)
    later = time.time() + 86_400 * 400
    monkeypatch.setattr(time, "time", lambda: later)  # a later day must not change the bytes
    write_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as loaded:
        assert set(loaded.files) == set(arrays)
        for key, value in arrays.items():
            assert np.array_equal(loaded[key], value) and loaded[key].dtype == value.dtype
