"""A tiny generated language of restaurant reviews, for pretraining and fine-tuning a BERT.

Introduced in notebook 07. A review names a thing (``soup``, ``service`` ...), says it was good
or bad with an adjective, and usually ends with a tail::

    the soup was superb, we will come back        (positive adjective, positive tail)
    dreadful view, never again                     (negative adjective, negative tail)
    we came on monday, the coffee was excellent    (neutral tail: only the adjective tells)

The language is built so that pretraining can teach something a small labelled set cannot:
with ``tails="matching"`` (the unlabelled corpus) the tail always has the adjective's
polarity, so a model that fills in a hidden adjective from its tail must learn which
adjectives behave alike. With ``tails="neutral"`` (the labelled task) only the adjective
carries the polarity. The file reads in order:

1. the word lists and sentence templates;
2. :class:`Review` and :func:`generate`, seeded and repeatable;
3. :func:`tokenizer` and :func:`encode`: word ids with ``[PAD]``, ``[CLS]`` and ``[MASK]``,
   ``(B, T)`` ids and the ``(B, T)`` attention mask, ``[CLS]`` first, padding last.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mmcourse.tokenizers import WordTokenizer

__all__ = [
    "NOUNS",
    "POSITIVE",
    "NEGATIVE",
    "ADJECTIVES",
    "POSITIVE_TAILS",
    "NEGATIVE_TAILS",
    "NEUTRAL_TAILS",
    "TEMPLATES",
    "LABELS",
    "SPECIALS",
    "Review",
    "generate",
    "tokenizer",
    "encode",
]

# --------------------------------------------------------------------------- the words

NOUNS = ("soup", "service", "room", "view", "coffee", "pasta", "staff", "bed", "music", "bread", "pizza", "garden")
POSITIVE = ("great", "lovely", "superb", "wonderful", "excellent", "delightful")
NEGATIVE = ("awful", "terrible", "bland", "dreadful", "horrible", "mediocre")
ADJECTIVES = POSITIVE + NEGATIVE
POSITIVE_TAILS = ("we will come back", "i loved it", "highly recommended")
NEGATIVE_TAILS = ("never again", "i want a refund", "avoid this place")
NEUTRAL_TAILS = ("we came on monday", "it was a busy day", "we sat by the door", "we came with friends",
                 "we came at noon")

# Three word orders; in the last one the tail comes first, so a left-to-right reader sees it.
TEMPLATES = (
    "the {noun} was {adjective}, {tail}",
    "{adjective} {noun}, {tail}",
    "{tail}, the {noun} was {adjective}",
)
LABELS = ("negative", "positive")  # label 0 and label 1
SPECIALS = ("[PAD]", "[CLS]", "[MASK]")  # ids 0, 1, 2
TAIL_KINDS = ("matching", "neutral")


# --------------------------------------------------------------------------- generating

@dataclass(frozen=True)
class Review:
    """One generated review: its ``text``, the ``adjective`` in it, the ``label`` (1 = positive).

    Introduced in notebook 07.
    """

    text: str
    adjective: str
    label: int


def generate(
    n: int,
    *,
    seed: int,
    tails: str = "matching",
    adjectives: Sequence[str] | None = None,
    templates: Sequence[str] = TEMPLATES,
) -> list[Review]:
    """``n`` random reviews, the same ones for the same arguments. Introduced in notebook 07.

    Each review draws a template, a noun and an adjective uniformly (the adjective from
    ``adjectives``, default all of :data:`ADJECTIVES`). ``tails="matching"``: the tail has the
    adjective's polarity (the unlabelled corpus); ``tails="neutral"``: the tail says nothing
    about it (the labelled task). ``templates`` is a subset of :data:`TEMPLATES`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"expected n as a positive int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"expected seed as an int, got {type(seed).__name__}")
    if tails not in TAIL_KINDS:
        raise ValueError(f"expected tails in {TAIL_KINDS}, got {tails!r}")
    adjectives = ADJECTIVES if adjectives is None else _subset(adjectives, ADJECTIVES, "adjectives")
    templates = _subset(templates, TEMPLATES, "templates")
    rng = random.Random(seed)
    reviews = []
    for _ in range(n):
        template, noun, adjective = rng.choice(templates), rng.choice(NOUNS), rng.choice(adjectives)
        label = int(adjective in POSITIVE)
        tail = rng.choice(NEUTRAL_TAILS if tails == "neutral" else (NEGATIVE_TAILS, POSITIVE_TAILS)[label])
        reviews.append(Review(template.format(noun=noun, adjective=adjective, tail=tail), adjective, label))
    return reviews


def _subset(chosen: object, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if isinstance(chosen, str) or not isinstance(chosen, Sequence):
        raise TypeError(f"expected {name} as a sequence of strings, got {type(chosen).__name__}")
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise ValueError(f"expected {name} as a non-empty subset of {allowed}, got {list(chosen)!r}")
    return tuple(chosen)


# --------------------------------------------------------------------------- ids

def tokenizer() -> WordTokenizer:
    """The word tokenizer of the language: ``[PAD]`` 0, ``[CLS]`` 1, ``[MASK]`` 2, then every word
    and the comma. Introduced in notebook 07."""
    texts = [t.format(noun=n, adjective=a, tail=tail) for t in TEMPLATES for n in NOUNS for a in ADJECTIVES
             for tail in POSITIVE_TAILS + NEGATIVE_TAILS + NEUTRAL_TAILS]
    return WordTokenizer.train(texts, specials=SPECIALS)


def encode(texts: Sequence[str], block_size: int, tok: WordTokenizer | None = None) -> tuple[Tensor, Tensor]:
    """Texts → ``(ids, attention_mask)``, both ``(B, T)`` with ``T = block_size``. Introduced in notebook 07.

    Each row is ``[CLS]``, the words of the text, then ``[PAD]`` up to ``block_size``;
    ``attention_mask`` is 1 at ``[CLS]`` and the words, 0 at padding (as :class:`mmcourse.bert.BERT`
    expects). ``tok`` defaults to :func:`tokenizer`.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise TypeError(f"expected texts as a non-empty list of strings, got {type(texts).__name__}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"expected block_size as an int >= 2, got {block_size!r}")
    tok = tokenizer() if tok is None else tok
    pad, cls = tok.specials["[PAD]"], tok.specials["[CLS]"]
    ids = torch.full((len(texts), block_size), pad, dtype=torch.long)  # (B, T)
    for row, text in enumerate(texts):
        words = [cls, *tok.encode(text)]
        if len(words) > block_size:
            raise ValueError(f"expected at most {block_size - 1} words per text, got {len(words) - 1} in {text!r}")
        ids[row, : len(words)] = torch.tensor(words)
    return ids, (ids != pad).long()
