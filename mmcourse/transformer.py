"""The transformer block and the encoder and decoder stacks built from it.

Introduced in notebook 05; GPT (notebook 06), BERT (notebook 07) and the multimodal GPT
(notebook 10) are all stacks of :class:`Block`. The file reads in the order the parts compose:

1. positions: :func:`sinusoidal_positions` (the fixed formula) and :class:`LearnedPositions`;
   tokens themselves are embedded by a plain ``nn.Embedding(vocab_size, C)``;
2. :class:`LayerNorm`, written out; it equals ``nn.LayerNorm``, which the blocks use because
   its fused kernel is faster (same parameter names, so weights move between the two);
3. :class:`MLP`, the position-wise feed-forward network ``C -> 4C -> C``;
4. :class:`KVCache`, the keys and values of past positions kept for fast generation;
5. :class:`Block`: attention and MLP sublayers, each inside a residual connection, with the
   LayerNorm before the sublayer (pre-LN, GPT-2) or after the residual sum (post-LN, BERT);
6. :class:`Encoder` (every token sees every other) and :class:`Decoder` (token ``t`` sees
   tokens ``<= t``): stacks of blocks with a final LayerNorm.

Attention itself is :class:`mmcourse.attention.MultiHeadAttention`. Masks follow
:mod:`mmcourse.attention`: boolean ``True`` = may attend, broadcastable to the scores
``(B, H, Tq, Tk)``. The stacks take the simpler per-token form ``(B, T)``, ``True`` = a real
token, ``False`` = padding.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mmcourse.attention import MultiHeadAttention, combine_masks, scaled_dot_product_attention

__all__ = [
    "ACTIVATIONS",
    "sinusoidal_positions",
    "LearnedPositions",
    "LayerNorm",
    "make_activation",
    "MLP",
    "LayerCache",
    "KVCache",
    "Block",
    "Encoder",
    "Decoder",
    "ModelOutput",
]

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected {name} to be a positive int, got {value!r}")


def _check_dropout(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"expected dropout in [0, 1), got {value!r}")


# --------------------------------------------------------------------------- positions

def sinusoidal_positions(
    T: int,
    C: int,
    *,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The fixed positional encodings of "Attention is all you need", shape ``(T, C)``.

    Introduced in notebook 05. Row ``t`` holds, for ``i = 0, 1, ...``::

        PE[t, 2i]     = sin(t / base^(2i / C))
        PE[t, 2i + 1] = cos(t / base^(2i / C))

    so each pair of channels is a rotation at its own frequency, from one turn per ``2π``
    positions down to one per ``2π · base``. Computed in float64, returned in ``dtype``.
    An odd ``C`` drops the last cosine.
    """
    _positive_int("T", T)
    _positive_int("C", C)
    if not base > 1:
        raise ValueError(f"expected base > 1, got {base!r}")
    position = torch.arange(T, dtype=torch.float64, device=device)[:, None]  # (T, 1)
    inv_freq = base ** (-torch.arange(0, C, 2, dtype=torch.float64, device=device) / C)  # (ceil(C/2),)
    angles = position * inv_freq  # (T, ceil(C/2))
    pe = torch.empty(T, C, dtype=torch.float64, device=device)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : C // 2])
    return pe.to(dtype)


class LearnedPositions(nn.Module):
    """One learned vector per position, for up to ``max_len`` positions.

    Introduced in notebook 05 (GPT-2 and BERT learn their positions). ``positions(T, offset)``
    returns the rows ``offset .. offset + T - 1`` of the table, shape ``(T, C)``, to be added to
    the token embeddings ``(B, T, C)``; ``offset`` is the number of positions already processed,
    as in generation with a :class:`KVCache`. The table is ``self.table.weight``, ``(max_len, C)``.
    """

    def __init__(self, max_len: int, C: int) -> None:
        super().__init__()
        _positive_int("max_len", max_len)
        _positive_int("C", C)
        self.max_len = max_len
        self.table = nn.Embedding(max_len, C)

    def forward(self, T: int, offset: int = 0) -> Tensor:
        if isinstance(T, bool) or not isinstance(T, int) or T < 0:
            raise ValueError(f"expected T to be a non-negative int, got {T!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"expected offset to be a non-negative int, got {offset!r}")
        if offset + T > self.max_len:
            raise ValueError(
                f"positions {offset}..{offset + T - 1} do not fit a table of max_len={self.max_len} positions"
            )
        # A slice, not a lookup: contiguous positions need no gather.
        return self.table.weight[offset : offset + T]  # (T, C)


# --------------------------------------------------------------------------- layer norm

class LayerNorm(nn.Module):
    """LayerNorm written out: normalise each token's ``C`` features, then scale and shift.

    Introduced in notebook 05. ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the
    mean and the *biased* variance (divide by ``C``) over the last dimension. Equals
    ``nn.LayerNorm(C, eps=eps, bias=bias)`` and has the same parameter names (``weight``,
    ``bias``), so their state dicts are interchangeable. Shape ``(..., C)`` in and out.
    """

    def __init__(self, C: int, *, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        _positive_int("C", C)
        if not eps > 0:
            raise ValueError(f"expected eps > 0, got {eps!r}")
        self.C, self.eps = C, eps
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.C:
            raise ValueError(f"expected x of shape (..., {self.C}), got {_shape(x)}")
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps) * self.weight
        return y if self.bias is None else y + self.bias


def _layer_norm(C: int, eps: float, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(C, eps=eps, bias=bias)


# --------------------------------------------------------------------------- MLP

def make_activation(name: str) -> nn.Module:
    """A new activation module: ``"gelu"`` (erf), ``"gelu_tanh"`` (tanh approximation) or ``"relu"``.

    Introduced in notebook 05, with :class:`MLP`.
    """
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":  # GPT-2's "gelu_new"
        return nn.GELU(approximate="tanh")
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"expected activation in {ACTIVATIONS}, got {name!r}")


class MLP(nn.Module):
    """The position-wise feed-forward network: ``Linear(C, hidden) -> activation -> Linear(hidden, C)``.

    Introduced in notebook 05. ``hidden`` defaults to ``4 * C``; ``activation`` is ``"gelu"``
    (exact, erf-based: BERT), ``"gelu_tanh"`` (the tanh approximation: GPT-2) or ``"relu"``
    (the original transformer). Dropout acts on the output. Shape ``(B, T, C)`` in and out;
    every token goes through the same network on its own.
    """

    def __init__(
        self,
        C: int,
        hidden: int | None = None,
        *,
        activation: str = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden = 4 * C if hidden is None else hidden
        _positive_int("C", C)
        _positive_int("hidden", hidden)
        _check_dropout(dropout)
        self.fc = nn.Linear(C, hidden, bias=bias)
        self.act = make_activation(activation)
        self.proj = nn.Linear(hidden, C, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))


# --------------------------------------------------------------------------- KV cache

class LayerCache:
    """The keys and values one attention layer has computed so far, ``(B, H, length, D)`` each.

    Introduced in notebook 06. Storage for ``max_len`` positions is allocated at the first
    :meth:`append`; later appends write into it, so generating a token copies nothing old.
    """

    def __init__(self, max_len: int) -> None:
        _positive_int("max_len", max_len)
        self.max_len = max_len
        self.length = 0
        self._k: Tensor | None = None
        self._v: Tensor | None = None

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store the keys and values ``(B, H, T, D)`` of ``T`` new positions; return all so far."""
        if k.dim() != 4 or v.shape != k.shape:
            raise ValueError(f"expected k and v of one shape (B, H, T, D), got {_shape(k)} and {_shape(v)}")
        B, H, T, D = k.shape
        if self._k is None:
            self._k = k.new_empty(B, H, self.max_len, D)
            self._v = v.new_empty(B, H, self.max_len, D)
        elif (B, H, D) != (self._k.shape[0], self._k.shape[1], self._k.shape[3]) or k.dtype != self._k.dtype:
            raise ValueError(
                f"expected keys of shape (B, H, T, D) = ({self._k.shape[0]}, {self._k.shape[1]}, T, "
                f"{self._k.shape[3]}) and dtype {self._k.dtype} like those cached, got {_shape(k)}, {k.dtype}"
            )
        end = self.length + T
        if end > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} positions; {self.length} + {T} new do not fit")
        self._k[:, :, self.length : end] = k
        self._v[:, :, self.length : end] = v
        self.length = end
        return self._k[:, :, :end], self._v[:, :, :end]  # (B, H, end, D) each


class KVCache:
    """One :class:`LayerCache` per layer of a decoder; ``len(cache)`` is the number of positions seen.

    Introduced in notebook 06. A decoder given a cache processes only the new positions: their
    queries attend to the cached keys and values of all earlier ones, so producing one token
    costs one position's work instead of the whole sequence's. Positions are absolute, so a cache
    holds at most ``max_len`` (the model's ``block_size``) positions.
    """

    def __init__(self, n_layer: int, max_len: int) -> None:
        _positive_int("n_layer", n_layer)
        self.max_len = max_len
        self.layers = [LayerCache(max_len) for _ in range(n_layer)]

    def __len__(self) -> int:
        return self.layers[0].length

    def __getitem__(self, i: int) -> LayerCache:
        return self.layers[i]


# --------------------------------------------------------------------------- block

def _offset_causal_mask(T: int, start: int, device: torch.device) -> Tensor:
    """``(T, start + T)``: new query ``i`` sits at position ``start + i`` and sees keys ``<= start + i``."""
    keys = torch.arange(start + T, device=device)
    queries = torch.arange(start, start + T, device=device)
    return keys[None, :] <= queries[:, None]


class Block(nn.Module):
    """One transformer block: self-attention, optional cross-attention, MLP; each sublayer residual.

    Introduced in notebook 05. Shape ``(B, T, C)`` in and out.

    - ``norm_first=True`` (pre-LN, GPT-2): ``x = x + sublayer(ln(x))``. The residual path from
      input to output is untouched by any norm, which keeps deep stacks easy to train.
    - ``norm_first=False`` (post-LN, the original transformer and BERT): ``x = ln(x + sublayer(x))``.
    - ``cross_attention=True`` adds a sublayer between the two whose queries come from ``x`` and
      whose keys and values come from ``context`` ``(B, N, context_dim)`` (an image's patches,
      an encoder's output).
    - dropout acts on the attention weights and on each sublayer's output.

    ``forward(x, mask=..., is_causal=..., context=..., context_mask=..., need_weights=..., kv_cache=...)``:
    ``mask`` and ``context_mask`` are attention masks broadcastable to ``(B, H, T, Tk)`` and
    ``(B, H, T, N)``. With ``need_weights=True`` it returns ``(x, weights)``, ``weights`` a dict
    with ``"self"`` ``(B, H, T, Tk)`` and, with cross-attention, ``"cross"`` ``(B, H, T, N)``.
    With a :class:`LayerCache` the block attends from the ``T`` new positions to the cached ones
    and these; cross-attention keys are recomputed from ``context`` on every call.
    """

    def __init__(
        self,
        C: int,
        H: int,
        *,
        hidden: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        norm_first: bool = True,
        cross_attention: bool = False,
        context_dim: int | None = None,
        activation: str = "gelu",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = _layer_norm(C, eps, bias)
        self.attn = MultiHeadAttention(C, H, bias=bias, dropout=dropout)
        self.ln_cross: nn.LayerNorm | None = None
        self.cross_attn: MultiHeadAttention | None = None
        if cross_attention:
            self.ln_cross = _layer_norm(C, eps, bias)
            self.cross_attn = MultiHeadAttention(C, H, bias=bias, dropout=dropout, kdim=context_dim, vdim=context_dim)
        elif context_dim is not None:
            raise ValueError("context_dim is only used with cross_attention=True")
        self.ln_2 = _layer_norm(C, eps, bias)
        self.mlp = MLP(C, hidden, activation=activation, dropout=dropout, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        need_weights: bool = False,
        kv_cache: LayerCache | None = None,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if (context is None) != (self.cross_attn is None):
            raise ValueError(
                "expected a context exactly when the block has cross-attention: "
                f"cross_attention={self.cross_attn is not None}, context given={context is not None}"
            )
        weights: dict[str, Tensor] = {}

        h = self.ln_1(x) if self.norm_first else x
        a, w = self._self_attention(h, mask, is_causal, need_weights, kv_cache)
        x = x + self.dropout(a) if self.norm_first else self.ln_1(x + self.dropout(a))
        if need_weights:
            weights["self"] = w

        if self.cross_attn is not None:
            h = self.ln_cross(x) if self.norm_first else x
            result = self.cross_attn(h, context, mask=context_mask, need_weights=need_weights)
            a, w = result if need_weights else (result, None)
            x = x + self.dropout(a) if self.norm_first else self.ln_cross(x + self.dropout(a))
            if need_weights:
                weights["cross"] = w

        x = x + self.mlp(self.ln_2(x)) if self.norm_first else self.ln_2(x + self.mlp(x))
        return (x, weights) if need_weights else x

    def _self_attention(
        self, h: Tensor, mask: Tensor | None, is_causal: bool, need_weights: bool, cache: LayerCache | None
    ) -> tuple[Tensor, Tensor | None]:
        if cache is None:
            result = self.attn(h, mask=mask, is_causal=is_causal, need_weights=need_weights)
            return result if need_weights else (result, None)
        # Incremental: project only the new positions and attend over the cached keys as well.
        # The same projections and attention function as MultiHeadAttention.forward, with the
        # keys and values routed through the cache in between.
        attn = self.attn
        if not isinstance(h, Tensor) or h.dim() != 3 or h.shape[-1] != attn.C:
            raise ValueError(f"expected x of shape (B, T, {attn.C}), got {_shape(h)}")
        B, T, C = h.shape
        start = cache.length
        q = attn.q_proj(h).view(B, T, attn.H, attn.D).transpose(1, 2)  # (B, H, T, D)
        k = attn.k_proj(h).view(B, T, attn.H, attn.D).transpose(1, 2)  # (B, H, T, D)
        v = attn.v_proj(h).view(B, T, attn.H, attn.D).transpose(1, 2)  # (B, H, T, D)
        k, v = cache.append(k, v)  # (B, H, start + T, D)
        if is_causal and T > 1:  # one new query may see every key, so it needs no mask
            mask = combine_masks(mask, _offset_causal_mask(T, start, h.device))
        result = scaled_dot_product_attention(
            q, k, v, mask, dropout_p=attn.dropout, return_weights=need_weights, training=self.training
        )
        out, w = result if need_weights else (result, None)
        out = out.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return attn.out_proj(out), w


# --------------------------------------------------------------------------- stacks

def _key_mask(mask: Tensor | None, B: int, T: int, name: str) -> Tensor | None:
    """A per-token mask ``(B, T)`` (``True`` = real token) as an attention mask ``(B, 1, 1, T)``."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.shape != (B, T):
        raise ValueError(f"expected {name} of shape (B, T) = ({B}, {T}), True for real tokens, got {_shape(mask)}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex():
            raise TypeError(f"expected {name} of dtype bool (or 0/1 integers), got {mask.dtype}")
        mask = mask != 0
    return mask[:, None, None, :]  # (B, 1, 1, T)


class Encoder(nn.Module):
    """``n_layer`` blocks in which every token attends to every (non-padding) token.

    Introduced in notebook 05. ``forward(x (B, T, C), padding_mask=(B, T))`` → ``(B, T, C)``.
    ``padding_mask`` is ``True`` for real tokens; padding keys are ignored by every query.
    Pre-LN stacks end with a final LayerNorm ``ln_f``; post-LN stacks (``norm_first=False``)
    are normalised by their last block already and have none. With ``need_weights=True``
    returns ``(x, weights)``, the weights stacked over layers: ``"self"`` ``(L, B, H, T, Tk)``
    and, with cross-attention, ``"cross"`` ``(L, B, H, T, N)``. Keyword arguments of
    :class:`Block` (``dropout``, ``bias``, ``activation``, ``cross_attention``, ...) apply to
    every block.
    """

    is_causal = False

    def __init__(self, C: int, H: int, n_layer: int, *, norm_first: bool = True, eps: float = 1e-5,
                 bias: bool = True, **block_options: Any) -> None:
        super().__init__()
        _positive_int("n_layer", n_layer)
        self.blocks = nn.ModuleList(
            Block(C, H, norm_first=norm_first, eps=eps, bias=bias, **block_options) for _ in range(n_layer)
        )
        self.ln_f = _layer_norm(C, eps, bias) if norm_first else None

    def forward(
        self,
        x: Tensor,
        *,
        padding_mask: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        need_weights: bool = False,
        kv_cache: KVCache | None = None,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise ValueError(f"expected x of shape (B, T, C), got {_shape(x)}")
        B, T, _ = x.shape
        Tk = T if kv_cache is None else len(kv_cache) + T
        mask = _key_mask(padding_mask, B, Tk, "padding_mask")
        if context_mask is not None:
            if context is None:
                raise ValueError("context_mask given without a context")
            context_mask = _key_mask(context_mask, B, context.shape[1], "context_mask")
        if kv_cache is not None and len(kv_cache.layers) != len(self.blocks):
            raise ValueError(f"expected a KVCache with {len(self.blocks)} layers, got {len(kv_cache.layers)}")
        collected: dict[str, list[Tensor]] = {}
        for i, block in enumerate(self.blocks):
            result = block(
                x, mask=mask, is_causal=self.is_causal, context=context, context_mask=context_mask,
                need_weights=need_weights, kv_cache=None if kv_cache is None else kv_cache[i],
            )
            if need_weights:
                x, weights = result
                for name, w in weights.items():
                    collected.setdefault(name, []).append(w)
            else:
                x = result
        if self.ln_f is not None:
            x = self.ln_f(x)
        if need_weights:
            return x, {name: torch.stack(ws) for name, ws in collected.items()}  # (L, B, H, T, Tk)
        return x


class Decoder(Encoder):
    """An :class:`Encoder` whose self-attention is causal: token ``t`` attends to tokens ``<= t``.

    Introduced in notebook 05; the body of GPT. Same arguments and shapes as :class:`Encoder`;
    with a :class:`KVCache` only the new positions are computed (``padding_mask`` then covers
    the cached positions and the new ones, ``(B, len(cache) + T)``).
    """

    is_causal = True


# --------------------------------------------------------------------------- model output

class ModelOutput(NamedTuple):
    """What the course's language models return (GPT, BERT heads, the multimodal GPT).

    Introduced in notebook 06. ``logits`` ``(B, T, V)`` (or ``(B, n_classes)``); ``loss`` a scalar
    when targets were given, else ``None``; ``attention`` the per-layer self-attention weights
    ``(L, B, H, T, Tk)`` when asked for, else ``None``; ``cross_attention`` likewise
    ``(L, B, H, T, N)`` for models with cross-attention.
    """

    logits: Tensor
    loss: Tensor | None = None
    attention: Tensor | None = None
    cross_attention: Tensor | None = None

