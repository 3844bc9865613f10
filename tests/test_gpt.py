"""Tests for mmcourse.gpt against Hugging Face GPT-2 with copied weights, F.cross_entropy and hand-made examples."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from mmcourse.gpt import (
    GPT,
    GPTConfig,
    configure_optimizer,
    generate,
    load_hf_gpt2,
    top_k_filter,
    top_p_filter,
)

V, BLOCK = 50, 16



def tiny_gpt(seed: int = 0, dtype: torch.dtype = torch.float32, **options) -> GPT:
    """A small GPT whose greedy continuations vary and whose top logits are far apart (no near-ties)."""
    torch.manual_seed(seed)
    config = dict(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32) | options
    model = GPT(GPTConfig(**config)).to(dtype).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # larger than GPT-2's initial weights, so that the model mixes tokens
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 2 / math.sqrt(p.shape[-1]))
        model.wte.weight.copy_(torch.randn(model.wte.weight.shape, generator=gen))
    return model


def ids(*shape: int, seed: int = 0, high: int = V) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def hf_gpt2(dtype: torch.dtype, attn_implementation: str = "sdpa") -> GPT2LMHeadModel:
    config = GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=100, n_positions=32, resid_pdrop=0,
                        embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=0,
                        attn_implementation=attn_implementation)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(config).to(dtype).eval()
    with torch.no_grad():  # move every weight off its initial value, so that each one matters
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return hf


# --------------------------------------------------------------------------- config and model

def test_config_validation_messages():
    with pytest.raises(ValueError, match="expected n_embd divisible by n_head, got n_embd=30 and n_head=4"):
        GPTConfig(vocab_size=10, block_size=8, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="expected block_size to be a positive int, got 0"):
        GPTConfig(vocab_size=10, block_size=0)
    with pytest.raises(ValueError, match=r"expected activation in \('gelu', 'gelu_tanh', 'relu'\), got 'tanh'"):
        GPTConfig(vocab_size=10, block_size=8, activation="tanh")
    with pytest.raises(TypeError, match="expected a GPTConfig, got dict"):
        GPT({"vocab_size": 10})


def test_shapes_and_tied_head():
    model = tiny_gpt()
    out = model(ids(3, 7), ids(3, 7, seed=1), return_attention=True)
    assert out.logits.shape == (3, 7, V) and out.loss.shape == ()
    assert out.attention.shape == (2, 3, 2, 7, 7) and out.cross_attention is None
    assert model.lm_head.weight is model.wte.weight
    untied = GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=1, n_head=2, n_embd=8, tie_weights=False))
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.num_params() == sum(p.numel() for p in untied.parameters()) - (BLOCK + V) * 8


def test_initialisation_scales_residual_projections():
    model = GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=8, n_head=4, n_embd=64))
    residual = torch.cat([torch.cat([b.attn.out_proj.weight.flatten(), b.mlp.proj.weight.flatten()])
                          for b in model.decoder.blocks])
    assert abs(residual.std().item() - 0.02 / math.sqrt(16)) < 0.0005
    assert abs(model.decoder.blocks[0].mlp.fc.weight.std().item() - 0.02) < 0.001
    assert torch.all(model.decoder.blocks[0].mlp.fc.bias == 0)


def test_prefix_shapes_and_positions():
    model = tiny_gpt()
    prefix = torch.randn(2, 4, 32)
    out = model(ids(2, 5), ids(2, 5), prefix=prefix, return_attention=True)
    assert out.logits.shape == (2, 5, V) and out.attention.shape == (2, 2, 2, 9, 9)
    # The prefix is attended to, so it changes the token logits.
    assert not torch.allclose(out.logits, model(ids(2, 5), prefix=prefix * 2).logits)
    with pytest.raises(ValueError, match=r"4 prefix \+ 13 token positions = 17, more than block_size=16"):
        model(ids(2, 13), prefix=prefix)


def test_future_tokens_do_not_change_earlier_logits():
    model = tiny_gpt()
    x = ids(2, 10)
    changed = x.clone()
    changed[:, 6] = (changed[:, 6] + 1) % V
    before, after = model(x).logits, model(changed).logits
    torch.testing.assert_close(after[:, :6], before[:, :6], atol=0, rtol=0)
    assert not torch.allclose(after[:, 6:], before[:, 6:])


def test_loss_equals_cross_entropy_by_hand():
    model = tiny_gpt()
    x, y = ids(2, 6), ids(2, 6, seed=1)
    y[0, :2] = -100
    out = model(x, y)
    log_probs = out.logits.double().log_softmax(-1)
    kept = [(b, t) for b in range(2) for t in range(6) if y[b, t] != -100]
    by_hand = -sum(log_probs[b, t, y[b, t]] for b, t in kept) / len(kept)
    assert abs(out.loss.item() - by_hand.item()) < 1e-5
    assert out.loss.item() == pytest.approx(F.cross_entropy(out.logits.reshape(-1, V), y.flatten()).item())


def test_clear_errors_for_bad_inputs():
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"0 prefix \+ 17 token positions = 17, more than block_size=16; crop idx"):
        model(ids(1, 17))
    with pytest.raises(TypeError, match=r"expected idx of dtype torch.long \(token ids\), got torch.float32"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"expected token ids in \[0, vocab_size=50\), got values in \[0, 50\]"):
        model(torch.tensor([[0, 50]]))
    with pytest.raises(ValueError, match=r"expected idx of shape \(B, T\), got \(4,\)"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected targets in \[0, vocab_size=50\) or -100 \(ignored\), got 77"):
        model(ids(1, 3), torch.tensor([[1, 77, 2]]))
    with pytest.raises(ValueError, match=r"expected prefix of shape \(B, P, C\) = \(1, P, 32\), got \(1, 2, 16\)"):
        model(ids(1, 3), prefix=torch.zeros(1, 2, 16))
    with pytest.raises(ValueError, match="a context needs a GPT built with cross_attention=True"):
        model(ids(1, 3), context=torch.zeros(1, 2, 32))


# --------------------------------------------------------------------------- Hugging Face GPT-2

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_logits_equal_hugging_face_gpt2(dtype, tol):
    hf = hf_gpt2(dtype)
    model = GPT.from_hf_gpt2(hf)
    x = ids(3, 32, high=100)
    with torch.no_grad():
        theirs = hf(x).logits
        ours = model(x).logits
        explicit = model(x, return_attention=True).logits
    assert (ours - theirs).abs().max().item() <= tol
    assert (explicit - theirs).abs().max().item() <= tol
    assert theirs.std() > 0.5  # the comparison is not between two near-constant outputs


def test_attention_weights_equal_hugging_face_gpt2():
    hf = hf_gpt2(torch.float64, attn_implementation="eager")
    model = GPT.from_hf_gpt2(hf)
    x = ids(2, 12, high=100)
    with torch.no_grad():
        theirs = torch.stack(hf(x, output_attentions=True).attentions)  # (L, B, H, T, T)
        ours = model(x, return_attention=True).attention
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


def test_load_hf_gpt2_refuses_other_sizes():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="expected a GPT-2 of configuration"):
        load_hf_gpt2(model, hf_gpt2(torch.float32))


# --------------------------------------------------------------------------- optimizer

def test_optimizer_decays_matrices_only_and_matches_plain_adamw():
    model = tiny_gpt().train()
    optimizer = configure_optimizer(model, lr=1e-2, weight_decay=0.1, betas=(0.9, 0.95))
    decay, no_decay = optimizer.param_groups
    named = dict(model.named_parameters())  # tied weights appear once
    assert {id(p) for p in decay["params"]} == {id(p) for p in named.values() if p.dim() >= 2}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in named.values() if p.dim() < 2}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert optimizer.defaults["fused"]  # PyTorch 2.13 has a fused AdamW for the CPU

    reference = copy.deepcopy(model)
    reference_start = {name: p.detach().clone() for name, p in named.items()}
    params = dict(reference.named_parameters())
    plain = torch.optim.AdamW(
        [{"params": [params[n] for n, p in named.items() if p.dim() >= 2], "weight_decay": 0.1},
         {"params": [params[n] for n, p in named.items() if p.dim() < 2], "weight_decay": 0.0}],
        lr=1e-2, betas=(0.9, 0.95), foreach=False,
    )
    x, y = ids(4, 8), ids(4, 8, seed=1)
    for _ in range(3):
        # Both get the same gradients: some (the key biases) are zero up to rounding, and Adam
        # would blow rounding noise up to a full step.
        optimizer.zero_grad()
        model(x, y).loss.backward()
        for name, p in named.items():
            params[name].grad = p.grad.clone()
        optimizer.step()
        plain.step()
    for name, p in named.items():
        torch.testing.assert_close(p, params[name], atol=1e-6, rtol=1e-6)
    assert not torch.equal(named["wte.weight"], reference_start["wte.weight"])


def test_optimizer_falls_back_where_fused_is_unsupported():
    model = torch.nn.ParameterList([torch.zeros(3, 2, dtype=torch.complex64)])  # no fused AdamW for complex
    optimizer = configure_optimizer(model)
    assert isinstance(optimizer, torch.optim.AdamW) and not optimizer.defaults["fused"]
    assert not configure_optimizer(tiny_gpt(), fused=False).defaults["fused"]
    with pytest.raises(ValueError, match="expected lr > 0, got 0"):
        configure_optimizer(model, lr=0)


def test_tiny_model_overfits_a_tiny_sequence():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32)).train()
    sequence = ids(1, BLOCK + 1, seed=3)
    x, y = sequence[:, :-1], sequence[:, 1:]
    optimizer = configure_optimizer(model, lr=2e-2, weight_decay=0.0)
    first = model(x, y).loss.item()
    assert abs(first - math.log(V)) < 0.3  # an untrained model guesses about uniformly
    for _ in range(60):
        optimizer.zero_grad()
        loss = model(x, y).loss
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    assert torch.equal(generate(model, sequence[:, :1], BLOCK - 1, greedy=True), sequence[:, :BLOCK])


# --------------------------------------------------------------------------- sampling filters

def test_top_k_filter_by_hand():
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0, 0.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    inf = float("-inf")
    expected_k2 = torch.tensor([[inf, 3.0, inf, 3.0, inf], [5.0, 4.0, inf, inf, inf]])  # ties kept
    expected_k3 = torch.tensor([[inf, 3.0, 2.0, 3.0, inf], [5.0, 4.0, 3.0, inf, inf]])
    assert torch.equal(top_k_filter(logits, 2), expected_k2)
    assert torch.equal(top_k_filter(logits, 3), expected_k3)
    assert torch.equal(top_k_filter(logits, 9), logits)
    with pytest.raises(ValueError, match="expected k to be a positive int, got 0"):
        top_k_filter(logits, 0)


@pytest.mark.parametrize(
    "p, kept", [(0.45, [2]), (0.7, [2, 0]), (0.9, [2, 0, 3]), (0.97, [2, 0, 3, 1]), (1.0, [2, 0, 3, 1])]
)
def test_top_p_filter_by_hand(p, kept):
    probs = torch.tensor([0.3, 0.05, 0.5, 0.15])  # ranked: token 2, 0, 3, 1
    logits = probs.log()[None].repeat(2, 1)
    filtered = top_p_filter(logits, p)
    expected = torch.full((2, 4), float("-inf"))
    expected[:, kept] = logits[:, kept]
    assert torch.equal(filtered, expected)
    with pytest.raises(ValueError, match=r"expected p in \(0, 1\], got 0"):
        top_p_filter(logits, 0)


# --------------------------------------------------------------------------- generation

def test_sampling_is_repeatable_with_a_seeded_generator():
    model = tiny_gpt()
    prompt = ids(2, 3)

    def sample(seed: int) -> torch.Tensor:
        return generate(model, prompt, 12, temperature=1.5, top_k=20, top_p=0.95,
                        generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


def test_sampled_frequencies_follow_softmax_over_temperature():
    model = tiny_gpt()
    prompt = ids(1, 3).repeat(8000, 1)
    temperature = 2.0
    drawn = generate(model, prompt, 1, temperature=temperature, generator=torch.Generator().manual_seed(0))[:, -1]
    with torch.no_grad():
        expected = (model(prompt[:1]).logits[0, -1] / temperature).softmax(-1)
    frequencies = torch.bincount(drawn, minlength=V).float() / len(drawn)
    assert (frequencies - expected).abs().max() < 0.025  # 5 standard errors at most


def test_top_k_samples_stay_in_the_top_k():
    model = tiny_gpt()
    prompt = ids(1, 3).repeat(2000, 1)
    drawn = generate(model, prompt, 1, temperature=3.0, top_k=3, generator=torch.Generator().manual_seed(0))[:, -1]
    with torch.no_grad():
        top3 = model(prompt[:1]).logits[0, -1].topk(3).indices
    assert set(drawn.tolist()) == set(top3.tolist())


def test_greedy_equals_zero_temperature_and_top_k_one():
    model = tiny_gpt()
    prompt = ids(2, 3)
    greedy = generate(model, prompt, 10, greedy=True)
    assert torch.equal(generate(model, prompt, 10, temperature=0.0), greedy)
    seeded = dict(generator=torch.Generator().manual_seed(0))
    assert torch.equal(generate(model, prompt, 10, temperature=1e-4, **seeded), greedy)
    assert torch.equal(generate(model, prompt, 10, top_k=1, **seeded), greedy)
    with torch.no_grad():  # and greedy means argmax of the model's own logits
        assert torch.equal(greedy[:, 3], model(prompt).logits[:, -1].argmax(-1))


def test_kv_cache_steps_equal_full_forward_logits():
    model = tiny_gpt()
    x = ids(2, 9)
    cache = model.new_cache()
    with torch.no_grad():
        steps = [model(x[:, :4], kv_cache=cache).logits] + [model(x[:, t : t + 1], kv_cache=cache).logits
                                                              for t in range(4, 9)]
        full = model(x).logits
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="pass it with an empty KV cache only"):
        model(x[:, :1], prefix=torch.zeros(2, 1, 32), kv_cache=cache)


@pytest.mark.parametrize("prompt_len, new", [(3, 10), (5, 30)])  # the second runs past block_size
def test_kv_cache_greedy_equals_uncached(prompt_len, new):
    model = tiny_gpt()
    prompt = ids(3, prompt_len)
    cached = generate(model, prompt, new, greedy=True, use_cache=True)
    uncached = generate(model, prompt, new, greedy=True, use_cache=False)
    assert cached.shape == (3, prompt_len + new)
    assert torch.equal(cached, uncached)
    assert len(set(cached[:, prompt_len:].flatten().tolist())) > 3  # not one token repeated


def test_kv_cache_greedy_equals_uncached_with_prefix():
    model = tiny_gpt()
    prefix = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(1))
    prompt = ids(2, 2)
    cached = generate(model, prompt, 20, greedy=True, prefix=prefix)  # 5 + 22 > 16: the window slides
    assert torch.equal(cached, generate(model, prompt, 20, greedy=True, prefix=prefix, use_cache=False))
    assert not torch.equal(cached, generate(model, prompt, 20, greedy=True, prefix=prefix * 0))


def test_kv_cache_sampling_equals_uncached_sampling():
    model = tiny_gpt(dtype=torch.float64)
    prompt = ids(2, 3)
    runs = [generate(model, prompt, 20, top_p=0.9, use_cache=use_cache, generator=torch.Generator().manual_seed(5))
            for use_cache in (True, False)]
    assert torch.equal(*runs)


def test_stop_token_ends_rows_and_generation():
    model = tiny_gpt()
    prompt = ids(2, 3)
    free = generate(model, prompt, 10, greedy=True)
    stop = free[0, 5].item()  # the third token row 0 produces
    stopped = generate(model, prompt, 10, greedy=True, stop_token=stop)
    first_stop = [(row[3:] == stop).nonzero()[0, 0].item() + 3 if (row[3:] == stop).any() else None for row in free]
    for row, at in enumerate(first_stop):
        end = stopped.shape[1] if at is None else at + 1
        assert torch.equal(stopped[row, :end], free[row, :end])
        assert torch.all(stopped[row, end:] == stop)
    if all(at is not None for at in first_stop):
        assert stopped.shape[1] == max(first_stop) + 1  # ended once every row stopped


def test_generate_restores_training_mode_and_needs_no_grad():
    model = tiny_gpt().train()
    out = generate(model, ids(1, 2), 3, greedy=True)
    assert model.training and not out.requires_grad


def test_generate_rejects_bad_arguments():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="expected temperature >= 0"):
        generate(model, ids(1, 2), 3, temperature=-1.0)
    with pytest.raises(ValueError, match=r"expected top_p in \(0, 1\] or None, got 1.5"):
        generate(model, ids(1, 2), 3, top_p=1.5)
    with pytest.raises(ValueError, match=r"expected idx of shape \(B, T\) with T >= 1"):
        generate(model, ids(2), 3)
    with pytest.raises(ValueError, match=r"expected stop_token to be a token id in \[0, 50\)"):
        generate(model, ids(1, 2), 3, stop_token=50)
    with pytest.raises(ValueError, match="expected a prefix of fewer than block_size=16 positions, got P=16"):
        generate(model, ids(1, 2), 3, prefix=torch.zeros(1, 16, 32))


# --------------------------------------------------------------------------- cross-attention variant

def test_cross_attention_gpt_reads_its_context():
    model = tiny_gpt(cross_attention=True, context_dim=12)
    context = torch.randn(2, 6, 12, generator=torch.Generator().manual_seed(1))
    keep = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    out = model(ids(2, 5), context=context, context_mask=keep, return_attention=True)
    assert out.logits.shape == (2, 5, V) and out.cross_attention.shape == (2, 2, 2, 5, 6)
    assert torch.all(out.cross_attention[:, 1, :, :, 3:] == 0)  # masked context positions get no weight
    moved = context.clone()
    moved[1, 3:] += 5.0  # changes only masked positions of the second row
    torch.testing.assert_close(model(ids(2, 5), context=moved, context_mask=keep).logits, out.logits)
    prompt = ids(2, 2)
    kwargs = dict(greedy=True, context=context, context_mask=keep)
    assert torch.equal(generate(model, prompt, 8, **kwargs), generate(model, prompt, 8, use_cache=False, **kwargs))
    with pytest.raises(ValueError, match=r"pass a context \(B, N, context_dim\)"):
        model(ids(2, 5))
