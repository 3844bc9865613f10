"""Fusion: seven ways to combine the features of two modalities, behind one interface.

Introduced in notebook 09, which answers questions about shapes-world images with each of
them at the same parameter budget. Every fusion is a module built by name::

    fusion = make_fusion("film", dim_a=64, dim_b=32, dim_out=64)
    fused = fusion(a, b, a_mask=None, b_mask=None)             # (B, dim_out)

- ``a``, what is looked at: image patch features ``(B, N, dim_a)``, or one pooled vector
  ``(B, dim_a)``, which counts as a sequence of one;
- ``b``, what asks: question token features ``(B, T, dim_b)``, or a pooled ``(B, dim_b)``;
- ``a_mask`` ``(B, N)`` and ``b_mask`` ``(B, T)``: ``True`` for real tokens, ``False`` for
  padding (default: all real); only for sequences.

The fusions, in the order of the notebook (``FUSIONS`` maps each name to its class), with
``ā``, ``b̄`` the masked means over tokens, ``P`` and ``W`` learned linear maps:

- ``"sum"``: ``W_o (P_a ā + P_b b̄)``;
- ``"product"``: ``W_o (P_a ā ⊙ P_b b̄)``;
- ``"concat"``: ``W_o GELU(W [ā; b̄])``;
- ``"gated"``: ``W_o (g ⊙ P_a ā + (1 - g) ⊙ P_b b̄)`` with ``g = σ(W_g [ā; b̄])``;
- ``"conv"``: ``W_o conv(stack(P_a ā, P_b b̄))``, a convolution over the two as channels;
- ``"film"``: ``W_o mean_n ReLU(γ(b̄) ⊙ P_a a_n + β(b̄))``, the question modulating every patch;
- ``"cross_attention"``: ``W_o mean_t (q_t + attention(q_t → a_1 .. a_N))``, every question
  token reading the patches it chooses.

The first five pool both inputs before fusing, so they cannot tell which patch held what;
FiLM works on every patch before pooling; cross-attention on every patch and every question
token. Each class's docstring says what it can and cannot express.

Each has one size knob, ``width`` (``W``, default ``dim_out``): the width at which the two
modalities meet. :func:`count_parameters` counts a module's parameters and
:func:`fusion_at_budget` picks the ``width`` that brings a fusion nearest a parameter
budget, so that a comparison measures the way of fusing, not the number of weights.
No fusion looks at *where* a patch is: shuffling the N patches changes nothing, so position
must already be in the features (e.g. ``PatchEmbedding(..., positional=True)``).

Shapes: ``B`` batch, ``N`` image patches, ``T`` question tokens, ``C`` widths, ``H`` heads.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse.attention import MultiHeadAttention

__all__ = [
    "Fusion",
    "SumFusion",
    "ProductFusion",
    "ConcatFusion",
    "GatedFusion",
    "ConvFusion",
    "FiLMFusion",
    "CrossAttentionFusion",
    "FUSIONS",
    "make_fusion",
    "count_parameters",
    "fusion_at_budget",
]


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected {name} to be a positive int, got {value!r}")
    return value


def _as_sequence(name: str, x: object, mask: object, dim: int, letter: str) -> tuple[Tensor, Tensor]:
    """``x`` as a sequence (B, L, dim) and its mask (B, L) bool; a pooled (B, dim) is a sequence of one."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3) or x.shape[-1] != dim or x.shape[0] == 0 or (x.dim() == 3 and x.shape[1] == 0):
        raise ValueError(f"expected {name} of shape (B, {letter}, {dim}) or (B, {dim}), got {_shape(x)}")
    if not x.is_floating_point():
        raise TypeError(f"expected {name} of a floating dtype, got {x.dtype}")
    if x.dim() == 2:
        if mask is not None:
            raise ValueError(
                f"{name}_mask is for a sequence {name} (B, {letter}, {dim}); {name} is pooled, {_shape(x)}"
            )
        x = x[:, None, :]  # (B, 1, dim)
    B, L, _ = x.shape
    if mask is None:
        return x, torch.ones(B, L, dtype=torch.bool, device=x.device)
    if not isinstance(mask, Tensor) or mask.shape != (B, L):
        raise ValueError(
            f"expected {name}_mask of shape (B, {letter}) = ({B}, {L}), True for real tokens, got {_shape(mask)}"
        )
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"expected {name}_mask of dtype bool (or 0/1 integers), got {mask.dtype}")
    mask = mask.to(device=x.device, dtype=torch.bool)
    empty = (~mask.any(dim=1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"row {int(empty[0])} of {name}_mask has no real token")
    return x, mask


def _mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of (B, L, C) over the real positions of ``mask`` (B, L): (B, C)."""
    weights = mask.to(x.dtype)[..., None]  # (B, L, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1)


# --------------------------------------------------------------------------- the interface

class Fusion(nn.Module):
    """The common interface: ``forward(a, b, a_mask=None, b_mask=None)`` → (B, dim_out).

    Introduced in notebook 09. ``a`` (B, N, dim_a) or (B, dim_a); ``b`` (B, T, dim_b) or
    (B, dim_b); masks (B, N) and (B, T), ``True`` for real tokens (see the module docstring).
    Subclasses implement :meth:`fuse`, which always receives sequences and their masks.
    """

    name: ClassVar[str]
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None) -> None:
        super().__init__()
        self.dim_a = _positive_int("dim_a", dim_a)
        self.dim_b = _positive_int("dim_b", dim_b)
        self.dim_out = _positive_int("dim_out", dim_out)
        self.width = dim_out if width is None else _positive_int("width", width)
        self.out = nn.Linear(self.width, dim_out)

    @classmethod
    def width_step(cls, **options: object) -> int:
        """``width`` must be a multiple of this (1 unless a fusion needs otherwise)."""
        return 1

    def forward(self, a: Tensor, b: Tensor, a_mask: Tensor | None = None, b_mask: Tensor | None = None) -> Tensor:
        a, a_mask = _as_sequence("a", a, a_mask, self.dim_a, "N")  # (B, N, dim_a), (B, N)
        b, b_mask = _as_sequence("b", b, b_mask, self.dim_b, "T")  # (B, T, dim_b), (B, T)
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"expected a and b with one batch size B, got {a.shape[0]} and {b.shape[0]}")
        if a.dtype != b.dtype:
            raise TypeError(f"expected a and b of one dtype, got {a.dtype} and {b.dtype}")
        return self.fuse(a, a_mask, b, b_mask)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim_a={self.dim_a}, dim_b={self.dim_b}, dim_out={self.dim_out}, width={self.width}"


# --------------------------------------------------------------------------- on pooled vectors

class SumFusion(Fusion):
    """Element-wise sum of the projected pooled features: ``W_o (P_a ā + P_b b̄)``.

    Introduced in notebook 09. Can express: evidence that adds up, each modality voting
    independently. Cannot express: any interaction. The output is ``f(a) + g(b)``, so the
    effect of the image is the same whatever the question, and a linear read-out cannot
    answer "what colour is the circle?" differently from "what shape is the red one?" unless
    layers after it supply the interaction. Pools before fusing, so which patch held what is lost.
    """

    name = "sum"

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None) -> None:
        super().__init__(dim_a, dim_b, dim_out, width=width)
        self.proj_a = nn.Linear(dim_a, self.width)
        self.proj_b = nn.Linear(dim_b, self.width)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        return self.out(self.proj_a(_mean(a, a_mask)) + self.proj_b(_mean(b, b_mask)))


class ProductFusion(Fusion):
    """Element-wise product of the projected pooled features: ``W_o (P_a ā ⊙ P_b b̄)``.

    Introduced in notebook 09. Can express: second-order interactions: each output is a
    low-rank bilinear form ``Σ_k w_k (p_k·a)(q_k·b)``, so the question can switch image
    features on and off (with the biases, the additive terms of :class:`SumFusion` are
    included). Cannot express: anything above second order without later layers, nor which
    patch held what, since it pools first; a zero in either factor silences the other.
    """

    name = "product"

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None) -> None:
        super().__init__(dim_a, dim_b, dim_out, width=width)
        self.proj_a = nn.Linear(dim_a, self.width)
        self.proj_b = nn.Linear(dim_b, self.width)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        return self.out(self.proj_a(_mean(a, a_mask)) * self.proj_b(_mean(b, b_mask)))


class ConcatFusion(Fusion):
    """Concatenation, then a hidden layer: ``W_o GELU(W [ā; b̄])``.

    Introduced in notebook 09. A linear layer on a concatenation is a sum,
    ``W [a; b] = W_a a + W_b b``, so concatenation alone is no richer than
    :class:`SumFusion`; the GELU after it is what lets the two modalities interact. Can
    express: in principle any function of the pooled pair (a one-hidden-layer network),
    learned from data alone. Cannot express: which patch held what, since it pools first.
    """

    name = "concat"

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None) -> None:
        super().__init__(dim_a, dim_b, dim_out, width=width)
        self.hidden = nn.Linear(dim_a + dim_b, self.width)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        joined = torch.cat([_mean(a, a_mask), _mean(b, b_mask)], dim=-1)  # (B, dim_a + dim_b)
        return self.out(F.gelu(self.hidden(joined)))


class GatedFusion(Fusion):
    """A learned, per-feature mix of the two: ``W_o (g ⊙ P_a ā + (1 - g) ⊙ P_b b̄)``, ``g = σ(W_g [ā; b̄])``.

    Introduced in notebook 09. Each of the ``width`` features is a convex combination of the
    two modalities, with a weight ``g`` in (0, 1) that both inputs decide. A gate stuck at 1
    passes the image alone, at 0 the question alone, at 1/2 their average. Can express:
    trusting one modality more when the other is uninformative (noisy or missing audio).
    Cannot express: a feature outside the range of its two parts (each lies between
    ``P_a ā`` and ``P_b b̄``, so it cannot fire for "red and circle" more than for either),
    nor which patch held what, since it pools first.
    """

    name = "gated"

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None) -> None:
        super().__init__(dim_a, dim_b, dim_out, width=width)
        self.proj_a = nn.Linear(dim_a, self.width)
        self.proj_b = nn.Linear(dim_b, self.width)
        self.gate = nn.Linear(dim_a + dim_b, self.width)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        a, b = _mean(a, a_mask), _mean(b, b_mask)  # (B, dim_a), (B, dim_b)
        g = torch.sigmoid(self.gate(torch.cat([a, b], dim=-1)))  # (B, W), each in (0, 1)
        return self.out(g * self.proj_a(a) + (1 - g) * self.proj_b(b))


class ConvFusion(Fusion):
    """A convolution over the two projected vectors stacked as channels: ``W_o conv(stack(P_a ā, P_b b̄))``.

    Introduced in notebook 09. The pair (B, 2, W) is read like a two-channel signal along
    the feature axis: ``Conv1d(2, channels, kernel_size)`` → GELU → ``Conv1d(channels, 1, 1)``,
    so output feature ``i`` is a small non-linear function of features ``i - r .. i + r`` of
    both (``r = kernel_size // 2``), with the same weights at every ``i``. Can express: cheap
    non-linear interactions between features at the same or nearby positions (few weights).
    Cannot express: interactions between features far apart on the axis, except through the
    projections, which must learn to line matching features up; nor which patch held what.
    Options: ``channels`` (default 8), ``kernel_size`` (odd, default 3).
    """

    name = "conv"
    OPTIONS = ("channels", "kernel_size")

    def __init__(
        self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None,
        channels: int = 8, kernel_size: int = 3,
    ) -> None:
        super().__init__(dim_a, dim_b, dim_out, width=width)
        _positive_int("channels", channels)
        if _positive_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"expected an odd kernel_size, so the output keeps the width, got {kernel_size}")
        self.proj_a = nn.Linear(dim_a, self.width)
        self.proj_b = nn.Linear(dim_b, self.width)
        self.conv = nn.Conv1d(2, channels, kernel_size, padding=kernel_size // 2)
        self.mix = nn.Conv1d(channels, 1, kernel_size=1)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        stacked = torch.stack([self.proj_a(_mean(a, a_mask)), self.proj_b(_mean(b, b_mask))], dim=1)  # (B, 2, W)
        h = self.mix(F.gelu(self.conv(stacked)))  # (B, 1, W)
        return self.out(h.squeeze(1))


# --------------------------------------------------------------------------- on tokens

class FiLMFusion(Fusion):
    """Feature-wise linear modulation: the question scales and shifts every patch's features.

    Introduced in notebook 09 (Perez et al., 2018). From the pooled question,
    ``(Δγ, β) = W_f b̄`` and ``γ = 1 + Δγ``; each patch becomes
    ``h_n = ReLU(γ ⊙ P_a a_n + β)``, and the output is ``W_o mean_n h_n``. With ``γ = 1``,
    ``β = 0`` the modulation is the identity and the question has no effect. Can express:
    the question choosing which image features matter *at every patch before pooling*,
    e.g. keeping "red" only where it is also "circle" (a negative shift makes the ReLU an
    AND), so it can find the patches that match the question and count them. Cannot
    express: patch-specific modulation (the same ``γ, β`` everywhere), nor any influence
    of the image on how the question is read.
    """

    name = "film"

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None) -> None:
        super().__init__(dim_a, dim_b, dim_out, width=width)
        self.proj_a = nn.Linear(dim_a, self.width)
        self.film = nn.Linear(dim_b, 2 * self.width)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        delta_gamma, beta = self.film(_mean(b, b_mask)).chunk(2, dim=-1)  # (B, W) each
        gamma = 1 + delta_gamma  # zero weights give the identity modulation
        h = F.relu(gamma[:, None, :] * self.proj_a(a) + beta[:, None, :])  # (B, N, W)
        return self.out(_mean(h, a_mask))


class CrossAttentionFusion(Fusion):
    """Each question token attends over the patches: ``W_o mean_t (q_t + attention(q_t → a))``.

    Introduced in notebook 09. ``q = P_q b`` (B, T, W) are the queries; keys and values come
    from the patches through :class:`mmcourse.attention.MultiHeadAttention` (``heads`` heads,
    ``width`` divisible by ``heads``); the residual keeps the question in the result, which is
    averaged over the real question tokens. Can express: the question choosing *which
    patches* to read (a different softmax over patches for every token and head), so an answer
    can come from one object among several; :meth:`attention` returns those weights to draw.
    Cannot express much with a pooled image (one key: the weights are all 1), and without
    positions in the features it cannot tell where a patch is. Option: ``heads`` (default 4).
    """

    name = "cross_attention"
    OPTIONS = ("heads",)

    def __init__(self, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None, heads: int = 4) -> None:
        _positive_int("heads", heads)
        super().__init__(dim_a, dim_b, dim_out, width=width)
        if self.width % heads:
            raise ValueError(f"expected width divisible by heads, got width={self.width} and heads={heads}")
        self.heads = heads
        self.query = nn.Linear(dim_b, self.width)
        self.attn = MultiHeadAttention(self.width, heads, kdim=dim_a, vdim=dim_a)

    @classmethod
    def width_step(cls, **options: object) -> int:
        return options.get("heads", 4)

    def _attend(self, a: Tensor, a_mask: Tensor, b: Tensor, need_weights: bool) -> tuple[Tensor, Tensor]:
        q = self.query(b)  # (B, T, W)
        result = self.attn(q, a, mask=a_mask[:, None, None, :], need_weights=need_weights)  # keys: (B, 1, 1, N)
        read, weights = result if need_weights else (result, None)
        return q + read, weights  # (B, T, W), (B, H, T, N)

    def fuse(self, a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> Tensor:
        h, _ = self._attend(a, a_mask, b, need_weights=False)
        return self.out(_mean(h, b_mask))

    def attention(self, a: Tensor, b: Tensor, a_mask: Tensor | None = None, b_mask: Tensor | None = None) -> Tensor:
        """The attention weights of every question token over the patches: (B, H, T, N)."""
        a, a_mask = _as_sequence("a", a, a_mask, self.dim_a, "N")
        b, _ = _as_sequence("b", b, b_mask, self.dim_b, "T")
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"expected a and b with one batch size B, got {a.shape[0]} and {b.shape[0]}")
        return self._attend(a, a_mask, b, need_weights=True)[1]


# --------------------------------------------------------------------------- by name, at a budget

FUSIONS: dict[str, type[Fusion]] = {
    cls.name: cls
    for cls in (SumFusion, ProductFusion, ConcatFusion, GatedFusion, ConvFusion, FiLMFusion, CrossAttentionFusion)
}


def _fusion_class(name: object, options: dict) -> type[Fusion]:
    if name not in FUSIONS:
        raise ValueError(f"expected a fusion name in {tuple(FUSIONS)}, got {name!r}")
    cls = FUSIONS[name]
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        allowed = ", ".join(cls.OPTIONS) if cls.OPTIONS else "none"
        raise ValueError(f"fusion {name!r} takes the options: {allowed}; got {unknown}")
    return cls


def make_fusion(name: str, dim_a: int, dim_b: int, dim_out: int, *, width: int | None = None, **options: int) -> Fusion:
    """The fusion called ``name`` (a key of ``FUSIONS``), for inputs of widths ``dim_a``, ``dim_b``.

    Introduced in notebook 09. ``width`` is where the modalities meet (default ``dim_out``);
    ``options`` are those of the fusion's class (``heads`` for ``"cross_attention"``,
    ``channels`` and ``kernel_size`` for ``"conv"``). The module maps ``a`` (B, N, dim_a) or
    (B, dim_a) and ``b`` (B, T, dim_b) or (B, dim_b) to (B, dim_out).
    """
    return _fusion_class(name, options)(dim_a, dim_b, dim_out, width=width, **options)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """How many numbers ``module`` learns (all its parameters, or only those that require grad).

    Introduced in notebook 09. Works for any ``nn.Module``, including modules on the
    ``meta`` device, whose parameters have shapes but no storage.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def fusion_at_budget(
    name: str, dim_a: int, dim_b: int, dim_out: int, budget: int, *, tolerance: float = 0.1, **options: int,
) -> Fusion:
    """The fusion ``name`` with the ``width`` that brings its parameter count nearest ``budget``.

    Introduced in notebook 09. Raises ``ValueError`` when even the nearest width misses the
    budget by more than ``tolerance`` (a fraction: 0.1 is ±10 %), e.g. a budget below what
    the fusion needs at ``width`` 1. The count grows with the width, so a binary search over
    widths (multiples of ``heads`` for cross-attention) finds it; candidates are built on the
    ``meta`` device, which allocates no memory.
    """
    cls = _fusion_class(name, options)
    _positive_int("budget", budget)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise ValueError(f"expected tolerance in [0, 1), got {tolerance!r}")
    step = cls.width_step(**options)

    def count(multiple: int) -> int:
        with torch.device("meta"):
            return count_parameters(cls(dim_a, dim_b, dim_out, width=multiple * step, **options))

    high = 1
    while count(high) < budget:
        high *= 2
    low = 1
    while low < high:  # the smallest multiple whose count reaches the budget
        middle = (low + high) // 2
        if count(middle) < budget:
            low = middle + 1
        else:
            high = middle
    candidates = [m for m in (low - 1, low) if m >= 1]
    best = min(candidates, key=lambda m: abs(count(m) - budget))
    got = count(best)
    if abs(got - budget) > tolerance * budget:
        raise ValueError(
            f"no width puts {name!r} within {tolerance:.0%} of {budget} parameters: the nearest, "
            f"width={best * step}, has {got}"
        )
    return cls(dim_a, dim_b, dim_out, width=best * step, **options)
