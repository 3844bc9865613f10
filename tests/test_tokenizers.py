"""Tests for mmcourse.tokenizers: hand-computed vocabularies and merges, a from-scratch BPE
trainer that recounts every pair at every step, Hugging Face ``tokenizers`` applying our
merges, and round trips checked on arbitrary strings with hypothesis."""

import json
import re
from collections import Counter
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models

from mmcourse.data import shakespeare_text
from mmcourse.shapes import caption, caption_zh, make_scenes, questions
from mmcourse.tokenizers import (
    PRETOKENIZE_PATTERN,
    SPECIALS,
    ByteBPE,
    CharTokenizer,
    Merge,
    WordTokenizer,
)

PROPERTY = settings(max_examples=200, deadline=None)
# Strings that often break tokenizers: NUL, combining marks, emoji with modifiers and joiners,
# every kind of whitespace, Chinese, right-to-left text.
AWKWARD = ["\x00", "e\u0301 a\u0308", "👍🏽👨‍👩‍👧", " \t\n\r\x0b\x0c\u00a0\u3000  x", "左上有一个大的红色圆形，", "שָׁלוֹם", "_a_ 1_2", ""]
ENGLISH = "a large red circle at the top left and a small blue square at the bottom right"
CHINESE = "左上有一个大的红色圆形，右下有一个小的蓝色正方形"


@lru_cache(maxsize=None)
def shakespeare(start: int, stop: int) -> str:
    return shakespeare_text()[start:stop]


@lru_cache(maxsize=None)
def trained_bpe() -> ByteBPE:
    return ByteBPE.train(shakespeare(0, 50_000) + CHINESE * 20, 300, specials=("<bos>", "<eos>"))


# --------------------------------------------------------------------------- CharTokenizer

def test_char_tokenizer_ids_are_code_point_order_after_the_specials():
    tok = CharTokenizer.train("hello")
    assert tok.vocab == ("e", "h", "l", "o") and tok.vocab_size == 4
    assert tok.encode("hello") == [1, 0, 2, 2, 3]
    assert tok.decode([3, 2, 0]) == "ole"
    with_specials = CharTokenizer.train("hello", specials=SPECIALS)
    assert with_specials.specials == {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3}
    assert with_specials.encode("hello") == [5, 4, 6, 6, 7]
    assert with_specials.vocab_size == 8


def test_char_tokenizer_unknown_characters_fail_or_become_unk():
    with pytest.raises(ValueError, match=r"character 'z' \(number 2 of the text\) is not in the vocabulary"):
        CharTokenizer.train("abc").encode("abzc")
    tok = CharTokenizer("abc", specials=("<pad>", "<unk>"))
    assert tok.encode("abzc") == [2, 3, 1, 4]
    assert tok.decode([2, 3, 1, 4]) == "ab<unk>c"
    assert tok.decode([0, 2, 1, 0], skip_specials=True) == "a"
    # a text holding a special's name is just text, here with one known character
    assert tok.encode("<pad>") == [1, 1, 2, 1, 1]


@PROPERTY
@given(st.lists(st.characters(), min_size=1, unique=True).flatmap(
    lambda alphabet: st.tuples(st.just(alphabet), st.lists(st.sampled_from(alphabet)).map("".join))
))
def test_char_tokenizer_round_trip_over_its_alphabet(alphabet_and_text):
    alphabet, text = alphabet_and_text
    tok = CharTokenizer.train("".join(alphabet), specials=SPECIALS)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_char_tokenizer_save_load_round_trip(tmp_path):
    tok = CharTokenizer.train(shakespeare(0, 20_000) + "".join(AWKWARD), specials=SPECIALS)
    path = tmp_path / "chars.json"
    tok.save(path)
    loaded = CharTokenizer.load(path)
    assert loaded.vocab == tok.vocab and loaded.specials == tok.specials
    text = shakespeare(20_000, 21_000) + "".join(AWKWARD)
    assert loaded.encode(text) == tok.encode(text)
    assert json.loads(path.read_text(encoding="utf-8"))["kind"] == "CharTokenizer"


def test_char_tokenizer_rejects_bad_input(tmp_path):
    tok = CharTokenizer.train("abc")
    with pytest.raises(TypeError, match="expected text as a str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match=r"expected ids in \[0, 3\) \(the vocab_size\), got 3 at position 1"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match=r"got -1 at position 0"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="expected ids as ints, got 1.0"):
        tok.decode([1.0])
    with pytest.raises(TypeError, match="expected ids as a sequence of ints, got str"):
        tok.decode("abc")
    assert tok.decode(torch.tensor([2, 1, 0])) == tok.decode(np.array([2, 1, 0])) == "cba"
    with pytest.raises(ValueError, match="expected each character as a str of length 1, got 'ab'"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match=r"expected distinct characters and specials, got \['a'\] twice"):
        CharTokenizer("ab", specials=("a",))
    with pytest.raises(ValueError, match="expected distinct special tokens"):
        CharTokenizer("ab", specials=("<pad>", "<pad>"))
    with pytest.raises(FileNotFoundError, match="expected a CharTokenizer file"):
        CharTokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CharTokenizer.load(bad)
    bad.write_text(json.dumps({"kind": "CharTokenizer", "version": 1, "tokens": ["a"]}))
    with pytest.raises(ValueError, match=r"missing \['specials'\]"):
        CharTokenizer.load(bad)
    bad.write_text(json.dumps({"kind": "CharTokenizer", "version": 1, "tokens": ["a", "a"], "specials": []}))
    with pytest.raises(ValueError, match="malformed CharTokenizer file .* twice"):
        CharTokenizer.load(bad)
    tok.save(bad)
    with pytest.raises(ValueError, match="expected .* to hold a WordTokenizer"):
        WordTokenizer.load(bad)


# --------------------------------------------------------------------------- WordTokenizer

def test_word_split_english_chinese_and_punctuation():
    assert WordTokenizer.split(ENGLISH) == ENGLISH.split()
    assert WordTokenizer.split(CHINESE) == list(CHINESE)
    assert WordTokenizer.split("Hello, world! I'll go (now).") == [
        "Hello", ",", "world", "!", "I'll", "go", "(", "now", ")", ".",
    ]
    assert WordTokenizer.split("a\t b\n\nc2") == ["a", "b", "c2"]


def test_word_vocabulary_by_count_then_code_point():
    tok = WordTokenizer.train(["b a a", "c a b", "d"], specials=("<pad>", "<unk>"))
    assert tok.vocab == ("<pad>", "<unk>", "a", "b", "c", "d")
    assert tok.encode("a b c d") == [2, 3, 4, 5]
    assert WordTokenizer.train(["b a a", "c a b", "d"], min_count=2).vocab == ("a", "b")


def test_word_round_trip_on_every_shapes_world_text():
    scenes = make_scenes("train", 200, seed=0, max_objects=4)
    rng = np.random.default_rng(0)
    texts = [caption(s) for s in scenes] + [caption_zh(s) for s in scenes]
    texts += [f"{q} {a}" for s in scenes for q, a in questions(s, rng)]
    tok = WordTokenizer.train(texts, specials=SPECIALS)
    for text in texts:
        assert tok.decode(tok.encode(text)) == text
    ids = tok.encode(CHINESE)
    assert len(ids) == len(CHINESE)  # one token per character
    bos, eos = tok.specials["<bos>"], tok.specials["<eos>"]
    assert tok.decode([bos, *tok.encode(ENGLISH), eos]) == f"<bos> {ENGLISH} <eos>"
    assert tok.decode([bos, *tok.encode(ENGLISH), eos], skip_specials=True) == ENGLISH


def test_word_decode_writes_punctuation_without_stray_spaces():
    texts = ["Hello, world! I'll go (now): yes; [a] {b}.", "你好，世界。"]
    tok = WordTokenizer.train(texts)
    for text in texts:
        assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("world 你好 world")) == "world你好world"


def test_word_unknown_words_fail_or_become_unk():
    with pytest.raises(ValueError, match=r"word 'green' \(number 1 of the text\) is not in the vocabulary"):
        WordTokenizer.train([ENGLISH]).encode("a green circle")
    tok = WordTokenizer.train([ENGLISH], specials=SPECIALS)
    assert tok.decode(tok.encode("a green circle")) == "a <unk> circle"


@PROPERTY
@given(st.text())
@example("a'b ' c")
@example("x红' y (z) 々a")
@example("\u0301a\u0301")
def test_word_decode_then_split_gives_the_same_words(text):
    tok = WordTokenizer.train([text])
    assert WordTokenizer.split(tok.decode(tok.encode(text))) == WordTokenizer.split(text)


def test_word_tokenizer_save_load_and_bad_input(tmp_path):
    tok = WordTokenizer.train([ENGLISH, CHINESE], specials=SPECIALS)
    path = tmp_path / "words.json"
    tok.save(path)
    loaded = WordTokenizer.load(path)
    assert loaded.vocab == tok.vocab and loaded.encode(ENGLISH + CHINESE) == tok.encode(ENGLISH + CHINESE)
    with pytest.raises(TypeError, match="expected texts as a list of strings, got str"):
        WordTokenizer.train(ENGLISH)
    with pytest.raises(TypeError, match=r"expected texts\[1\] as a str, got int"):
        WordTokenizer.train(["a", 3])
    with pytest.raises(ValueError, match="expected min_count as a positive int, got 0"):
        WordTokenizer.train(["a"], min_count=0)
    with pytest.raises(ValueError, match="expected each word to be one piece of WordTokenizer.split, got 'a b'"):
        WordTokenizer(["a b"])


# --------------------------------------------------------------------------- ByteBPE: references

def _merge_reference(word: list[int], pair: tuple[int, int], new: int) -> list[int]:
    out, skip = [], False
    for a, b in zip(word, word[1:] + [None]):
        if skip:
            skip = False
        elif (a, b) == pair:
            out.append(new)
            skip = True
        else:
            out.append(a)
    return out


def naive_bpe(pieces: list[str], num_merges: int) -> list[tuple[int, int, int]]:
    """BPE as in the textbook: recount every pair of every piece occurrence at every step."""
    words = [list(p.encode("utf-8")) for p in pieces]
    merges = []
    for step in range(num_merges):
        counts = Counter(pair for w in words for pair in zip(w, w[1:]))
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges.append((*pair, counts[pair]))
        words = [_merge_reference(w, pair, 256 + step) for w in words]
    return merges


def test_bpe_hand_computed_example():
    # aaabdaaabac: aa occurs 4 times (overlaps counted) -> 256; then ab and (256, a) both
    # occur twice and the smaller pair (97, 98) wins -> 257; then (256, 257) twice -> 258;
    # then every pair once and the smallest, (97, 99) "ac", wins -> 259.
    tok = ByteBPE.train("aaabdaaabac", 4, pretokenize=None)
    assert tok.merges == [Merge(97, 97, 256, 4), Merge(97, 98, 257, 2), Merge(256, 257, 258, 2), Merge(97, 99, 259, 1)]
    assert [tok.vocab[m.id] for m in tok.merges] == [b"aa", b"ab", b"aaab", b"ac"]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 259]
    assert ByteBPE(tok.merges[:3], pretokenize=None).encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100, 258, 259]) == "aaabdaaabac"
    assert tok.token_text(258) == "aaab"


def test_bpe_pretokenisation_keeps_merges_inside_words():
    # xy xy xy as one piece: xy -> 256, then " xy" = (32, 256) ties with (256, 32) and wins,
    # then (256, 257). Cut into "xy", " xy", " xy", no pair is left after two merges.
    whole = ByteBPE.train("xy xy xy", 5, pretokenize=None)
    assert [(m.left, m.right, m.count) for m in whole.merges] == [(120, 121, 3), (32, 256, 2), (256, 257, 1), (258, 257, 1)]
    cut = ByteBPE.train("xy xy xy", 5)
    assert [(m.left, m.right, m.count) for m in cut.merges] == [(120, 121, 3), (32, 256, 2)]
    assert cut.encode("xy xy xy") == [256, 257, 257]


def test_default_pretokenisation_by_hand():
    tok = ByteBPE()
    assert tok.pretokenize_text("Hello,  world! I'll pay 100$.\n") == [
        "Hello", ",", " ", " world", "!", " I'll", " pay", " 100", "$.", "\n",
    ]
    assert tok.pretokenize_text(CHINESE) == ["左上有一个大的红色圆形", "，", "右下有一个小的蓝色正方形"]


def test_bpe_training_equals_recounting_every_step():
    text = shakespeare(100_000, 108_000)
    pieces = re.findall(PRETOKENIZE_PATTERN, text)
    assert "".join(pieces) == text
    tok = ByteBPE.train(text, 60)
    assert [(m.left, m.right, m.count) for m in tok.merges] == naive_bpe(pieces, 60)


def test_bpe_encoding_equals_hugging_face_bpe_with_the_same_merges():
    tok = trained_bpe()
    # Hugging Face's BPE model works on strings; stand each byte for a character of its own.
    as_chars = {b: chr(0x100 + b) for b in range(256)}
    strings = ["".join(as_chars[b] for b in token) for token in tok.vocab[:256 + len(tok.merges)]]
    assert len(set(strings)) == len(strings)
    reference = Tokenizer(models.BPE(
        {s: i for i, s in enumerate(strings)},
        [(strings[m.left], strings[m.right]) for m in tok.merges],
    ))
    text = shakespeare(200_000, 215_000) + "".join(AWKWARD) + CHINESE
    pieces = tok.pretokenize_text(text)
    expected = reference.encode_batch(["".join(as_chars[b] for b in p.encode("utf-8")) for p in pieces])
    assert tok.encode(text) == [i for e in expected for i in e.ids]


# --------------------------------------------------------------------------- ByteBPE: properties

def test_bpe_merge_count_vocab_size_and_specials():
    tok = trained_bpe()
    assert len(tok.merges) == 300 and [m.id for m in tok.merges] == list(range(256, 556))
    assert tok.vocab_size == 256 + 300 + 2
    assert tok.specials == {"<bos>": 556, "<eos>": 557}
    ids = [556, *tok.encode("To be"), 557]
    assert tok.decode(ids) == "<bos>To be<eos>"
    assert tok.decode(ids, skip_specials=True) == "To be"
    assert ByteBPE.train("ab", 5).merges == [Merge(97, 98, 256, 1)]  # runs out of pairs
    assert ByteBPE.train("", 5).merges == []


def test_bpe_fewer_merges_are_a_prefix_and_compression_improves_with_every_merge():
    text = shakespeare(0, 6_000)
    tok = ByteBPE.train(text, 50)
    assert ByteBPE.train(text, 20).merges == tok.merges[:20]
    lengths = [len(ByteBPE(tok.merges[:k]).encode(text)) for k in range(51)]
    assert lengths[0] == len(text.encode("utf-8"))
    assert all(a > b for a, b in zip(lengths, lengths[1:])), lengths


@PROPERTY
@given(st.text())
@example("".join(AWKWARD))
def test_bpe_round_trip_any_string(text):
    tok = trained_bpe()
    assert "".join(tok.pretokenize_text(text)) == text
    ids = tok.encode(text)
    assert all(0 <= i < 256 + len(tok.merges) for i in ids)
    assert tok.decode(ids) == text
    own = ByteBPE.train(text, 20)  # merges learned from the text itself
    assert own.decode(own.encode(text)) == text


def test_bpe_decode_of_a_cut_character():
    tok = ByteBPE()
    ids = tok.encode("😀")
    assert ids == list("😀".encode("utf-8"))
    assert tok.decode(ids[:3]) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids[:3], errors="strict")
    assert tok.decode_bytes(ids[:3]) == "😀".encode("utf-8")[:3]
    assert tok.token_text(0xF0) == "\\xf0"


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_bpe_save_load_gives_identical_encodings(tmp_path_factory, text):
    tok = trained_bpe()
    path = tmp_path_factory.mktemp("bpe") / "bpe.json"
    tok.save(path)
    loaded = ByteBPE.load(path)
    assert loaded.merges == tok.merges and loaded.specials == tok.specials
    assert loaded.pretokenize == tok.pretokenize
    assert loaded.encode(text) == tok.encode(text)
    assert [p.name for p in path.parent.iterdir()] == ["bpe.json"]  # no temporary file left


def test_bpe_save_overwrites_and_keeps_pattern_none(tmp_path):
    path = tmp_path / "bpe.json"
    trained_bpe().save(path)
    small = ByteBPE.train("aaabdaaabac", 3, pretokenize=None)
    small.save(path)
    loaded = ByteBPE.load(path)
    assert loaded.pretokenize is None and loaded.merges == small.merges
    assert loaded.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


# --------------------------------------------------------------------------- ByteBPE: errors

def test_bpe_rejects_bad_input():
    tok = trained_bpe()
    with pytest.raises(TypeError, match="expected text as a str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match=r"expected ids in \[0, 558\) \(the vocab_size\), got 558"):
        tok.decode([1, 558])
    with pytest.raises(ValueError, match="expected ids in"):
        tok.decode([-3])
    with pytest.raises(ValueError, match="expected text that UTF-8 can encode, got '\\\\ud800'"):
        tok.encode("a\ud800")
    with pytest.raises(ValueError, match="expected num_merges as an int >= 0, got -1"):
        ByteBPE.train("abc", -1)
    with pytest.raises(ValueError, match="expected num_merges as an int >= 0, got True"):
        ByteBPE.train("abc", True)
    with pytest.raises(TypeError, match="expected text as a str, got list"):
        ByteBPE.train(["abc"], 3)
    with pytest.raises(TypeError, match="expected pretokenize as a regular expression str or None, got int"):
        ByteBPE.train("abc", 3, pretokenize=1)
    with pytest.raises(ValueError, match="expected pretokenize as a valid regular expression"):
        ByteBPE.train("abc", 3, pretokenize="(")
    with pytest.raises(ValueError, match="cover the whole text, but its matches skip 2 characters"):
        ByteBPE.train("a b c", 3, pretokenize=r"\w+")
    # a pattern with groups still yields whole matches
    assert ByteBPE(pretokenize=r"(\w)+|\W").pretokenize_text("ab c") == ["ab", " ", "c"]
    with pytest.raises(ValueError, match=r"merge 0: expected left as an id of an earlier token in \[0, 256\), got 256"):
        ByteBPE([(256, 1)])
    with pytest.raises(ValueError, match=r"merge 1: the pair \(1, 2\) was already merged into 256"):
        ByteBPE([(1, 2), (1, 2)])
    with pytest.raises(ValueError, match="merge 0: expected a pair"):
        ByteBPE([(1, 2, 3)])


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("merges"), r"missing \['merges'\]"),
    (lambda c: c.update(kind="CharTokenizer"), "to hold a ByteBPE"),
    (lambda c: c.update(version=7), "expected format version 1"),
    (lambda c: c.update(merges={"a": 1}), "expected merges as a list, got dict"),
    (lambda c: c["merges"].append([1, 2]), r"merge 300: expected \[left, right, count\], got \[1, 2\]"),
    (lambda c: c["merges"].append([1, 9999, 3]), r"merge 300: expected right as an id of an earlier token"),
    (lambda c: c["merges"].append([1, "a", 3]), r"merge 300: expected right as an id"),
    (lambda c: c["merges"].append(c["merges"][0]), r"merge 300: the pair .* was already merged"),
    (lambda c: c["merges"].append([1, 2, -4]), r"merge 300: expected count as an int >= 0, got -4"),
    (lambda c: c.update(pretokenize="["), "expected pretokenize as a valid regular expression"),
    (lambda c: c.update(specials=["<a>", "<a>"]), "expected distinct special tokens"),
])
def test_bpe_load_rejects_malformed_files(tmp_path, change, message):
    path = tmp_path / "bpe.json"
    trained_bpe().save(path)
    content = json.loads(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        ByteBPE.load(path)
