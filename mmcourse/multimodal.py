"""The multimodal GPT: image and audio tokens, projected into a GPT's token space, fused with text.

Introduced in notebook 10. The model is a thin composition of parts built earlier in the course,
in the spirit of a vision-language model: an image encoder, an audio encoder, one projector per
modality, and a language model that does the rest. The file reads in the order the parts compose:

1. :class:`MultimodalConfig`, the sizes and the two choices (which modalities, how to fuse);
2. :class:`ModalityProjector`: encoder width → the GPT's width ``C``, and
   :class:`PlacedProjector`, which adds a learned position per token (for cross-attention);
3. :class:`ModalityLayout` and :class:`MultimodalOutput`: where each modality sits in what the
   decoder attends over, and the attention of the text positions over the image and the audio;
4. :class:`MultimodalGPT`: encode → project → fuse → decode, and :meth:`MultimodalGPT.generate`.

The pipeline, with the defaults (32x32 images, 8x8 patches, one-second clips)::

    image (B, 3, 32, 32) --PatchEmbedding--> (B, 16, C_img) --image_projector--> (B, 16, C) --+
    log-mel (B, F, 101)  --AudioEncoder-->   (B, 26, C_aud) --audio_projector--> (B, 26, C) --+
    text ids (B, T) ------------------------------------------------------------------------> GPT --> logits (B, T, V)

Two ways to fuse (``MultimodalConfig.fusion``):

- ``"prefix"`` (default): the projected tokens go before the text, ``[image | audio | text]``,
  and the GPT's causal self-attention lets every text token read all of them;
- ``"cross_attention"``: the text alone runs through the GPT, whose blocks each gain a
  cross-attention sublayer that reads the projected tokens as a ``context``.

Shapes: ``B`` batch, ``T`` text tokens, ``N`` patches, ``F`` mel bins, ``P`` prefix positions,
``C`` the GPT's width, ``V`` vocabulary, ``L`` layers, ``H`` heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmcourse import gpt
from mmcourse.audio import AudioEncoder
from mmcourse.gpt import GPT, GPTConfig
from mmcourse.vision import CNNEncoder, PatchEmbedding, image_tokens

__all__ = [
    "MODALITIES",
    "FUSIONS",
    "PROJECTORS",
    "IMAGE_ENCODERS",
    "MultimodalConfig",
    "ModalityProjector",
    "PlacedProjector",
    "ModalityLayout",
    "MultimodalOutput",
    "MultimodalGPT",
]

MODALITIES = ("image", "audio")  # also their order in the fused sequence
FUSIONS = ("prefix", "cross_attention")
PROJECTORS = ("linear", "mlp")
IMAGE_ENCODERS = ("patch", "cnn")


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _check_positive_int(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: expected {name} to be a positive int, got {value!r}")


# --------------------------------------------------------------------------- config

@dataclass
class MultimodalConfig:
    """The sizes of a :class:`MultimodalGPT`. Introduced in notebook 10.

    - decoder: ``vocab_size``, ``block_size`` (the longest sequence, image and audio tokens
      included in prefix fusion), ``n_layer``, ``n_head``, ``n_embd`` (= ``C``), ``dropout``;
    - ``fusion``: ``"prefix"`` or ``"cross_attention"`` (see the module docstring);
    - ``modalities``: which encoders the model has, a non-empty subset of ``("image", "audio")``;
    - image: ``image_size`` x ``image_size`` RGB images cut into ``patch_size`` x
      ``patch_size`` patches, one token each, ``(image_size / patch_size)²`` tokens of width
      ``image_dim``. ``image_encoder="patch"`` embeds each patch linearly
      (:class:`mmcourse.vision.PatchEmbedding` with learned positions); ``"cnn"`` uses the
      last feature map of a :class:`mmcourse.vision.CNNEncoder` with ``log2(patch_size)``
      halving blocks, so it gives the same grid, each token seeing beyond its own patch;
    - audio: log-mel spectrograms with ``n_mels`` bins, encoded by a
      :class:`mmcourse.audio.AudioEncoder` of width ``audio_dim`` that divides time by
      ``2 ** audio_downsample`` (101 frames → 26 with the default 2);
    - ``projector``: ``"linear"`` or ``"mlp"`` (see :class:`ModalityProjector`).

    The defaults are sized to train on a laptop CPU in minutes. Each prefix token costs as much
    decoder work as a text token: the default audio encoder turns a one-second clip into 26
    tokens, ``audio_downsample=3`` into 13.
    """

    vocab_size: int
    block_size: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    fusion: str = "prefix"
    modalities: tuple[str, ...] = MODALITIES
    image_size: int = 32
    patch_size: int = 8
    image_encoder: str = "patch"
    image_dim: int = 64
    n_mels: int = 40
    audio_dim: int = 64
    audio_downsample: int = 2
    projector: str = "mlp"

    def __post_init__(self) -> None:
        owner = "MultimodalConfig"
        if self.fusion not in FUSIONS:
            raise ValueError(f"{owner}: expected fusion in {FUSIONS}, got {self.fusion!r}")
        if self.projector not in PROJECTORS:
            raise ValueError(f"{owner}: expected projector in {PROJECTORS}, got {self.projector!r}")
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"{owner}: expected image_encoder in {IMAGE_ENCODERS}, got {self.image_encoder!r}")
        modalities = self.modalities
        if (isinstance(modalities, str) or not isinstance(modalities, (tuple, list)) or not modalities
                or any(m not in MODALITIES for m in modalities) or len(set(modalities)) != len(modalities)):
            raise ValueError(
                f"{owner}: expected modalities to be a non-empty subset of {MODALITIES}, got {modalities!r}"
            )
        self.modalities = tuple(m for m in MODALITIES if m in modalities)  # one canonical order
        for name in ("image_size", "patch_size", "image_dim", "n_mels", "audio_dim"):
            _check_positive_int(owner, name, getattr(self, name))
        downsample = self.audio_downsample
        if isinstance(downsample, bool) or not isinstance(downsample, int) or downsample < 0:
            raise ValueError(f"{owner}: expected audio_downsample to be an int >= 0, got {downsample!r}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"{owner}: expected image_size divisible by patch_size, got image_size={self.image_size} "
                f"and patch_size={self.patch_size}"
            )
        if self.image_encoder == "cnn" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(
                f"{owner}: image_encoder='cnn' halves the image once per block, so patch_size must be a "
                f"power of 2 >= 2, got {self.patch_size}"
            )
        self.gpt_config()  # the decoder's sizes are checked where they are defined

    @property
    def image_grid(self) -> tuple[int, int]:
        """Rows and columns of image tokens, ``(image_size / patch_size,) * 2``."""
        side = self.image_size // self.patch_size
        return side, side

    def gpt_config(self) -> GPTConfig:
        """The :class:`mmcourse.gpt.GPTConfig` of the decoder; cross-attention reads width-``C`` tokens."""
        return GPTConfig(
            vocab_size=self.vocab_size, block_size=self.block_size, n_layer=self.n_layer,
            n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout,
            cross_attention=self.fusion == "cross_attention",
        )


# --------------------------------------------------------------------------- projector

class ModalityProjector(nn.Module):
    """Map an encoder's tokens into the decoder's token space: ``(B, N, in_dim)`` → ``(B, N, out_dim)``.

    Introduced in notebook 10. ``kind="linear"`` is one ``nn.Linear``; ``kind="mlp"`` is
    ``Linear(in_dim, out_dim) → GELU → Linear(out_dim, out_dim)``, which lets the projector
    bend the encoder's features rather than only rotate and scale them. Each modality has its
    own projector, so the bias of its last layer is a learned vector added to every token of
    that modality: it doubles as a *modality-type embedding*, and the decoder can tell an image
    token from an audio token without a separate table. Weights start as GPT-2's (normal, std
    0.02, zero biases), so projected tokens start at the scale of the token embeddings.
    """

    def __init__(self, in_dim: int, out_dim: int, kind: str = "mlp") -> None:
        super().__init__()
        _check_positive_int("ModalityProjector", "in_dim", in_dim)
        _check_positive_int("ModalityProjector", "out_dim", out_dim)
        if kind not in PROJECTORS:
            raise ValueError(f"ModalityProjector: expected kind in {PROJECTORS}, got {kind!r}")
        self.in_dim, self.out_dim, self.kind = in_dim, out_dim, kind
        if kind == "linear":
            self.net = nn.Linear(in_dim, out_dim)
        else:
            self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected encoder tokens of shape (B, N, {self.in_dim}), got {_shape(x)}")
        if not x.is_floating_point():
            raise TypeError(f"expected encoder tokens of a floating dtype, got {x.dtype}")
        return self.net(x)


class PlacedProjector(nn.Module):
    """A projector, then one learned position vector added to each of its ``N`` tokens.

    Introduced in notebook 10. ``(B, N, in_dim)`` → ``(B, N, out_dim)``, equal to
    ``projector(x) + position`` with ``position`` of shape ``(N, out_dim)``.

    Why: in cross-attention fusion the image tokens are only the keys and values of the
    decoder's cross-attention, and the GPT's position embeddings never reach them. Attention
    treats its keys as a set, so unless the tokens say where they are, the decoder cannot
    tell "the circle at the top left" from "the circle at the bottom right". A CNN's feature
    map says *what* is in each patch, not *which* patch it is. One learned vector per token
    tells them apart, as ``PatchEmbedding(positional=True)`` does for a vision transformer.
    Positions start at GPT-2's scale (normal, std 0.02).

    Use it in place of a model's projector; :meth:`MultimodalGPT.encode` and ``generate`` then
    go through it::

        model.image_projector = PlacedProjector(model.image_projector, n_tokens=16)
    """

    def __init__(self, projector: ModalityProjector, n_tokens: int) -> None:
        super().__init__()
        if not isinstance(projector, ModalityProjector):
            raise TypeError(f"expected a ModalityProjector to wrap, got {type(projector).__name__}")
        _check_positive_int("PlacedProjector", "n_tokens", n_tokens)
        self.projector = projector
        self.in_dim, self.out_dim, self.n_tokens = projector.in_dim, projector.out_dim, n_tokens
        self.position = nn.Parameter(torch.randn(n_tokens, projector.out_dim) * 0.02)  # (N, C)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[1] != self.n_tokens:
            raise ValueError(
                f"expected encoder tokens of shape (B, {self.n_tokens}, {self.in_dim}), one per position, "
                f"got {_shape(x)}"
            )
        return self.projector(x) + self.position  # (B, N, C)


# --------------------------------------------------------------------------- layout and output

@dataclass(frozen=True)
class ModalityLayout:
    """Where each part of the input sits among the keys the text attends to. Introduced in notebook 10.

    - ``fusion="prefix"``: the decoder runs over ``[image | audio | text]``; ``image_slice``,
      ``audio_slice`` and ``text_slice`` index those positions, i.e. the last axis of
      :attr:`MultimodalOutput.attention` (and ``text_slice`` its query axis).
    - ``fusion="cross_attention"``: the decoder runs over the text alone (``text_slice`` is
      ``slice(0, T)``) and ``image_slice`` and ``audio_slice`` index the context, the last axis
      of :attr:`MultimodalOutput.cross_attention`.

    A slice is ``None`` when that modality was not given. Image tokens are in row-major patch
    order over ``image_grid`` (rows, columns), so ``weights.reshape(*image_grid)`` puts each
    weight on its patch; audio tokens are the audio encoder's frames in time order.
    """

    fusion: str
    image_slice: slice | None
    audio_slice: slice | None
    text_slice: slice
    image_grid: tuple[int, int] | None

    @property
    def n_modality_tokens(self) -> int:
        """How many image and audio tokens there are together (``P`` in prefix fusion, ``N`` in cross)."""
        return sum(s.stop - s.start for s in (self.image_slice, self.audio_slice) if s is not None)


@dataclass
class MultimodalOutput:
    """What :class:`MultimodalGPT` returns. Introduced in notebook 10.

    ``logits`` ``(B, T, V)`` at the text positions only; ``loss`` the mean cross-entropy over
    the text targets (``None`` without targets); ``attention`` the decoder's self-attention
    ``(L, B, H, S, S)`` with ``S = P + T`` (prefix) or ``T`` (cross), and ``cross_attention``
    ``(L, B, H, T, N)`` (cross fusion only), both ``None`` unless ``return_attention=True``;
    ``layout`` says which positions are which.

    :meth:`image_attention` and :meth:`audio_attention` cut out the weights that text
    positions give to one modality, ``(L, B, H, T, N_modality)``, whatever the fusion.
    """

    logits: Tensor
    loss: Tensor | None
    attention: Tensor | None
    cross_attention: Tensor | None
    layout: ModalityLayout

    def _over(self, modality: str, keys: slice | None) -> Tensor:
        weights = self.attention if self.layout.fusion == "prefix" else self.cross_attention
        if weights is None:
            raise ValueError(
                f"no attention was kept: run the model with return_attention=True to get {modality}_attention()"
            )
        if keys is None:
            raise ValueError(f"the model was run without {modality}, so no text position attended to it")
        return weights[..., self.layout.text_slice, keys]  # (L, B, H, T, N_modality)

    def image_attention(self) -> Tensor:
        """``(L, B, H, T, N)``: how much each text position attends to each image patch.

        In prefix fusion these are part of a softmax over all earlier positions, so a row sums to
        the share of attention that went to the image; in cross fusion a row of the image and
        the audio weights together sums to 1.
        """
        return self._over("image", self.layout.image_slice)

    def audio_attention(self) -> Tensor:
        """``(L, B, H, T, T')``: how much each text position attends to each audio frame.

        Spread over spectrogram frames with ``model.audio_encoder.to_spectrogram_frames``.
        """
        return self._over("audio", self.layout.audio_slice)


# --------------------------------------------------------------------------- model

class MultimodalGPT(nn.Module):
    """A GPT that reads an image, a sound, or both, along with text. Introduced in notebook 10.

    Its parts are the course's own modules, each in one attribute, and the model only composes
    them (load pretrained weights into a part with its own ``load_state_dict``):

    - ``image_encoder``: :class:`mmcourse.vision.PatchEmbedding` or
      :class:`mmcourse.vision.CNNEncoder`; ``image_projector``: a :class:`ModalityProjector`;
    - ``audio_encoder``: :class:`mmcourse.audio.AudioEncoder`; ``audio_projector``;
    - ``decoder``: a :class:`mmcourse.gpt.GPT` (with cross-attention blocks in cross fusion).

    A modality left out of ``config.modalities`` has neither encoder nor projector (``None``).

    ``model(idx, targets, image=..., audio=..., return_attention=...)`` → :class:`MultimodalOutput`:

    - ``idx`` ``(B, T)`` text token ids, ``T >= 1`` (e.g. a start token before a caption);
    - ``targets`` ``(B, T)`` the next token at each text position, ``-100`` where no loss is
      wanted (e.g. under a question); image and audio positions never count in the loss;
    - ``image`` ``(B, 3, image_size, image_size)`` float RGB in [0, 1], or ``None``;
    - ``audio`` a log-mel spectrogram ``(B, F, T_audio)`` with ``F = n_mels`` (compute it from
      waveforms with :class:`mmcourse.audio.LogMel`, once per data set), or ``None``.

    Either modality or both may be given, or none (text alone; prefix fusion only, since
    cross-attention needs something to attend to). All inputs share the batch size ``B``.
    """

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        if not isinstance(config, MultimodalConfig):
            raise TypeError(f"expected a MultimodalConfig, got {type(config).__name__}")
        self.config = config
        self.image_encoder: PatchEmbedding | CNNEncoder | None = None
        self.image_projector: ModalityProjector | None = None
        self.audio_encoder: AudioEncoder | None = None
        self.audio_projector: ModalityProjector | None = None
        if "image" in config.modalities:
            if config.image_encoder == "patch":
                self.image_encoder = PatchEmbedding(
                    config.image_size, config.patch_size, 3, config.image_dim, positional=True
                )
            else:
                n_blocks = config.patch_size.bit_length() - 1  # log2: each block halves the image
                widths = tuple(max(config.image_dim >> (n_blocks - 1 - i), 1) for i in range(n_blocks))
                self.image_encoder = CNNEncoder(3, widths, norm="group")  # no batch statistics: eval = train
            self.image_projector = ModalityProjector(config.image_dim, config.n_embd, config.projector)
        if "audio" in config.modalities:
            self.audio_encoder = AudioEncoder(
                config.n_mels, config.audio_dim, config.audio_downsample, dropout=config.dropout
            )
            self.audio_projector = ModalityProjector(config.audio_dim, config.n_embd, config.projector)
        self.decoder = GPT(config.gpt_config())

    # ---------------------------------------------------------------- encode and project

    def encode(self, image: Tensor | None = None, audio: Tensor | None = None) -> Tensor | None:
        """The image and audio tokens in the decoder's space, ``(B, N_image + T', C)``, image first.

        ``None`` when neither is given. These are the prefix (prefix fusion) or the context
        (cross fusion) that :meth:`forward` hands to the decoder.
        """
        self._check_modalities(image, audio)
        parts = []
        if image is not None:
            parts.append(self.image_projector(self.image_features(image)))  # (B, N, C)
        if audio is not None:
            parts.append(self.audio_projector(self.audio_encoder(audio).frames))  # (B, T', C)
        return torch.cat(parts, dim=1) if parts else None

    def image_features(self, image: Tensor) -> Tensor:
        """The image encoder's tokens before projection: ``(B, 3, H, W)`` → ``(B, N, image_dim)``, row-major.

        With a frozen encoder these are the same at every step, so a training loop can compute
        them once and pass ``image_projector(features)`` to the decoder as :meth:`encode` does.
        """
        if self.image_encoder is None:
            raise ValueError(f"this model has no image encoder (config.modalities={self.config.modalities})")
        return image_tokens(self.image_encoder, image)

    def layout(self, n_text: int, image: Tensor | None = None, audio: Tensor | None = None) -> ModalityLayout:
        """The :class:`ModalityLayout` for ``n_text`` text tokens and these inputs (only their shapes count)."""
        self._check_modalities(image, audio)
        n_image = 0
        if image is not None:
            rows, cols = self.config.image_grid
            n_image = rows * cols
        n_audio = 0 if audio is None else self.audio_encoder.output_length(audio.shape[-1])
        P = n_image + n_audio if self.config.fusion == "prefix" else 0
        return ModalityLayout(
            fusion=self.config.fusion,
            image_slice=slice(0, n_image) if image is not None else None,
            audio_slice=slice(n_image, n_image + n_audio) if audio is not None else None,
            text_slice=slice(P, P + n_text),
            image_grid=self.config.image_grid if image is not None else None,
        )

    # ---------------------------------------------------------------- forward and generate

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        *,
        image: Tensor | None = None,
        audio: Tensor | None = None,
        return_attention: bool = False,
    ) -> MultimodalOutput:
        self._check_text(idx, image, audio)
        tokens = self.encode(image, audio)  # (B, P, C) or None
        if self.config.fusion == "prefix":
            out = self.decoder(idx, targets, prefix=tokens, return_attention=return_attention)
        else:
            out = self.decoder(idx, targets, context=tokens, return_attention=return_attention)
        layout = self.layout(idx.shape[1], image, audio)
        return MultimodalOutput(out.logits, out.loss, out.attention, out.cross_attention, layout)

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        *,
        image: Tensor | None = None,
        audio: Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        greedy: bool = False,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
        stop_token: int | None = None,
    ) -> Tensor:
        """Continue the text ``idx`` ``(B, T)`` about ``image`` and/or ``audio`` → ``(B, T + new)``.

        The image and audio are encoded once; then :func:`mmcourse.gpt.generate` runs the
        decoder with them as its prefix or context, with its sampling options and KV cache. The
        returned ids hold the text only. Runs in eval mode without gradients (the mode is
        restored afterwards). To see where the model looked while it wrote, run
        ``model(ids, image=..., audio=..., return_attention=True)`` on the returned ids: with
        causal attention, the weights at position ``t`` are those it had when it chose token
        ``t + 1``.
        """
        self._check_text(idx, image, audio)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                tokens = self.encode(image, audio)
            fused = {"prefix": tokens} if self.config.fusion == "prefix" else {"context": tokens}
            return gpt.generate(
                self.decoder, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                greedy=greedy, use_cache=use_cache, generator=generator, stop_token=stop_token, **fused,
            )
        finally:
            self.train(was_training)

    # ---------------------------------------------------------------- checks

    def _check_text(self, idx: Tensor, image: Tensor | None, audio: Tensor | None) -> None:
        if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.shape[1] < 1:
            raise ValueError(
                f"expected idx of shape (B, T) with T >= 1 text tokens (e.g. a start token), got {_shape(idx)}"
            )
        batch = {"idx": idx.shape[0]}
        for name, value in (("image", image), ("audio", audio)):
            if isinstance(value, Tensor) and value.dim() >= 1:
                batch[name] = value.shape[0]
        if len(set(batch.values())) > 1:
            got = ", ".join(f"{name} {size}" for name, size in batch.items())
            raise ValueError(f"expected one batch size B for idx, image and audio, got {got}")
        if self.config.fusion == "cross_attention" and image is None and audio is None:
            raise ValueError(
                "fusion='cross_attention' attends to image or audio tokens: pass image= or audio= "
                "(text alone needs fusion='prefix')"
            )

    def _check_modalities(self, image: Tensor | None, audio: Tensor | None) -> None:
        cfg = self.config
        for name, value in (("image", image), ("audio", audio)):
            if value is not None and name not in cfg.modalities:
                raise ValueError(
                    f"this model has no {name} encoder (config.modalities={cfg.modalities}); "
                    f"build it with {name!r} in modalities"
                )
        if image is not None:
            S = cfg.image_size
            if not isinstance(image, Tensor) or image.dim() != 4 or tuple(image.shape[1:]) != (3, S, S):
                raise ValueError(f"expected image of shape (B, 3, {S}, {S}), RGB in [0, 1], got {_shape(image)}")
            if not image.is_floating_point():
                raise TypeError(f"expected image of a floating dtype (RGB in [0, 1]), got {image.dtype}")
        if audio is not None:
            F = cfg.n_mels
            if not isinstance(audio, Tensor) or audio.dim() != 3 or audio.shape[1] != F or audio.shape[2] < 1:
                hint = "; a waveform (B, L) goes through mmcourse.audio.LogMel() first" if (
                    isinstance(audio, Tensor) and audio.dim() == 2) else ""
                raise ValueError(
                    f"expected audio as a log-mel spectrogram of shape (B, F, T) with F = n_mels = {F}, "
                    f"got {_shape(audio)}{hint}"
                )
            if not audio.is_floating_point():
                raise TypeError(f"expected audio (log-mel) of a floating dtype, got {audio.dtype}")
