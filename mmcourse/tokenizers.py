"""Tokenizers: text -> integer ids -> text.

Introduced in notebook 06 (character and byte-pair tokenizers, BPE trained by hand); the
character and word tokenizers are also used in notebook 03 (the RNN text encoder) and for the
shapes-world captions and questions in notebooks 08-11. The file follows the notebook:

1. :class:`CharTokenizer`, one id per character of a fixed alphabet;
2. :class:`WordTokenizer`, one id per word (per character for Chinese and Japanese);
3. :class:`ByteBPE`, byte-level byte-pair encoding: start from the 256 byte values and
   repeatedly merge the most frequent adjacent pair into a new token.

Every tokenizer maps a ``str`` to a ``list[int]`` of length ``T`` and back, has a
``vocab_size``, and saves to / loads from a JSON file.

**Special tokens** such as ``"<pad>"``, ``"<unk>"``, ``"<bos>"`` and ``"<eos>"`` are
explicit: a tokenizer has exactly the specials it was given, and ``specials`` maps each one
to its id. The character and word tokenizers put them first (ids ``0 .. k-1``, so ``"<pad>"``
listed first is id 0, the default ``pad_id`` of :class:`mmcourse.rnn.RNNEncoder`); the BPE
appends them after its merges, so byte and merge ids do not depend on them. ``encode`` never
produces a special id from text (the string ``"<eos>"`` in a text is just text); add them
yourself, e.g. ``[tok.specials["<bos>"], *tok.encode(text)]``. ``decode`` writes a special as
its name, or drops it with ``skip_specials=True``.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # a common choice, padding first so that it gets id 0

_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- checks and files

def _check_text(text: object, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected {name} as a str, got {type(text).__name__}")
    return text


def _check_specials(specials: object) -> tuple[str, ...]:
    if isinstance(specials, str) or not isinstance(specials, Iterable):
        raise TypeError(f"expected specials as a sequence of strings such as {SPECIALS}, got {specials!r}")
    specials = tuple(specials)
    for s in specials:
        if not isinstance(s, str) or not s:
            raise ValueError(f"expected every special token to be a non-empty str, got {s!r}")
    repeated = sorted({s for s in specials if specials.count(s) > 1})
    if repeated:
        raise ValueError(f"expected distinct special tokens, got {repeated} more than once")
    return specials


def _check_ids(ids: object, vocab_size: int) -> list[int]:
    """A list of ints in ``[0, vocab_size)``; accepts a list, tuple or 1-D tensor/array."""
    if hasattr(ids, "tolist"):  # a torch tensor or numpy array
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"expected ids as a sequence of ints, got {type(ids).__name__}")
    for i, value in enumerate(ids):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected ids as ints, got {value!r} ({type(value).__name__}) at position {i}")
        if not 0 <= value < vocab_size:
            raise ValueError(f"expected ids in [0, {vocab_size}) (the vocab_size), got {value} at position {i}")
    return list(ids)


def _write_json(path: str | os.PathLike, content: dict[str, Any]) -> None:
    """Write to a temporary file next to ``path``, then rename: a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(content, f, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read_json(path: str | os.PathLike, kind: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The content of a file written by ``kind.save``, with ``keys`` present."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a {kind} file at {path}, found none")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"expected {path} to hold a {kind} as JSON, but it is not valid JSON: {error}") from None
    if not isinstance(content, dict) or content.get("kind") != kind:
        found = content.get("kind") if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"expected {path} to hold a {kind} (\"kind\": \"{kind}\"), got {found!r}")
    if content.get("version") != _FORMAT_VERSION:
        raise ValueError(f"expected format version {_FORMAT_VERSION} in {path}, got {content.get('version')!r}")
    missing = [k for k in keys if k not in content]
    if missing:
        raise ValueError(f"expected keys {list(keys)} in {path}, missing {missing}")
    return content


# --------------------------------------------------------------------------- 1-2. table tokenizers

_Table = TypeVar("_Table", bound="_TableTokenizer")


class _TableTokenizer:
    """A fixed table of tokens, specials first; subclasses say how text splits and joins."""

    _kind = ""
    _unit = "token"

    def __init__(self, tokens: Iterable[str], specials: Iterable[str] = ()) -> None:
        specials = _check_specials(specials)
        tokens = tuple(tokens)
        for t in tokens:
            self._check_token(t)
        vocab = specials + tokens
        repeated = sorted(t for t, n in Counter(vocab).items() if n > 1)
        if repeated:
            raise ValueError(f"expected distinct {self._unit}s and specials, got {repeated} twice")
        self.vocab: tuple[str, ...] = vocab
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(vocab)}
        self.specials: dict[str, int] = {s: i for i, s in enumerate(specials)}
        self._text_ids = {t: i for i, t in enumerate(vocab) if i >= len(specials)}  # what text can map to

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _check_token(self, token: object) -> None:
        raise NotImplementedError

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def _join(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """``text`` -> ``T`` ids. An unknown token becomes ``"<unk>"`` if the tokenizer has
        that special, else it is a ``ValueError`` naming it."""
        pieces = self.split(_check_text(text))
        unk = self.specials.get(UNK)
        ids = []
        for i, piece in enumerate(pieces):
            id_ = self._text_ids.get(piece, unk)
            if id_ is None:
                raise ValueError(
                    f"{self._unit} {piece!r} (number {i} of the text) is not in the vocabulary of "
                    f"{self.vocab_size}; give the tokenizer a {UNK!r} special to map unknowns to it"
                )
            ids.append(id_)
        return ids

    def decode(self, ids: Sequence[int], skip_specials: bool = False) -> str:
        """``T`` ids -> text; specials are written as their names unless ``skip_specials``."""
        ids = _check_ids(ids, self.vocab_size)
        return self._join([self.vocab[i] for i in ids if not (skip_specials and self.vocab[i] in self.specials)])

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as JSON (atomically: the old file stays until the new one is whole)."""
        k = len(self.specials)
        _write_json(path, {
            "kind": self._kind, "version": _FORMAT_VERSION,
            "specials": list(self.vocab[:k]), "tokens": list(self.vocab[k:]),
        })

    @classmethod
    def load(cls: type[_Table], path: str | os.PathLike) -> _Table:
        """The tokenizer that :meth:`save` wrote to ``path``."""
        content = _read_json(path, cls._kind, ("specials", "tokens"))
        try:
            return cls(content["tokens"], content["specials"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"malformed {cls._kind} file {path}: {error}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, specials={list(self.specials)})"


class CharTokenizer(_TableTokenizer):
    """One id per character (Unicode code point). Introduced in notebook 06; used earlier,
    in notebook 03, for character tokens.

    ``CharTokenizer(chars, specials=())`` takes the alphabet in id order;
    :meth:`train` builds it from a text (characters sorted by code point, specials first).
    ``encode(text)`` -> ``T`` ids with ``T = len(text)``; ``decode(ids)`` -> text, so
    ``decode(encode(text)) == text`` for any text over the alphabet. A character outside
    the alphabet is an error, or ``"<unk>"`` (decoded as ``"<unk>"``) if that is a special.
    """

    _kind = "CharTokenizer"
    _unit = "character"

    @classmethod
    def train(cls, text: str, specials: Iterable[str] = ()) -> CharTokenizer:
        """The tokenizer whose alphabet is every character of ``text``."""
        return cls(sorted(set(_check_text(text))), specials)

    def _check_token(self, token: object) -> None:
        if not isinstance(token, str) or len(token) != 1:
            raise ValueError(f"expected each character as a str of length 1, got {token!r}")

    def split(self, text: str) -> list[str]:
        return list(_check_text(text))

    def _join(self, tokens: list[str]) -> str:
        return "".join(tokens)


# Han ideographs (with extension A and compatibility forms) and kana: written without spaces,
# so one token per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# a CJK character | a word, apostrophes inside it allowed (don't, o'er) | any other visible character
_WORD_PATTERN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:'[^\W{_CJK}]+)*|\S")
_WORD_RUN = re.compile(rf"[^\W{_CJK}]")
_NO_SPACE_BEFORE = set(".,!?;:)]}")
_NO_SPACE_AFTER = set("([{")


def _no_space_between(left: str, right: str) -> bool:
    # A space may only be left out where splitting again cannot glue two tokens into one:
    # next to a CJK character or a punctuation mark, never between two words.
    if right in _NO_SPACE_BEFORE or left in _NO_SPACE_AFTER:
        return True
    for t in (left, right):
        if len(t) == 1 and ord(t) >= 0x3000 and not _WORD_RUN.match(t):
            return True  # CJK, CJK punctuation such as "，" and "。", emoji
    return False


class WordTokenizer(_TableTokenizer):
    """One id per word; Chinese and Japanese one per character. Introduced in notebook 06;
    used earlier, in notebook 03, for word tokens, and for the shapes-world captions and
    questions in notebooks 08-11.

    :meth:`split` cuts a text into words (runs of letters and digits, apostrophes inside),
    single CJK characters and single punctuation marks; whitespace only separates.
    :meth:`train` builds the vocabulary from a list of texts: specials first, then words by
    falling count (ties in code point order), those seen fewer than ``min_count`` times left
    out. ``encode(text)`` -> ``T`` ids, one per piece of :meth:`split`; an unknown word is an
    error, or ``"<unk>"`` if that is a special. ``decode(ids)`` writes words with single
    spaces, none next to CJK characters, before ``. , ! ? ; : ) ] }`` or after ``( [ {``:
    ``decode(encode(text)) == text`` for text written that way (every shapes-world caption,
    English or Chinese, and question), and ``split(decode(encode(text))) == split(text)`` for
    any text of known words.
    """

    _kind = "WordTokenizer"
    _unit = "word"

    def __init__(self, words: Iterable[str], specials: Iterable[str] = ()) -> None:
        if isinstance(words, str):  # its characters would silently become the words
            raise TypeError("expected words as a list of strings, got one str")
        super().__init__(words, specials)

    @classmethod
    def train(cls, texts: Iterable[str], specials: Iterable[str] = (), min_count: int = 1) -> WordTokenizer:
        """The tokenizer of every word seen at least ``min_count`` times in ``texts``."""
        if isinstance(texts, str) or not isinstance(texts, Iterable):
            raise TypeError(f"expected texts as a list of strings, got {type(texts).__name__}")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"expected min_count as a positive int, got {min_count!r}")
        counts = Counter()
        for i, text in enumerate(texts):
            counts.update(cls.split(_check_text(text, f"texts[{i}]")))
        specials = _check_specials(specials)
        words = sorted((w for w, c in counts.items() if c >= min_count and w not in specials),
                       key=lambda w: (-counts[w], w))
        return cls(words, specials)

    def _check_token(self, token: object) -> None:
        if not isinstance(token, str) or self.split(token) != [token]:
            raise ValueError(f"expected each word to be one piece of WordTokenizer.split, got {token!r}")

    @staticmethod
    def split(text: str) -> list[str]:
        """The pieces of ``text``: words, single CJK characters, single punctuation marks."""
        return _WORD_PATTERN.findall(_check_text(text))

    def _join(self, tokens: list[str]) -> str:
        parts = tokens[:1]
        for left, right in zip(tokens, tokens[1:]):
            parts.append(right if _no_space_between(left, right) else " " + right)
        return "".join(parts)


# --------------------------------------------------------------------------- 3. byte-level BPE

# Pre-tokenisation: BPE learns merges inside these pieces only, so a token never spans two
# words. A word keeps the one space before it (" the" is a token, as in GPT-2), apostrophes
# inside words stay (o'er, I'll), a run of whitespace leaves its last space to the next word.
# Every character is a letter, a digit, "_", other visible, or whitespace, and each has an
# alternative, so the pieces always join back to the whole text. Python's ``re`` has no \p{L}:
# [^\W\d_] is "a word character that is not a digit or underscore", i.e. a letter of any script.
PRETOKENIZE_PATTERN = (
    r" ?[^\W\d_]+(?:'[^\W\d_]+)*"   # a word
    r"| ?\d+"                       # a number
    r"| ?(?:[^\s\w]|_)+"            # punctuation, symbols, emoji
    r"|\s+(?!\S)"                   # whitespace, less the last space before a word
    r"|\s+"                         # whitespace at the end
)

_CACHE_LIMIT = 1 << 17  # pre-tokens kept by encode's cache before it starts afresh


@dataclass(frozen=True)
class Merge:
    """One step of BPE training: tokens ``left`` and ``right`` next to each other become
    token ``id``; ``count`` is how often the pair occurred (overlaps included) when merged,
    0 when not known (merges given as bare pairs)."""

    left: int
    right: int
    id: int
    count: int


def _merge_pair(ids: Sequence[int], left: int, right: int, new: int) -> list[int]:
    """Replace every ``left, right`` in ``ids``, scanning left to right (so aaa -> Za)."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == left and ids[i + 1] == right:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _compile(pattern: object) -> re.Pattern | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise TypeError(f"expected pretokenize as a regular expression str or None, got {type(pattern).__name__}")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"expected pretokenize as a valid regular expression, got {pattern!r}: {error}") from None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"expected text that UTF-8 can encode, got {error.object[error.start:error.end]!r} "
                         f"at position {error.start} (a lone surrogate)") from None


class ByteBPE:
    """Byte-level byte-pair encoding. Introduced in notebook 06.

    Ids ``0..255`` are the byte values, ``256 .. 256 + len(merges) - 1`` the merged tokens in
    the order they were learned, then the specials: ``vocab_size = 256 + len(merges) +
    len(specials)``. ``encode(text)`` -> ``T`` ids: the UTF-8 bytes of each pre-token (see
    ``PRETOKENIZE_PATTERN``), merged by rank (the earliest learned merge present first), which
    reproduces training. ``decode(ids)`` joins the tokens' bytes and decodes them as UTF-8;
    ``decode(encode(text)) == text`` for every text. Ids that cut a character in two (say the
    first ``T - 1`` ids of an emoji) decode with ``errors="replace"`` to U+FFFD by default;
    pass ``errors="strict"`` to get a ``UnicodeDecodeError`` instead.

    Construct with :meth:`train`, :meth:`load`, or ``ByteBPE(merges, pretokenize, specials)``
    from ``(left, right)`` pairs (or :class:`Merge` records), e.g. a prefix of another
    tokenizer's merges. ``merges`` is the training history, readable with :meth:`token_text`::

        for m in tok.merges[:10]:
            print(f"{tok.token_text(m.left)!r} + {tok.token_text(m.right)!r} -> {m.id}  ({m.count}x)")
    """

    def __init__(
        self, merges: Iterable[Merge | tuple[int, int]] = (),
        pretokenize: str | None = PRETOKENIZE_PATTERN, specials: Iterable[str] = (),
    ) -> None:
        self._pattern = _compile(pretokenize)
        self.pretokenize = pretokenize
        self.merges: list[Merge] = []
        vocab = [bytes([b]) for b in range(256)]
        self._rank: dict[tuple[int, int], int] = {}  # pair -> id of the merged token
        for i, m in enumerate(merges):
            left, right, count = self._check_merge(i, m)
            if (left, right) in self._rank:
                earlier = self._rank[left, right]
                raise ValueError(f"merge {i}: the pair ({left}, {right}) was already merged into {earlier}")
            self._rank[left, right] = 256 + i
            self.merges.append(Merge(left, right, 256 + i, count))
            vocab.append(vocab[left] + vocab[right])
        special_names = _check_specials(specials)
        self.specials: dict[str, int] = {s: len(vocab) + i for i, s in enumerate(special_names)}
        vocab.extend(s.encode("utf-8") for s in special_names)
        self.vocab: tuple[bytes, ...] = tuple(vocab)
        self._cache: dict[str, list[int]] = {}

    @staticmethod
    def _check_merge(i: int, m: object) -> tuple[int, int, int]:
        """(left, right, count) of merge number ``i``, given as a :class:`Merge` or a pair."""
        new = 256 + i
        if isinstance(m, Merge):
            if m.id != new:
                raise ValueError(f"merge {i}: expected the merged token's id to be {new}, got {m.id}")
            left, right, count = m.left, m.right, m.count
        elif isinstance(m, Sequence) and not isinstance(m, (str, bytes)) and len(m) == 2:
            (left, right), count = m, 0
        else:
            raise ValueError(f"merge {i}: expected a pair (left, right) of token ids, got {m!r}")
        for side, value in (("left", left), ("right", right)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < new:
                raise ValueError(
                    f"merge {i}: expected {side} as an id of an earlier token in [0, {new}), got {value!r}"
                )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"merge {i}: expected count as an int >= 0, got {count!r}")
        return left, right, count

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def pretokenize_text(self, text: str) -> list[str]:
        """The pieces BPE works inside; they join back to ``text``."""
        text = _check_text(text)
        if self._pattern is None:
            return [text] if text else []
        if self._pattern.groups:  # findall would return the groups, not the whole matches
            pieces = [m.group() for m in self._pattern.finditer(text)]
        else:
            pieces = self._pattern.findall(text)
        if sum(map(len, pieces)) != len(text):
            raise ValueError(f"expected the pretokenize pattern to cover the whole text, "
                             f"but its matches skip {len(text) - sum(map(len, pieces))} characters")
        return [p for p in pieces if p]

    # ----------------------------------------------------------------------- training

    @classmethod
    def train(
        cls, text: str, num_merges: int, *,
        pretokenize: str | None = PRETOKENIZE_PATTERN, specials: Iterable[str] = (),
    ) -> ByteBPE:
        """Learn ``num_merges`` merges from ``text`` (fewer if the text runs out of pairs).

        Each step merges the adjacent pair of tokens that occurs most often, counting every
        pre-token as often as it occurs and overlapping pairs (``aaa`` holds ``aa`` twice);
        ties go to the smallest pair ``(left id, right id)``. ``pretokenize=None`` treats the
        whole text as one piece, so merges may span spaces; every merge then rescans the
        whole text, which suits small examples only.

        Each distinct pre-token is tokenised once, with its count as weight; the pair counts
        are kept up to date by redoing only the pre-tokens that hold the merged pair (found
        through an index pair -> pre-tokens), and a heap finds the top pair.
        """
        text = _check_text(text)
        if isinstance(num_merges, bool) or not isinstance(num_merges, int) or num_merges < 0:
            raise ValueError(f"expected num_merges as an int >= 0, got {num_merges!r}")
        tokenizer = cls((), pretokenize, specials)  # checks pretokenize and specials
        pieces = Counter(tokenizer.pretokenize_text(text))
        words = [list(_utf8(piece)) for piece in pieces]
        weights = list(pieces.values())

        counts: dict[tuple[int, int], int] = Counter()
        where: dict[tuple[int, int], set[int]] = {}
        for w, (ids, weight) in enumerate(zip(words, weights)):
            for pair in zip(ids, ids[1:]):
                counts[pair] += weight
                where.setdefault(pair, set()).add(w)
        heap = [(-c, pair) for pair, c in counts.items()]
        heapq.heapify(heap)

        merges = []
        while len(merges) < num_merges and heap:
            minus_count, pair = heapq.heappop(heap)
            if counts.get(pair) != -minus_count:
                continue  # stale: the count changed after this entry was pushed
            new = 256 + len(merges)
            merges.append(Merge(pair[0], pair[1], new, -minus_count))
            changed = set()
            for w in where.pop(pair):
                old, weight = words[w], weights[w]
                merged = _merge_pair(old, pair[0], pair[1], new)
                before, after = list(zip(old, old[1:])), list(zip(merged, merged[1:]))
                for p in before:
                    counts[p] -= weight
                for p in after:
                    counts[p] += weight
                for p in set(before).difference(after):
                    if p != pair:
                        where[p].discard(w)
                for p in after:
                    where.setdefault(p, set()).add(w)
                changed.update(before, after)
                words[w] = merged
            for p in changed:
                if counts[p] > 0:
                    heapq.heappush(heap, (-counts[p], p))
                else:
                    del counts[p]
                    where.pop(p, None)
        return cls(merges, pretokenize, specials)

    # ----------------------------------------------------------------------- encoding

    def _encode_piece(self, piece: str) -> list[int]:
        ids = list(_utf8(piece))
        rank, absent = self._rank, len(self.vocab)
        while len(ids) > 1:
            best = min(zip(ids, ids[1:]), key=lambda p: rank.get(p, absent))
            if best not in rank:
                break
            ids = _merge_pair(ids, best[0], best[1], rank[best])
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """``text`` -> ``T`` ids (never a special id)."""
        ids, cache = [], self._cache
        for piece in self.pretokenize_text(text):
            piece_ids = cache.get(piece)
            ids.extend(self._encode_piece(piece) if piece_ids is None else piece_ids)
        return ids

    def decode_bytes(self, ids: Sequence[int], skip_specials: bool = False) -> bytes:
        """``T`` ids -> the bytes they stand for."""
        ids = _check_ids(ids, self.vocab_size)
        first_special = 256 + len(self.merges)
        return b"".join(self.vocab[i] for i in ids if not (skip_specials and i >= first_special))

    def decode(self, ids: Sequence[int], errors: str = "replace", skip_specials: bool = False) -> str:
        """``T`` ids -> text; ``errors`` as in ``bytes.decode`` for ids that cut a character."""
        return self.decode_bytes(ids, skip_specials).decode("utf-8", errors=errors)

    def token_text(self, id: int) -> str:
        """A token's bytes as readable text (bytes that are not whole UTF-8 characters as ``\\xNN``)."""
        (id,) = _check_ids([id], self.vocab_size)
        return self.vocab[id].decode("utf-8", errors="backslashreplace")

    # ----------------------------------------------------------------------- files

    def save(self, path: str | os.PathLike) -> None:
        """Write merges (with counts), pattern and specials as JSON, atomically."""
        _write_json(path, {
            "kind": "ByteBPE", "version": _FORMAT_VERSION, "pretokenize": self.pretokenize,
            "specials": list(self.specials), "merges": [[m.left, m.right, m.count] for m in self.merges],
        })

    @classmethod
    def load(cls, path: str | os.PathLike) -> ByteBPE:
        """The tokenizer that :meth:`save` wrote to ``path``."""
        content = _read_json(path, "ByteBPE", ("pretokenize", "specials", "merges"))
        merges = content["merges"]
        try:
            if not isinstance(merges, list):
                raise ValueError(f"expected merges as a list, got {type(merges).__name__}")
            records = []
            for i, m in enumerate(merges):
                if not isinstance(m, list) or len(m) != 3:
                    raise ValueError(f"merge {i}: expected [left, right, count], got {m!r}")
                records.append(Merge(m[0], m[1], 256 + i, m[2]))
            return cls(records, content["pretokenize"], content["specials"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"malformed ByteBPE file {path}: {error}") from None

    def __repr__(self) -> str:
        return f"ByteBPE(merges={len(self.merges)}, vocab_size={self.vocab_size}, specials={list(self.specials)})"
