"""Evaluation metrics: accuracy, exact match, BLEU, word error rate and perplexity.

Introduced in notebook 11, where the course's models describe scenes, answer questions,
recognise speech and translate captions, and each task needs its own yardstick:

1. :func:`accuracy`: the share of predicted labels that equal the targets (classification,
   one-word answers);
2. :func:`normalize_answer` and :func:`exact_match`: the share of free-text answers that equal
   a reference once case, punctuation and spacing are set aside;
3. :func:`bleu` and :func:`bleu_details`: corpus-level BLEU, the n-gram overlap of generated
   text (captions, translations) with one or more references;
4. :func:`edit_distance`, :func:`word_errors`, :func:`word_error_rate`: how many words a
   transcript got wrong, counted as substitutions, deletions and insertions;
5. :func:`perplexity`: ``exp`` of a language model's mean cross-entropy.

Argument order is the same everywhere: what the model produced first, the reference second.
Texts are split into words by ``tokenize`` (``str.split`` by default); for Chinese, whose
words are not separated by spaces, pass ``tokenize=list`` to count characters instead.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

from torch import Tensor

__all__ = [
    "accuracy",
    "normalize_answer",
    "exact_match",
    "SMOOTHINGS",
    "BleuDetails",
    "bleu_details",
    "bleu",
    "edit_distance",
    "WordErrors",
    "word_errors",
    "word_error_rate",
    "perplexity",
]

Tokenizer = Callable[[str], Sequence[str]]


# --------------------------------------------------------------------------- checks

def _check_texts(name: str, texts: object) -> list[str]:
    """A non-empty list of strings; a bare string is refused, since its characters are no list."""
    if isinstance(texts, str):
        raise TypeError(f"expected {name} as a list of strings, got one str {texts!r:.40}")
    if not isinstance(texts, Sequence) or len(texts) == 0:
        raise ValueError(f"expected {name} as a non-empty list of strings, got {texts!r:.60}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"expected {name}[{i}] to be a str, got {type(text).__name__}")
    return list(texts)


def _check_same_length(name_a: str, a: Sequence, name_b: str, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"expected as many {name_b} as {name_a}, got {len(b)} {name_b} for {len(a)} {name_a}")


def _check_tokenize(tokenize: object) -> Tokenizer:
    if not callable(tokenize):
        raise TypeError(f"expected tokenize to be a function str -> list of str, got {type(tokenize).__name__}")
    return tokenize


def _words(tokenize: Tokenizer, text: str) -> list[str]:
    words = tokenize(text)
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"expected tokenize to return a list of str, got {type(words).__name__} for {text!r:.40}")
    return list(words)


# --------------------------------------------------------------------------- 1. accuracy

def accuracy(predictions: Tensor | Sequence[Hashable], targets: Tensor | Sequence[Hashable]) -> float:
    """The share of predictions equal to their targets, in [0, 1].

    Introduced in notebook 11. Two forms:

    - tensors: ``targets`` integer labels of any shape ``S`` (e.g. ``(B,)``); ``predictions``
      either labels of the same shape ``S`` or scores (logits, probabilities) of shape
      ``(*S, K)``, whose arg-max over the last dimension is the predicted label;
    - lists of equal length holding any comparable labels, e.g. answer words.
    """
    if isinstance(predictions, Tensor) or isinstance(targets, Tensor):
        return _tensor_accuracy(predictions, targets)
    for name, value in (("predictions", predictions), ("targets", targets)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"expected {name} as a tensor or a list of labels, got {type(value).__name__}")
    _check_same_length("predictions", predictions, "targets", targets)
    if len(targets) == 0:
        raise ValueError("expected at least one prediction, got empty lists")
    return sum(p == t for p, t in zip(predictions, targets)) / len(targets)


def _tensor_accuracy(predictions: object, targets: object) -> float:
    for name, value in (("predictions", predictions), ("targets", targets)):
        if not isinstance(value, Tensor):
            raise TypeError(f"expected predictions and targets both as tensors, got {name} as {type(value).__name__}")
    if targets.is_floating_point() or targets.is_complex():
        raise TypeError(f"expected targets as integer labels, got {targets.dtype}")
    if targets.numel() == 0:
        raise ValueError(f"expected at least one target, got shape {tuple(targets.shape)}")
    if predictions.shape == targets.shape:
        labels = predictions
    elif predictions.dim() == targets.dim() + 1 and predictions.shape[:-1] == targets.shape:
        labels = predictions.argmax(dim=-1)  # scores (*S, K) -> labels (*S,)
    else:
        raise ValueError(
            f"expected predictions of shape {tuple(targets.shape)} (labels) or "
            f"{(*targets.shape, 'K')} (scores) for targets of shape {tuple(targets.shape)}, "
            f"got {tuple(predictions.shape)}"
        )
    return (labels == targets.to(labels.device)).double().mean().item()


# --------------------------------------------------------------------------- 2. exact match

def normalize_answer(text: str) -> str:
    """``text`` lower-cased, punctuation removed, runs of whitespace made one space, ends stripped.

    Introduced in notebook 11. ``"  The Circle. "`` becomes ``"the circle"``. Punctuation is
    every Unicode punctuation character, so Chinese ``"，"`` and ``"。"`` go too. Articles
    stay: ``"a circle"`` and ``"circle"`` are different answers here.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text to be a str, got {type(text).__name__}")
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.casefold())
    return " ".join(kept.split())


def exact_match(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    normalize: bool = True,
) -> float:
    """The share of predictions equal to a reference, in [0, 1].

    Introduced in notebook 11. ``predictions``: ``B`` strings; ``references``: ``B`` items,
    each one string or a list of acceptable strings (any of them counts). With ``normalize``
    both sides go through :func:`normalize_answer` first, so ``"Red."`` matches ``"red"``.
    """
    predictions = _check_texts("predictions", predictions)
    _check_same_length("predictions", predictions, "references", references)
    hits = 0
    for i, (prediction, reference) in enumerate(zip(predictions, references)):
        accepted = [reference] if isinstance(reference, str) else _check_texts(f"references[{i}]", reference)
        if normalize:
            prediction, accepted = normalize_answer(prediction), [normalize_answer(r) for r in accepted]
        hits += prediction in accepted
    return hits / len(predictions)


# --------------------------------------------------------------------------- 3. BLEU

SMOOTHINGS = ("none", "add-one", "exp")


class BleuDetails(NamedTuple):
    """The parts of a BLEU score; see :func:`bleu_details`.

    ``precisions[n - 1]`` is the (smoothed) modified ``n``-gram precision, ``matches`` and
    ``totals`` its clipped matches and candidate ``n``-grams before smoothing.
    """

    score: float
    precisions: tuple[float, ...]
    matches: tuple[int, ...]
    totals: tuple[int, ...]
    brevity_penalty: float
    candidate_length: int
    reference_length: int


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _closest_length(candidate_length: int, reference_lengths: list[int]) -> int:
    # The reference length nearest the candidate's; between two equally near, the shorter.
    return min(reference_lengths, key=lambda r: (abs(r - candidate_length), r))


def _smoothed_precisions(matches: list[int], totals: list[int], smoothing: str) -> list[float]:
    precisions = []
    halvings = 1
    for n, (m, t) in enumerate(zip(matches, totals), start=1):
        if smoothing == "add-one" and n > 1:
            precisions.append((m + 1) / (t + 1))
        elif smoothing == "exp" and m == 0 and t > 0:
            halvings *= 2
            precisions.append(1 / (halvings * t))
        else:
            precisions.append(m / t if t else 0.0)
    return precisions


def bleu_details(
    candidates: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    max_n: int = 4,
    smoothing: str = "none",
    tokenize: Tokenizer = str.split,
) -> BleuDetails:
    """Corpus-level BLEU and its parts: n-gram precisions, brevity penalty, lengths.

    Introduced in notebook 11. ``candidates``: ``B`` generated texts; ``references``: ``B``
    items, each one reference text or a list of references for that candidate. Texts are
    split into words by ``tokenize``. BLEU (Papineni et al., 2002) is::

        BLEU = BP * exp( (1 / max_n) * sum_{n=1..max_n} log p_n )

    - ``p_n``, the *modified* n-gram precision: each candidate n-gram counts as a match at
      most as often as it occurs in any one of its references (clipping, so that "the the
      the" earns no more than the references' "the"s); matches and candidate n-grams are
      summed over the whole corpus before dividing (corpus-level, not a mean of sentence
      scores);
    - ``BP``, the brevity penalty: with ``c`` the candidates' total length and ``r`` the
      sum over candidates of the reference length closest to each (the shorter on a tie),
      ``BP = 1`` if ``c > r``, else ``exp(1 - r / c)`` (and 0 when ``c = 0``), since
      precision alone would reward saying little.

    ``smoothing`` decides what a precision with no match becomes; without smoothing one
    such ``p_n`` makes the score 0, which is common for single short sentences:

    - ``"none"``: nothing changes (the standard corpus BLEU);
    - ``"add-one"``: ``p_n = (matches + 1) / (n-grams + 1)`` for ``n >= 2`` (Lin and Och, 2004);
    - ``"exp"``: the k-th order with no match, counted from ``n = 1``, gets
      ``p_n = 1 / (2^k * n-grams)`` (the NIST ``mteval`` smoothing).

    An order for which the candidates hold no n-gram at all (every candidate shorter than
    ``n`` words) has ``p_n = 0``, except with ``"add-one"``, where it is ``1``. Candidates
    that share not one word with their references score 0 whatever the smoothing. Scores
    are in [0, 1]; multiply by 100 for the scale most papers print.
    """
    candidates = _check_texts("candidates", candidates)
    _check_same_length("candidates", candidates, "references", references)
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"expected max_n to be a positive int, got {max_n!r}")
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"expected smoothing in {SMOOTHINGS}, got {smoothing!r}")
    tokenize = _check_tokenize(tokenize)

    matches, totals = [0] * max_n, [0] * max_n
    candidate_length = reference_length = 0
    for i, (candidate, reference) in enumerate(zip(candidates, references)):
        refs = [reference] if isinstance(reference, str) else _check_texts(f"references[{i}]", reference)
        words = _words(tokenize, candidate)
        ref_words = [_words(tokenize, r) for r in refs]
        candidate_length += len(words)
        reference_length += _closest_length(len(words), [len(r) for r in ref_words])
        for n in range(1, max_n + 1):
            counts = _ngrams(words, n)
            most_in_one_reference = Counter()
            for r in ref_words:
                most_in_one_reference |= _ngrams(r, n)  # | keeps the larger count of each n-gram
            matches[n - 1] += sum(min(c, most_in_one_reference[g]) for g, c in counts.items())
            totals[n - 1] += sum(counts.values())

    precisions = _smoothed_precisions(matches, totals, smoothing)
    if candidate_length == 0:
        brevity_penalty = 0.0
    elif candidate_length > reference_length:
        brevity_penalty = 1.0
    else:
        brevity_penalty = math.exp(1 - reference_length / candidate_length)
    if matches[0] == 0 or min(precisions) == 0:
        score = 0.0
    else:
        score = brevity_penalty * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return BleuDetails(
        score, tuple(precisions), tuple(matches), tuple(totals),
        brevity_penalty, candidate_length, reference_length,
    )


def bleu(
    candidates: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    max_n: int = 4,
    smoothing: str = "none",
    tokenize: Tokenizer = str.split,
) -> float:
    """Corpus-level BLEU in [0, 1]: ``bleu_details(...).score``; see :func:`bleu_details`.

    Introduced in notebook 11. For a single sentence pass one-element lists, e.g.
    ``bleu([candidate], [reference], smoothing="add-one")``.
    """
    return bleu_details(candidates, references, max_n=max_n, smoothing=smoothing, tokenize=tokenize).score


# --------------------------------------------------------------------------- 4. word error rate

class WordErrors(NamedTuple):
    """The edits that turn a reference into a hypothesis; see :func:`word_errors`."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def total(self) -> int:
        """Substitutions + deletions + insertions: the edit distance."""
        return self.substitutions + self.deletions + self.insertions


def _edit_table(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> list[list[int]]:
    """``table[i][j]``: fewest edits turning ``reference[:i]`` into ``hypothesis[:j]``."""
    R, H = len(reference), len(hypothesis)
    table = [[0] * (H + 1) for _ in range(R + 1)]
    for i in range(R + 1):
        table[i][0] = i  # delete all i reference words
    for j in range(H + 1):
        table[0][j] = j  # insert all j hypothesis words
    for i in range(1, R + 1):
        for j in range(1, H + 1):
            substitute = table[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1])
            table[i][j] = min(substitute, table[i - 1][j] + 1, table[i][j - 1] + 1)
    return table


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions turning ``a`` into ``b``.

    Introduced in notebook 11. ``a`` and ``b`` are sequences of anything comparable: two
    strings compare characters (``edit_distance("kitten", "sitting") == 3``), two lists of
    words compare words. Dynamic programming in ``O(len(a) * len(b))``.
    """
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, Sequence):
            raise TypeError(f"expected {name} as a str or a list, got {type(value).__name__}")
    return _edit_table(a, b)[len(a)][len(b)]


def word_errors(hypothesis: str, reference: str, *, tokenize: Tokenizer = str.split) -> WordErrors:
    """Substitutions, deletions and insertions of words that turn ``reference`` into ``hypothesis``.

    Introduced in notebook 11. Their sum is the word-level :func:`edit_distance`. Several
    alignments can reach that fewest number of edits; the one reported pairs words
    (match or substitution) wherever that is as cheap, then prefers deletions to insertions.
    """
    for name, value in (("hypothesis", hypothesis), ("reference", reference)):
        if not isinstance(value, str):
            raise TypeError(f"expected {name} to be a str, got {type(value).__name__}")
    tokenize = _check_tokenize(tokenize)
    ref, hyp = _words(tokenize, reference), _words(tokenize, hypothesis)
    table = _edit_table(ref, hyp)
    i, j = len(ref), len(hyp)
    substitutions = deletions = insertions = 0
    while i > 0 or j > 0:  # walk back along one cheapest path
        if i > 0 and j > 0 and table[i][j] == table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            substitutions += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and table[i][j] == table[i - 1][j] + 1:
            deletions += 1
            i -= 1
        else:
            insertions += 1
            j -= 1
    return WordErrors(substitutions, deletions, insertions, len(ref))


def word_error_rate(
    hypotheses: str | Sequence[str],
    references: str | Sequence[str],
    *,
    tokenize: Tokenizer = str.split,
) -> float:
    """Corpus word error rate: ``(S + D + I) / N`` summed over all sentence pairs.

    Introduced in notebook 11. ``S``, ``D``, ``I`` are the substituted, deleted and inserted
    words (:func:`word_errors`) and ``N`` the number of reference words. Pass two strings for
    one sentence or two lists of ``B`` strings for a corpus; summing before dividing weighs
    long sentences more than a mean of per-sentence rates would. WER can exceed 1 when the
    hypothesis inserts many words.
    """
    if isinstance(hypotheses, str) and isinstance(references, str):
        hypotheses, references = [hypotheses], [references]
    hypotheses = _check_texts("hypotheses", hypotheses)
    references = _check_texts("references", references)
    _check_same_length("hypotheses", hypotheses, "references", references)
    counts = [word_errors(h, r, tokenize=tokenize) for h, r in zip(hypotheses, references)]
    n_words = sum(c.reference_length for c in counts)
    if n_words == 0:
        raise ValueError("expected references with at least one word; the word error rate divides by their length")
    return sum(c.total for c in counts) / n_words


# --------------------------------------------------------------------------- 5. perplexity

def perplexity(loss: float | Tensor) -> float:
    """``exp(loss)`` of a mean cross-entropy in nats: the number of tokens the model is as unsure as.

    Introduced in notebook 06; notebook 11 uses it beside the other metrics. A model that
    guesses uniformly among ``V`` tokens has loss ``ln V`` and perplexity ``V``. ``loss`` is a
    float or a one-element tensor.
    """
    if isinstance(loss, Tensor):
        if loss.numel() != 1:
            raise ValueError(f"expected a scalar loss, got shape {tuple(loss.shape)}")
        loss = loss.item()
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not loss >= 0:
        raise ValueError(f"expected a non-negative mean cross-entropy, got {loss!r}")
    return math.exp(loss)
