"""Tests for mmcourse.reviews: the generated language, its tokens and its padded batches."""

from __future__ import annotations

import re

import pytest
import torch

from mmcourse import reviews
from mmcourse.tokenizers import WordTokenizer

TAILS = reviews.POSITIVE_TAILS + reviews.NEGATIVE_TAILS + reviews.NEUTRAL_TAILS


def parse(text: str) -> tuple[str, str, str, str]:
    """(template, noun, adjective, tail) of a review, read back with a regular expression per template."""
    for template in reviews.TEMPLATES:
        pattern = re.escape(template).replace(r"\{noun\}", "(?P<noun>[a-z]+)")
        pattern = pattern.replace(r"\{adjective\}", "(?P<adjective>[a-z]+)").replace(r"\{tail\}", "(?P<tail>[a-z ]+)")
        match = re.fullmatch(pattern, text)
        if match and match["tail"] in TAILS and match["noun"] in reviews.NOUNS:
            return template, match["noun"], match["adjective"], match["tail"]
    raise AssertionError(f"{text!r} fits no template")


def test_word_lists_are_disjoint_and_balanced() -> None:
    assert len(reviews.POSITIVE) == len(reviews.NEGATIVE)
    assert not set(reviews.POSITIVE) & set(reviews.NEGATIVE)
    assert reviews.ADJECTIVES == reviews.POSITIVE + reviews.NEGATIVE
    assert len(set(TAILS)) == len(TAILS)


def test_generate_is_repeatable_per_seed() -> None:
    assert reviews.generate(50, seed=3) == reviews.generate(50, seed=3)
    assert reviews.generate(50, seed=3) != reviews.generate(50, seed=4)
    assert reviews.generate(20, seed=3) == reviews.generate(50, seed=3)[:20]


def test_matching_tails_agree_with_the_adjective() -> None:
    for review in reviews.generate(300, seed=0):
        _, _, adjective, tail = parse(review.text)
        assert adjective == review.adjective
        assert review.label == (adjective in reviews.POSITIVE)
        assert tail in (reviews.POSITIVE_TAILS if review.label == 1 else reviews.NEGATIVE_TAILS)


def test_neutral_tails_and_chosen_adjectives() -> None:
    chosen = ("great", "bland")
    sample = reviews.generate(300, seed=1, tails="neutral", adjectives=chosen)
    for review in sample:
        _, _, adjective, tail = parse(review.text)
        assert tail in reviews.NEUTRAL_TAILS
        assert adjective in chosen
        assert review.label == int(adjective == "great")
    labels = [r.label for r in sample]
    assert 100 < sum(labels) < 200  # both labels, drawn about equally (300 fair coins)


def test_every_template_noun_and_adjective_occurs() -> None:
    parsed = [parse(r.text) for r in reviews.generate(2000, seed=2)]
    assert {p[0] for p in parsed} == set(reviews.TEMPLATES)
    assert {p[1] for p in parsed} == set(reviews.NOUNS)
    assert {p[2] for p in parsed} == set(reviews.ADJECTIVES)
    one = reviews.generate(100, seed=2, templates=reviews.TEMPLATES[:1])
    assert {parse(r.text)[0] for r in one} == {reviews.TEMPLATES[0]}


def test_tokenizer_specials_and_round_trip() -> None:
    tok = reviews.tokenizer()
    assert isinstance(tok, WordTokenizer)
    assert tok.specials == {"[PAD]": 0, "[CLS]": 1, "[MASK]": 2}
    placeholders = {"noun", "adjective", "tail"}
    words = {w for text in [*TAILS, *reviews.TEMPLATES] for w in re.findall(r"[a-z]+", text)} - placeholders
    assert set(tok.vocab[3:]) == words | set(reviews.NOUNS) | set(reviews.ADJECTIVES) | {","}
    for review in reviews.generate(100, seed=5):
        assert tok.decode(tok.encode(review.text)) == review.text


def test_encode_pads_after_cls_and_words() -> None:
    tok = reviews.tokenizer()
    texts = ["the soup was great, never again", "bland pizza, we came at noon"]
    ids, mask = reviews.encode(texts, 10)
    assert ids.shape == mask.shape == (2, 10) and ids.dtype == torch.long
    for row, text in enumerate(texts):
        words = tok.encode(text)
        expected = [1, *words] + [0] * (10 - 1 - len(words))
        assert ids[row].tolist() == expected
        assert mask[row].tolist() == [1] * (1 + len(words)) + [0] * (10 - 1 - len(words))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 0}, ValueError, r"expected n as a positive int, got 0"),
        ({"n": 2.0}, ValueError, r"expected n as a positive int"),
        ({"seed": "1"}, TypeError, r"expected seed as an int, got str"),
        ({"tails": "happy"}, ValueError, r"expected tails in \('matching', 'neutral'\), got 'happy'"),
        ({"adjectives": ["great", "tasty"]}, ValueError, r"expected adjectives as a non-empty subset"),
        ({"adjectives": []}, ValueError, r"expected adjectives as a non-empty subset"),
        ({"adjectives": "great"}, TypeError, r"expected adjectives as a sequence of strings, got str"),
        ({"templates": ["{noun}!"]}, ValueError, r"expected templates as a non-empty subset"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    arguments = {"n": 5, "seed": 0} | kwargs
    n = arguments.pop("n")
    with pytest.raises(error, match=message):
        reviews.generate(n, **arguments)


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"expected texts as a non-empty list of strings, got str"):
        reviews.encode("the soup was great", 12)
    with pytest.raises(ValueError, match=r"expected block_size as an int >= 2, got 1"):
        reviews.encode(["great soup, never again"], 1)
    with pytest.raises(ValueError, match=r"expected at most 4 words per text, got 5"):
        reviews.encode(["great soup, never again"], 5)
    with pytest.raises(ValueError, match=r"word 'tasty' .* is not in the vocabulary"):
        reviews.encode(["tasty soup"], 12)
