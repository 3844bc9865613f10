"""Tests for mmcourse.vision against torch.nn.functional, autograd and hand-computed values."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.vision import (
    CNNEncoder,
    PatchEmbedding,
    avg_pool2d,
    image_tokens,
    conv2d_loops,
    conv2d_unfold,
    max_pool2d,
    output_size,
    patchify,
    unfold,
)

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}

# (stride, padding, dilation): ints, pairs, and mixes of both
CONV_SETTINGS = [
    (1, 0, 1),
    (2, 1, 1),
    (1, 2, 2),
    ((2, 1), (0, 1), (1, 2)),
    (3, (2, 0), 1),
]


def _conv_inputs(dtype, kernel=(3, 2), bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 7, 8, generator=g, dtype=dtype)
    w = torch.randn(4, 3, *kernel, generator=g, dtype=dtype)
    b = torch.randn(4, generator=g, dtype=dtype) if bias else None
    return x, w, b


# --------------------------------------------------------------------------- output size

def test_output_size_matches_hand_computed_values():
    assert output_size(28, 3, padding=1) == 28          # "same" padding
    assert output_size(28, 2, stride=2) == 14           # halving pool
    assert output_size(7, 3, stride=2) == 3             # floor((7 - 3) / 2) + 1
    assert output_size(10, 3, dilation=2) == 6          # the kernel spans 5 positions


def test_output_size_matches_conv2d():
    x = torch.zeros(1, 1, 11, 11)
    for k, s, p, d in [(3, 1, 0, 1), (4, 3, 2, 1), (3, 2, 1, 3), (1, 4, 0, 1)]:
        expected = F.conv2d(x, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d).shape[-1]
        assert output_size(11, k, s, p, d) == expected


def test_output_size_rejects_a_kernel_larger_than_the_input():
    with pytest.raises(ValueError, match="kernel spans 5 positions .* only 4"):
        output_size(4, 3, dilation=2)
    with pytest.raises(ValueError, match="expected stride >= 1, got 0"):
        output_size(4, 3, stride=0)


# --------------------------------------------------------------------------- convolution

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("stride, padding, dilation", CONV_SETTINGS)
def test_conv2d_loops_and_unfold_equal_f_conv2d(dtype, stride, padding, dilation):
    x, w, b = _conv_inputs(dtype)
    expected = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    for conv in (conv2d_loops, conv2d_unfold):
        got = conv(x, w, b, stride=stride, padding=padding, dilation=dilation)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_conv2d_without_bias_equals_f_conv2d():
    x, w, _ = _conv_inputs(torch.float64, kernel=(1, 1), bias=False)
    expected = F.conv2d(x, w)
    torch.testing.assert_close(conv2d_loops(x, w), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(conv2d_unfold(x, w), expected, rtol=1e-10, atol=1e-10)


def test_conv2d_single_window_is_the_weighted_sum_plus_bias():
    # a 2 x 2 kernel on a 2 x 2 image: the output is sum_i w_i x_i + b, computed by hand
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    w = torch.tensor([[[[1.0, 0.0], [-1.0, 0.5]]]], dtype=torch.float64)
    b = torch.tensor([0.25], dtype=torch.float64)
    expected = 1 * 1 + 2 * 0 + 3 * -1 + 4 * 0.5 + 0.25
    assert conv2d_loops(x, w, b).item() == pytest.approx(expected)
    assert conv2d_unfold(x, w, b).item() == pytest.approx(expected)


@pytest.mark.parametrize("stride, padding, dilation", CONV_SETTINGS)
def test_unfold_equals_f_unfold(stride, padding, dilation):
    x, _, _ = _conv_inputs(torch.float64)
    expected = F.unfold(x, (3, 2), stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(unfold(x, (3, 2), stride, padding, dilation), expected, rtol=0, atol=0)


def test_conv2d_unfold_passes_gradcheck():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: conv2d_unfold(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)), (x, w, b)
    )


def test_conv2d_loops_gradients_equal_f_conv2d():
    x, w, b = (t.requires_grad_() for t in _conv_inputs(torch.float64))
    grads = torch.autograd.grad(conv2d_loops(x, w, b, stride=2, padding=1).square().sum(), (x, w, b))
    expected = torch.autograd.grad(F.conv2d(x, w, b, stride=2, padding=1).square().sum(), (x, w, b))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x, w: conv2d_unfold(x[0], w), ValueError, r"expected x of shape \(B, C, H, W\), got \(3, 7, 8\)"),
        (lambda x, w: conv2d_loops(x, w[:, :2]), ValueError, r"C_in = 3 .* got \(4, 2, 3, 2\)"),
        (lambda x, w: conv2d_unfold(x, w[0]), ValueError, r"expected weight of shape \(C_out, C_in, kH, kW\)"),
        (lambda x, w: conv2d_unfold(x, w, torch.zeros(5)), ValueError, r"bias of shape \(C_out,\) = \(4,\), got \(5,\)"),
        (lambda x, w: conv2d_unfold(x, w.double()), TypeError, "dtype of x"),
        (lambda x, w: conv2d_unfold(x.long(), w), TypeError, "floating-point dtype, got torch.int64"),
        (lambda x, w: conv2d_unfold(x, w, stride=0), ValueError, "expected stride >= 1, got 0"),
        (lambda x, w: conv2d_unfold(x, w, padding=(1, 2, 3)), TypeError, "padding as an int or a pair"),
        (lambda x, w: conv2d_unfold(x, w, dilation=4), ValueError, "kernel spans 9 positions"),
    ],
)
def test_conv2d_rejects_bad_inputs_with_clear_messages(call, error, message):
    x, w, _ = _conv_inputs(torch.float32)
    with pytest.raises(error, match=message):
        call(x, w)


# --------------------------------------------------------------------------- pooling

POOL_SETTINGS = [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0)), (2, 1, 1)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kernel, stride, padding", POOL_SETTINGS)
def test_pooling_equals_torch(dtype, kernel, stride, padding):
    x = torch.randn(2, 3, 7, 6, generator=torch.Generator().manual_seed(2), dtype=dtype) - 1.0
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(
        max_pool2d(x, kernel, stride, padding), F.max_pool2d(x, kernel, stride, padding), rtol=0, atol=0
    )
    torch.testing.assert_close(
        avg_pool2d(x, kernel, stride, padding), F.avg_pool2d(x, kernel, stride, padding), rtol=tol, atol=tol
    )


def test_pooling_gradients_equal_torch():
    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    for ours, theirs in ((max_pool2d, F.max_pool2d), (avg_pool2d, F.avg_pool2d)):
        (got,) = torch.autograd.grad(ours(x, 3, 2, 1).square().sum(), x)
        (want,) = torch.autograd.grad(theirs(x, 3, 2, 1).square().sum(), x)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_pooling_rejects_bad_inputs_with_clear_messages():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"padding at most half the kernel size \(2, 2\), got \(2, 2\)"):
        max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, C, H, W\), got \(4, 4\)"):
        avg_pool2d(x[0, 0], 2)
    with pytest.raises(ValueError, match="kernel spans 5 positions"):
        avg_pool2d(x, 5)


# --------------------------------------------------------------------------- CNN encoder

@pytest.mark.parametrize("norm", ["batch", "group"])
def test_cnn_encoder_shapes(norm):
    encoder = CNNEncoder(in_channels=3, widths=(8, 16, 12), norm=norm)
    x = torch.randn(5, 3, 28, 28)
    vector, features = encoder(x, return_features=True)
    assert features.shape == (5, 12, 3, 3)              # 28 -> 14 -> 7 -> 3
    assert vector.shape == (5, 12)
    torch.testing.assert_close(vector, features.mean(dim=(2, 3)))
    projected = CNNEncoder(in_channels=1, widths=(8, 16), out_dim=10, norm=norm)
    assert projected(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert projected.out_dim == 10 and encoder.out_dim == 12
    vector, features = CNNEncoder()(torch.randn(2, 1, 28, 28), return_features=True)
    assert vector.shape == (2, 64) and features.shape == (2, 64, 3, 3)


def test_cnn_encoder_uses_the_requested_norm():
    kinds = {type(m) for m in CNNEncoder(widths=(8, 12), norm="group").modules()}
    assert nn.GroupNorm in kinds and nn.BatchNorm2d not in kinds
    assert nn.BatchNorm2d in {type(m) for m in CNNEncoder(widths=(8,)).modules()}


def test_cnn_encoder_overfits_a_tiny_batch():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    y = torch.arange(8) % 4
    model = CNNEncoder(in_channels=1, widths=(8, 16), out_dim=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    first = None
    for _ in range(20):
        loss = F.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert first > 1.0                                   # about ln(4) at the start
    assert (model(x).argmax(dim=1) == y).all()


def test_cnn_encoder_rejects_bad_inputs_with_clear_messages():
    encoder = CNNEncoder(in_channels=1, widths=(4, 4, 4))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, H, W\) for in_channels=1, got \(2, 3, 28, 28\)"):
        encoder(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, C, H, W\), got \(28, 28\)"):
        encoder(torch.randn(28, 28))
    with pytest.raises(ValueError, match="at least 8 x 8 for 3 blocks .* got 6 x 28"):
        encoder(torch.randn(2, 1, 6, 28))
    with pytest.raises(ValueError, match="expected norm 'batch' or 'group', got 'layer'"):
        CNNEncoder(norm="layer")
    with pytest.raises(ValueError, match="expected widths as a non-empty sequence"):
        CNNEncoder(widths=())


# --------------------------------------------------------------------------- patches

def test_patchify_cuts_patches_in_row_major_order():
    x = torch.arange(2 * 4 * 6, dtype=torch.float64).reshape(1, 2, 4, 6)
    patches = patchify(x, 2)
    assert patches.shape == (1, 6, 8)                    # N = (4/2) * (6/2), 2 * 2 * 2 values each
    # patch 4 is grid row 1, column 1: rows 2-3, columns 2-3, channel 0 then channel 1
    torch.testing.assert_close(patches[0, 4], torch.cat([x[0, 0, 2:4, 2:4].flatten(), x[0, 1, 2:4, 2:4].flatten()]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_patch_embedding_is_patchify_then_linear(dtype):
    torch.manual_seed(0)
    embed = PatchEmbedding(image_size=(12, 8), patch_size=4, in_channels=3, dim=5).to(dtype)
    x = torch.randn(2, 3, 12, 8, dtype=dtype)
    tokens = embed(x)
    assert tokens.shape == (2, 6, 5) and embed.num_patches == 6 and embed.grid == (3, 2)
    linear = nn.Linear(3 * 4 * 4, 5).to(dtype)
    with torch.no_grad():
        linear.weight.copy_(embed.proj.weight.reshape(5, -1))
        linear.bias.copy_(embed.proj.bias)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(tokens, linear(patchify(x, 4)), rtol=tol, atol=tol)


def test_patch_embedding_adds_learned_positions():
    torch.manual_seed(0)
    embed = PatchEmbedding(8, 4, 1, 6, positional=True)
    x = torch.randn(3, 1, 8, 8)
    assert embed.pos.shape == (1, 4, 6) and embed.pos.requires_grad
    plain = embed.proj(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(embed(x), plain + embed.pos)


def test_patches_reject_bad_inputs_with_clear_messages():
    with pytest.raises(ValueError, match=r"image_size divisible by patch_size=5, got \(28, 28\)"):
        PatchEmbedding(28, 5, 1, 8)
    with pytest.raises(ValueError, match="divisible by patch_size=3, got 4 x 6"):
        patchify(torch.zeros(1, 1, 4, 6), 3)
    embed = PatchEmbedding(8, 4, 3, 6)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, 8, 8\), got \(2, 1, 8, 8\)"):
        embed(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, 8, 8\), got \(2, 3, 8, 12\)"):
        embed(torch.zeros(2, 3, 8, 12))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, C, H, W\), got \(3, 8, 8\)"):
        embed(torch.zeros(3, 8, 8))


def test_image_tokens_of_each_encoder_in_row_major_order():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    cnn = CNNEncoder(3, (4, 8), norm="group")  # 16 -> 8 -> 4: a 4x4 feature map
    _, features = cnn(x, return_features=True)
    by_hand = torch.stack([features[:, :, r, c] for r in range(4) for c in range(4)], dim=1)  # rows, then down
    torch.testing.assert_close(image_tokens(cnn, x), by_hand)
    embed = PatchEmbedding(16, 4, 3, 6, positional=True)
    torch.testing.assert_close(image_tokens(embed, x), embed(x))
    with pytest.raises(ValueError, match=r"expected Sequential to return tokens \(B, N, C\), got \(2, 5\)"):
        image_tokens(nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 5)), x)
    with pytest.raises(TypeError, match="expected the encoder to be an nn.Module, got function"):
        image_tokens(lambda images: images, x)
