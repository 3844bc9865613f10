"""GPT: a decoder-only transformer trained to predict the next token, and how to sample from it.

Introduced in notebook 06; the multimodal GPT (notebook 10) feeds it image and audio tokens as a
``prefix``, and notebook 12 measures it. The file reads in the order the parts compose:

1. :class:`GPTConfig`, the sizes;
2. :class:`GPT`: token + position embeddings → :class:`mmcourse.transformer.Decoder` → LM head,
   with GPT-2's initialisation; the LM head shares its weight with the token embedding;
3. :func:`configure_optimizer`: AdamW, weight decay on matrices only;
4. sampling: :func:`top_k_filter`, :func:`top_p_filter`, then :func:`generate` (greedy,
   temperature, top-k, top-p, with a KV cache) (perplexity is in :mod:`mmcourse.metrics`);
5. :func:`load_hf_gpt2`: weights from a Hugging Face ``GPT2LMHeadModel``.

Shapes: ``B`` batch, ``T`` tokens, ``P`` prefix positions, ``C`` = ``n_embd``, ``V`` vocabulary,
``L`` layers, ``H`` heads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse.transformer import ACTIVATIONS, Decoder, KVCache, LearnedPositions, ModelOutput

__all__ = [
    "GPTConfig",
    "GPT",
    "configure_optimizer",
    "top_k_filter",
    "top_p_filter",
    "generate",
    "load_hf_gpt2",
]

IGNORE_INDEX = -100  # targets equal to this add nothing to the loss, as in F.cross_entropy


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _compiling() -> bool:
    # Value checks read tensors back to Python, which torch.compile would have to break its graph for.
    return torch.compiler.is_compiling()


# --------------------------------------------------------------------------- config

@dataclass
class GPTConfig:
    """The sizes of a :class:`GPT`. Introduced in notebook 06.

    ``block_size`` is the longest sequence (prefix included) the model sees; ``n_embd`` must be
    a multiple of ``n_head``. ``activation="gelu_tanh"``, ``bias=True``, ``tie_weights=True``
    and ``layer_norm_eps=1e-5`` are GPT-2's choices. ``cross_attention=True`` adds to every
    block a cross-attention sublayer over a ``context`` of width ``context_dim`` (default
    ``n_embd``), for the multimodal GPT's cross-attention variant.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    activation: str = "gelu_tanh"
    tie_weights: bool = True
    layer_norm_eps: float = 1e-5
    cross_attention: bool = False
    context_dim: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig: expected {name} to be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig: expected n_embd divisible by n_head, got n_embd={self.n_embd} and "
                f"n_head={self.n_head} (n_embd % n_head = {self.n_embd % self.n_head})"
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig: expected dropout in [0, 1), got {self.dropout!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"GPTConfig: expected activation in {ACTIVATIONS}, got {self.activation!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"GPTConfig: expected layer_norm_eps > 0, got {self.layer_norm_eps!r}")
        if self.context_dim is not None and not self.cross_attention:
            raise ValueError("GPTConfig: context_dim is only used with cross_attention=True")
        dim = self.context_dim
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"GPTConfig: expected context_dim to be a positive int or None, got {dim!r}")


# --------------------------------------------------------------------------- model

class GPT(nn.Module):
    """A GPT-2 style language model. Introduced in notebook 06.

    ``wte`` embeds tokens, ``wpe`` adds learned positions, ``decoder`` holds the causal blocks
    and the final LayerNorm, ``lm_head`` maps back to the vocabulary (its weight *is*
    ``wte.weight`` when ``tie_weights``). Initialised as GPT-2: weights normal(0, 0.02), biases
    zero, and the projections that write into the residual stream (``attn.out_proj``,
    ``mlp.proj``) with std ``0.02 / sqrt(2 · n_layer)``, so that the stream's variance does not
    grow with depth.

    ``model(idx, targets)`` → :class:`mmcourse.transformer.ModelOutput` ``(logits, loss, attention)``:

    - ``idx`` ``(B, T)`` token ids; ``targets`` ``(B, T)``: the next token at each position,
      or ``-100`` where no loss is wanted; ``loss`` is the mean cross-entropy.
    - ``prefix`` ``(B, P, C)``: embeddings placed before the tokens (image or audio tokens in
      the multimodal GPT). They take positions ``0 .. P-1``, the tokens ``P .. P+T-1``;
      ``logits`` and ``loss`` cover the token positions only, ``(B, T, V)``.
    - ``context`` ``(B, N, context_dim)`` and ``context_mask`` ``(B, N)`` feed the
      cross-attention of a model built with ``cross_attention=True``.
    - ``return_attention=True`` computes attention explicitly and returns its weights,
      ``(L, B, H, P+T, P+T)`` (and ``cross_attention`` ``(L, B, H, P+T, N)``); otherwise the
      fused kernel runs and no weights are kept.
    - ``kv_cache``: a :class:`mmcourse.transformer.KVCache` from :meth:`new_cache`; the tokens
      continue the positions it holds (see :func:`generate`).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"expected a GPTConfig, got {type(config).__name__}")
        self.config = config
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)
        self.wpe = LearnedPositions(config.block_size, C)
        self.drop = nn.Dropout(config.dropout)
        self.decoder = Decoder(
            C, config.n_head, config.n_layer, dropout=config.dropout, bias=config.bias,
            activation=config.activation, eps=config.layer_norm_eps,
            cross_attention=config.cross_attention, context_dim=config.context_dim,
        )
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for block in self.decoder.blocks:
            attentions = [block.attn] if block.cross_attn is None else [block.attn, block.cross_attn]
            for proj in [a.out_proj for a in attentions] + [block.mlp.proj]:
                nn.init.normal_(proj.weight, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters; ``non_embedding`` leaves out the position table (and, untied, the token one)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wpe.table.weight.numel()
            if not self.config.tie_weights:  # tied, wte is also the output layer and is counted
                n -= self.wte.weight.numel()
        return n

    def new_cache(self) -> KVCache:
        """An empty :class:`mmcourse.transformer.KVCache` for this model (``block_size`` positions)."""
        return KVCache(self.config.n_layer, self.config.block_size)

    def hidden_states(
        self,
        idx: Tensor,
        *,
        prefix: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        kv_cache: KVCache | None = None,
        return_attention: bool = False,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The final-LayerNorm outputs ``(B, P+T, C)`` that the LM head reads, and the attention weights.

        The weights are ``{}`` unless ``return_attention``; see the class docstring for the
        arguments.
        """
        offset = 0 if kv_cache is None else len(kv_cache)
        B, T, P = self._check_inputs(idx, prefix, context, kv_cache, offset)
        x = self.wte(idx)  # (B, T, C)
        if prefix is not None:
            x = torch.cat([prefix.to(x.dtype), x], dim=1)  # (B, P+T, C); under autocast prefix may be half
        x = self.drop(x + self.wpe(P + T, offset))  # positions broadcast over the batch
        result = self.decoder(
            x, context=context, context_mask=context_mask, need_weights=return_attention, kv_cache=kv_cache
        )
        return result if return_attention else (result, {})

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        prefix: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        kv_cache: KVCache | None = None,
        return_attention: bool = False,
    ) -> ModelOutput:
        h, weights = self.hidden_states(
            idx, prefix=prefix, context=context, context_mask=context_mask, kv_cache=kv_cache,
            return_attention=return_attention,
        )
        P = h.shape[1] - idx.shape[1]
        logits = self.lm_head(h[:, P:])  # (B, T, V): predictions at the token positions only
        loss = None
        if targets is not None:
            self._check_targets(targets, idx)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        return ModelOutput(logits, loss, weights.get("self"), weights.get("cross"))

    def _check_inputs(
        self, idx: Tensor, prefix: Tensor | None, context: Tensor | None, kv_cache: KVCache | None, offset: int
    ) -> tuple[int, int, int]:
        cfg = self.config
        if not isinstance(idx, Tensor) or idx.dim() != 2:
            raise ValueError(f"expected idx of shape (B, T), got {_shape(idx)}")
        if idx.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"expected idx of dtype torch.long (token ids), got {idx.dtype}")
        B, T = idx.shape
        if not _compiling() and idx.numel() > 0:
            low, high = torch.stack(torch.aminmax(idx)).tolist()  # one read-back, not two
            if low < 0 or high >= cfg.vocab_size:
                raise ValueError(
                    f"expected token ids in [0, vocab_size={cfg.vocab_size}), got values in [{low}, {high}]"
                )
        P = 0
        if prefix is not None:
            C = cfg.n_embd
            if not isinstance(prefix, Tensor) or prefix.dim() != 3 or prefix.shape[0] != B or prefix.shape[2] != C:
                raise ValueError(f"expected prefix of shape (B, P, C) = ({B}, P, {C}), got {_shape(prefix)}")
            if not prefix.is_floating_point():
                raise TypeError(f"expected prefix of a floating dtype, got {prefix.dtype}")
            if offset > 0:
                raise ValueError("a prefix goes before the first token: pass it with an empty KV cache only")
            P = prefix.shape[1]
        if offset + P + T > cfg.block_size:
            cached = f"{offset} cached + " if kv_cache is not None else ""
            raise ValueError(
                f"the sequence has {cached}{P} prefix + {T} token positions = {offset + P + T}, more than "
                f"block_size={cfg.block_size}; crop idx to its last {cfg.block_size - offset - P} tokens "
                f"(generate() does this itself)"
            )
        if cfg.cross_attention and context is None:
            raise ValueError(
                "this GPT has cross-attention (config.cross_attention=True): pass a context (B, N, context_dim)"
            )
        if not cfg.cross_attention and context is not None:
            raise ValueError("a context needs a GPT built with cross_attention=True")
        return B, T, P

    def _check_targets(self, targets: Tensor, idx: Tensor) -> None:
        if not isinstance(targets, Tensor) or targets.shape != idx.shape:
            raise ValueError(
                f"expected targets of the shape of idx (B, T) = {tuple(idx.shape)}, got {_shape(targets)}"
            )
        if targets.dtype != torch.int64:
            raise TypeError(f"expected targets of dtype torch.long, got {targets.dtype}")
        if not _compiling():
            bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= self.config.vocab_size))
            if bool(bad.any()):
                raise ValueError(
                    f"expected targets in [0, vocab_size={self.config.vocab_size}) or {IGNORE_INDEX} (ignored), "
                    f"got {targets[bad][0].item()}"
                )

    @classmethod
    def from_hf_gpt2(cls, hf_model: Any) -> GPT:
        """A GPT with the configuration, weights, dtype and device of a Hugging Face ``GPT2LMHeadModel``.

        Returned in eval mode, like a model fresh from ``from_pretrained``.
        """
        reference = hf_model.get_input_embeddings().weight
        model = cls(_config_from_hf_gpt2(hf_model.config)).to(device=reference.device, dtype=reference.dtype)
        return load_hf_gpt2(model, hf_model).eval()


# --------------------------------------------------------------------------- optimizer

def configure_optimizer(
    model: nn.Module,
    lr: float = 3e-4,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    *,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (linear weights, embeddings) and none on biases and norms.

    Introduced in notebook 06. Decay pulls weights towards zero; on a LayerNorm's scale or a
    bias that only shifts what the network represents, so parameters with fewer than 2
    dimensions form a second group with ``weight_decay=0``. Tied weights are counted once.
    ``fused=None`` uses PyTorch's fused AdamW kernel where it supports the parameters' device
    (CPU and CUDA in PyTorch 2.13) and the multi-tensor one otherwise; ``True``/``False`` force it.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be an nn.Module, got {type(model).__name__}")
    if not lr > 0:
        raise ValueError(f"expected lr > 0, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"expected weight_decay >= 0, got {weight_decay!r}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"expected betas as two numbers in [0, 1), got {betas!r}")
    params = [p for p in model.parameters() if p.requires_grad]  # parameters() skips tied duplicates
    if not params:
        raise ValueError("the model has no trainable parameters")
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if fused is None:
        fused = all(_fused_adamw_works(device, dtype) for device, dtype in {(p.device, p.dtype) for p in params})
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


def _fused_adamw_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether PyTorch's fused AdamW steps a parameter of this device and dtype.

    Asked by trying, on a one-element parameter: PyTorch checks only at the first step, and
    its list of supported devices is private.
    """
    probe = nn.Parameter(torch.zeros(1, device=device, dtype=dtype))
    probe.grad = torch.zeros_like(probe)
    try:
        torch.optim.AdamW([probe], fused=True).step()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------- sampling

def _check_logits(logits: Tensor) -> None:
    if not isinstance(logits, Tensor) or logits.dim() < 1 or not logits.is_floating_point():
        got = f"{_shape(logits)} {logits.dtype}" if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"expected floating logits of shape (..., V), got {got}")


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row (``(..., V)``), set the rest to ``-inf``.

    Introduced in notebook 06. Logits tied with the ``k``-th largest are kept too; ``k >= V``
    keeps everything. Sampling from the result never picks a token outside the top ``k``.
    """
    _check_logits(logits)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"expected k to be a positive int, got {k!r}")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the most likely tokens until their probability reaches ``p``; rest ``-inf``.

    Introduced in notebook 06. Per row of ``(..., V)``: sort the tokens by probability and keep
    each token whose better-ranked tokens hold less than ``p`` of the probability together, the
    smallest set with mass ``>= p``. The most likely token is always kept; ``p = 1`` keeps all.
    """
    _check_logits(logits)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"expected p in (0, 1], got {p!r}")
    if p == 1:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of the better-ranked tokens
    mass_before[..., 0] = 0.0
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def _pick_next(
    logits: Tensor, greedy: bool, temperature: float, top_k: int | None, top_p: float | None,
    generator: torch.Generator | None,
) -> Tensor:
    """One token id per row of ``logits`` ``(B, V)`` → ``(B, 1)``."""
    if greedy or temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1, generator=generator)


def _check_generate_arguments(model, idx, max_new_tokens, temperature, top_k, top_p, stop_token) -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"expected model to be a GPT, got {type(model).__name__}")
    if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"expected idx of shape (B, T) with T >= 1 (a prompt), got {_shape(idx)}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"expected max_new_tokens to be a non-negative int, got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"expected temperature >= 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"expected top_k to be a positive int or None, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"expected top_p in (0, 1] or None, got {top_p!r}")
    vocab = model.config.vocab_size
    if stop_token is not None and (isinstance(stop_token, bool) or not isinstance(stop_token, int)
                                   or not 0 <= stop_token < vocab):
        raise ValueError(f"expected stop_token to be a token id in [0, {vocab}) or None, got {stop_token!r}")


@torch.no_grad()
def generate(
    model: GPT,
    idx: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    prefix: Tensor | None = None,
    context: Tensor | None = None,
    context_mask: Tensor | None = None,
    stop_token: int | None = None,
) -> Tensor:
    """Continue the prompts ``idx`` ``(B, T)`` by up to ``max_new_tokens`` tokens → ``(B, T + new)``.

    Introduced in notebook 06. Each step turns the last position's logits into a token:

    - ``greedy=True`` (or ``temperature=0``): the most likely token;
    - otherwise sample from ``softmax(logits / temperature)``, after :func:`top_k_filter` and
      then :func:`top_p_filter` when ``top_k`` / ``top_p`` are given. ``generator`` makes the
      draws repeatable.

    ``use_cache=True`` keeps each layer's keys and values (:class:`mmcourse.transformer.KVCache`)
    so that a step computes one new position instead of the whole sequence. The logits equal
    those without the cache up to rounding, so the tokens are the same unless two candidates
    tie to within rounding. Positions are learned and absolute, so once the sequence outgrows
    ``block_size`` the model can only see its last ``block_size - P`` tokens (after the prefix,
    which is always kept), each at a new position: from then on every step recomputes that
    window, with or without the cache.

    ``prefix`` ``(B, P, C)``, ``context`` and ``context_mask`` are passed to the model as in
    :class:`GPT`; the returned ids do not include the prefix. With ``stop_token``, a row that
    produced it produces only ``stop_token`` afterwards, and generation ends early once every
    row has. The model runs in eval mode (its mode is restored afterwards) without gradients.
    """
    _check_generate_arguments(model, idx, max_new_tokens, temperature, top_k, top_p, stop_token)
    if prefix is not None and not (isinstance(prefix, Tensor) and prefix.dim() == 3):
        raise ValueError(f"expected prefix of shape (B, P, C), got {_shape(prefix)}")
    P = 0 if prefix is None else prefix.shape[1]
    window = model.config.block_size - P  # token positions that fit beside the prefix
    if window < 1:
        raise ValueError(f"expected a prefix of fewer than block_size={model.config.block_size} positions, got P={P}")
    was_training = model.training
    model.eval()
    try:
        cache = model.new_cache() if use_cache else None
        out = idx
        finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        extra = dict(context=context, context_mask=context_mask)
        for _ in range(max_new_tokens):
            if cache is not None and out.shape[1] <= window:
                seen = max(len(cache) - P, 0)  # tokens already in the cache
                h, _ = model.hidden_states(
                    out[:, seen:], prefix=prefix if seen == 0 else None, kv_cache=cache, **extra
                )
            else:  # the window slides: every position moves, so nothing cached stays valid
                cache = None
                h, _ = model.hidden_states(out[:, -window:], prefix=prefix, **extra)
            logits = model.lm_head(h[:, -1])  # (B, V): only the last position is needed
            next_token = _pick_next(logits, greedy, temperature, top_k, top_p, generator)  # (B, 1)
            if stop_token is not None:
                next_token = next_token.masked_fill(finished[:, None], stop_token)
                finished |= next_token[:, 0] == stop_token
            out = torch.cat([out, next_token.to(out.dtype)], dim=1)
            if stop_token is not None and bool(finished.all()):
                break
        return out
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- Hugging Face GPT-2

_HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def _config_from_hf_gpt2(hf_config: Any) -> GPTConfig:
    activation = _HF_ACTIVATIONS.get(hf_config.activation_function)
    if activation is None:
        raise ValueError(
            f"expected a GPT-2 activation in {sorted(_HF_ACTIVATIONS)}, got {hf_config.activation_function!r}"
        )
    if hf_config.n_inner not in (None, 4 * hf_config.n_embd):
        raise ValueError(f"expected n_inner = 4 * n_embd (or None), got {hf_config.n_inner}")
    if not hf_config.scale_attn_weights or hf_config.scale_attn_by_inverse_layer_idx:
        raise ValueError("expected GPT-2 attention scaled by 1/sqrt(D) only (scale_attn_weights=True, "
                         "scale_attn_by_inverse_layer_idx=False)")
    return GPTConfig(
        vocab_size=hf_config.vocab_size, block_size=hf_config.n_positions, n_layer=hf_config.n_layer,
        n_head=hf_config.n_head, n_embd=hf_config.n_embd, dropout=float(hf_config.resid_pdrop), bias=True,
        activation=activation, tie_weights=bool(getattr(hf_config, "tie_word_embeddings", True)),
        layer_norm_eps=hf_config.layer_norm_epsilon,
    )


@torch.no_grad()
def load_hf_gpt2(model: GPT, hf_model: Any) -> GPT:
    """Copy the weights of a Hugging Face ``GPT2LMHeadModel`` into ``model``; return ``model``.

    Introduced in notebook 06. GPT-2's ``Conv1D`` layers store their weight as ``(in, out)``,
    the transpose of ``nn.Linear``'s ``(out, in)``, and its ``c_attn`` packs the query, key and
    value projections side by side: ``W = [W_q | W_k | W_v]`` of shape ``(C, 3C)``.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"expected model to be a GPT, got {type(model).__name__}")
    state = hf_model.state_dict()
    if "transformer.wte.weight" not in state:
        raise TypeError(f"expected a Hugging Face GPT2LMHeadModel, got {type(hf_model).__name__}")
    expected = dataclasses.replace(model.config, dropout=0.0)
    theirs = dataclasses.replace(_config_from_hf_gpt2(hf_model.config), dropout=0.0)
    if expected != theirs:
        raise ValueError(f"expected a GPT-2 of configuration {expected}, got {theirs}")
    C = model.config.n_embd

    def linear(ours: nn.Linear, name: str) -> None:
        ours.weight.copy_(state[f"{name}.weight"].T)  # Conv1D (in, out) -> Linear (out, in)
        ours.bias.copy_(state[f"{name}.bias"])

    def norm(ours: nn.LayerNorm, name: str) -> None:
        ours.weight.copy_(state[f"{name}.weight"])
        ours.bias.copy_(state[f"{name}.bias"])

    model.wte.weight.copy_(state["transformer.wte.weight"])
    model.wpe.table.weight.copy_(state["transformer.wpe.weight"])
    for i, block in enumerate(model.decoder.blocks):
        p = f"transformer.h.{i}."
        norm(block.ln_1, p + "ln_1")
        norm(block.ln_2, p + "ln_2")
        w_q, w_k, w_v = state[p + "attn.c_attn.weight"].split(C, dim=1)  # (C, C) each, (in, out)
        b_q, b_k, b_v = state[p + "attn.c_attn.bias"].split(C)
        attn = block.attn
        for proj, w, b in ((attn.q_proj, w_q, b_q), (attn.k_proj, w_k, b_k), (attn.v_proj, w_v, b_v)):
            proj.weight.copy_(w.T)
            proj.bias.copy_(b)
        linear(block.attn.out_proj, p + "attn.c_proj")
        linear(block.mlp.fc, p + "mlp.c_fc")
        linear(block.mlp.proj, p + "mlp.c_proj")
    norm(model.decoder.ln_f, "transformer.ln_f")
    if not model.config.tie_weights:
        model.lm_head.weight.copy_(state["lm_head.weight"])
    return model
