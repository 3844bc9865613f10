"""BERT: a bidirectional encoder pretrained by filling in masked tokens, then fine-tuned.

Introduced in notebook 07. The file reads in the order the parts compose:

1. :func:`mask_tokens`, the masked-LM corruption: choose 15 % of the tokens; of those, 80 %
   become ``[MASK]``, 10 % a random token, 10 % stay as they are;
2. :class:`BertConfig`, the sizes;
3. :class:`BERT`: token + position + segment embeddings, LayerNorm, then post-LN
   :class:`mmcourse.transformer.Encoder` blocks (every token sees every non-padding token);
4. the heads: :class:`BertForMLM` predicts the masked tokens, :class:`BertClassifier` reads
   the ``[CLS]`` position to label a whole sequence;
5. :func:`load_hf_bert`: weights from Hugging Face ``BertModel`` / ``BertForMaskedLM`` /
   ``BertForSequenceClassification``.

Shapes: ``B`` batch, ``T`` tokens, ``C`` = ``n_embd``, ``V`` vocabulary, ``L`` layers, ``H`` heads.
``attention_mask`` is ``(B, T)``, ``True`` (or 1) for real tokens and ``False`` (0) for padding,
as in Hugging Face.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse.transformer import ACTIVATIONS, Encoder, LearnedPositions, ModelOutput, make_activation

__all__ = [
    "mask_tokens",
    "BertConfig",
    "BERT",
    "BertForMLM",
    "BertClassifier",
    "load_hf_bert",
]

IGNORE_INDEX = -100  # labels equal to this add nothing to the loss, as in F.cross_entropy


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _check_ids(name: str, ids: object, vocab_size: int) -> None:
    if not isinstance(ids, Tensor) or ids.dim() != 2:
        raise ValueError(f"expected {name} of shape (B, T), got {_shape(ids)}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"expected {name} of dtype torch.long (token ids), got {ids.dtype}")
    if ids.numel() > 0 and not torch.compiler.is_compiling():
        low, high = ids.min().item(), ids.max().item()
        if low < 0 or high >= vocab_size:
            raise ValueError(f"expected {name} in [0, {vocab_size}), got values in [{low}, {high}]")


# --------------------------------------------------------------------------- masking

def mask_tokens(
    ids: Tensor,
    *,
    vocab_size: int,
    mask_id: int,
    special_ids: Iterable[int] = (),
    p: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Corrupt token ids for masked-LM training → ``(inputs, labels)``, both of the shape of ``ids``.

    Introduced in notebook 07. Each token that is not special is *chosen* with probability
    ``p``. ``labels`` holds the original id at chosen positions and ``-100`` (ignored by the
    loss) elsewhere. In ``inputs`` a chosen token becomes ``mask_id`` with probability 0.8, a
    random non-special token with probability 0.1, and stays itself with probability 0.1, so
    the model cannot tell from the input which tokens it will be asked about. Special tokens
    (padding, ``[CLS]``, ``[SEP]``; ``mask_id`` always counts as one) are never chosen and
    never drawn as random tokens. ``generator`` (on the device of ``ids``) makes it repeatable.
    """
    if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32):
        got = ids.dtype if isinstance(ids, Tensor) else type(ids).__name__
        raise TypeError(f"expected ids as an integer tensor (token ids), got {got}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"expected vocab_size to be a positive int, got {vocab_size!r}")
    special = {mask_id, *special_ids}
    for token in special:
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < vocab_size:
            raise ValueError(f"expected mask_id and special_ids in [0, vocab_size={vocab_size}), got {token!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"expected p in [0, 1], got {p!r}")
    if ids.numel() > 0 and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"expected ids in [0, vocab_size={vocab_size}), got values in [{ids.min().item()}, {ids.max().item()}]"
        )
    device = ids.device
    special_tensor = torch.tensor(sorted(special), device=device)
    ordinary = torch.ones(vocab_size, dtype=torch.bool, device=device)
    ordinary[special_tensor] = False
    ordinary = ordinary.nonzero().squeeze(1)  # ids a random replacement may take
    if ordinary.numel() == 0:
        raise ValueError("every id is special, so no random replacement token is left")

    chosen = ~torch.isin(ids, special_tensor) & (torch.rand(ids.shape, generator=generator, device=device) < p)
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    action = torch.rand(ids.shape, generator=generator, device=device)  # 80 % / 10 % / 10 %
    random_ids = ordinary[torch.randint(ordinary.numel(), ids.shape, generator=generator, device=device)]
    inputs = torch.where(chosen & (action < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids.to(ids.dtype), inputs)
    return inputs, labels


# --------------------------------------------------------------------------- config

@dataclass
class BertConfig:
    """The sizes of a :class:`BERT`. Introduced in notebook 07.

    ``block_size`` is the longest sequence (Hugging Face's ``max_position_embeddings``),
    ``hidden`` the MLP width (default ``4 * n_embd``; HF's ``intermediate_size``),
    ``type_vocab_size`` the number of segments (sentence A / B). ``activation="gelu"`` (the
    exact, erf-based GELU) and ``layer_norm_eps=1e-12`` are BERT's choices.
    """

    vocab_size: int
    block_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    hidden: int | None = None
    type_vocab_size: int = 2
    dropout: float = 0.1
    activation: str = "gelu"
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.hidden is None:
            self.hidden = 4 * self.n_embd if isinstance(self.n_embd, int) else None
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "hidden", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BertConfig: expected {name} to be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"BertConfig: expected n_embd divisible by n_head, got n_embd={self.n_embd} and "
                f"n_head={self.n_head} (n_embd % n_head = {self.n_embd % self.n_head})"
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"BertConfig: expected dropout in [0, 1), got {self.dropout!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"BertConfig: expected activation in {ACTIVATIONS}, got {self.activation!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"BertConfig: expected layer_norm_eps > 0, got {self.layer_norm_eps!r}")

    @classmethod
    def from_hf(cls, hf_config: Any) -> BertConfig:
        """The configuration of a Hugging Face ``BertConfig`` (absolute positions, encoder only)."""
        activation = {"gelu": "gelu", "gelu_new": "gelu_tanh", "relu": "relu"}.get(hf_config.hidden_act)
        if activation is None:
            raise ValueError(f"expected hidden_act in ('gelu', 'gelu_new', 'relu'), got {hf_config.hidden_act!r}")
        if getattr(hf_config, "position_embedding_type", "absolute") != "absolute" or hf_config.is_decoder:
            raise ValueError("expected a BERT encoder with absolute position embeddings")
        if hf_config.attention_probs_dropout_prob != hf_config.hidden_dropout_prob:
            raise ValueError(
                f"expected one dropout rate, got attention_probs_dropout_prob="
                f"{hf_config.attention_probs_dropout_prob} and hidden_dropout_prob={hf_config.hidden_dropout_prob}"
            )
        return cls(
            vocab_size=hf_config.vocab_size, block_size=hf_config.max_position_embeddings,
            n_layer=hf_config.num_hidden_layers, n_head=hf_config.num_attention_heads,
            n_embd=hf_config.hidden_size, hidden=hf_config.intermediate_size,
            type_vocab_size=hf_config.type_vocab_size, dropout=float(hf_config.hidden_dropout_prob),
            activation=activation, layer_norm_eps=hf_config.layer_norm_eps,
        )


def _init_bert_weights(module: nn.Module) -> None:
    """BERT's initialisation: weights normal(0, 0.02), biases zero (LayerNorms keep 1 and 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------- encoder

class BERT(nn.Module):
    """The BERT encoder: ``(B, T)`` token ids → ``(B, T, C)`` contextual vectors. Introduced in notebook 07.

    ``x = LayerNorm(token + position + segment embedding)``, dropout, then ``n_layer`` post-LN
    blocks (``x = LN(x + attention(x))``, ``x = LN(x + MLP(x))``) without causal mask.
    ``forward(ids, token_type_ids=None, attention_mask=None, return_attention=False)``:
    ``token_type_ids`` ``(B, T)`` segment ids (default 0), ``attention_mask`` ``(B, T)``
    (``True``/1 = real token). With ``return_attention=True`` returns ``(hidden, weights)``,
    the weights ``(L, B, H, T, T)``.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"expected a BertConfig, got {type(config).__name__}")
        self.config = config
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)
        self.wpe = LearnedPositions(config.block_size, C)
        self.wse = nn.Embedding(config.type_vocab_size, C)  # segment (token type) embeddings
        self.ln = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = Encoder(
            C, config.n_head, config.n_layer, norm_first=False, hidden=config.hidden, dropout=config.dropout,
            activation=config.activation, eps=config.layer_norm_eps,
        )
        self.apply(_init_bert_weights)

    def forward(
        self,
        ids: Tensor,
        *,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        cfg = self.config
        _check_ids("ids", ids, cfg.vocab_size)
        B, T = ids.shape
        if T > cfg.block_size:
            raise ValueError(f"expected at most block_size={cfg.block_size} tokens, got T={T}; truncate the input")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(ids)
        elif not isinstance(token_type_ids, Tensor) or token_type_ids.shape != ids.shape:
            raise ValueError(
                f"expected token_type_ids of the shape of ids {tuple(ids.shape)}, got {_shape(token_type_ids)}"
            )
        else:
            _check_ids("token_type_ids", token_type_ids, cfg.type_vocab_size)
        mask = attention_mask
        if mask is not None and (not isinstance(mask, Tensor) or mask.shape != ids.shape):
            raise ValueError(
                f"expected attention_mask of shape (B, T) = {tuple(ids.shape)} (1 = real token), got {_shape(mask)}"
            )
        x = self.wte(ids) + self.wpe(T) + self.wse(token_type_ids)  # (B, T, C)
        x = self.drop(self.ln(x))
        result = self.encoder(x, padding_mask=attention_mask, need_weights=return_attention)
        if return_attention:
            hidden, weights = result
            return hidden, weights["self"]
        return result


def _split(result: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
    return result if isinstance(result, tuple) else (result, None)


def _loss(logits: Tensor, labels: Tensor | None, shape: tuple[int, ...], n_classes: int) -> Tensor | None:
    if labels is None:
        return None
    if not isinstance(labels, Tensor) or labels.shape != shape:
        raise ValueError(f"expected labels of shape {shape}, got {_shape(labels)}")
    if labels.dtype != torch.int64:
        raise TypeError(f"expected labels of dtype torch.long, got {labels.dtype}")
    bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= n_classes))
    if bool(bad.any()):
        raise ValueError(
            f"expected labels in [0, {n_classes}) or {IGNORE_INDEX} (ignored), got {labels[bad][0].item()}"
        )
    return F.cross_entropy(logits.reshape(-1, n_classes), labels.reshape(-1), ignore_index=IGNORE_INDEX)


# --------------------------------------------------------------------------- heads

class BertForMLM(nn.Module):
    """BERT with the masked-LM head: ``(B, T)`` ids → ``(B, T, V)`` logits. Introduced in notebook 07.

    The head is ``dense (C → C) → GELU → LayerNorm → decoder (C → V)``; the decoder's weight is
    the token embedding ``bert.wte.weight`` and it has its own bias. ``forward(ids, labels,
    token_type_ids=..., attention_mask=..., return_attention=...)`` → :class:`ModelOutput`; the
    loss is the cross-entropy over positions whose label is not ``-100`` (see :func:`mask_tokens`).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BERT(config)
        C = config.n_embd
        self.dense = nn.Linear(C, C)
        self.act = make_activation(config.activation)
        self.ln = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(C, config.vocab_size)
        _init_bert_weights(self.dense)
        _init_bert_weights(self.decoder)
        self.decoder.weight = self.bert.wte.weight

    def forward(
        self,
        ids: Tensor,
        labels: Tensor | None = None,
        *,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> ModelOutput:
        hidden, weights = _split(self.bert(
            ids, token_type_ids=token_type_ids, attention_mask=attention_mask, return_attention=return_attention
        ))
        logits = self.decoder(self.ln(self.act(self.dense(hidden))))  # (B, T, V)
        return ModelOutput(logits, _loss(logits, labels, tuple(ids.shape), self.config.vocab_size), weights)


class BertClassifier(nn.Module):
    """BERT with a sequence classifier: ``(B, T)`` ids → ``(B, n_classes)`` logits. Introduced in notebook 07.

    The pooler reads the first position (``[CLS]``): ``tanh(dense(h[:, 0]))``, then dropout and
    a linear layer. To fine-tune a pretrained encoder, load its weights into ``bert``:
    ``clf.bert.load_state_dict(mlm.bert.state_dict())``. ``forward(ids, labels, ...)`` →
    :class:`ModelOutput` with the cross-entropy loss when ``labels`` ``(B,)`` are given.
    """

    def __init__(self, config: BertConfig, n_classes: int) -> None:
        super().__init__()
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"expected n_classes to be an int >= 2, got {n_classes!r}")
        self.config, self.n_classes = config, n_classes
        self.bert = BERT(config)
        self.pooler = nn.Linear(config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.n_embd, n_classes)
        _init_bert_weights(self.pooler)
        _init_bert_weights(self.classifier)

    def forward(
        self,
        ids: Tensor,
        labels: Tensor | None = None,
        *,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> ModelOutput:
        hidden, weights = _split(self.bert(
            ids, token_type_ids=token_type_ids, attention_mask=attention_mask, return_attention=return_attention
        ))
        pooled = torch.tanh(self.pooler(hidden[:, 0]))  # (B, C): the [CLS] position
        logits = self.classifier(self.drop(pooled))  # (B, n_classes)
        return ModelOutput(logits, _loss(logits, labels, (ids.shape[0],), self.n_classes), weights)


# --------------------------------------------------------------------------- Hugging Face BERT

@torch.no_grad()
def load_hf_bert(model: BERT | BertForMLM | BertClassifier, hf_model: Any) -> BERT | BertForMLM | BertClassifier:
    """Copy the weights of a Hugging Face BERT into ``model``; return ``model``. Introduced in notebook 07.

    ``BERT`` takes a ``BertModel`` (or the encoder of either head model), ``BertForMLM`` a
    ``BertForMaskedLM``, ``BertClassifier`` a ``BertForSequenceClassification``. Hugging Face
    names each piece after its role (``attention.self.query``, ``intermediate.dense``,
    ``output.LayerNorm`` ...); the weights themselves are ``nn.Linear`` weights and copy as they are.
    """
    if not isinstance(model, (BERT, BertForMLM, BertClassifier)):
        raise TypeError(f"expected a BERT, BertForMLM or BertClassifier, got {type(model).__name__}")
    state = hf_model.state_dict()
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in state else ""
    if prefix + "embeddings.word_embeddings.weight" not in state:
        raise TypeError(f"expected a Hugging Face BERT model, got {type(hf_model).__name__}")
    bert = model if isinstance(model, BERT) else model.bert
    theirs = BertConfig.from_hf(hf_model.config)
    ours = bert.config
    sizes = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "hidden", "type_vocab_size", "activation")
    if any(getattr(ours, s) != getattr(theirs, s) for s in sizes):
        raise ValueError(f"expected a BERT of configuration {ours}, got {theirs}")
    if isinstance(model, BertForMLM) and "cls.predictions.bias" not in state:
        raise TypeError(f"expected a Hugging Face BertForMaskedLM for a BertForMLM, got {type(hf_model).__name__}")
    if isinstance(model, BertClassifier) and (
        "classifier.weight" not in state or state["classifier.weight"].shape[0] != model.n_classes
    ):
        raise TypeError(
            f"expected a Hugging Face BertForSequenceClassification with {model.n_classes} labels, "
            f"got {type(hf_model).__name__}"
        )

    def copy(module: nn.Module, name: str) -> None:
        module.load_state_dict({key: state[f"{name}.{key}"] for key in module.state_dict()})

    e = prefix + "embeddings."
    copy(bert.wte, e + "word_embeddings")
    copy(bert.wpe.table, e + "position_embeddings")
    copy(bert.wse, e + "token_type_embeddings")
    copy(bert.ln, e + "LayerNorm")
    for i, block in enumerate(bert.encoder.blocks):
        p = f"{prefix}encoder.layer.{i}."
        copy(block.attn.q_proj, p + "attention.self.query")
        copy(block.attn.k_proj, p + "attention.self.key")
        copy(block.attn.v_proj, p + "attention.self.value")
        copy(block.attn.out_proj, p + "attention.output.dense")
        copy(block.ln_1, p + "attention.output.LayerNorm")
        copy(block.mlp.fc, p + "intermediate.dense")
        copy(block.mlp.proj, p + "output.dense")
        copy(block.ln_2, p + "output.LayerNorm")
    if isinstance(model, BertForMLM):
        copy(model.dense, "cls.predictions.transform.dense")
        copy(model.ln, "cls.predictions.transform.LayerNorm")
        model.decoder.bias.copy_(state["cls.predictions.bias"])  # the weight is tied to bert.wte
    if isinstance(model, BertClassifier):
        copy(model.pooler, "bert.pooler.dense")
        copy(model.classifier, "classifier")
    return model
