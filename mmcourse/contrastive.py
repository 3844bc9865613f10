"""Contrastive alignment: images, texts and sounds mapped into one space where matching pairs meet.

Introduced in notebook 08. Each modality gets a *tower*: an encoder built earlier in the
course, then a projection onto the unit sphere of a shared ``dim``-dimensional space. Training
pulls the embeddings of matching pairs (a digit image and the spoken or written word for it)
together and pushes the other pairs of the batch apart, as CLIP does for images and captions.
The file reads in the order the parts compose:

1. :class:`TextEncoder`, the text tower's encoder: token and position embeddings, then
   :class:`mmcourse.transformer.Encoder` blocks (none: a bag of words), then a mean over the
   real tokens. Images use :class:`mmcourse.vision.CNNEncoder` (or
   :class:`~mmcourse.vision.PatchEmbedding`), sounds :class:`mmcourse.audio.AudioEncoder`;
2. :class:`Tower`: any of those encoders → one vector → linear projection → unit length;
3. :func:`info_nce`: the symmetric contrastive loss over a batch of pairs;
4. :class:`ContrastiveModel`: two or three towers and a learned temperature;
5. evaluation: :func:`similarity`, :func:`retrieval_ranks`, :func:`recall_at_k` and
   :func:`zero_shot_classify`.

Shapes: ``B`` batch, ``T`` tokens, ``C`` an encoder's width, ``D`` the shared space's width
(``dim``), ``Q`` queries, ``G`` gallery items, ``K`` classes, ``P`` prompts per class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse.transformer import Encoder, LearnedPositions

__all__ = [
    "TextFeatures",
    "TextEncoder",
    "Tower",
    "info_nce",
    "ContrastiveModel",
    "similarity",
    "retrieval_ranks",
    "recall_at_k",
    "zero_shot_classify",
]


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected {name} to be a positive int, got {value!r}")


def _check_matrix(name: str, x: object, layout: str = "(B, D)") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"expected {name} of shape {layout}, got {_shape(x)}")
    if not x.is_floating_point():
        raise TypeError(f"expected {name} of a floating dtype, got {x.dtype}")
    return x


# --------------------------------------------------------------------------- 1. text encoder

class TextFeatures(NamedTuple):
    """What :class:`TextEncoder` returns: ``pooled`` (B, C), ``tokens`` (B, T, C), ``mask`` (B, T)."""

    pooled: Tensor
    tokens: Tensor
    mask: Tensor


class TextEncoder(nn.Module):
    """Token ids → embeddings + learned positions → ``n_layer`` encoder blocks → mean over real tokens.

    Introduced in notebook 08; also the question encoder of notebook 09. ``forward(tokens
    (B, T), padding_mask=None)`` → :class:`TextFeatures`: ``tokens`` (B, T, C) one vector per
    position, ``pooled`` (B, C) their mean over the real tokens, ``mask`` (B, T) ``True`` for
    real tokens. Without ``padding_mask``, every id other than ``pad_id`` is a real token.
    ``n_layer=0`` leaves out the transformer: the mean of the embeddings is then a bag of
    words, blind to word order apart from what the position vectors add.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        *,
        n_layer: int = 1,
        n_head: int = 4,
        max_len: int = 64,
        pad_id: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("dim", dim), ("n_head", n_head), ("max_len", max_len)):
            _positive_int(name, value)
        if isinstance(n_layer, bool) or not isinstance(n_layer, int) or n_layer < 0:
            raise ValueError(f"expected n_layer to be an int >= 0, got {n_layer!r}")
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < vocab_size:
            raise ValueError(f"expected pad_id as an int in [0, vocab_size={vocab_size}), got {pad_id!r}")
        self.vocab_size, self.dim, self.pad_id = vocab_size, dim, pad_id
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.positions = LearnedPositions(max_len, dim)
        self.encoder = Encoder(dim, n_head, n_layer, dropout=dropout) if n_layer else None

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> TextFeatures:
        if not isinstance(tokens, Tensor) or tokens.dim() != 2 or 0 in tokens.shape:
            raise ValueError(f"expected tokens of shape (B, T), got {_shape(tokens)}")
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise TypeError(f"expected tokens as integer ids (torch.long), got {tokens.dtype}")
        if tokens.min() < 0 or tokens.max() >= self.vocab_size:
            raise ValueError(
                f"expected token ids in [0, vocab_size={self.vocab_size}), "
                f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
            )
        if padding_mask is None:
            mask = tokens != self.pad_id
        elif not isinstance(padding_mask, Tensor) or padding_mask.shape != tokens.shape:
            raise ValueError(
                f"expected padding_mask of shape (B, T) = {tuple(tokens.shape)}, True for real tokens, "
                f"got {_shape(padding_mask)}"
            )
        elif padding_mask.is_floating_point() or padding_mask.is_complex():
            raise TypeError(f"expected padding_mask of dtype bool (or 0/1 integers), got {padding_mask.dtype}")
        else:
            mask = padding_mask.to(device=tokens.device, dtype=torch.bool)
        empty = (~mask.any(dim=1)).nonzero().flatten()
        if len(empty):
            raise ValueError(f"row {int(empty[0])} of tokens has no real token (all pad_id={self.pad_id})")
        B, T = tokens.shape
        x = self.embed(tokens) + self.positions(T)  # (B, T, C)
        if self.encoder is not None:
            x = self.encoder(x, padding_mask=mask)
        weights = mask.to(x.dtype)[..., None]  # (B, T, 1)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1)  # (B, C)
        return TextFeatures(pooled, x, mask)


# --------------------------------------------------------------------------- 2. towers

class Tower(nn.Module):
    """An encoder, then a projection onto the unit sphere of the shared space.

    Introduced in notebook 08. ``Tower(encoder, in_dim, dim)``: ``forward(*inputs)`` runs
    ``encoder(*inputs)`` and takes one vector per example from what it returns: the output
    itself if it is a tensor, else its first element (``AudioEncoder``'s ``pooled``,
    ``TextEncoder``'s ``pooled``, ``RNNEncoder``'s ``last``); a sequence (B, N, in_dim), as
    from ``PatchEmbedding``, is averaged over N. That vector (B, in_dim) goes through a linear
    layer (or, with ``hidden``, a two-layer MLP) to (B, dim) and is scaled to length 1, so
    that the dot product of two embeddings is their cosine similarity.
    """

    def __init__(self, encoder: nn.Module, in_dim: int, dim: int, *, hidden: int | None = None) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"expected encoder to be an nn.Module, got {type(encoder).__name__}")
        _positive_int("in_dim", in_dim)
        _positive_int("dim", dim)
        if hidden is not None:
            _positive_int("hidden", hidden)
        self.encoder, self.in_dim, self.dim = encoder, in_dim, dim
        if hidden is None:
            self.proj = nn.Linear(in_dim, dim)
        else:
            self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, *inputs: Tensor, **options: object) -> Tensor:
        out = self.encoder(*inputs, **options)
        vector = out if isinstance(out, Tensor) else out[0]
        if isinstance(vector, Tensor) and vector.dim() == 3:
            vector = vector.mean(dim=1)  # (B, N, in_dim) -> (B, in_dim)
        if not isinstance(vector, Tensor) or vector.dim() != 2 or vector.shape[1] != self.in_dim:
            raise ValueError(
                f"expected the {type(self.encoder).__name__} to give vectors (B, in_dim={self.in_dim}) "
                f"or sequences (B, N, {self.in_dim}), got {_shape(vector)}"
            )
        return F.normalize(self.proj(vector), dim=-1)  # (B, D), unit length


# --------------------------------------------------------------------------- 3. InfoNCE

def _check_logit_scale(logit_scale: object) -> None:
    if isinstance(logit_scale, Tensor):
        if logit_scale.numel() != 1 or not logit_scale.is_floating_point():
            raise ValueError(
                f"expected logit_scale as a number or a one-element float tensor, "
                f"got {_shape(logit_scale)} of {logit_scale.dtype}"
            )
        if torch.compiler.is_compiling():  # reading the value back would break the compiled graph
            return
        value = logit_scale.item()
    elif isinstance(logit_scale, (int, float)) and not isinstance(logit_scale, bool):
        value = logit_scale
    else:
        raise TypeError(f"expected logit_scale as a number or a tensor, got {type(logit_scale).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"expected logit_scale > 0 and finite (it is 1 / temperature), got {value}")


def info_nce(a: Tensor, b: Tensor, logit_scale: float | Tensor = 1.0) -> Tensor:
    """Symmetric InfoNCE: row ``i`` of ``a`` and row ``i`` of ``b`` are a pair, all others are not.

    Introduced in notebook 08. ``a`` and ``b`` (B, D), usually unit vectors from two
    :class:`Tower` s, so that ``a @ b.T`` holds cosine similarities. With
    ``logits = logit_scale * a @ b.T`` (B, B), each row asks "which ``b`` belongs to this
    ``a``?" and each column the reverse, both answered by a softmax over the batch::

        loss_ab = mean_i [ logsumexp_j logits[i, j] - logits[i, i] ]
        loss_ba = mean_j [ logsumexp_i logits[i, j] - logits[j, j] ]
        loss    = (loss_ab + loss_ba) / 2

    i.e. cross-entropy with the diagonal as the right class, in both directions. Returns a
    scalar. ``logit_scale`` = 1 / temperature (a number or a one-element tensor, e.g. the
    learned one): the larger, the more sharply the loss punishes a close negative. An
    untrained model whose similarities are all equal has loss ``ln B``.
    """
    _check_matrix("a", a)
    _check_matrix("b", b)
    if a.shape != b.shape:
        raise ValueError(f"expected a and b of the same shape (B, D), got a {_shape(a)} and b {_shape(b)}")
    if a.dtype != b.dtype:
        raise TypeError(f"expected a and b of one dtype, got {a.dtype} and {b.dtype}")
    if a.shape[0] < 2:
        raise ValueError(f"expected at least 2 pairs (the other pairs are the negatives), got B={a.shape[0]}")
    _check_logit_scale(logit_scale)
    logits = logit_scale * (a @ b.T)  # (B, B): logits[i, j] compares a_i with b_j
    positives = logits.diagonal()  # (B,)
    loss_ab = (torch.logsumexp(logits, dim=1) - positives).mean()  # each a picks its b
    loss_ba = (torch.logsumexp(logits, dim=0) - positives).mean()  # each b picks its a
    return (loss_ab + loss_ba) / 2


# --------------------------------------------------------------------------- 4. the model

class ContrastiveModel(nn.Module):
    """Two or more :class:`Tower` s into one space, trained with :func:`info_nce` at a learned temperature.

    Introduced in notebook 08. ``towers`` maps a modality name to its tower, e.g.
    ``{"image": Tower(CNNEncoder(...), 64, 32), "text": ..., "audio": ...}``; every tower
    must give the same ``dim``. ``model(image=x, text=ids)`` → ``{"image": (B, D), "text":
    (B, D)}`` unit vectors; ``model.encode("audio", log_mel)`` runs one tower (with any extra
    arguments it takes). ``model.loss(embeddings)`` is :func:`info_nce` averaged over every
    pair of the modalities given (or over ``pairs``), all at one ``logit_scale``.

    The temperature ``τ`` is learned as CLIP learns it: the parameter is
    ``log_logit_scale = log(1 / τ)``, so it stays positive and its steps are relative, and
    ``logit_scale = exp(log_logit_scale)`` is clamped to ``[1, max_logit_scale]`` (default 100)
    so that the logits can neither vanish nor grow without bound; beyond the clamp the
    parameter gets no gradient. ``learn_temperature=False`` keeps ``τ`` fixed.
    """

    def __init__(
        self,
        towers: Mapping[str, Tower],
        *,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(towers, Mapping) or len(towers) < 2:
            raise ValueError(f"expected towers as a dict of at least two modalities, got {towers!r:.80}")
        for name, tower in towers.items():
            if not isinstance(tower, Tower):
                raise TypeError(f"expected towers[{name!r}] to be a Tower, got {type(tower).__name__}")
        dims = {name: tower.dim for name, tower in towers.items()}
        if len(set(dims.values())) != 1:
            raise ValueError(f"expected every tower to give the same dim, got {dims}")
        if not isinstance(max_logit_scale, (int, float)) or not 1.0 <= max_logit_scale < math.inf:
            raise ValueError(f"expected max_logit_scale >= 1, got {max_logit_scale!r}")
        if not isinstance(temperature, (int, float)) or not 1 / max_logit_scale <= temperature <= 1.0:
            raise ValueError(
                f"expected temperature in [1 / max_logit_scale, 1] = [{1 / max_logit_scale:g}, 1], got {temperature!r}"
            )
        self.towers = nn.ModuleDict(towers)
        self.dim = next(iter(dims.values()))
        self.max_logit_scale = float(max_logit_scale)
        initial = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_logit_scale = nn.Parameter(initial)
        else:
            self.register_buffer("log_logit_scale", initial)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.towers.keys())

    @property
    def logit_scale(self) -> Tensor:
        """``exp(log_logit_scale)`` clamped to ``[1, max_logit_scale]``: 1 / temperature, a 0-dim tensor."""
        return self.log_logit_scale.clamp(0.0, math.log(self.max_logit_scale)).exp()

    @property
    def temperature(self) -> float:
        return 1.0 / self.logit_scale.item()

    def _check_modality(self, name: object) -> None:
        if name not in self.towers:
            raise ValueError(f"expected a modality in {self.modalities}, got {name!r}")

    def encode(self, modality: str, *inputs: Tensor, **options: object) -> Tensor:
        """One modality's embeddings (B, D), unit length."""
        self._check_modality(modality)
        return self.towers[modality](*inputs, **options)

    def forward(self, **inputs: Tensor) -> dict[str, Tensor]:
        if not inputs:
            raise ValueError(f"expected inputs for some of {self.modalities}, e.g. model(image=x, text=ids)")
        return {name: self.encode(name, x) for name, x in inputs.items()}

    def loss(self, embeddings: Mapping[str, Tensor], pairs: Sequence[tuple[str, str]] | None = None) -> Tensor:
        """Mean :func:`info_nce` over ``pairs`` of modalities (default: every pair in ``embeddings``)."""
        if not isinstance(embeddings, Mapping):
            raise TypeError(f"expected embeddings as a dict modality -> (B, D), got {type(embeddings).__name__}")
        for name in embeddings:
            self._check_modality(name)
        pairs = list(combinations(embeddings, 2)) if pairs is None else list(pairs)
        if not pairs:
            raise ValueError(f"expected embeddings of at least two modalities, got {list(embeddings)}")
        for pair in pairs:
            if len(pair) != 2 or any(name not in embeddings for name in pair):
                raise ValueError(f"expected pairs of modalities from {list(embeddings)}, got {pair!r}")
        scale = self.logit_scale
        return sum(info_nce(embeddings[x], embeddings[y], scale) for x, y in pairs) / len(pairs)


# --------------------------------------------------------------------------- 5. evaluation

def similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of every row of ``a`` (Q, D) with every row of ``b`` (G, D): shape (Q, G).

    Introduced in notebook 08. Rows are scaled to length 1 first, so :class:`Tower`
    embeddings and raw vectors alike give values in [-1, 1].
    """
    _check_matrix("a", a, "(Q, D)")
    _check_matrix("b", b, "(G, D)")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"expected a (Q, D) and b (G, D) of one width D, got a {_shape(a)} and b {_shape(b)}")
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def _relevance(relevant: Tensor | None, Q: int, G: int, device: torch.device) -> Tensor:
    """``relevant`` in any of its three forms as a bool matrix (Q, G)."""
    if relevant is None:
        if Q != G:
            raise ValueError(
                f"without relevant, item i of the gallery must answer query i: expected Q == G, got {Q} and {G}"
            )
        return torch.eye(Q, dtype=torch.bool, device=device)
    if not isinstance(relevant, Tensor):
        raise TypeError(
            f"expected relevant as a tensor (Q,) of indices or (Q, G) of bools, got {type(relevant).__name__}"
        )
    relevant = relevant.to(device)
    if relevant.dtype == torch.bool:
        if relevant.shape != (Q, G):
            raise ValueError(f"expected a bool relevant of shape (Q, G) = ({Q}, {G}), got {_shape(relevant)}")
        empty = (~relevant.any(dim=1)).nonzero().flatten()
        if len(empty):
            raise ValueError(f"query {int(empty[0])} has no relevant gallery item")
        return relevant
    if relevant.is_floating_point() or relevant.shape != (Q,):
        raise ValueError(
            f"expected relevant as integer indices of shape (Q,) = ({Q},) or bools (Q, G), "
            f"got {_shape(relevant)} of {relevant.dtype}"
        )
    if relevant.min() < 0 or relevant.max() >= G:
        raise ValueError(
            f"expected relevant indices in [0, G={G}), "
            f"got values in [{int(relevant.min())}, {int(relevant.max())}]"
        )
    return F.one_hot(relevant.long(), G).bool()


def retrieval_ranks(scores: Tensor, relevant: Tensor | None = None) -> Tensor:
    """For each query, how many wrong gallery items score at least as high as its best right one.

    Introduced in notebook 08. ``scores`` (Q, G), e.g. :func:`similarity` of queries and
    gallery; ``relevant`` says which items are right: ``None`` (item ``i`` for query ``i``,
    Q = G), integer indices (Q,), or a bool matrix (Q, G) when several items are right (every
    image of a "seven" for the spoken word "seven"). Returns (Q,) long, 0 = retrieved first.
    Ties count against the query, so a model that scores everything alike ranks last.
    """
    _check_matrix("scores", scores, "(Q, G)")
    Q, G = scores.shape
    right = _relevance(relevant, Q, G, scores.device)
    best_right = scores.masked_fill(~right, -math.inf).amax(dim=1, keepdim=True)  # (Q, 1)
    return ((scores >= best_right) & ~right).sum(dim=1)  # (Q,)


def recall_at_k(scores: Tensor, k: int, relevant: Tensor | None = None) -> float:
    """The share of queries with a right item among their ``k`` best-scored gallery items.

    Introduced in notebook 08. Arguments as in :func:`retrieval_ranks`; a query counts when
    its rank is below ``k``. Recall@1 of image→text retrieval over a batch of B pairs is the
    share of images whose own caption scores highest; chance is ``k / G``.
    """
    _positive_int("k", k)
    return (retrieval_ranks(scores, relevant) < k).double().mean().item()


def zero_shot_classify(queries: Tensor, class_embeddings: Tensor) -> Tensor:
    """Label each query with the class whose embedding is most similar: classification without training.

    Introduced in notebook 08. ``queries`` (B, D), e.g. image embeddings; ``class_embeddings``
    (K, D), e.g. the text tower's embeddings of the K class names, or (K, P, D) for P prompts
    per class ("seven", "the digit seven", ...), which are averaged on the unit sphere into
    one prototype per class. Returns labels (B,) long in [0, K).
    """
    _check_matrix("queries", queries)
    if not isinstance(class_embeddings, Tensor) or class_embeddings.dim() not in (2, 3):
        raise ValueError(f"expected class_embeddings of shape (K, D) or (K, P, D), got {_shape(class_embeddings)}")
    if class_embeddings.shape[-1] != queries.shape[1] or 0 in class_embeddings.shape:
        raise ValueError(
            f"expected class_embeddings of width D = {queries.shape[1]} (that of queries), "
            f"got {_shape(class_embeddings)}"
        )
    prototypes = F.normalize(class_embeddings, dim=-1)
    if prototypes.dim() == 3:
        prototypes = prototypes.mean(dim=1)  # (K, D): the mean direction of each class's prompts
    return similarity(queries, prototypes).argmax(dim=1)
