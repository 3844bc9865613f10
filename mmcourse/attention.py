"""Attention: softmax, scaled dot-product attention, masks and multi-head attention.

Introduced in notebook 01; every transformer later in the course (GPT, BERT, the
multimodal model) builds on these pieces. The file reads in the order they compose:

1. :func:`softmax`, the numerically stable one, written out;
2. masks: :func:`causal_mask`, :func:`padding_mask`, :func:`combine_masks`;
3. :func:`scaled_dot_product_attention`, ``softmax(q kᵀ / √D + mask) v``;
4. :class:`MultiHeadAttention`: projections → split heads → attention → merge → projection.

**Mask convention**, the same as ``torch.nn.functional.scaled_dot_product_attention``: a
boolean mask where ``True`` means *may attend*, or a float mask that is *added* to the scores
(``0`` keeps a key, ``-inf`` removes it). Masks broadcast against the scores
``(B, ..., Tq, Tk)``: a causal mask is ``(T, T)``, a padding mask ``(B, 1, 1, Tk)``.
Careful: ``nn.MultiheadAttention``'s boolean ``attn_mask`` and ``key_padding_mask`` mean
the opposite (``True`` = ignore); negate them before passing them here.

**Fully masked query rows** (a query that may attend to no key at all) give an output of
zeros and attention weights of zeros, never NaN, in the forward pass and in the gradient, on
both paths. The textbook softmax of a row of ``-inf`` is ``0 / 0``; here such a row has no
keys to average over, so its average is defined as zero. PyTorch 2.13's own SDPA also gives
zeros on CPU, but other versions and backends have given NaN, so the fused path does not
rely on it: it checks the mask for such rows (on a GPU that check waits for the device)
and guards them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "softmax",
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "scaled_dot_product_attention",
    "MultiHeadAttention",
]


# --------------------------------------------------------------------------- softmax

def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax along ``dim``: ``exp(x - max) / sum(exp(x - max))``.

    Introduced in notebook 01. Equals ``torch.softmax`` wherever a slice holds at least one
    finite value. Subtracting the maximum changes nothing mathematically (the factor
    ``exp(-max)`` cancels) but keeps ``exp`` from overflowing, so inputs of size 1e4 work.
    A slice that is entirely ``-inf`` (a fully masked row) gives zeros instead of NaN.
    Any shape; the output has the shape of ``x``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"expected x to be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected x of a floating dtype, got {x.dtype}")
    # The shift only prevents overflow; detaching it is exact because softmax ignores shifts.
    shift = x.amax(dim, keepdim=True).detach()
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))  # all -inf rows
    exps = torch.exp(x - shift)
    total = exps.sum(dim, keepdim=True)
    return exps / torch.where(total > 0, total, torch.ones_like(total))


# --------------------------------------------------------------------------- masks

def causal_mask(T: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean ``(T, T)`` mask, ``True`` where query ``i`` may attend to key ``j``, i.e. ``j <= i``.

    Introduced in notebook 01. It broadcasts against scores of shape ``(B, H, T, T)``.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"expected T to be a positive int, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: Tensor | Sequence[int], T: int) -> Tensor:
    """Boolean key mask of shape ``(B, 1, 1, T)``: ``True`` for the first ``lengths[b]`` positions.

    Introduced in notebook 01. ``lengths`` holds the true length of each of the ``B``
    sequences padded to ``T``; the mask broadcasts against scores ``(B, H, Tq, T)`` so that no
    query attends to padding. The mask lives on the device of ``lengths``.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"expected T to be a positive int, got {T!r}")
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(list(lengths))
    if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(
            f"expected lengths as a 1-D integer tensor of shape (B,), "
            f"got shape {tuple(lengths.shape)} and dtype {lengths.dtype}"
        )
    if lengths.numel() > 0 and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"expected lengths in [0, T={T}], got {lengths.tolist()}")
    positions = torch.arange(T, device=lengths.device)  # (T,)
    return (positions < lengths[:, None])[:, None, None, :]  # (B, 1, 1, T)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Combine masks so that a key is kept only if every mask keeps it; ``None`` entries are skipped.

    Introduced in notebook 01 (padding + causal is the common case). Boolean masks combine
    with AND; float masks add; a boolean mask combined with a float one becomes float
    (``0`` / ``-inf``). The result has the broadcast shape of the inputs, or is ``None`` when
    every input is ``None``.
    """
    present = [m for m in masks if m is not None]
    for i, m in enumerate(present):
        if not isinstance(m, Tensor) or not (m.dtype == torch.bool or m.is_floating_point()):
            kind = m.dtype if isinstance(m, Tensor) else type(m).__name__
            raise TypeError(f"expected every mask to be a bool or float tensor, got {kind} at position {i}")
    float_dtypes = {m.dtype for m in present if m.is_floating_point()}
    if len(float_dtypes) > 1:
        raise TypeError(f"expected float masks of one dtype, got {sorted(map(str, float_dtypes))}")
    try:
        torch.broadcast_shapes(*(m.shape for m in present))
    except RuntimeError:
        shapes = ", ".join(str(tuple(m.shape)) for m in present)
        raise ValueError(f"expected masks of broadcastable shapes, got {shapes}") from None
    combined: Tensor | None = None
    for m in present:
        if combined is None:
            combined = m
        elif combined.dtype == torch.bool and m.dtype == torch.bool:
            combined = combined & m
        else:
            combined = _as_additive(combined, m.dtype) + _as_additive(m, combined.dtype)
    return combined


def _as_additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A mask as a float one: bool ``True``/``False`` becomes ``0``/``-inf``; float stays as is."""
    if mask.dtype != torch.bool:
        return mask
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(mask, zero, torch.full_like(zero, float("-inf")))


# --------------------------------------------------------------------------- scaled dot-product attention

def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected {name} to be a torch.Tensor, got {type(t).__name__}")
    if q.dim() < 3:
        raise ValueError(f"expected q of shape (B, ..., Tq, D) with at least 3 dimensions, got {_shape(q)}")
    if k.dim() != q.dim() or v.dim() != q.dim():
        raise ValueError(
            f"expected q, k, v of the same rank, got q {_shape(q)}, k {_shape(k)}, v {_shape(v)}"
        )
    if k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2]:
        raise ValueError(
            f"expected q, k, v with the same leading (B, ...) dimensions, "
            f"got q {_shape(q)}, k {_shape(k)}, v {_shape(v)}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"expected k with the same last dimension D={q.shape[-1]} as q, got k {_shape(k)}"
        )
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"expected v with as many keys Tk={k.shape[-2]} as k, got v {_shape(v)}"
        )
    if not (q.is_floating_point() and q.dtype == k.dtype == v.dtype):
        raise TypeError(f"expected q, k, v of one floating dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"expected q, k, v on one device, got {q.device}, {k.device}, {v.device}")


def _check_mask(mask: Tensor, q: Tensor, scores_shape: tuple[int, ...]) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"expected mask to be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and mask.dtype != q.dtype:
        raise TypeError(
            f"expected a bool mask (True = may attend) or an additive float mask of q's dtype "
            f"{q.dtype}, got {mask.dtype}"
        )
    if mask.device != q.device:
        raise ValueError(f"expected mask on q's device {q.device}, got {mask.device}")
    # Written out: torch.broadcast_shapes costs more than the attention itself for small inputs.
    fits = mask.dim() <= len(scores_shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(scores_shape))
    )
    if not fits:
        raise ValueError(
            f"expected a mask broadcastable to the scores (B, ..., Tq, Tk) = {scores_shape}, "
            f"got {_shape(mask)}"
        )


def _rows_with_keys(mask: Tensor) -> Tensor:
    """``True`` for each query row of ``mask`` that keeps at least one key; shape ``(..., Tq, 1)``."""
    if mask.dtype == torch.bool:
        return mask.any(-1, keepdim=True)
    return (mask != float("-inf")).any(-1, keepdim=True)


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    return_weights: bool = False,
    training: bool = True,
) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(q kᵀ · scale + mask) v`` with ``scale = 1/√D`` unless given.

    Introduced in notebook 01. Shapes: q ``(B, ..., Tq, D)``, k ``(B, ..., Tk, D)``,
    v ``(B, ..., Tk, Dv)`` → output ``(B, ..., Tq, Dv)``; weights ``(B, ..., Tq, Tk)``.

    - ``mask``: bool (``True`` = may attend) or float added to the scores, broadcastable to
      ``(B, ..., Tq, Tk)`` — the convention of ``F.scaled_dot_product_attention``.
    - ``is_causal``: query ``i`` sees keys ``j <= i``; needs ``Tq == Tk``. Unlike PyTorch's
      SDPA it may be combined with ``mask`` (e.g. padding), and both apply.
    - ``dropout_p``: dropout on the attention weights, applied only when ``training``
      (``True`` by default, as in ``F.dropout``; modules pass ``self.training``).
    - ``return_weights``: ``False`` calls PyTorch's fused kernel and returns the output;
      ``True`` computes every step explicitly and returns ``(output, weights)``, where the
      weights are the softmax before dropout (as ``nn.MultiheadAttention`` returns them).

    A query row with no key to attend to gives zeros (output and weights), never NaN.
    """
    _check_qkv(q, k, v)
    Tq, Tk = q.shape[-2], k.shape[-2]
    if mask is not None:
        _check_mask(mask, q, (*q.shape[:-2], Tq, Tk))
    if not isinstance(is_causal, bool):
        raise TypeError(f"expected is_causal to be a bool, got {type(is_causal).__name__}")
    if is_causal and Tq != Tk:
        raise ValueError(
            f"is_causal needs as many queries as keys, got Tq={Tq} and Tk={Tk}; "
            f"pass an explicit mask for other alignments"
        )
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"expected dropout_p in [0, 1), got {dropout_p}")
    if scale is not None and not scale > 0:
        raise ValueError(f"expected scale > 0 or None, got {scale}")
    dropout_p = dropout_p if training else 0.0

    if not return_weights:
        if mask is None:
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout_p, is_causal=is_causal, scale=scale
            )
        if is_causal:  # PyTorch's SDPA refuses a mask together with is_causal
            mask = combine_masks(mask, causal_mask(Tq, device=q.device))
        has_key = _rows_with_keys(mask)  # (..., Tq, 1)
        if bool(has_key.all()):  # the usual case; the check is cheap, the guard below is not
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
        # Open fully masked rows to every key, so that no backend sees a row of -inf, then zero
        # their output; that also zeroes their gradient, the exact gradient of a constant.
        mask = mask | ~has_key if mask.dtype == torch.bool else mask.masked_fill(~has_key, 0.0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
        return out.masked_fill(~has_key, 0.0)  # (B, ..., Tq, Dv)

    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, ..., Tq, Tk)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(Tq, device=q.device), float("-inf"))
    if mask is not None:
        scores = scores + _as_additive(mask, q.dtype)
    weights = softmax(scores, dim=-1)  # (B, ..., Tq, Tk), rows sum to 1 (or 0 if fully masked)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (B, ..., Tq, Dv), (B, ..., Tq, Tk)


# --------------------------------------------------------------------------- multi-head attention

class MultiHeadAttention(nn.Module):
    """Multi-head attention with H heads of width D = C / H; self- or cross-attention.

    Introduced in notebook 01; the attention of every transformer block later in the course.

    ``mha(x)`` is self-attention; ``mha(x, context)`` is cross-attention (queries from ``x``,
    keys and values from ``context``); ``mha(x, context, value)`` takes keys and values from
    different tensors. Shapes: x ``(B, Tq, C)``, context ``(B, Tk, kdim)``, value
    ``(B, Tk, vdim)`` → output ``(B, Tq, C)``; with ``need_weights=True`` also the per-head
    weights ``(B, H, Tq, Tk)`` (average over dim 1 for ``nn.MultiheadAttention``'s default).
    ``mask`` follows :func:`scaled_dot_product_attention`: bool ``True`` = may attend, or
    additive float, broadcastable to ``(B, H, Tq, Tk)``.

    Four ``nn.Linear`` layers, ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, one per
    equation. From an ``nn.MultiheadAttention`` (see :meth:`load_from_torch`), with ``W`` its
    packed ``in_proj_weight`` of shape ``(3C, C)`` and ``b`` its ``in_proj_bias``:
    ``q_proj = W[:C], b[:C]``; ``k_proj = W[C:2C], b[C:2C]``; ``v_proj = W[2C:], b[2C:]``;
    ``out_proj = out_proj``. With ``kdim``/``vdim`` set, PyTorch keeps the three matrices apart
    (``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``) and the bias stays packed.
    """

    def __init__(
        self,
        C: int,
        H: int,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        kdim: int | None = None,
        vdim: int | None = None,
    ) -> None:
        super().__init__()
        sizes = {"C": C, "H": H, "kdim": C if kdim is None else kdim, "vdim": C if vdim is None else vdim}
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"expected {name} to be a positive int, got {value!r}")
        if C % H != 0:
            raise ValueError(f"expected C divisible by H, got C={C} and H={H} (C % H = {C % H})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"expected dropout in [0, 1), got {dropout}")
        self.C, self.H, self.D = C, H, C // H
        self.kdim, self.vdim = sizes["kdim"], sizes["vdim"]
        self.dropout = dropout
        self.q_proj = nn.Linear(C, C, bias=bias)
        self.k_proj = nn.Linear(self.kdim, C, bias=bias)
        self.v_proj = nn.Linear(self.vdim, C, bias=bias)
        self.out_proj = nn.Linear(C, C, bias=bias)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        value: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``x`` to ``context`` (default: ``x``); values from ``value`` (default: ``context``)."""
        context = x if context is None else context
        value = context if value is None else value
        self._check_inputs(x, context, value)
        B, Tq, _ = x.shape
        Tk = context.shape[1]
        H, D = self.H, self.D

        q = self.q_proj(x).view(B, Tq, H, D).transpose(1, 2)  # (B, H, Tq, D)
        k = self.k_proj(context).view(B, Tk, H, D).transpose(1, 2)  # (B, H, Tk, D)
        v = self.v_proj(value).view(B, Tk, H, D).transpose(1, 2)  # (B, H, Tk, D)
        result = scaled_dot_product_attention(
            q, k, v, mask, is_causal=is_causal, dropout_p=self.dropout,
            return_weights=need_weights, training=self.training,
        )
        out, weights = result if need_weights else (result, None)
        out = out.transpose(1, 2).reshape(B, Tq, self.C)  # (B, Tq, C)
        out = self.out_proj(out)
        return (out, weights) if need_weights else out

    def _check_inputs(self, x: Tensor, context: Tensor, value: Tensor) -> None:
        expected = (("x", x, self.C), ("context", context, self.kdim), ("value", value, self.vdim))
        for name, t, width in expected:
            if not isinstance(t, Tensor):
                raise TypeError(f"expected {name} to be a torch.Tensor, got {type(t).__name__}")
            if t.dim() != 3 or t.shape[-1] != width:
                raise ValueError(f"expected {name} of shape (B, T, {width}), got {_shape(t)}")
        if not x.shape[0] == context.shape[0] == value.shape[0]:
            raise ValueError(
                f"expected x, context, value with one batch size B, "
                f"got {x.shape[0]}, {context.shape[0]}, {value.shape[0]}"
            )
        if value.shape[1] != context.shape[1]:
            raise ValueError(
                f"expected value with as many positions Tk={context.shape[1]} as context, "
                f"got {_shape(value)}"
            )

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of an ``nn.MultiheadAttention`` of the same sizes; return ``self``.

        The weights do not depend on ``batch_first``, but feed this module ``(B, T, C)``.
        ``add_bias_kv`` and ``add_zero_attn`` have no counterpart here and are refused.
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"expected an nn.MultiheadAttention, got {type(mha).__name__}")
        ours = (self.C, self.H, self.kdim, self.vdim, self.q_proj.bias is not None)
        theirs = (mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim, mha.in_proj_bias is not None)
        if ours != theirs:
            raise ValueError(
                f"expected an nn.MultiheadAttention with (embed_dim, num_heads, kdim, vdim, bias) = "
                f"{ours}, got {theirs}"
            )
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("expected an nn.MultiheadAttention without add_bias_kv or add_zero_attn")
        C = self.C
        if mha._qkv_same_embed_dim:
            w_q, w_k, w_v = mha.in_proj_weight.split(C)
        else:
            w_q, w_k, w_v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        for proj, w in ((self.q_proj, w_q), (self.k_proj, w_k), (self.v_proj, w_v)):
            proj.weight.copy_(w)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.in_proj_bias is not None:
            for proj, b in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_bias.split(C)):
                proj.bias.copy_(b)
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self
