"""Task formats for the applications of notebook 11: summaries, dialogues, spoken digit sequences.

Introduced in notebook 11. The shapes world (``mmcourse.shapes``) already gives captions,
Chinese captions and one-word questions; this module adds the rest of what the notebook's
models are asked to do, each a pure function of a scene or of clips, so the same inputs always
give the same texts:

1. :func:`summary`: a short summary of a scene, its number of objects and their shapes,
   leaving out positions, colours and sizes;
2. :func:`dialogue`: a three-turn conversation about one object of a scene, whose later
   questions say "it" and so can only be answered with the earlier turns in view;
3. :func:`digit_sequences`: utterances of two to four spoken digits, made by cutting the
   silence around single-word clips of one voice (:func:`mmcourse.audio.trim_silence`) and
   placing them one after the other at a steady pace, with their transcripts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .audio import trim_silence
from .data import DIGIT_WORDS, SpokenWords
from .shapes import COUNTS, SHAPES, Scene, _check_scene

__all__ = ["summary", "dialogue", "digit_sequences"]

ATTRIBUTES = ("shape", "colour", "size")


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"expected rng to be a numpy.random.Generator, got {type(rng).__name__}")


# --------------------------------------------------------------------------- 1. summary

def summary(scene: Scene) -> str:
    """How many objects a scene holds and of which shapes, e.g. ``"three objects: two circles and a square"``.

    Introduced in notebook 11. Shapes come in the order of ``shapes.SHAPES``; one object of a
    shape is ``"a <shape>"``, more are ``"<count> <shape>s"``. Positions, colours and sizes are
    left out: a summary says less than the caption, in fewer words.
    """
    _check_scene(scene)
    n = len(scene.objects)
    parts = []
    for shape in SHAPES:
        k = sum(o.shape == shape for o in scene.objects)
        if k:
            parts.append(f"a {shape}" if k == 1 else f"{COUNTS[k - 1]} {shape}s")
    head = "one object" if n == 1 else f"{COUNTS[n - 1]} objects"
    return f"{head}: {' and '.join(parts)}"


# --------------------------------------------------------------------------- 2. dialogue

def dialogue(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Three (question, answer) turns about one object of ``scene``, each answer one word.

    Introduced in notebook 11. ``rng`` picks the object and the order in which its shape,
    colour and size are asked. The first question names the object's position
    (``"what colour is at the top left"``); the next two refer to it as "it"
    (``"what size is it"``), so a model answers them right only if it reads the dialogue so far.
    """
    _check_scene(scene)
    _check_rng(rng)
    obj = scene.objects[rng.integers(len(scene.objects))]
    order = [ATTRIBUTES[i] for i in rng.permutation(len(ATTRIBUTES))]
    turns = [(f"what {order[0]} is at the {obj.position}", getattr(obj, order[0]))]
    turns += [(f"what {attribute} is it", getattr(obj, attribute)) for attribute in order[1:]]
    return turns


# --------------------------------------------------------------------------- 3. spoken digit sequences

def digit_sequences(
    dataset: SpokenWords,
    n: int,
    rng: np.random.Generator,
    lengths: tuple[int, int] = (2, 4),
    slot: int = 4800,
) -> tuple[Tensor, Tensor, list[str]]:
    """``n`` utterances of spoken digits: waveforms ``(n, L)``, their lengths ``(n,)``, transcripts.

    Introduced in notebook 11. ``dataset`` is a :class:`mmcourse.data.SpokenWords` with
    ``words=DIGIT_WORDS``. Each utterance draws a voice of the dataset, a number of digits
    uniform in ``lengths`` (both ends included) and, for each digit, a clip of that voice saying
    it (any speed and pitch). Each clip is cut to its loud part (:func:`mmcourse.audio.trim_silence`) and put in
    the middle of a **slot** of ``slot`` samples (0.6 s by default; a word longer than the slot
    loses its ends), and the slots follow each other: digit ``k`` is spoken around sample
    ``(k + 1/2) * slot``, like a number read out at a steady pace. Shorter utterances are padded
    with silence to the longest, ``L = slot * lengths[1]``. The transcript is the digit words
    with single spaces, e.g. ``"seven one four"``.
    """
    if not isinstance(dataset, SpokenWords) or tuple(dataset.words) != DIGIT_WORDS:
        raise ValueError("expected a SpokenWords dataset with words=DIGIT_WORDS (labels 0-9 are the digits)")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"expected n to be a positive int, got {n!r}")
    _check_rng(rng)
    low, high = lengths
    if not 1 <= low <= high:
        raise ValueError(f"expected lengths = (low, high) with 1 <= low <= high, got {lengths}")
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 1:
        raise ValueError(f"expected slot to be a positive int of samples, got {slot!r}")
    voices = np.array([dataset.info(i).voice for i in range(len(dataset))])
    labels = dataset.labels.numpy()
    voice_names = sorted(set(voices))
    waveforms = torch.zeros(n, slot * high)  # (n, L), silence where no word is
    lengths_out = torch.zeros(n, dtype=torch.long)
    transcripts = []
    for u in range(n):
        voice = voice_names[rng.integers(len(voice_names))]
        digits = rng.integers(10, size=rng.integers(low, high + 1))
        for k, d in enumerate(digits):
            candidates = np.flatnonzero((voices == voice) & (labels == d))
            word = trim_silence(dataset[int(candidates[rng.integers(len(candidates))])][0])
            cut = max(len(word) - slot, 0)
            word = word[cut // 2: len(word) - (cut - cut // 2)]  # at most one slot, about its middle
            start = k * slot + (slot - len(word)) // 2
            waveforms[u, start:start + len(word)] = word
        lengths_out[u] = slot * len(digits)
        transcripts.append(" ".join(DIGIT_WORDS[d] for d in digits))
    return waveforms, lengths_out, transcripts
