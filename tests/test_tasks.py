"""Tests for mmcourse.tasks against hand-written texts, hand-cut waveforms and the committed clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcourse import data, shapes
from mmcourse.shapes import Scene, SceneObject
from mmcourse.audio import trim_silence
from mmcourse.tasks import dialogue, digit_sequences, summary


def scene(*objects: tuple[str, str, str, str]) -> Scene:
    return Scene(tuple(SceneObject(colour=c, shape=s, size=z, position=p) for c, s, z, p in objects))


ONE = scene(("red", "circle", "large", "top left"))
THREE = scene(("red", "circle", "large", "top left"), ("blue", "square", "small", "top right"),
              ("green", "circle", "small", "bottom right"))


def test_summary_by_hand():
    assert summary(ONE) == "one object: a circle"
    assert summary(THREE) == "three objects: two circles and a square"
    four = scene(("red", "triangle", "large", "top left"), ("blue", "triangle", "small", "top right"),
                 ("green", "triangle", "small", "bottom right"), ("purple", "square", "small", "bottom left"))
    assert summary(four) == "four objects: a square and three triangles"
    with pytest.raises(TypeError, match="expected a Scene, got str"):
        summary("a red circle")


def test_summary_is_shorter_than_the_caption_and_ignores_jitter():
    for s in shapes.make_scenes("val", 50, seed=3):
        assert len(summary(s).split()) < len(shapes.caption(s).split()) or len(s.objects) == 1
        moved = Scene(tuple(SceneObject(o.colour, o.shape, o.size, o.position, (0.9, -0.9)) for o in s.objects))
        assert summary(moved) == summary(s)


def test_dialogue_asks_each_attribute_once_about_one_object():
    rng = np.random.default_rng(0)
    orders = set()
    for _ in range(40):
        turns = dialogue(THREE, rng)
        assert len(turns) == 3
        first, position = turns[0][0].split(" is at the ")
        obj = next(o for o in THREE.objects if o.position == position)
        asked = [first.removeprefix("what ")] + [q.removeprefix("what ").removesuffix(" is it") for q, _ in turns[1:]]
        assert sorted(asked) == ["colour", "shape", "size"]
        assert [getattr(obj, a) for a in asked] == [a for _, a in turns]
        assert all(q.endswith(" is it") for q, _ in turns[1:])
        orders.add(tuple(asked))
    assert len(orders) == 6  # every order of the three attributes occurs
    with pytest.raises(TypeError, match="expected rng to be a numpy.random.Generator, got int"):
        dialogue(THREE, 0)


def test_digit_sequences_place_trimmed_clips_of_one_voice_in_slots():
    dataset = data.SpokenWords("val", words=data.DIGIT_WORDS)
    slot = 4000
    waves, lengths, texts = digit_sequences(dataset, 6, np.random.default_rng(1), lengths=(2, 3), slot=slot)
    assert waves.shape == (6, 3 * slot) and len(texts) == 6
    trimmed = [(trim_silence(dataset[i][0]), data.DIGIT_WORDS[int(dataset.labels[i])], dataset.info(i).voice)
               for i in range(len(dataset))]
    for wave, length, text in zip(waves, lengths, texts):
        words = text.split()
        assert 2 <= len(words) <= 3 and all(w in data.DIGIT_WORDS for w in words)
        assert int(length) == slot * len(words) and torch.all(wave[length:] == 0)
        voices = set()
        for k, w in enumerate(words):
            # rebuild slot k by hand from each trimmed clip of that word; one must match exactly
            matches = []
            for clip, word, voice in trimmed:
                if word != w:
                    continue
                expected = torch.zeros(slot)
                if len(clip) > slot:
                    cut = len(clip) - slot
                    clip = clip[cut // 2: len(clip) - (cut - cut // 2)]
                start = (slot - len(clip)) // 2
                expected[start:start + len(clip)] = clip
                if torch.equal(wave[k * slot:(k + 1) * slot], expected):
                    matches.append(voice)
            assert matches, f"slot {k} holds no trimmed clip of {w!r}"
            voices.add(matches[0])
        assert len(voices) == 1  # one voice per utterance


def test_digit_sequences_validation_messages():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="expected a SpokenWords dataset with words=DIGIT_WORDS"):
        digit_sequences(data.SpokenWords("val", words=["red", "blue"]), 2, rng)
    dataset = data.SpokenWords("val", words=data.DIGIT_WORDS)
    with pytest.raises(ValueError, match="expected n to be a positive int, got 0"):
        digit_sequences(dataset, 0, rng)
    with pytest.raises(ValueError, match=r"expected lengths = \(low, high\) with 1 <= low <= high, got \(3, 2\)"):
        digit_sequences(dataset, 2, rng, lengths=(3, 2))
    with pytest.raises(ValueError, match="expected slot to be a positive int of samples, got 0"):
        digit_sequences(dataset, 2, rng, slot=0)
