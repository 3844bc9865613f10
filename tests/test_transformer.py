"""Tests for mmcourse.transformer against PyTorch's own transformer layers and hand-written formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmcourse.attention import causal_mask
from mmcourse.transformer import (
    MLP,
    Block,
    Decoder,
    Encoder,
    KVCache,
    LayerCache,
    LayerNorm,
    LearnedPositions,
    sinusoidal_positions,
)

TOL64 = dict(atol=1e-10, rtol=1e-10)



def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def scramble(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter random values, so that no weight is a neutral 1 or 0."""
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3 + (1.0 if p.dim() == 1 else 0.0))
    return module


def copy_torch_encoder_layer(block: Block, layer: nn.TransformerEncoderLayer) -> Block:
    block.attn.load_from_torch(layer.self_attn)
    block.mlp.fc.load_state_dict(layer.linear1.state_dict())
    block.mlp.proj.load_state_dict(layer.linear2.state_dict())
    block.ln_1.load_state_dict(layer.norm1.state_dict())
    block.ln_2.load_state_dict(layer.norm2.state_dict())
    return block


def copy_torch_decoder_layer(block: Block, layer: nn.TransformerDecoderLayer) -> Block:
    block.attn.load_from_torch(layer.self_attn)
    block.cross_attn.load_from_torch(layer.multihead_attn)
    block.mlp.fc.load_state_dict(layer.linear1.state_dict())
    block.mlp.proj.load_state_dict(layer.linear2.state_dict())
    block.ln_1.load_state_dict(layer.norm1.state_dict())
    block.ln_cross.load_state_dict(layer.norm2.state_dict())
    block.ln_2.load_state_dict(layer.norm3.state_dict())
    return block


def torch_encoder_layer(C: int, H: int, norm_first: bool, bias: bool = True) -> nn.TransformerEncoderLayer:
    # Train mode with dropout 0 keeps PyTorch off its inference fast path, which zeroes padded rows.
    layer = nn.TransformerEncoderLayer(C, H, 4 * C, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first, bias=bias, dtype=torch.float64)
    return scramble(layer).train()


# --------------------------------------------------------------------------- positions

@pytest.mark.parametrize("C", [6, 7])
def test_sinusoidal_positions_follow_the_formula(C):
    T = 5
    by_hand = torch.zeros(T, C, dtype=torch.float64)
    for t in range(T):
        for c in range(C):
            angle = t / 10000 ** (2 * (c // 2) / C)
            by_hand[t, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    torch.testing.assert_close(sinusoidal_positions(T, C, dtype=torch.float64), by_hand, **TOL64)
    assert sinusoidal_positions(T, C).dtype == torch.float32


def test_sinusoidal_similarity_depends_only_on_the_distance():
    pe = sinusoidal_positions(40, 16, dtype=torch.float64)
    for k in (1, 3, 7):
        dots = (pe[:-k] * pe[k:]).sum(-1)  # PE[t] · PE[t + k] = sum of cos(k ω_i), the same for every t
        torch.testing.assert_close(dots, torch.full_like(dots, dots[0].item()), **TOL64)


def test_learned_positions_are_rows_of_the_table():
    pos = LearnedPositions(10, 4)
    assert torch.equal(pos(3), pos.table.weight[:3])
    assert torch.equal(pos(2, offset=5), pos.table.weight[5:7])
    with pytest.raises(ValueError, match="positions 8..10 do not fit a table of max_len=10"):
        pos(3, offset=8)


def test_positions_reject_bad_sizes():
    with pytest.raises(ValueError, match="expected C to be a positive int, got 0"):
        sinusoidal_positions(4, 0)
    with pytest.raises(ValueError, match="expected max_len to be a positive int"):
        LearnedPositions(-1, 4)


# --------------------------------------------------------------------------- layer norm

@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_equals_torch(bias):
    ours = scramble(LayerNorm(6, eps=1e-5, bias=bias).double())
    theirs = nn.LayerNorm(6, eps=1e-5, bias=bias, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())  # same parameter names
    x = randn(2, 3, 6) * 4 + 1
    torch.testing.assert_close(ours(x), theirs(x), **TOL64)


def test_layer_norm_output_has_zero_mean_and_unit_variance():
    y = LayerNorm(8).double()(randn(5, 8) * 3 + 2)
    torch.testing.assert_close(y.mean(-1), torch.zeros(5, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(5, dtype=torch.float64), atol=1e-4, rtol=0)


def test_layer_norm_gradients():
    ln = scramble(LayerNorm(4).double())
    x = randn(3, 4).requires_grad_()
    assert torch.autograd.gradcheck(ln, (x,))
    ln(x).pow(2).sum().backward()
    theirs = nn.LayerNorm(4, dtype=torch.float64)
    theirs.load_state_dict(ln.state_dict())
    x2 = x.detach().clone().requires_grad_()
    theirs(x2).pow(2).sum().backward()
    for a, b in ((x.grad, x2.grad), (ln.weight.grad, theirs.weight.grad), (ln.bias.grad, theirs.bias.grad)):
        torch.testing.assert_close(a, b, **TOL64)


def test_layer_norm_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., 4\), got \(2, 5\)"):
        LayerNorm(4)(torch.zeros(2, 5))


# --------------------------------------------------------------------------- MLP

GELU_BY_HAND = {
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "relu": lambda x: torch.clamp(x, min=0),
}


@pytest.mark.parametrize("activation", sorted(GELU_BY_HAND))
def test_mlp_equals_two_linear_maps_around_the_activation(activation):
    mlp = scramble(MLP(4, activation=activation).double())
    x = randn(2, 3, 4)
    by_hand = GELU_BY_HAND[activation](x @ mlp.fc.weight.T + mlp.fc.bias) @ mlp.proj.weight.T + mlp.proj.bias
    torch.testing.assert_close(mlp(x), by_hand, **TOL64)
    assert mlp.fc.weight.shape == (16, 4)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match=r"expected activation in \('gelu', 'gelu_tanh', 'relu'\), got 'swish'"):
        MLP(4, activation="swish")


# --------------------------------------------------------------------------- block

@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_block_equals_torch_encoder_layer(norm_first, bias):
    C, H = 8, 2
    layer = torch_encoder_layer(C, H, norm_first, bias)
    block = copy_torch_encoder_layer(Block(C, H, norm_first=norm_first, bias=bias).double(), layer)
    x = randn(3, 5, C)
    torch.testing.assert_close(block(x), layer(x), **TOL64)
    causal = causal_mask(5)
    torch.testing.assert_close(block(x, is_causal=True), layer(x, src_mask=~causal, is_causal=True), **TOL64)


@pytest.mark.parametrize("norm_first", [True, False])
def test_cross_attention_block_equals_torch_decoder_layer(norm_first):
    C, H, T, N = 8, 2, 5, 7
    layer = nn.TransformerDecoderLayer(C, H, 4 * C, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first, dtype=torch.float64)
    scramble(layer)
    block = copy_torch_decoder_layer(Block(C, H, norm_first=norm_first, cross_attention=True).double(), layer)
    x, context = randn(2, T, C), randn(2, N, C, seed=1)
    keep = torch.ones(2, N, dtype=torch.bool)
    keep[1, 4:] = False  # the second context is shorter
    ours = block(x, is_causal=True, context=context, context_mask=keep[:, None, None, :])
    theirs = layer(x, context, tgt_mask=~causal_mask(T), tgt_is_causal=True, memory_key_padding_mask=~keep)
    torch.testing.assert_close(ours, theirs, **TOL64)


def test_cross_attention_with_a_context_of_another_width():
    block = Block(8, 2, cross_attention=True, context_dim=3).double()
    out, weights = block(randn(2, 4, 8), context=randn(2, 6, 3), need_weights=True)
    assert out.shape == (2, 4, 8) and weights["cross"].shape == (2, 2, 4, 6)


def test_block_weights_equal_torch_attention_weights():
    C, H = 8, 2
    layer = torch_encoder_layer(C, H, norm_first=True)
    block = copy_torch_encoder_layer(Block(C, H).double(), layer)
    x = randn(2, 5, C)
    out, weights = block(x, is_causal=True, need_weights=True)
    _, theirs = layer.self_attn(layer.norm1(x), layer.norm1(x), layer.norm1(x), attn_mask=~causal_mask(5),
                                average_attn_weights=False)
    torch.testing.assert_close(weights["self"], theirs, **TOL64)
    torch.testing.assert_close(out, block(x, is_causal=True), **TOL64)  # the fused path agrees


def test_block_with_cache_equals_block_without():
    block = scramble(Block(8, 2).double())
    x = randn(2, 7, 8)
    full = block(x, is_causal=True)
    cache = LayerCache(max_len=10)
    pieces = [block(x[:, a:b], is_causal=True, kv_cache=cache) for a, b in ((0, 3), (3, 4), (4, 5), (5, 7))]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, **TOL64)
    assert cache.length == 7


def test_layer_cache_refuses_overflow_and_mismatch():
    cache = LayerCache(max_len=4)
    cache.append(torch.zeros(1, 2, 3, 5), torch.zeros(1, 2, 3, 5))
    with pytest.raises(ValueError, match=r"the cache holds 4 positions; 3 \+ 2 new do not fit"):
        cache.append(torch.zeros(1, 2, 2, 5), torch.zeros(1, 2, 2, 5))
    with pytest.raises(ValueError, match=r"expected keys of shape \(B, H, T, D\) = \(1, 2, T, 5\)"):
        cache.append(torch.zeros(1, 3, 1, 5), torch.zeros(1, 3, 1, 5))


def test_block_rejects_context_mismatch():
    with pytest.raises(ValueError, match="expected a context exactly when the block has cross-attention"):
        Block(8, 2)(torch.zeros(1, 3, 8), context=torch.zeros(1, 2, 8))
    with pytest.raises(ValueError, match="expected C divisible by H, got C=8 and H=3"):
        Block(8, 3)


# --------------------------------------------------------------------------- stacks

@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_equals_torch_encoder_with_padding(norm_first):
    C, H, L, T = 8, 2, 3, 6
    layer = torch_encoder_layer(C, H, norm_first)
    final = scramble(nn.LayerNorm(C, dtype=torch.float64), seed=1) if norm_first else None
    theirs = nn.TransformerEncoder(layer, L, norm=final, enable_nested_tensor=False).train()
    ours = Encoder(C, H, L, norm_first=norm_first).double()
    for block, their_layer in zip(ours.blocks, theirs.layers):
        copy_torch_encoder_layer(block, their_layer)
    if norm_first:
        ours.ln_f.load_state_dict(final.state_dict())
    else:
        assert ours.ln_f is None
    x = randn(2, T, C)
    keep = torch.tensor([[True] * T, [True] * 4 + [False] * 2])
    torch.testing.assert_close(ours(x, padding_mask=keep), theirs(x, src_key_padding_mask=~keep), **TOL64)


def test_decoder_is_causal_and_returns_weights_per_layer():
    dec = scramble(Decoder(8, 2, 3).double())
    x = randn(2, 6, 8)
    out, weights = dec(x, need_weights=True)
    assert weights["self"].shape == (3, 2, 2, 6, 6)
    assert torch.all(weights["self"].triu(diagonal=1) == 0)
    torch.testing.assert_close(weights["self"].sum(-1), torch.ones(3, 2, 2, 6, dtype=torch.float64), **TOL64)
    changed = x.clone()
    changed[:, 4:] = randn(2, 2, 8, seed=1)  # the future may not leak into earlier positions
    torch.testing.assert_close(dec(changed)[:, :4], out[:, :4], **TOL64)
    assert not torch.allclose(dec(changed)[:, 4:], out[:, 4:])


def test_decoder_with_kv_cache_equals_decoder_without():
    dec = scramble(Decoder(8, 2, 2).double())
    x = randn(1, 5, 8)
    cache = KVCache(n_layer=2, max_len=8)
    steps = [dec(x[:, :2], kv_cache=cache)] + [dec(x[:, t : t + 1], kv_cache=cache) for t in range(2, 5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), dec(x), **TOL64)
    assert len(cache) == 5


def test_stack_rejects_bad_masks():
    enc = Encoder(8, 2, 1)
    with pytest.raises(ValueError, match=r"expected padding_mask of shape \(B, T\) = \(2, 3\), True for real tokens"):
        enc(torch.zeros(2, 3, 8), padding_mask=torch.ones(2, 1, 1, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="expected padding_mask of dtype bool"):
        enc(torch.zeros(2, 3, 8), padding_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="expected a KVCache with 1 layers, got 2"):
        Decoder(8, 2, 1)(torch.zeros(1, 1, 8), kv_cache=KVCache(2, 4))
