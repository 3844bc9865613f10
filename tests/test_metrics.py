"""Tests for mmcourse.metrics against values counted by hand, including the examples of the BLEU paper."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmcourse.metrics import (
    accuracy,
    bleu,
    bleu_details,
    edit_distance,
    exact_match,
    normalize_answer,
    perplexity,
    word_error_rate,
    word_errors,
)

# Papineni et al. (2002), "BLEU: a method for automatic evaluation of machine translation",
# example 1, without the final full stops.
CANDIDATE_1 = "It is a guide to action which ensures that the military always obeys the commands of the party"
CANDIDATE_2 = "It is to insure the troops forever hearing the activity guidebook that party direct"
REFERENCES = [
    "It is a guide to action that ensures that the military will forever heed Party commands",
    "It is the guiding principle which guarantees the military forces always being under the command of the Party",
    "It is the practical guide for the army always to heed the directions of the party",
]


# --------------------------------------------------------------------------- accuracy

def test_accuracy_of_labels_scores_and_lists():
    targets = torch.tensor([0, 2, 1, 1])
    assert accuracy(torch.tensor([0, 2, 2, 1]), targets) == 0.75
    logits = torch.tensor([[3.0, 0.0, 1.0], [0.0, 0.0, 5.0], [1.0, 2.0, 0.0], [9.0, 0.0, 0.0]])  # arg-max 0, 2, 1, 0
    assert accuracy(logits, targets) == 0.75
    assert accuracy(torch.zeros(2, 3, dtype=torch.long), torch.tensor([[0, 1, 0], [0, 0, 2]])) == 4 / 6
    assert accuracy(["red", "two", "yes"], ["red", "three", "yes"]) == 2 / 3


def test_accuracy_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"expected predictions of shape \(4,\) \(labels\) or \(4, 'K'\) \(scores\)"):
        accuracy(torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="expected targets as integer labels, got torch.float32"):
        accuracy(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(TypeError, match="expected predictions and targets both as tensors, got targets as list"):
        accuracy(torch.zeros(2), [0, 1])
    with pytest.raises(ValueError, match="expected as many targets as predictions, got 1 targets for 2 predictions"):
        accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="expected at least one prediction"):
        accuracy([], [])


# --------------------------------------------------------------------------- exact match

def test_normalize_answer_drops_case_punctuation_and_spacing():
    assert normalize_answer("  The   Circle. ") == "the circle"
    assert normalize_answer("红色，圆形。") == "红色 圆形"
    assert normalize_answer("a circle") != normalize_answer("circle")  # articles count


def test_exact_match_with_several_accepted_answers():
    predictions = ["Red.", "blue", "two"]
    references = ["red", ["green", "blue"], "three"]
    assert exact_match(predictions, references) == 2 / 3
    assert exact_match(predictions, references, normalize=False) == 1 / 3


def test_exact_match_rejects_bad_inputs():
    with pytest.raises(TypeError, match="expected predictions as a list of strings, got one str 'red'"):
        exact_match("red", ["red"])
    with pytest.raises(ValueError, match="expected as many references as predictions, got 2 references for 1"):
        exact_match(["red"], ["red", "blue"])
    with pytest.raises(TypeError, match=r"expected references\[0\]\[1\] to be a str, got int"):
        exact_match(["red"], [["red", 3]])


# --------------------------------------------------------------------------- BLEU

def test_bleu_paper_example_1_counted_by_hand():
    d = bleu_details([CANDIDATE_1], [REFERENCES])
    # Unigrams: every word but "obeys" occurs in a reference; "the" 3 times, as in reference 3.
    # Bigrams:  It is, is a, a guide, guide to, to action, ensures that, that the, the military,
    #           of the, the party.
    # Trigrams: It is a, is a guide, a guide to, guide to action, ensures that the,
    #           that the military, of the party.
    # 4-grams:  It is a guide, is a guide to, a guide to action, ensures that the military.
    assert d.matches == (17, 10, 7, 4)
    assert d.totals == (18, 17, 16, 15)
    # c = 18 and the nearest reference has 18 words too, so no brevity penalty.
    assert (d.candidate_length, d.reference_length, d.brevity_penalty) == (18, 18, 1.0)
    # (17/18 * 10/17 * 7/16 * 4/15) ** (1/4) = (280 / 4320) ** (1/4) = (7/108) ** (1/4)
    assert d.score == pytest.approx((7 / 108) ** 0.25, rel=1e-12)


def test_bleu_paper_example_1_second_candidate_precisions():
    d = bleu_details([CANDIDATE_2], [REFERENCES])
    assert d.precisions[:2] == (8 / 14, 1 / 13)  # the paper's 8/14 and 1/13
    assert d.score == 0.0  # it shares no trigram with any reference


def test_bleu_is_corpus_level_and_add_one_smoothing():
    d = bleu_details([CANDIDATE_1, CANDIDATE_2], [REFERENCES, REFERENCES], smoothing="add-one")
    assert d.matches == (25, 11, 7, 4) and d.totals == (32, 30, 28, 26)
    # c = 18 + 14 = 32; nearest reference lengths 18 and 16 give r = 34.
    bp = math.exp(1 - 34 / 32)
    by_hand = bp * (25 / 32 * 12 / 31 * 8 / 29 * 5 / 27) ** 0.25  # +1 on both sides for n >= 2
    assert d.brevity_penalty == pytest.approx(bp, rel=1e-12)
    assert d.score == pytest.approx(by_hand, rel=1e-12)
    # The same corpus without smoothing: matches and totals add up before dividing.
    plain = bleu_details([CANDIDATE_1, CANDIDATE_2], [REFERENCES, REFERENCES])
    assert plain.precisions == (25 / 32, 11 / 30, 7 / 28, 4 / 26)
    assert plain.score == pytest.approx(bp * (25 / 32 * 11 / 30 * 7 / 28 * 4 / 26) ** 0.25, rel=1e-12)


def test_bleu_clips_repeated_words_paper_example_2():
    candidate = ["the the the the the the the"]
    references = [["the cat is on the mat", "there is a cat on the mat"]]
    d = bleu_details(candidate, references)
    assert d.precisions[0] == 2 / 7  # "the" counts at most twice, as often as in reference 1
    assert d.score == 0.0
    # exp smoothing: the 1st, 2nd and 3rd orders without a match get 1/(2*6), 1/(4*5), 1/(8*4).
    smoothed = bleu(candidate, references, smoothing="exp")
    assert smoothed == pytest.approx((2 / 7 * 1 / 12 * 1 / 20 * 1 / 32) ** 0.25, rel=1e-12)


def test_bleu_clips_by_the_best_single_reference():
    d = bleu_details(["the the cat"], [["the cat", "the the dog"]], max_n=1)
    assert d.matches == (3,)


def test_bleu_brevity_penalty_and_ties_in_reference_length():
    # A short candidate with perfect precision is penalised: BP = exp(1 - 6/2).
    assert bleu(["the cat"], ["the cat is on the mat"], max_n=2) == pytest.approx(math.exp(-2), rel=1e-12)
    # ... and has no trigram at all, so 4-gram BLEU gives 0 unless smoothed with add-one.
    assert bleu(["the cat"], ["the cat is on the mat"]) == 0.0
    # Equally near references of 4 and 6 words: the shorter counts, so 5 words are not too short.
    d = bleu_details(["a b c d e"], [["a b c d", "a b c d e f"]])
    assert (d.reference_length, d.brevity_penalty, d.score) == (4, 1.0, 1.0)


def test_bleu_of_identical_texts_is_one_and_chinese_by_character():
    captions = ["a large red circle at the top left", "a small blue square at the bottom right"]
    assert bleu(captions, captions) == 1.0
    zh, zh_wrong = "左上有一个大的红色圆形", "左上有一个大的蓝色圆形"
    d = bleu_details([zh_wrong], [zh], tokenize=list, max_n=1)
    assert d.precisions == (10 / 11,)


def test_bleu_rejects_bad_inputs():
    with pytest.raises(TypeError, match="expected candidates as a list of strings, got one str"):
        bleu("a cat", ["a cat"])
    with pytest.raises(ValueError, match="expected as many references as candidates, got 1 references for 2"):
        bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"expected smoothing in \('none', 'add-one', 'exp'\), got 'laplace'"):
        bleu(["a"], ["a"], smoothing="laplace")
    with pytest.raises(ValueError, match="expected max_n to be a positive int, got 0"):
        bleu(["a"], ["a"], max_n=0)
    with pytest.raises(ValueError, match=r"expected references\[0\] as a non-empty list of strings"):
        bleu(["a"], [[]])
    with pytest.raises(TypeError, match="expected tokenize to return a list of str, got str"):
        bleu(["a"], ["a"], tokenize=str.lower)


# --------------------------------------------------------------------------- word error rate

def test_edit_distance_textbook_examples():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("", "abc") == 3
    assert edit_distance(["red", "circle"], ["red", "circle"]) == 0
    with pytest.raises(TypeError, match="expected b as a str or a list, got int"):
        edit_distance("a", 3)


def test_word_errors_count_each_kind_of_edit():
    reference = "the cat sat on the mat"
    assert word_errors("the cat sat on mat", reference) == (0, 1, 0, 6)
    assert word_errors("a cat sat on the mat today", reference) == (1, 0, 1, 6)
    assert word_errors("", reference) == (0, 6, 0, 6)
    assert word_errors("b a", "a b").total == 2


def test_word_error_rate_by_hand():
    assert word_error_rate("a cat sat on the mat today", "the cat sat on the mat") == 2 / 6
    assert word_error_rate("no no no", "yes") == 3.0  # one substitution, two insertions, one word
    # Corpus level: 1 error in 10 reference words, not the mean (1/2 + 0/8) / 2 of the two rates.
    hypotheses = ["a c", "a b c d e f g h"]
    references = ["a b", "a b c d e f g h"]
    assert word_error_rate(hypotheses, references) == 1 / 10
    assert word_error_rate("红色圆形", "红色方形", tokenize=list) == 1 / 4


def test_word_error_rate_rejects_bad_inputs():
    with pytest.raises(ValueError, match="expected references with at least one word"):
        word_error_rate("a", "")
    with pytest.raises(ValueError, match="expected as many references as hypotheses, got 1 references for 2"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="expected hypotheses as a list of strings, got one str"):
        word_error_rate("a", ["a"])
    with pytest.raises(TypeError, match="expected reference to be a str, got list"):
        word_errors("a", ["a"])


# --------------------------------------------------------------------------- perplexity

def test_perplexity_is_the_exponential_of_cross_entropy():
    assert perplexity(math.log(65)) == pytest.approx(65)
    assert perplexity(torch.tensor(0.0)) == 1.0
    logits = torch.randn(7, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    targets = torch.arange(7)
    probabilities = torch.softmax(logits, -1)[targets, targets]
    geometric_mean = probabilities.prod() ** (1 / 7)  # perplexity = 1 / geometric mean probability
    assert perplexity(F.cross_entropy(logits, targets)) == pytest.approx(1 / geometric_mean.item(), rel=1e-12)


def test_perplexity_rejects_bad_losses():
    with pytest.raises(ValueError, match="expected a non-negative mean cross-entropy, got -1"):
        perplexity(-1)
    with pytest.raises(ValueError, match="expected a non-negative mean cross-entropy, got nan"):
        perplexity(float("nan"))
    with pytest.raises(ValueError, match=r"expected a scalar loss, got shape \(2,\)"):
        perplexity(torch.zeros(2))
