"""Tests for mmcourse.fusion: shapes, masks, the special cases each fusion reduces to, parameter
counts by hand, and cross-attention against torch.nn.MultiheadAttention."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.fusion import (
    FUSIONS,
    ConcatFusion,
    ConvFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GatedFusion,
    SumFusion,
    count_parameters,
    fusion_at_budget,
    make_fusion,
)

B, N, T = 3, 5, 4
DIM_A, DIM_B, DIM_OUT, WIDTH = 12, 6, 7, 8
OPTIONS = {"cross_attention": {"heads": 2}, "conv": {"channels": 3, "kernel_size": 3}}
NAMES = list(FUSIONS)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return make_fusion(name, DIM_A, DIM_B, DIM_OUT, width=WIDTH, **OPTIONS.get(name, {})).double()


def lengths_mask(lengths: list[int], L: int) -> torch.Tensor:
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]


def test_the_seven_fusions_are_registered_by_name():
    assert NAMES == ["sum", "product", "concat", "gated", "conv", "film", "cross_attention"]
    assert all(FUSIONS[name].name == name for name in NAMES)


# --------------------------------------------------------------------------- the common interface

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("a_shape, b_shape", [((B, N, DIM_A), (B, T, DIM_B)), ((B, DIM_A), (B, DIM_B)),
                                              ((B, N, DIM_A), (B, DIM_B)), ((B, DIM_A), (B, T, DIM_B))])
def test_every_fusion_maps_sequences_or_vectors_to_one_vector(name, a_shape, b_shape):
    out = build(name)(randn(*a_shape, seed=1), randn(*b_shape, seed=2))
    assert out.shape == (B, DIM_OUT) and out.dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_every_fusion_uses_both_inputs(name):
    fusion = build(name)
    a, b = randn(B, N, DIM_A, seed=1).requires_grad_(), randn(B, T, DIM_B, seed=2).requires_grad_()
    out = fusion(a, b)
    for changed in (fusion(a + randn(B, N, DIM_A, seed=3), b), fusion(a, b + randn(B, T, DIM_B, seed=4))):
        assert ((changed - out).abs().amax(dim=1) > 1e-6).all()  # every example's output moves
    grad_a, grad_b = torch.autograd.grad(out.square().sum(), (a, b))
    assert grad_a.abs().sum() > 0 and grad_b.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_padding_is_ignored_and_equals_the_unpadded_rows(name):
    fusion = build(name)
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    a_mask, b_mask = lengths_mask([5, 2, 3], N), lengths_mask([1, 4, 2], T)
    out = fusion(a, b, a_mask, b_mask)
    noise_a = randn(B, N, DIM_A, seed=5) * (~a_mask)[..., None]  # changes only the padding
    noise_b = randn(B, T, DIM_B, seed=6) * (~b_mask)[..., None]
    torch.testing.assert_close(fusion(a + noise_a, b + noise_b, a_mask, b_mask), out, atol=1e-12, rtol=0)
    for i in range(B):  # each row alone, cut to its real tokens, with no mask at all
        alone = fusion(a[i:i + 1, a_mask[i]], b[i:i + 1, b_mask[i]])
        torch.testing.assert_close(alone, out[i:i + 1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_fusions_ignore_the_order_of_patches_and_a_vector_is_a_sequence_of_one(name):
    fusion = build(name)
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    shuffled = a[:, torch.randperm(N, generator=torch.Generator().manual_seed(0))]
    torch.testing.assert_close(fusion(shuffled, b), fusion(a, b), atol=1e-12, rtol=0)
    pooled = a.mean(dim=1)
    torch.testing.assert_close(fusion(pooled, b), fusion(pooled[:, None], b), atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_only_sum_fusion_has_no_interaction(name):
    # f(a1, b1) - f(a1, b2) - f(a2, b1) + f(a2, b2) is zero exactly when f(a, b) = g(a) + h(b).
    fusion = build(name)
    a1, a2 = randn(B, N, DIM_A, seed=1), randn(B, N, DIM_A, seed=2)
    b1, b2 = randn(B, T, DIM_B, seed=3), randn(B, T, DIM_B, seed=4)
    mixed = fusion(a1, b1) - fusion(a1, b2) - fusion(a2, b1) + fusion(a2, b2)
    if name == "sum":
        torch.testing.assert_close(mixed, torch.zeros_like(mixed), atol=1e-12, rtol=0)
    else:
        assert mixed.abs().amax() > 1e-4


# --------------------------------------------------------------------------- special cases by hand

def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return x @ layer.weight.T + layer.bias


def test_sum_fusion_by_hand():
    fusion, a, b = build("sum"), randn(B, N, DIM_A, seed=1), randn(B, DIM_B, seed=2)
    expected = linear(linear(a.mean(1), fusion.proj_a) + linear(b, fusion.proj_b), fusion.out)
    torch.testing.assert_close(fusion(a, b), expected, atol=1e-12, rtol=0)


def test_concatenation_is_a_sum_of_two_projections_before_its_gelu():
    fusion: ConcatFusion = build("concat")
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    W = fusion.hidden.weight
    W_a, W_b = W[:, :DIM_A], W[:, DIM_A:]
    expected = linear(F.gelu(a.mean(1) @ W_a.T + b.mean(1) @ W_b.T + fusion.hidden.bias), fusion.out)
    torch.testing.assert_close(fusion(a, b), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("gate_bias, share_of_a", [(60.0, 1.0), (-60.0, 0.0), (0.0, 0.5)])
def test_a_saturated_gate_passes_one_input_and_a_constant_gate_mixes_them(gate_bias, share_of_a):
    fusion: GatedFusion = build("gated")
    with torch.no_grad():
        fusion.gate.weight.zero_()
        fusion.gate.bias.fill_(gate_bias)
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    mix = share_of_a * linear(a.mean(1), fusion.proj_a) + (1 - share_of_a) * linear(b.mean(1), fusion.proj_b)
    torch.testing.assert_close(fusion(a, b), linear(mix, fusion.out), atol=1e-12, rtol=0)


def test_film_with_gamma_one_and_beta_zero_is_the_identity_modulation():
    fusion: FiLMFusion = build("film")
    with torch.no_grad():
        fusion.film.weight.zero_()
        fusion.film.bias.zero_()  # Δγ = 0, β = 0
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    unmodulated = linear(F.relu(linear(a, fusion.proj_a)).mean(1), fusion.out)
    torch.testing.assert_close(fusion(a, b), unmodulated, atol=1e-12, rtol=0)
    torch.testing.assert_close(fusion(a, randn(B, T, DIM_B, seed=3)), unmodulated, atol=1e-12, rtol=0)
    with torch.no_grad():
        fusion.film.bias[:WIDTH] = 1.0  # γ = 2 doubles every feature, and ReLU(2x) = 2 ReLU(x)
        fusion.film.bias[WIDTH:] = -0.5  # β = -1/2
    doubled = linear(F.relu(2 * linear(a, fusion.proj_a) - 0.5).mean(1), fusion.out)
    torch.testing.assert_close(fusion(a, b), doubled, atol=1e-12, rtol=0)


def test_conv_fusion_equals_a_convolution_written_as_a_loop():
    fusion: ConvFusion = build("conv")
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    stacked = torch.stack([linear(a.mean(1), fusion.proj_a), linear(b.mean(1), fusion.proj_b)], dim=1)  # (B, 2, W)
    k = fusion.conv.kernel_size[0]
    padded = F.pad(stacked, (k // 2, k // 2))
    conv = torch.stack([
        (padded[:, None, :, i:i + k] * fusion.conv.weight).sum(dim=(2, 3)) + fusion.conv.bias
        for i in range(WIDTH)
    ], dim=-1)  # (B, channels, W): output feature i sees features i - 1 .. i + 1 of both
    mixed = (F.gelu(conv) * fusion.mix.weight[0]).sum(dim=1) + fusion.mix.bias  # (B, W)
    torch.testing.assert_close(fusion(a, b), linear(mixed, fusion.out), atol=1e-12, rtol=0)


def test_cross_attention_equals_torch_multihead_attention():
    fusion: CrossAttentionFusion = build("cross_attention")
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(WIDTH, 2, kdim=DIM_A, vdim=DIM_A, batch_first=True).double()
    fusion.attn.load_from_torch(reference)
    a, b = randn(B, N, DIM_A, seed=1), randn(B, T, DIM_B, seed=2)
    a_mask, b_mask = lengths_mask([5, 2, 3], N), lengths_mask([4, 1, 3], T)
    q = linear(b, fusion.query)
    read, weights = reference(q, a, a, key_padding_mask=~a_mask, average_attn_weights=False)
    h = (q + read) * b_mask[..., None]
    expected = linear(h.sum(1) / b_mask.sum(1, keepdim=True), fusion.out)
    torch.testing.assert_close(fusion(a, b, a_mask, b_mask), expected, atol=1e-12, rtol=0)
    ours = fusion.attention(a, b, a_mask, b_mask)
    assert ours.shape == (B, 2, T, N)
    torch.testing.assert_close(ours, weights, atol=1e-12, rtol=0)
    assert (ours.masked_select(~a_mask[:, None, None, :]) == 0).all()  # padded patches get no attention


# --------------------------------------------------------------------------- parameter budgets

def hand_count(name: str, W: int) -> int:
    Ca, Cb, O = DIM_A, DIM_B, DIM_OUT
    out = (W + 1) * O
    return out + {
        "sum": (Ca + 1) * W + (Cb + 1) * W,
        "product": (Ca + 1) * W + (Cb + 1) * W,
        "concat": (Ca + Cb + 1) * W,
        "gated": (Ca + 1) * W + (Cb + 1) * W + (Ca + Cb + 1) * W,
        "conv": (Ca + 1) * W + (Cb + 1) * W + (2 * 3 + 1) * 3 + (3 + 1),  # 3 channels, kernel 3
        "film": (Ca + 1) * W + (Cb + 1) * 2 * W,
        # the query, then q, k, v and output projections of the attention
        "cross_attention": (Cb + 1) * W + (W + 1) * W + 2 * (Ca + 1) * W + (W + 1) * W,
    }[name]


@pytest.mark.parametrize("name", NAMES)
def test_count_parameters_matches_a_count_by_hand(name):
    fusion = build(name)
    assert count_parameters(fusion) == hand_count(name, WIDTH)
    fusion.out.requires_grad_(False)
    assert count_parameters(fusion) == hand_count(name, WIDTH) - (WIDTH + 1) * DIM_OUT
    assert count_parameters(fusion, trainable_only=False) == hand_count(name, WIDTH)


@pytest.mark.parametrize("budget", [3_000, 20_000])
def test_fusion_at_budget_puts_all_seven_within_ten_percent(budget):
    for name in NAMES:
        options = OPTIONS.get(name, {})
        fusion = fusion_at_budget(name, DIM_A, DIM_B, DIM_OUT, budget, **options)
        got = count_parameters(fusion)
        assert abs(got - budget) <= 0.1 * budget, (name, got)
        step = options.get("heads", 1)
        assert fusion.width % step == 0
        for other in (fusion.width - step, fusion.width + step):  # no other width comes nearer
            if other >= 1:
                assert abs(hand_count(name, other) - budget) >= abs(got - budget)


def test_fusion_at_budget_refuses_a_budget_it_cannot_meet():
    with pytest.raises(ValueError, match=r"no width puts 'gated' within 10% of 20 parameters: the nearest, width=1"):
        fusion_at_budget("gated", DIM_A, DIM_B, DIM_OUT, 20)
    with pytest.raises(ValueError, match=r"expected tolerance in \[0, 1\), got 2"):
        fusion_at_budget("sum", DIM_A, DIM_B, DIM_OUT, 1000, tolerance=2)


# --------------------------------------------------------------------------- errors

def test_make_fusion_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match=r"expected a fusion name in \('sum', 'product', .*\), got 'mean'"):
        make_fusion("mean", 4, 4, 4)
    with pytest.raises(ValueError, match=r"fusion 'sum' takes the options: none; got \['heads'\]"):
        make_fusion("sum", 4, 4, 4, heads=2)
    with pytest.raises(ValueError, match="expected width divisible by heads, got width=6 and heads=4"):
        make_fusion("cross_attention", 4, 4, 6)
    with pytest.raises(ValueError, match="expected an odd kernel_size, so the output keeps the width, got 2"):
        make_fusion("conv", 4, 4, 6, kernel_size=2)
    with pytest.raises(ValueError, match="expected dim_b to be a positive int, got 0"):
        SumFusion(4, 0, 4)


def test_clear_errors_for_bad_inputs():
    fusion = build("film")
    a, b = randn(B, N, DIM_A), randn(B, T, DIM_B)
    with pytest.raises(ValueError, match=r"expected a of shape \(B, N, 12\) or \(B, 12\), got \(3, 5, 6\)"):
        fusion(randn(B, N, 6), b)
    with pytest.raises(ValueError, match=r"expected b of shape \(B, T, 6\) or \(B, 6\), got \(3,\)"):
        fusion(a, randn(B))
    with pytest.raises(ValueError, match="expected a and b with one batch size B, got 3 and 2"):
        fusion(a, b[:2])
    with pytest.raises(TypeError, match="expected a and b of one dtype, got torch.float64 and torch.float32"):
        fusion(a, b.float())
    with pytest.raises(TypeError, match="expected a of a floating dtype, got torch.int64"):
        fusion(a.long(), b)
    with pytest.raises(ValueError, match=r"a_mask is for a sequence a \(B, N, 12\); a is pooled, \(3, 12\)"):
        fusion(a.mean(1), b, a_mask=torch.ones(B, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected b_mask of shape \(B, T\) = \(3, 4\), True .*, got \(3, 5\)"):
        fusion(a, b, b_mask=torch.ones(B, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="row 1 of b_mask has no real token"):
        fusion(a, b, b_mask=lengths_mask([1, 0, 2], T))
    with pytest.raises(TypeError, match="expected a_mask of dtype bool"):
        fusion(a, b, a_mask=torch.ones(B, N))
