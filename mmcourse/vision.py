"""Images in, vectors and tokens out: convolution, pooling, a CNN encoder, patch embeddings.

Introduced in notebook 02. The file follows the notebook:

1. the output-size formula, then convolution written as loops: every output pixel is
   ``f(x) = sum_i w_i x_i + b`` over one window of the input;
2. the same convolution as one matrix product: :func:`unfold` lays every window out as a
   column, and the weights become a matrix;
3. max and average pooling on the same columns;
4. :class:`CNNEncoder`, the image encoder the contrastive and multimodal notebooks reuse;
5. :class:`PatchEmbedding`, the bridge to transformers: an image cut into patches, each patch
   a token. A strided convolution *is* :func:`patchify` followed by a linear layer;
6. :func:`image_tokens`: the tokens of either encoder, the CNN's being the positions of its
   last feature map.

Shapes: ``B`` batch, ``C`` channels, ``H, W`` height and width, ``N`` patches.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IntPair = int | tuple[int, int]


# --------------------------------------------------------------------------- checks

def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints as ``(height, width)``, each at least ``minimum``."""
    items = value if isinstance(value, tuple) and len(value) == 2 else (value, value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"expected {name} as an int or a pair of ints, got {value!r}")
        if item < minimum:
            raise ValueError(f"expected {name} >= {minimum}, got {value!r}")
    return items[0], items[1]


def _check_images(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected {name} as a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"expected {name} of shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected {name} with a floating-point dtype, got {x.dtype}")


# --------------------------------------------------------------------------- 1. convolution as loops

def output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Length of a convolution's or pooling's output along one axis.

    Introduced in notebook 02. A kernel of ``k`` taps spread ``dilation`` apart covers
    ``dilation * (k - 1) + 1`` input positions; it starts at every ``stride``-th position of
    the padded input that leaves room for it:
    ``(size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1``.
    """
    for name, value, minimum in (
        ("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
        ("padding", padding, 0), ("dilation", dilation, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected {name} as an int, got {value!r}")
        if value < minimum:
            raise ValueError(f"expected {name} >= {minimum}, got {value}")
    span = dilation * (kernel_size - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"kernel spans {span} positions (kernel_size={kernel_size}, dilation={dilation}) "
            f"but the padded input has only {size + 2 * padding} (size={size}, padding={padding})"
        )
    return (size + 2 * padding - span) // stride + 1


def _conv_setup(
    x: Tensor, weight: Tensor, bias: Tensor | None,
    stride: IntPair, padding: IntPair, dilation: IntPair,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """Check a convolution's arguments; return the pairs and the output size."""
    _check_images(x)
    if not isinstance(weight, Tensor) or weight.dim() != 4:
        got = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"expected weight of shape (C_out, C_in, kH, kW), got {got}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"expected weight of shape (C_out, C_in, kH, kW) with C_in = {x.shape[1]} "
            f"(the channels of x), got {tuple(weight.shape)}"
        )
    if weight.dtype != x.dtype:
        raise TypeError(f"expected weight with the dtype of x ({x.dtype}), got {weight.dtype}")
    if bias is not None:
        if not isinstance(bias, Tensor) or bias.shape != (weight.shape[0],):
            got = tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__
            raise ValueError(f"expected bias of shape (C_out,) = ({weight.shape[0]},), got {got}")
        if bias.dtype != x.dtype:
            raise TypeError(f"expected bias with the dtype of x ({x.dtype}), got {bias.dtype}")
    stride, padding, dilation = (
        _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    )
    kernel = (weight.shape[2], weight.shape[3])
    h_out, w_out = (
        output_size(x.shape[2 + a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )
    return stride, padding, dilation, h_out, w_out


def _pad(x: Tensor, padding: tuple[int, int], value: float = 0.0) -> Tensor:
    """``x`` with ``padding`` rows above and below and columns left and right, filled with ``value``."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    B, C, H, W = x.shape
    out = x.new_full((B, C, H + 2 * ph, W + 2 * pw), value)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def conv2d_loops(
    x: Tensor, weight: Tensor, bias: Tensor | None = None,
    stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
) -> Tensor:
    """2-D convolution (cross-correlation, as in deep learning) written as loops. Slow: teaching only.

    Introduced in notebook 02. ``x`` (B, C_in, H, W), ``weight`` (C_out, C_in, kH, kW),
    ``bias`` (C_out,) or None; returns (B, C_out, H_out, W_out) with ``H_out, W_out`` from
    :func:`output_size`. Equals ``F.conv2d`` with ``groups=1``.
    """
    (sh, sw), padding, (dh, dw), h_out, w_out = _conv_setup(x, weight, bias, stride, padding, dilation)
    C_out, _, kH, kW = weight.shape
    x = _pad(x, padding)
    out = x.new_zeros((x.shape[0], C_out, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            # the window that output pixel (i, j) sees: kH x kW taps, dilation apart
            window = x[:, :, i * sh: i * sh + dh * (kH - 1) + 1: dh,
                       j * sw: j * sw + dw * (kW - 1) + 1: dw]           # (B, C_in, kH, kW)
            for o in range(C_out):
                # f(x) = sum_i w_i x_i + b over the window, for output channel o
                value = (weight[o] * window).sum(dim=(1, 2, 3))          # (B,)
                out[:, o, i, j] = value if bias is None else value + bias[o]
    return out


# --------------------------------------------------------------------------- 2. convolution as a matrix product

def unfold(
    x: Tensor, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0,
    dilation: IntPair = 1, pad_value: float = 0.0,
) -> Tensor:
    """Every window of ``x`` laid out as a column ("im2col"); equals ``F.unfold``.

    Introduced in notebook 02. ``x`` (B, C, H, W) -> (B, C * kH * kW, L) where
    ``L = H_out * W_out`` windows, row order (channel, kernel row, kernel column) like
    ``F.unfold``. ``pad_value`` fills the padding (``-inf`` for max pooling).
    Instead of looping over the L windows, it loops over the kH * kW kernel taps: tap
    ``(a, b)`` of every window is one strided slice of the input.
    """
    _check_images(x)
    (kH, kW), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    padding, (dh, dw) = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    h_out = output_size(x.shape[2], kH, sh, padding[0], dh)
    w_out = output_size(x.shape[3], kW, sw, padding[1], dw)
    x = _pad(x, padding, pad_value)
    taps = [
        x[:, :, a * dh: a * dh + sh * (h_out - 1) + 1: sh,
          b * dw: b * dw + sw * (w_out - 1) + 1: sw]                     # (B, C, H_out, W_out)
        for a in range(kH) for b in range(kW)
    ]
    cols = torch.stack(taps, dim=2)                                      # (B, C, kH*kW, H_out, W_out)
    return cols.reshape(x.shape[0], -1, h_out * w_out)                   # (B, C*kH*kW, L)


def conv2d_unfold(
    x: Tensor, weight: Tensor, bias: Tensor | None = None,
    stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
) -> Tensor:
    """2-D convolution as one matrix product: weights (C_out, C_in*kH*kW) @ windows as columns.

    Introduced in notebook 02. Same arguments, shapes and result as :func:`conv2d_loops`
    and ``F.conv2d`` (``groups=1``), fast enough for real use.
    """
    _, _, _, h_out, w_out = _conv_setup(x, weight, bias, stride, padding, dilation)
    C_out, _, kH, kW = weight.shape
    cols = unfold(x, (kH, kW), stride, padding, dilation)                # (B, C_in*kH*kW, L)
    out = weight.reshape(C_out, -1) @ cols                               # (B, C_out, L)
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(x.shape[0], C_out, h_out, w_out)                  # (B, C_out, H_out, W_out)


# --------------------------------------------------------------------------- 3. pooling

def _pool_columns(
    x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair, pad_value: float,
) -> tuple[Tensor, int, int]:
    """The pooling windows of ``x`` as (B, C, kH*kW, L), and the output size."""
    _check_images(x)
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        # a window made only of padding would have no value to pool
        raise ValueError(f"expected padding at most half the kernel size {kernel}, got {padding}")
    h_out, w_out = (output_size(x.shape[2 + a], kernel[a], stride[a], padding[a]) for a in (0, 1))
    cols = unfold(x, kernel, stride, padding, pad_value=pad_value)       # (B, C*kH*kW, L)
    B, C = x.shape[:2]
    return cols.reshape(B, C, kernel[0] * kernel[1], h_out * w_out), h_out, w_out


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Largest value of each window; equals ``F.max_pool2d`` (padding counts as ``-inf``).

    Introduced in notebook 02. ``x`` (B, C, H, W) -> (B, C, H_out, W_out); ``stride``
    defaults to ``kernel_size`` (windows side by side, no overlap).
    """
    cols, h_out, w_out = _pool_columns(x, kernel_size, stride, padding, float("-inf"))
    return cols.amax(dim=2).reshape(x.shape[0], x.shape[1], h_out, w_out)


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Mean of each window; equals ``F.avg_pool2d`` (padding counts as zeros in the mean).

    Introduced in notebook 02. ``x`` (B, C, H, W) -> (B, C, H_out, W_out); ``stride``
    defaults to ``kernel_size``.
    """
    cols, h_out, w_out = _pool_columns(x, kernel_size, stride, padding, 0.0)
    return cols.mean(dim=2).reshape(x.shape[0], x.shape[1], h_out, w_out)


# --------------------------------------------------------------------------- 4. the CNN encoder

def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # GroupNorm keeps no running statistics, so train and eval behave alike even at batch size 1
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class CNNEncoder(nn.Module):
    """Image encoder: blocks of conv 3x3 -> norm -> ReLU -> max-pool 2x2, then a global average.

    Introduced in notebook 02; reused as the image encoder in notebooks 08-10.
    ``x`` (B, in_channels, H, W) -> vector (B, out_dim). Each block halves H and W, so the
    input must be at least ``2 ** len(widths)`` pixels on each side. The average over
    positions forgets *where* a feature was, so the blocks must see most of the image
    before it: three blocks on 28 x 28 digits (28 -> 14 -> 7 -> 3) reach about 98 % on
    MNIST, two blocks, whose features each see only a 10 x 10 patch, stay well below.
    ``out_dim=None`` returns the averaged features (``out_dim = widths[-1]``); an int adds a
    linear projection. ``norm`` is ``"batch"`` or ``"group"``.
    ``forward(x, return_features=True)`` also returns the last feature map
    (B, widths[-1], h, w), e.g. to use its h * w positions as tokens.
    """

    def __init__(
        self, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64),
        out_dim: int | None = None, norm: str = "batch",
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"expected in_channels as a positive int, got {in_channels!r}")
        widths = tuple(widths)
        if not widths or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in widths):
            raise ValueError(f"expected widths as a non-empty sequence of positive ints, got {widths!r}")
        if out_dim is not None and (isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1):
            raise ValueError(f"expected out_dim as a positive int or None, got {out_dim!r}")
        if norm not in ("batch", "group"):
            raise ValueError(f"expected norm 'batch' or 'group', got {norm!r}")
        self.in_channels = in_channels
        self.out_dim = widths[-1] if out_dim is None else out_dim
        blocks = []
        for c_in, c_out in zip((in_channels,) + widths[:-1], widths):
            blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),  # the norm adds the bias
                _norm(norm, c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ))
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Identity() if out_dim is None else nn.Linear(widths[-1], out_dim)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        _check_images(x)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected x of shape (B, {self.in_channels}, H, W) for in_channels={self.in_channels}, "
                f"got {tuple(x.shape)}"
            )
        smallest = 2 ** len(self.blocks)
        if x.shape[2] < smallest or x.shape[3] < smallest:
            raise ValueError(
                f"expected images at least {smallest} x {smallest} for {len(self.blocks)} blocks "
                f"that each halve the size, got {x.shape[2]} x {x.shape[3]}"
            )
        features = self.blocks(x)                                        # (B, C, h, w)
        vector = self.proj(features.mean(dim=(2, 3)))                    # (B, out_dim)
        return (vector, features) if return_features else vector


# --------------------------------------------------------------------------- 5. patch embeddings

def patchify(x: Tensor, patch_size: int) -> Tensor:
    """Cut images into non-overlapping ``p x p`` patches, each flattened to one row.

    Introduced in notebook 02. ``x`` (B, C, H, W) -> (B, N, C * p * p) with
    ``N = (H / p) * (W / p)`` in row-major order (left to right, then top to bottom); each row
    is ordered (channel, patch row, patch column), the order of a conv weight's
    ``(C_out, C_in, p, p)`` flattened, so that ``patchify(x, p) @ W.reshape(C_out, -1).T``
    is the strided convolution.
    """
    _check_images(x)
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"expected patch_size as a positive int, got {patch_size!r}")
    B, C, H, W = x.shape
    p = patch_size
    if H % p or W % p:
        raise ValueError(f"expected image height and width divisible by patch_size={p}, got {H} x {W}")
    x = x.reshape(B, C, H // p, p, W // p, p)                            # (B, C, H/p, p, W/p, p)
    x = x.permute(0, 2, 4, 1, 3, 5)                                      # (B, H/p, W/p, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)                  # (B, N, C*p*p)


class PatchEmbedding(nn.Module):
    """Image -> a sequence of patch tokens, as a convolution with kernel and stride ``patch_size``.

    Introduced in notebook 02; the image input of the multimodal GPT in notebook 10.
    ``x`` (B, in_channels, H, W) with ``(H, W) == image_size`` -> tokens (B, N, dim),
    ``N = (H / p) * (W / p)``. Equal to :func:`patchify` followed by a linear layer whose
    weight is ``proj.weight.reshape(dim, -1)``. ``positional=True`` adds a learned
    position embedding (1, N, dim), since patches alone do not say where they were.
    """

    def __init__(
        self, image_size: IntPair, patch_size: int, in_channels: int, dim: int, positional: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = _pair(image_size, "image_size", 1)
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"expected patch_size as a positive int, got {patch_size!r}")
        if self.image_size[0] % patch_size or self.image_size[1] % patch_size:
            raise ValueError(
                f"expected image_size divisible by patch_size={patch_size}, got {self.image_size}"
            )
        for name, value in (("in_channels", in_channels), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"expected {name} as a positive int, got {value!r}")
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.grid = (self.image_size[0] // patch_size, self.image_size[1] // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.randn(1, self.num_patches, dim) * 0.02) if positional else None

    def forward(self, x: Tensor) -> Tensor:
        _check_images(x)
        expected = (self.in_channels, *self.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected x of shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        tokens = self.proj(x).flatten(2).transpose(1, 2)                 # (B, N, dim)
        return tokens if self.pos is None else tokens + self.pos


# --------------------------------------------------------------------------- 6. tokens from an image encoder

def image_tokens(encoder: nn.Module, x: Tensor) -> Tensor:
    """Images ``(B, C_in, H, W)`` → one token per position, ``(B, N, C)``, in row-major order.

    Introduced in notebook 10. For a :class:`CNNEncoder` the tokens are the ``N = h * w``
    positions of its last feature map (each sees a window of the image around its place, wider
    than its share of the grid); for a :class:`PatchEmbedding`, or any module that maps images
    to ``(B, N, C)``, they are what the module returns.
    """
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"expected the encoder to be an nn.Module, got {type(encoder).__name__}")
    if isinstance(encoder, CNNEncoder):
        _, features = encoder(x, return_features=True)                   # (B, C, h, w)
        return features.flatten(2).transpose(1, 2)                       # (B, h * w, C)
    tokens = encoder(x)
    if not isinstance(tokens, Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"expected {type(encoder).__name__} to return tokens (B, N, C), got {shape}")
    return tokens
