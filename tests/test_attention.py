"""Tests for mmcourse.attention against PyTorch's own attention, hand-built masks and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.attention import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
    softmax,
)

TOL = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5)}
DTYPES = [torch.float64, torch.float32]


def randn(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def random_bool_mask(*shape: int, seed: int = 0) -> torch.Tensor:
    """A random keep-mask where every query row keeps at least its first key."""
    mask = torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < 0.6
    mask[..., 0] = True
    return mask


# --------------------------------------------------------------------------- softmax

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_equals_torch(dtype, dim):
    x = randn(4, 5, 6, dtype=dtype) * 3
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim), **TOL[dtype])


def test_softmax_is_stable_for_large_inputs():
    x = torch.tensor([[1e4, 1e4 - 1.0, 0.0], [-1e4, -1e4, -1e4]], dtype=torch.float64)
    by_hand = torch.tensor(
        [[1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)), 0.0], [1 / 3, 1 / 3, 1 / 3]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(softmax(x), by_hand, atol=1e-12, rtol=0)
    big = randn(3, 7, dtype=torch.float32) * 1e4
    assert torch.isfinite(softmax(big)).all()
    torch.testing.assert_close(softmax(big), torch.softmax(big, -1), **TOL[torch.float32])


def test_softmax_of_partly_and_fully_masked_rows():
    x = randn(3, 4).requires_grad_()
    minus_inf = torch.tensor([[0.0, -math.inf, 0.0, 0.0], [0.0] * 4, [-math.inf] * 4], dtype=torch.float64)
    y = softmax(x + minus_inf)
    torch.testing.assert_close(y[:2], torch.softmax((x + minus_inf)[:2], -1), **TOL[torch.float64])
    assert y[0, 1] == 0 and torch.equal(y[2], torch.zeros(4, dtype=torch.float64))
    (y * randn(3, 4, seed=1)).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[2], torch.zeros(4, dtype=torch.float64))


def test_softmax_gradcheck():
    x = randn(3, 5).requires_grad_()
    assert torch.autograd.gradcheck(softmax, (x,))


def test_softmax_rejects_integers():
    with pytest.raises(TypeError, match="expected x of a floating dtype, got torch.int64"):
        softmax(torch.arange(3))


# --------------------------------------------------------------------------- masks

def test_causal_mask_matches_hand_built():
    by_hand = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(causal_mask(4), by_hand)


def test_padding_mask_matches_hand_built():
    by_hand = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    for lengths in ([2, 4, 1], torch.tensor([2, 4, 1])):
        mask = padding_mask(lengths, 4)
        assert mask.shape == (3, 1, 1, 4) and mask.dtype == torch.bool
        assert torch.equal(mask[:, 0, 0], by_hand)


def test_combine_masks():
    causal = causal_mask(3)
    pad = padding_mask([2, 3], 3)  # (2, 1, 1, 3)
    combined = combine_masks(causal, None, pad)
    by_hand = torch.tensor(
        [[[1, 0, 0], [1, 1, 0], [1, 1, 0]], [[1, 0, 0], [1, 1, 0], [1, 1, 1]]], dtype=torch.bool
    )
    assert combined.shape == (2, 1, 3, 3) and torch.equal(combined[:, 0], by_hand)
    bias = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    mixed = combine_masks(causal, bias)
    expected = torch.where(by_hand[1], bias, torch.tensor(-math.inf, dtype=torch.float64))
    assert mixed.dtype == torch.float64 and torch.equal(mixed, expected)
    torch.testing.assert_close(combine_masks(bias, bias), 2 * bias)
    assert combine_masks(None, None) is None


def test_mask_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="expected T to be a positive int, got 0"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"expected lengths in \[0, T=4\], got \[2, 5\]"):
        padding_mask([2, 5], 4)
    with pytest.raises(ValueError, match=r"integer tensor of shape \(B,\), got shape \(2,\) and dtype torch.float32"):
        padding_mask(torch.tensor([1.0, 2.0]), 4)
    with pytest.raises(ValueError, match=r"broadcastable shapes, got \(3, 3\), \(2, 1, 1, 4\)"):
        combine_masks(causal_mask(3), padding_mask([1, 2], 4))
    with pytest.raises(TypeError, match="bool or float tensor, got torch.int64 at position 1"):
        combine_masks(causal_mask(3), torch.ones(3, 3, dtype=torch.long))


# --------------------------------------------------------------------------- scaled dot-product attention

SHAPES = {  # name: (q shape, k shape, v shape)
    "self 4-D": ((2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 8)),
    "cross Tq<Tk, Dv!=D": ((2, 3, 4, 8), (2, 3, 7, 8), (2, 3, 7, 6)),
    "cross Tq>Tk": ((2, 2, 6, 4), (2, 2, 3, 4), (2, 2, 3, 5)),
    "3-D (B, T, D)": ((3, 5, 4), (3, 6, 4), (3, 6, 4)),
    "5-D (B, G, H, T, D)": ((2, 2, 3, 4, 4), (2, 2, 3, 5, 4), (2, 2, 3, 5, 4)),
}


def make_mask(kind: str, q_shape, k_shape, dtype) -> torch.Tensor | None:
    Tq, Tk, batch = q_shape[-2], k_shape[-2], q_shape[:-2]
    if kind == "none":
        return None
    if kind == "bool (Tq, Tk)":
        return random_bool_mask(Tq, Tk, seed=3)
    if kind == "bool (B, 1.., Tq, Tk)":
        return random_bool_mask(batch[0], *([1] * (len(batch) - 1)), Tq, Tk, seed=4)
    if kind == "padding (B, 1.., 1, Tk)":
        return random_bool_mask(batch[0], *([1] * len(batch)), Tk, seed=5)
    if kind == "additive":
        bias = randn(*batch, Tq, Tk, dtype=dtype, seed=6)
        return bias.masked_fill(~random_bool_mask(*batch, Tq, Tk, seed=7), -math.inf)
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("return_weights", [False, True], ids=["fused", "explicit"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(
    "mask_kind", ["none", "bool (Tq, Tk)", "bool (B, 1.., Tq, Tk)", "padding (B, 1.., 1, Tk)", "additive"]
)
def test_sdpa_equals_torch(dtype, return_weights, shape, mask_kind):
    q_shape, k_shape, _ = SHAPES[shape]
    q, k, v = (randn(*size, dtype=dtype, seed=s) for s, size in enumerate(SHAPES[shape]))
    mask = make_mask(mask_kind, q_shape, k_shape, dtype)
    result = scaled_dot_product_attention(q, k, v, mask, return_weights=return_weights)
    out = result[0] if return_weights else result
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL[dtype])
    if return_weights:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q_shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else scores + mask
        torch.testing.assert_close(result[1], torch.softmax(scores, -1), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("return_weights", [False, True], ids=["fused", "explicit"])
def test_sdpa_causal_and_scale_equal_torch(dtype, return_weights):
    q, k, v = (randn(2, 3, 6, 4, dtype=dtype, seed=s) for s in range(3))

    def ours(*args, **kwargs):
        result = scaled_dot_product_attention(*args, return_weights=return_weights, **kwargs)
        return result[0] if return_weights else result

    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours(q, k, v, is_causal=True), reference, **TOL[dtype])
    torch.testing.assert_close(ours(q, k, v, causal_mask(6)), reference, **TOL[dtype])
    scaled = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(ours(q, k, v, scale=0.3), scaled, **TOL[dtype])
    # PyTorch refuses is_causal with a mask; here both apply, as if combined by hand.
    pad = padding_mask([4, 6], 6)
    both = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(6) & pad)
    torch.testing.assert_close(ours(q, k, v, pad, is_causal=True), both, **TOL[dtype])


@pytest.mark.parametrize("return_weights", [False, True], ids=["fused", "explicit"])
@pytest.mark.parametrize("mask_dtype", ["bool", "additive"])
def test_fully_masked_rows_give_zeros_and_finite_gradients(return_weights, mask_dtype):
    q = randn(2, 2, 4, 3, seed=0).requires_grad_()
    k, v = (randn(2, 2, 5, 3, seed=s).requires_grad_() for s in (1, 2))
    keep = random_bool_mask(2, 1, 4, 5, seed=8)
    keep[0, :, 1] = False  # query 1 of batch 0 may attend to nothing
    keep[1, :, 3] = False
    if mask_dtype == "bool":
        mask = keep
    else:
        mask = torch.zeros(keep.shape, dtype=torch.float64).masked_fill(~keep, -math.inf)
    result = scaled_dot_product_attention(q, k, v, mask, return_weights=return_weights)
    out = result[0] if return_weights else result
    upstream = randn(*out.shape, seed=9)
    (out * upstream).sum().backward()
    assert torch.isfinite(out).all()
    assert (out[0, :, 1] == 0).all() and (out[1, :, 3] == 0).all()
    if return_weights:
        row_sums = result[1].sum(-1)  # (B, H, Tq)
        expected = keep.any(-1).expand(2, 2, 4).to(torch.float64)
        torch.testing.assert_close(row_sums, expected, **TOL[torch.float64])
    grads = [t.grad for t in (q, k, v)]
    assert all(torch.isfinite(g).all() for g in grads)

    # Reference: PyTorch's SDPA with the empty rows opened to every key, then left out of the
    # comparison and of the loss (their true output is the constant zero).
    qr, kr, vr = (t.detach().clone().requires_grad_() for t in (q, k, v))
    has_key = keep.any(-1, keepdim=True)  # (B, 1, Tq, 1)
    reference = F.scaled_dot_product_attention(qr, kr, vr, attn_mask=keep | ~has_key)
    torch.testing.assert_close(out.detach(), reference.detach() * has_key, **TOL[torch.float64])
    (reference * has_key * upstream).sum().backward()
    for mine, theirs in zip(grads, (qr.grad, kr.grad, vr.grad)):
        torch.testing.assert_close(mine, theirs, **TOL[torch.float64])


@pytest.mark.parametrize("return_weights", [False, True], ids=["fused", "explicit"])
def test_sdpa_gradcheck(return_weights):
    q, k, v = (randn(1, 2, 3, 2, seed=s).requires_grad_() for s in range(3))
    mask = random_bool_mask(1, 1, 3, 3, seed=10)
    mask[0, 0, 2] = False  # a fully masked row takes the guarded path

    # With return_weights the output is (output, weights); gradcheck checks both.
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, return_weights=return_weights),
        (q, k, v),
    )
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=return_weights),
        (q, k, v),
    )


def test_explicit_dropout_equals_dropout_of_weights():
    q, k, v = (randn(2, 2, 4, 3, seed=s) for s in range(3))
    torch.manual_seed(11)
    out, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5, return_weights=True)
    torch.manual_seed(11)
    softmaxed = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(3), -1)
    expected = F.dropout(softmaxed, p=0.5) @ v
    torch.testing.assert_close(out, expected, **TOL[torch.float64])
    torch.testing.assert_close(weights, softmaxed, **TOL[torch.float64])  # returned before dropout


@pytest.mark.parametrize("return_weights", [False, True], ids=["fused", "explicit"])
def test_dropout_only_when_training(return_weights):
    q, k, v = (randn(2, 2, 6, 4, seed=s) for s in range(3))
    reference = F.scaled_dot_product_attention(q, k, v)

    def ours(**kwargs):
        result = scaled_dot_product_attention(q, k, v, dropout_p=0.5, return_weights=return_weights, **kwargs)
        return result[0] if return_weights else result

    torch.testing.assert_close(ours(training=False), reference, **TOL[torch.float64])
    assert (ours() - reference).abs().max() > 1e-3


def test_sdpa_error_messages():
    q = randn(2, 3, 5, 4)
    with pytest.raises(ValueError, match=r"shape \(B, \.\.\., Tq, D\) with at least 3 dimensions, got \(5, 4\)"):
        scaled_dot_product_attention(q[0, 0], q[0, 0], q[0, 0])
    with pytest.raises(ValueError, match=r"expected q, k, v of the same rank"):
        scaled_dot_product_attention(q, q[0], q)
    with pytest.raises(ValueError, match=r"same leading \(B, \.\.\.\) dimensions"):
        scaled_dot_product_attention(q, randn(2, 2, 5, 4), randn(2, 2, 5, 4))
    with pytest.raises(ValueError, match=r"expected k with the same last dimension D=4 as q, got k \(2, 3, 5, 6"):
        scaled_dot_product_attention(q, randn(2, 3, 5, 6), q)
    with pytest.raises(ValueError, match=r"expected v with as many keys Tk=5 as k, got v \(2, 3, 6, 4\)"):
        scaled_dot_product_attention(q, q, randn(2, 3, 6, 4))
    with pytest.raises(TypeError, match="one floating dtype, got torch.float64, torch.float32, torch"):
        scaled_dot_product_attention(q, q.float(), q)
    with pytest.raises(ValueError, match=r"to the scores \(B, \.\.\., Tq, Tk\) = \(2, 3, 5, 5\), got \(4, 5\)"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"= \(2, 3, 5, 5\), got \(7, 2, 3, 5, 5\)"):
        scaled_dot_product_attention(q, q, q, torch.ones(7, 2, 3, 5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"\(True = may attend\) or an additive float mask of q's dtype torch.float64, got torch.int64"):
        scaled_dot_product_attention(q, q, q, torch.ones(5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="is_causal needs as many queries as keys, got Tq=5 and Tk=6"):
        scaled_dot_product_attention(q, randn(2, 3, 6, 4), randn(2, 3, 6, 4), is_causal=True)
    with pytest.raises(ValueError, match=r"expected dropout_p in \[0, 1\), got 1.0"):
        scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    with pytest.raises(TypeError, match="expected k to be a torch.Tensor, got list"):
        scaled_dot_product_attention(q, [1.0], q)


# --------------------------------------------------------------------------- multi-head attention

def make_pair(C: int, H: int, dtype: torch.dtype, **kwargs) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    torch.manual_seed(12)
    reference = nn.MultiheadAttention(C, H, batch_first=True, **kwargs).to(dtype).eval()
    with torch.no_grad():  # nn.MultiheadAttention starts with zero biases; make them count
        for name, p in reference.named_parameters():
            if "bias" in name:
                p.normal_()
    ours_kwargs = {key: kwargs[key] for key in ("bias", "kdim", "vdim") if key in kwargs}
    ours = MultiHeadAttention(C, H, **ours_kwargs).to(dtype).load_from_torch(reference).eval()
    return ours, reference


@pytest.mark.parametrize("dtype", DTYPES)
def test_mha_self_attention_equals_torch(dtype):
    ours, reference = make_pair(12, 3, dtype)
    x = randn(2, 5, 12, dtype=dtype)
    out, weights = ours(x, need_weights=True)
    ref_out, ref_weights = reference(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, **TOL[dtype])
    assert weights.shape == (2, 3, 5, 5)
    torch.testing.assert_close(weights, ref_weights, **TOL[dtype])
    _, ref_mean = reference(x, x, x)  # averaged over heads by default
    torch.testing.assert_close(weights.mean(1), ref_mean, **TOL[dtype])
    torch.testing.assert_close(ours(x), reference(x, x, x, need_weights=False)[0], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("need_weights", [False, True])
def test_mha_masks_equal_torch(dtype, need_weights):
    ours, reference = make_pair(8, 2, dtype)
    x = randn(3, 6, 8, dtype=dtype)
    lengths = torch.tensor([6, 3, 1])
    key_padding_mask = torch.arange(6) >= lengths[:, None]  # nn.MultiheadAttention: True = ignore

    def compare(our_result, ref_result):
        if need_weights:
            torch.testing.assert_close(our_result[0], ref_result[0], **TOL[dtype])
            torch.testing.assert_close(our_result[1], ref_result[1], **TOL[dtype])
        else:
            torch.testing.assert_close(our_result, ref_result[0], **TOL[dtype])

    kw = dict(need_weights=need_weights, average_attn_weights=False)
    compare(ours(x, mask=padding_mask(lengths, 6), need_weights=need_weights),
            reference(x, x, x, key_padding_mask=key_padding_mask, **kw))
    ignore_future = torch.ones(6, 6, dtype=torch.bool).triu(1)
    compare(ours(x, is_causal=True, need_weights=need_weights),
            reference(x, x, x, attn_mask=ignore_future, **kw))
    compare(ours(x, mask=causal_mask(6), need_weights=need_weights),
            reference(x, x, x, attn_mask=ignore_future, **kw))
    additive = randn(3 * 2, 6, 6, dtype=dtype, seed=13)  # nn.MultiheadAttention: (B * H, Tq, Tk)
    compare(ours(x, mask=additive.view(3, 2, 6, 6), need_weights=need_weights),
            reference(x, x, x, attn_mask=additive, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mha_cross_attention_equals_torch(dtype):
    ours, reference = make_pair(8, 4, dtype, kdim=5, vdim=7)
    x = randn(2, 3, 8, dtype=dtype)
    context, value = randn(2, 6, 5, dtype=dtype, seed=1), randn(2, 6, 7, dtype=dtype, seed=2)
    lengths = torch.tensor([4, 6])
    out, weights = ours(x, context, value, mask=padding_mask(lengths, 6), need_weights=True)
    ref_out, ref_weights = reference(
        x, context, value, key_padding_mask=torch.arange(6) >= lengths[:, None], average_attn_weights=False
    )
    torch.testing.assert_close(out, ref_out, **TOL[dtype])
    torch.testing.assert_close(weights, ref_weights, **TOL[dtype])
    assert weights.shape == (2, 4, 3, 6)

    same, same_ref = make_pair(8, 2, dtype, bias=False)
    ctx = randn(2, 6, 8, dtype=dtype, seed=3)
    torch.testing.assert_close(same(x, ctx), same_ref(x, ctx, ctx)[0], **TOL[dtype])


def test_mha_gradcheck():
    ours, _ = make_pair(4, 2, torch.float64)
    ours.train()
    x = randn(2, 3, 4).requires_grad_()
    context = randn(2, 4, 4, seed=1).requires_grad_()
    mask = padding_mask([2, 4], 4)
    assert torch.autograd.gradcheck(lambda x, c: ours(x, c, mask=mask), (x, context))
    assert torch.autograd.gradcheck(lambda x: ours(x, is_causal=True, need_weights=True), (x,))


def test_mha_weights_rows_sum_to_one_or_zero_and_no_nan():
    ours, _ = make_pair(8, 2, torch.float64)
    x = randn(2, 4, 8).requires_grad_()
    keep = random_bool_mask(2, 1, 4, 4, seed=14)
    keep[1, 0, 2] = False  # query 2 of batch 1 sees no key
    out, weights = ours(x, mask=keep, need_weights=True)
    expected = keep.any(-1).expand(2, 2, 4).to(torch.float64)
    torch.testing.assert_close(weights.sum(-1), expected, **TOL[torch.float64])
    fused = ours(x, mask=keep)
    torch.testing.assert_close(fused, out, **TOL[torch.float64])
    fused.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_mha_dropout_is_off_in_eval():
    ours, _ = make_pair(8, 2, torch.float64)
    ours.dropout = 0.5
    x = randn(2, 5, 8)
    ours.eval()
    baseline = ours(x, need_weights=True)[0]
    torch.testing.assert_close(ours(x), baseline, **TOL[torch.float64])
    torch.testing.assert_close(ours(x, need_weights=True)[0], baseline, **TOL[torch.float64])
    ours.train()
    assert (ours(x) - baseline).abs().max() > 1e-3
    assert (ours(x, need_weights=True)[0] - baseline).abs().max() > 1e-3


def test_mha_error_messages():
    with pytest.raises(ValueError, match=r"expected C divisible by H, got C=10 and H=3 \(C % H = 1\)"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="expected H to be a positive int, got 0"):
        MultiHeadAttention(8, 0)
    mha = MultiHeadAttention(8, 2, kdim=5)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, 8\), got \(2, 3, 6\)"):
        mha(randn(2, 3, 6), randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"expected context of shape \(B, T, 5\), got \(2, 4, 8\)"):
        mha(randn(2, 3, 8), randn(2, 4, 8))
    with pytest.raises(ValueError, match="one batch size B, got 2, 3, 3"):
        mha(randn(2, 3, 8).float(), randn(3, 4, 5).float(), randn(3, 4, 8).float())
    with pytest.raises(ValueError, match=r"as many positions Tk=4 as context, got \(2, 5, 8\)"):
        mha(randn(2, 3, 8).float(), randn(2, 4, 5).float(), randn(2, 5, 8).float())
    with pytest.raises(ValueError, match=r"vdim, bias\) = \(8, 2, 5, 8, True\), got \(8, 4, 8, 8, True\)"):
        mha.load_from_torch(nn.MultiheadAttention(8, 4, batch_first=True))
    with pytest.raises(ValueError, match="without add_bias_kv or add_zero_attn"):
        MultiHeadAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(TypeError, match="expected an nn.MultiheadAttention, got Linear"):
        mha.load_from_torch(nn.Linear(8, 8))
