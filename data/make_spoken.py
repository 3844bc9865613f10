"""Build the course's spoken digits and words, data/spoken.npz, with speech synthesisers.

What it does: speaks each of 18 words (the digits zero to nine, the colours and the shapes of
the course's shapes world) in 20 synthetic voices (16 espeak-ng voices, eight English accents
each with a male and a female variant, and 4 flite voices), each at two speeds and two pitches:
1440 clips. Every clip is resampled to 8 kHz mono with sox, trimmed of the silence before and
after the word (see ``trim``), scaled to a peak of 0.9, placed in the middle of exactly one
second (8000 samples; a longer word would be cut at both ends, none is at present) and stored
as int16.

The voices are synthetic: no person was recorded. Speed and pitch are set in each engine,
about 0.87 and 1.15 times the engine's default: espeak-ng words per minute (``-s``) and pitch
(``-p``); flite ``duration_stretch`` and ``f0_shift``, except for the flite voice ``rms``,
which ignores ``f0_shift`` and is shifted with sox's ``pitch`` effect instead.

Splits are speaker-disjoint: every voice belongs to one split (``VOICES`` below; 14 train,
3 val, 3 test, each split with both engines and both sexes), so a test voice is never heard in
training.

``data/spoken.npz`` holds

- ``waveform``: int16 (1440, 8000), 8 kHz; ``label``: uint8 (1440,), an index into ``words``;
- ``voice``, ``speed``, ``pitch``: uint8 (1440,), indices into ``voice_names``,
  ``speed_names`` (slow, fast) and ``pitch_names`` (low, high);
- ``words`` (18,), ``voice_names`` (20,), ``voice_split`` uint8 (20,) (an index into
  ``split_names``: train, val, test), ``sample_rate`` and ``made_with`` (tool versions).

It is written by ``mmcourse.data.write_npz`` (compressed like ``np.savez_compressed``, without
time stamps), so a re-run with the same tool versions gives the same bytes.

What it needs (only to rebuild the file; the course reads the committed arrays): the programs
``espeak-ng``, ``flite`` and ``sox`` (Debian/Ubuntu: ``sudo apt-get install espeak-ng flite
sox``; it was made with espeak-ng 1.51, flite 2.2 and SoX 14.4.2 from Debian 12), and the
course's Python environment (numpy and ``mmcourse``, ``pip install -e .``).

How to run, from the repository root::

    python data/make_spoken.py

Afterwards update the size and SHA-256 in data/README.md and in ``mmcourse/data.py``.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from pathlib import Path

import numpy as np

from mmcourse.data import SAMPLE_RATE, SPLITS, WORDS, write_npz

OUT_FILE = Path(__file__).resolve().parent / "spoken.npz"
CLIP_SAMPLES = SAMPLE_RATE  # one second
PEAK = 0.9
TRIM_BELOW_DB = -50.0  # frames this far below the loudest frame count as silence
FRAME = SAMPLE_RATE // 100  # 10 ms

# (engine, voice, split). espeak-ng voices are "accent+variant"; no variant is used twice,
# so two voices never share a timbre.
VOICES = (
    ("espeak-ng", "en+m1", "train"),
    ("espeak-ng", "en+f1", "train"),
    ("espeak-ng", "en-us+m2", "train"),
    ("espeak-ng", "en-us+f2", "train"),
    ("espeak-ng", "en-gb-x-rp+m3", "train"),
    ("espeak-ng", "en-gb-x-rp+f3", "train"),
    ("espeak-ng", "en-029+m4", "train"),
    ("espeak-ng", "en-029+f4", "test"),
    ("espeak-ng", "en-gb-scotland+m5", "train"),
    ("espeak-ng", "en-gb-scotland+f5", "val"),
    ("espeak-ng", "en-gb-x-gbclan+m6", "val"),
    ("espeak-ng", "en-gb-x-gbclan+linda", "train"),
    ("espeak-ng", "en-gb-x-gbcwmd+m7", "train"),
    ("espeak-ng", "en-gb-x-gbcwmd+Annie", "train"),
    ("espeak-ng", "en-us-nyc+m8", "test"),
    ("espeak-ng", "en-us-nyc+Andrea", "train"),
    ("flite", "kal", "train"),
    ("flite", "rms", "train"),
    ("flite", "awb", "val"),
    ("flite", "slt", "test"),
)
SPEEDS = ("slow", "fast")
PITCHES = ("low", "high")
ESPEAK_RATE = {"slow": 150, "fast": 200}  # words per minute; the default is 175
ESPEAK_PITCH = {"low": 38, "high": 62}  # 0..99; the default is 50
FLITE_STRETCH = {"slow": 1.15, "fast": 0.87}  # duration factor; 1 is the default
FLITE_F0_SHIFT = {"low": 0.85, "high": 1.15}  # pitch factor; 1 is the default
SOX_PITCH_VOICES = {"rms"}  # flite voices that ignore f0_shift


def check_tools() -> str:
    """Fail with an install hint if a program is missing; return the tools' versions."""
    missing = [tool for tool in ("espeak-ng", "flite", "sox") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)}: this script needs espeak-ng, flite and sox "
            "(Debian/Ubuntu: sudo apt-get install espeak-ng flite sox)"
        )
    flite_voices = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
    absent = [voice for engine, voice, _ in VOICES if engine == "flite" and voice not in flite_voices]
    if absent:
        raise SystemExit(f"flite lacks the voices {absent}; it offers {flite_voices}")

    def output(command: list[str]) -> str:
        result = subprocess.run(command, capture_output=True, text=True)
        return result.stdout + result.stderr

    espeak = output(["espeak-ng", "--version"]).split(":")[1].split()[0]  # "...: 1.51  Data at"
    flite = output(["flite", "--version"]).split("version: ")[1].split()[0]  # "flite-2.2-current"
    sox = output(["sox", "--version"]).split()[-1]  # "v14.4.2"
    return f"espeak-ng {espeak}, {flite}, sox {sox}"


def synthesise(engine: str, voice: str, word: str, speed: str, pitch: str, folder: Path) -> np.ndarray:
    """One clip as float32 (T,) at 8 kHz, straight from the engine and sox."""
    wav = folder / f"{engine}-{voice}-{word}-{speed}-{pitch}.wav"
    effects: list[str] = []
    if engine == "espeak-ng":
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(ESPEAK_RATE[speed]),
                        "-p", str(ESPEAK_PITCH[pitch]), "-w", str(wav), word], check=True)
    else:
        command = ["flite", "-voice", voice, "--setf", f"duration_stretch={FLITE_STRETCH[speed]}"]
        if voice in SOX_PITCH_VOICES:
            effects = ["pitch", f"{1200 * math.log2(FLITE_F0_SHIFT[pitch]):.0f}"]
        else:
            command += ["--setf", f"f0_shift={FLITE_F0_SHIFT[pitch]}"]
        subprocess.run(command + ["-t", word, "-o", str(wav)], check=True)
    # -D: no dither, so the result does not depend on a random generator; the gain leaves
    # headroom for the resampler's overshoot on loud clips (centre() rescales anyway).
    raw = subprocess.run(
        ["sox", "-D", str(wav), "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
         "-r", str(SAMPLE_RATE), "-", *effects, "gain", "-6", "rate", str(SAMPLE_RATE)],
        check=True, capture_output=True,
    ).stdout
    wav.unlink()
    return np.frombuffer(raw, dtype=np.float32)


def trim(samples: np.ndarray) -> np.ndarray:
    """The word without the silence around it, float64 (T,).

    A 10 ms frame counts as sound when its RMS is above both -50 dB of the loudest frame and
    four times the engine's noise floor (the 10th percentile of frame RMS; flite's voices hiss
    softly where espeak-ng is silent).
    """
    frames = len(samples) // FRAME
    energy = np.sqrt((samples[:frames * FRAME].reshape(frames, FRAME) ** 2).mean(axis=1))
    threshold = max(energy.max() * 10 ** (TRIM_BELOW_DB / 20), 4 * np.percentile(energy, 10))
    loud = np.flatnonzero(energy > threshold)
    return samples[loud[0] * FRAME:(loud[-1] + 1) * FRAME].astype(np.float64)


def centre(word: np.ndarray) -> np.ndarray:
    """Scale the word to the peak and put it in the middle of one second: int16 (8000,)."""
    word = word * (PEAK / np.abs(word).max())
    if len(word) > CLIP_SAMPLES:
        cut = (len(word) - CLIP_SAMPLES) // 2
        word = word[cut:cut + CLIP_SAMPLES]
    clip = np.zeros(CLIP_SAMPLES)
    start = (CLIP_SAMPLES - len(word)) // 2
    clip[start:start + len(word)] = word
    return np.round(clip * 32767).astype(np.int16)


def main() -> None:
    made_with = check_tools()
    jobs = list(product(range(len(VOICES)), range(len(WORDS)), range(len(SPEEDS)), range(len(PITCHES))))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(os.cpu_count()) as pool:
        raw = list(pool.map(
            lambda job: synthesise(VOICES[job[0]][0], VOICES[job[0]][1], WORDS[job[1]],
                                   SPEEDS[job[2]], PITCHES[job[3]], Path(tmp)),
            jobs,
        ))
    words = [trim(samples) for samples in raw]
    lengths = np.array([len(word) for word in words])
    waveform = np.stack([centre(word) for word in words])  # (N, 8000)
    voice, label, speed, pitch = (np.array(column, dtype=np.uint8) for column in zip(*jobs))

    # Every clip must hold a word: long enough to be one, and not louder than the peak.
    if lengths.min() < 0.1 * SAMPLE_RATE or np.abs(waveform.astype(np.int32)).max() > 32767 * PEAK:
        raise SystemExit("a clip is too short or too loud; check the voices")

    write_npz(
        OUT_FILE,
        waveform=waveform, label=label, voice=voice, speed=speed, pitch=pitch,
        words=np.array(WORDS), voice_names=np.array([f"{e} {v}" for e, v, _ in VOICES]),
        voice_split=np.array([SPLITS.index(s) for _, _, s in VOICES], dtype=np.uint8),
        split_names=np.array(SPLITS), speed_names=np.array(SPEEDS),
        pitch_names=np.array(PITCHES), sample_rate=np.array(SAMPLE_RATE),
        made_with=np.array(made_with),
    )
    data = OUT_FILE.read_bytes()
    per_split = np.bincount([SPLITS.index(VOICES[v][2]) for v in voice], minlength=3)
    print(f"{len(waveform)} clips, {len(VOICES)} voices, {len(WORDS)} words; clips per split "
          f"{dict(zip(SPLITS, per_split.tolist()))}; made with {made_with}")
    print(f"words last {lengths.min() / SAMPLE_RATE:.2f} to {lengths.max() / SAMPLE_RATE:.2f} s; "
          f"{int((lengths > CLIP_SAMPLES).sum())} cut to one second")
    print(f"{OUT_FILE.name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
