"""Build the course's spoken digits and words, data/spoken.npz, with speech synthesisers.

What it does: speaks each of 18 words (the digits zero to nine, the colours and the shapes of
the course's shapes world) in 39 synthetic voices of three kinds of synthesiser, each at two
speeds and two pitches: 2808 clips. The voices (``VOICES`` below) are

- 16 espeak-ng voices (formant synthesis): eight English accents, each with a male and a
  female variant, no variant used twice;
- the 4 voices built into flite: ``kal`` (male, diphones), ``awb``, ``rms`` (male) and ``slt``
  (female), the last three statistical voices trained on recordings;
- 19 MBROLA voices (diphone databases, each cut from one speaker's recordings), driven by
  espeak-ng: four speak English natively (``us1`` female, ``us2``, ``us3``, ``en1`` male) and
  15 speak English with the accent of their database's language (German, French, Swedish,
  Polish, Hungarian, Dutch, Afrikaans, Greek, Romanian; 7 female, 8 male).

Every clip is resampled to 8 kHz mono with sox, trimmed of the silence before and after the
word (see ``trim``), scaled to a peak of 0.9, placed in the middle of exactly one second (8000
samples; a longer word would be cut at both ends, none is at present) and stored as int16.

The voices are synthetic: no person was recorded for this data (the MBROLA and flite voices
were made from recordings of their speakers, long ago). Speed and pitch are set in each engine,
about 0.87 and 1.15 times the engine's default: espeak-ng words per minute (``-s``) and pitch
(``-p``), also for the MBROLA voices; flite ``duration_stretch`` and ``f0_shift``, except for
the flite voice ``rms``, which ignores ``f0_shift`` and is shifted with sox's ``pitch``
effect instead. (MBROLA ``de1`` lacks the diphone of a final *v*, so its "five" ends in
silence: an accent, as people have them.)

Splits are speaker-disjoint: every voice belongs to one split, so a val or test voice is never
heard in training. The split was fixed by this rule, not by measuring accuracy: **a voice is
held out only if training keeps another voice of the same synthesiser, the same sex and the
same language**, so that every held-out voice is a new speaker of a kind of voice that training
covers. Voices that are the only one of their kind stay in training: flite's one female voice
``slt`` and its one diphone voice ``kal``, and every MBROLA voice whose database language has no
second voice of that sex. Within a kind, the held-out voices are espeak-ng's accents as before
(Scottish and Lancaster in val, Caribbean and New York in test, one male and one female each),
flite ``awb`` (val) and ``rms`` (test), and of the MBROLA kinds with more than one voice the
highest-numbered voice for test and the next for val, keeping the lowest in training: English
male ``us3`` test, ``us2`` val, ``en1`` train; German female ``de5-en`` test, ``de3-en`` val,
``de1-en`` train; German male ``de6-en`` test, ``de2-en`` train. That gives 28 training voices,
5 val voices (360 clips: both sexes, all three kinds of synthesiser) and 6 test voices
(432 clips: 2 female, 4 male, all three kinds).

``data/spoken.npz`` holds

- ``waveform``: int16 (2808, 8000), 8 kHz; ``label``: uint8 (2808,), an index into ``words``;
- ``voice``, ``speed``, ``pitch``: uint8 (2808,), indices into ``voice_names``,
  ``speed_names`` (slow, fast) and ``pitch_names`` (low, high);
- ``words`` (18,), ``voice_names`` (39,) such as ``"mbrola us1"``, ``voice_sex`` (39,)
  (``"female"`` or ``"male"``), ``voice_split`` uint8 (39,) (an index into ``split_names``:
  train, val, test), ``sample_rate`` and ``made_with`` (tool versions).

It is written by ``mmcourse.data.write_npz`` (compressed like ``np.savez_compressed``, without
time stamps), so a re-run with the same tool and voice versions gives the same bytes.

What it needs (only to rebuild the file; the course reads the committed arrays): the programs
``espeak-ng``, ``flite``, ``sox`` and ``mbrola`` with the MBROLA voices (Debian 12: enable the
``contrib`` and ``non-free`` sections, then ``sudo apt-get install espeak-ng flite sox mbrola
mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de5
mbrola-de6 mbrola-fr1 mbrola-fr4 mbrola-sw1 mbrola-sw2 mbrola-pl1 mbrola-hu1 mbrola-nl2
mbrola-af1 mbrola-gr2 mbrola-ro1``; it was made with espeak-ng 1.51, flite 2.2, SoX 14.4.2 and
mbrola 3.3 from Debian 12, whose banner and so ``made_with`` say 3.02b), and the course's Python
environment (numpy and ``mmcourse``, ``pip install -e .``). The MBROLA voices are under their
own licences; see data/README.md.

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

# (engine, voice, sex, split). espeak-ng voices are "accent+variant"; no variant is used twice,
# so two voices never share a timbre. MBROLA voices are diphone databases (each one recorded
# speaker) driven by espeak-ng; those ending in "-en" speak English with the accent of the
# database's language.
VOICES = (
    ("espeak-ng", "en+m1", "male", "train"),
    ("espeak-ng", "en+f1", "female", "train"),
    ("espeak-ng", "en-us+m2", "male", "train"),
    ("espeak-ng", "en-us+f2", "female", "train"),
    ("espeak-ng", "en-gb-x-rp+m3", "male", "train"),
    ("espeak-ng", "en-gb-x-rp+f3", "female", "train"),
    ("espeak-ng", "en-029+m4", "male", "train"),
    ("espeak-ng", "en-029+f4", "female", "test"),
    ("espeak-ng", "en-gb-scotland+m5", "male", "train"),
    ("espeak-ng", "en-gb-scotland+f5", "female", "val"),
    ("espeak-ng", "en-gb-x-gbclan+m6", "male", "val"),
    ("espeak-ng", "en-gb-x-gbclan+linda", "female", "train"),
    ("espeak-ng", "en-gb-x-gbcwmd+m7", "male", "train"),
    ("espeak-ng", "en-gb-x-gbcwmd+Annie", "female", "train"),
    ("espeak-ng", "en-us-nyc+m8", "male", "test"),
    ("espeak-ng", "en-us-nyc+Andrea", "female", "train"),
    ("flite", "kal", "male", "train"),
    ("flite", "rms", "male", "test"),
    ("flite", "awb", "male", "val"),
    ("flite", "slt", "female", "train"),
    ("mbrola", "us1", "female", "train"),
    ("mbrola", "us2", "male", "val"),
    ("mbrola", "us3", "male", "test"),
    ("mbrola", "en1", "male", "train"),
    ("mbrola", "de1-en", "female", "train"),
    ("mbrola", "de3-en", "female", "val"),
    ("mbrola", "de5-en", "female", "test"),
    ("mbrola", "de2-en", "male", "train"),
    ("mbrola", "de6-en", "male", "test"),
    ("mbrola", "fr4-en", "female", "train"),
    ("mbrola", "fr1-en", "male", "train"),
    ("mbrola", "sw2-en", "female", "train"),
    ("mbrola", "sw1-en", "male", "train"),
    ("mbrola", "pl1-en", "female", "train"),
    ("mbrola", "hu1-en", "female", "train"),
    ("mbrola", "nl2-en", "male", "train"),
    ("mbrola", "af1-en", "male", "train"),
    ("mbrola", "gr2-en", "male", "train"),
    ("mbrola", "ro1-en", "male", "train"),
)
SPEEDS = ("slow", "fast")
PITCHES = ("low", "high")
ESPEAK_RATE = {"slow": 150, "fast": 200}  # words per minute; the default is 175
ESPEAK_PITCH = {"low": 38, "high": 62}  # 0..99; the default is 50
FLITE_STRETCH = {"slow": 1.15, "fast": 0.87}  # duration factor; 1 is the default
FLITE_F0_SHIFT = {"low": 0.85, "high": 1.15}  # pitch factor; 1 is the default
SOX_PITCH_VOICES = {"rms"}  # flite voices that ignore f0_shift
MBROLA_FOLDER = Path("/usr/share/mbrola")  # where Debian's mbrola-* packages put the databases


def mbrola_database(voice: str) -> str:
    """The MBROLA database a voice speaks with: "de5-en" -> "de5"."""
    return voice.split("-")[0]


def check_tools() -> str:
    """Fail with an install hint if a program or voice is missing; return the tools' versions."""
    databases = sorted({mbrola_database(v) for e, v, _, _ in VOICES if e == "mbrola"})
    packages = " ".join(f"mbrola-{database}" for database in databases)
    install = f"sudo apt-get install espeak-ng flite sox mbrola {packages}"
    missing = [tool for tool in ("espeak-ng", "flite", "sox", "mbrola") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)}: this script needs espeak-ng, flite, sox and mbrola "
            f"with its voices (Debian, with the contrib and non-free sections enabled: {install})"
        )
    flite_voices = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
    absent = [voice for engine, voice, _, _ in VOICES if engine == "flite" and voice not in flite_voices]
    if absent:
        raise SystemExit(f"flite lacks the voices {absent}; it offers {flite_voices}")
    absent = [d for d in databases if not (MBROLA_FOLDER / d / d).is_file()]
    if absent:
        raise SystemExit(f"the MBROLA databases {absent} are missing from {MBROLA_FOLDER}: {install}")

    def output(command: list[str]) -> str:
        result = subprocess.run(command, capture_output=True, text=True)
        return result.stdout + result.stderr

    espeak = output(["espeak-ng", "--version"]).split(":")[1].split()[0]  # "...: 1.51  Data at"
    flite = output(["flite", "--version"]).split("version: ")[1].split()[0]  # "flite-2.2-current"
    sox = output(["sox", "--version"]).split()[-1]  # "v14.4.2"
    mbrola = output(["mbrola"]).split("MBROLA ")[1].split()[0]  # " MBROLA 3.02b - speech..."
    return f"espeak-ng {espeak}, {flite}, sox {sox}, mbrola {mbrola}"


def synthesise(engine: str, voice: str, word: str, speed: str, pitch: str, folder: Path) -> np.ndarray:
    """One clip as float32 (T,) at 8 kHz, straight from the engine and sox."""
    wav = folder / f"{engine}-{voice}-{word}-{speed}-{pitch}.wav"
    effects: list[str] = []
    if engine in ("espeak-ng", "mbrola"):
        # espeak-ng turns the word into phonemes, durations and a pitch contour; for an MBROLA
        # voice ("mb-...") it hands them to mbrola, which joins the recorded diphones.
        name = voice if engine == "espeak-ng" else f"mb-{voice}"
        subprocess.run(["espeak-ng", "-v", name, "-s", str(ESPEAK_RATE[speed]),
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
        words=np.array(WORDS), voice_names=np.array([f"{e} {v}" for e, v, _, _ in VOICES]),
        voice_sex=np.array([sex for _, _, sex, _ in VOICES]),
        voice_split=np.array([SPLITS.index(s) for _, _, _, s in VOICES], dtype=np.uint8),
        split_names=np.array(SPLITS), speed_names=np.array(SPEEDS),
        pitch_names=np.array(PITCHES), sample_rate=np.array(SAMPLE_RATE),
        made_with=np.array(made_with),
    )
    data = OUT_FILE.read_bytes()
    per_split = np.bincount([SPLITS.index(VOICES[v][3]) for v in voice], minlength=3)
    print(f"{len(waveform)} clips, {len(VOICES)} voices, {len(WORDS)} words; clips per split "
          f"{dict(zip(SPLITS, per_split.tolist()))}; made with {made_with}")
    print(f"words last {lengths.min() / SAMPLE_RATE:.2f} to {lengths.max() / SAMPLE_RATE:.2f} s; "
          f"{int((lengths > CLIP_SAMPLES).sum())} cut to one second")
    print(f"{OUT_FILE.name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
