"""What sits in each cell of a shapes-world scene, read from the image tokens of an encoder.

Introduced in notebook 09 and used again in 10 and 11. Those notebooks teach their image
encoder first, in a short direct lesson, and then freeze it: every token should say what is in
its cell of the 2x2 grid (the colour, shape and size of the object there, or that the cell is
empty), so that the model trained on top only has to match words against tokens. The lesson
has three parts, in the order they are used:

1. :func:`cell_labels`: for every scene and cell, the index of the colour, shape and size of
   its object; one extra class per attribute (the last) means "no object here";
2. :func:`token_cells`: which cell each token of a ``g x g`` token grid lies in, to give every
   token its cell's labels;
3. :class:`CellReader`, an image encoder with one linear head per attribute on every token,
   and :func:`cell_loss` and :func:`cell_accuracy` on what it returns.

Shapes: ``S`` scenes, ``B`` batch, ``N`` tokens, ``C`` token width, ``K`` classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .metrics import accuracy
from .shapes import COLOURS, POSITIONS, SHAPES, SIZES, Scene, _check_scene
from .vision import image_tokens

__all__ = ["ATTRIBUTES", "N_CLASSES", "cell_labels", "token_cells", "CellReader", "cell_loss", "cell_accuracy"]

ATTRIBUTES = ("colour", "shape", "size")
N_CLASSES = (len(COLOURS) + 1, len(SHAPES) + 1, len(SIZES) + 1)  # the last class of each: an empty cell


def cell_labels(scenes: Sequence[Scene]) -> Tensor:
    """``(S, 4, 3)`` int64: per scene and cell (in the order of ``POSITIONS``), the index of the colour,
    shape and size of the object there, each ``len(values)`` (the "empty" class) for an empty cell."""
    if isinstance(scenes, Scene) or not isinstance(scenes, Sequence) or len(scenes) == 0:
        raise ValueError(f"expected a non-empty sequence of Scene, got {type(scenes).__name__}")
    labels = torch.tensor([k - 1 for k in N_CLASSES]).repeat(len(scenes), len(POSITIONS), 1)  # all empty
    for s, scene in enumerate(scenes):
        _check_scene(scene)
        for obj in scene.objects:
            labels[s, POSITIONS.index(obj.position)] = torch.tensor(
                [COLOURS.index(obj.colour), SHAPES.index(obj.shape), SIZES.index(obj.size)])
    return labels


def token_cells(grid: int) -> Tensor:
    """``(grid * grid,)`` int64: the cell (0-3, row-major like ``POSITIONS``) of each token of a
    ``grid x grid`` token grid, itself row-major. ``grid`` must be even: a token in one cell only.

    ``cell_labels(scenes)[:, token_cells(4)]`` gives each of 16 tokens its cell's labels.
    """
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2 or grid % 2:
        raise ValueError(f"expected an even grid size >= 2 (each token inside one of the 2x2 cells), got {grid!r}")
    half = grid // 2
    return torch.tensor([(row // half) * 2 + column // half for row in range(grid) for column in range(grid)])


class CellReader(nn.Module):
    """An image encoder and three linear heads, colour, shape and size, on every one of its tokens.

    ``images`` ``(B, 3, H, W)``, floats in [0, 1] or uint8 (divided by 255 here) → a list of three
    logits ``(B, N, K)``, ``K`` from :data:`N_CLASSES`. The encoder is a
    :class:`mmcourse.vision.CNNEncoder`, a :class:`mmcourse.vision.PatchEmbedding` or any module
    that returns tokens ``(B, N, dim)`` (see :func:`mmcourse.vision.image_tokens`). Training the
    reader trains the encoder; the heads are only the lesson, and are dropped afterwards.
    """

    def __init__(self, encoder: nn.Module, dim: int) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"expected the encoder to be an nn.Module, got {type(encoder).__name__}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"expected dim as a positive int, got {dim!r}")
        self.encoder, self.dim = encoder, dim
        self.heads = nn.ModuleList(nn.Linear(dim, k) for k in N_CLASSES)

    def forward(self, images: Tensor) -> list[Tensor]:
        if isinstance(images, Tensor) and images.dtype == torch.uint8:
            images = images.float() / 255
        tokens = image_tokens(self.encoder, images)  # (B, N, C)
        if tokens.shape[-1] != self.dim:
            raise ValueError(f"expected the encoder's tokens to be {self.dim} wide, got {tuple(tokens.shape)}")
        return [head(tokens) for head in self.heads]  # colour, shape, size: (B, N, K) each


def _check_logits_labels(logits: Sequence[Tensor], labels: Tensor) -> None:
    if not isinstance(logits, Sequence) or len(logits) != len(ATTRIBUTES):
        raise ValueError(f"expected {len(ATTRIBUTES)} logits {ATTRIBUTES}, got {type(logits).__name__}")
    if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.dim() != 3 or labels.shape[-1] != 3:
        shape = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"expected labels (B, N, 3) int64, got {shape}")
    for name, z, k in zip(ATTRIBUTES, logits, N_CLASSES):
        if not isinstance(z, Tensor) or tuple(z.shape) != (*labels.shape[:2], k):
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"expected {name} logits of shape {(*labels.shape[:2], k)} to match the labels, got {shape}")


def cell_loss(logits: Sequence[Tensor], labels: Tensor) -> Tensor:
    """The sum over the three attributes of the mean cross-entropy over all tokens; ``labels`` ``(B, N, 3)``."""
    _check_logits_labels(logits, labels)
    labels = labels.to(logits[0].device)
    return sum(F.cross_entropy(z.flatten(0, 1), labels[..., k].flatten()) for k, z in enumerate(logits))


def cell_accuracy(logits: Sequence[Tensor], labels: Tensor) -> dict[str, float]:
    """Per attribute, the share of tokens whose most likely class is the label: ``{"colour accuracy": ...}``."""
    _check_logits_labels(logits, labels)
    return {f"{name} accuracy": accuracy(z, labels[..., k]) for k, (name, z) in enumerate(zip(ATTRIBUTES, logits))}
