"""Tests for mmcourse.multimodal against hand-built prefixes and contexts, attention and
cross-entropy computed by hand, greedy decoding by repeated full forward passes, and training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmcourse.audio import AudioEncoder
from mmcourse.gpt import GPT, configure_optimizer
from mmcourse.multimodal import (
    FUSIONS,
    ModalityProjector,
    MultimodalConfig,
    MultimodalGPT,
    PlacedProjector,
)
from mmcourse.shapes import Scene, SceneObject, render
from mmcourse.vision import CNNEncoder, PatchEmbedding, image_tokens

V, F_MELS, T_AUDIO = 20, 8, 13  # 13 spectrogram frames -> ceil(13 / 4) = 4 audio tokens
N_IMAGE, N_AUDIO = 16, 4  # 32x32 images in 8x8 patches


def tiny_config(**options) -> MultimodalConfig:
    sizes = dict(vocab_size=V, block_size=40, n_layer=2, n_head=2, n_embd=32, image_dim=16,
                 n_mels=F_MELS, audio_dim=16)
    return MultimodalConfig(**(sizes | options))


def tiny_model(seed: int = 0, **options) -> MultimodalGPT:
    """A small model whose weights are large enough that every input matters and greedy choices are not near-ties."""
    torch.manual_seed(seed)
    model = MultimodalGPT(tiny_config(**options)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 2 / math.sqrt(p[0].numel()))
    return model


def inputs(B: int = 2, T: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, V, (B, T), generator=gen)
    image = torch.rand(B, 3, 32, 32, generator=gen)
    audio = torch.randn(B, F_MELS, T_AUDIO, generator=gen)
    return idx, image, audio


def projector_by_hand(projector: ModalityProjector, x: torch.Tensor) -> torch.Tensor:
    first, _, second = projector.net  # Linear -> GELU -> Linear
    return F.linear(F.gelu(F.linear(x, first.weight, first.bias)), second.weight, second.bias)


def tokens_by_hand(model: MultimodalGPT, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """The image then the audio tokens, from the model's own encoders and projectors' weights."""
    image_tokens = projector_by_hand(model.image_projector, model.image_encoder(image))
    audio_tokens = projector_by_hand(model.audio_projector, model.audio_encoder(audio).frames)
    return torch.cat([image_tokens, audio_tokens], dim=1)


def heads(x: torch.Tensor, H: int) -> torch.Tensor:
    B, T, C = x.shape
    return x.reshape(B, T, H, C // H).permute(0, 2, 1, 3)  # (B, H, T, D)


def softmax_weights(q: torch.Tensor, k: torch.Tensor, causal_offset: int | None = None) -> torch.Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    if causal_offset is not None:
        Tq, Tk = scores.shape[-2:]
        allowed = torch.arange(Tk)[None, :] <= torch.arange(Tq)[:, None] + causal_offset
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1)


# --------------------------------------------------------------------------- config and parts

def test_config_validation_messages():
    with pytest.raises(ValueError, match=r"expected fusion in \('prefix', 'cross_attention'\), got 'sum'"):
        tiny_config(fusion="sum")
    with pytest.raises(ValueError, match=r"expected projector in \('linear', 'mlp'\), got 'conv'"):
        tiny_config(projector="conv")
    with pytest.raises(ValueError, match=r"expected image_encoder in \('patch', 'cnn'\), got 'vit'"):
        tiny_config(image_encoder="vit")
    with pytest.raises(ValueError, match=r"non-empty subset of \('image', 'audio'\), got \(\)"):
        tiny_config(modalities=())
    with pytest.raises(ValueError, match=r"subset of \('image', 'audio'\), got 'image'"):
        tiny_config(modalities="image")
    with pytest.raises(ValueError, match="expected image_size divisible by patch_size, "
                                         "got image_size=32 and patch_size=5"):
        tiny_config(patch_size=5)
    with pytest.raises(ValueError, match="patch_size must be a power of 2 >= 2, got 12"):
        tiny_config(image_size=48, patch_size=12, image_encoder="cnn")
    with pytest.raises(ValueError, match="expected audio_dim to be a positive int, got 0"):
        tiny_config(audio_dim=0)
    with pytest.raises(ValueError, match="GPTConfig: expected n_embd divisible by n_head, got n_embd=30"):
        tiny_config(n_embd=30, n_head=4)
    with pytest.raises(TypeError, match="expected a MultimodalConfig, got dict"):
        MultimodalGPT({"vocab_size": V})
    assert tiny_config(modalities=["audio", "image"]).modalities == ("image", "audio")


def test_the_model_composes_the_course_modules_without_copies():
    model = MultimodalGPT(tiny_config())
    assert isinstance(model.image_encoder, PatchEmbedding)
    assert isinstance(model.audio_encoder, AudioEncoder)
    assert isinstance(model.decoder, GPT)
    assert isinstance(model.image_projector, ModalityProjector) and isinstance(model.audio_projector, ModalityProjector)
    parts = [model.image_encoder, model.image_projector, model.audio_encoder, model.audio_projector, model.decoder]
    in_parts = [p for part in parts for p in part.parameters()]
    # every parameter belongs to exactly one part, and the model holds nothing else
    assert {id(p) for p in model.parameters()} == {id(p) for p in in_parts}
    assert len({id(p) for p in in_parts}) == len(in_parts)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in in_parts)

    image_only = MultimodalGPT(tiny_config(modalities=("image",)))
    assert image_only.audio_encoder is None and image_only.audio_projector is None
    expected = sum(p.numel() for p in in_parts) - sum(p.numel() for part in parts[2:4] for p in part.parameters())
    assert sum(p.numel() for p in image_only.parameters()) == expected

    cross = MultimodalGPT(tiny_config(fusion="cross_attention", image_encoder="cnn"))
    assert isinstance(cross.image_encoder, CNNEncoder) and len(cross.image_encoder.blocks) == 3  # 32 -> 4
    assert cross.decoder.config.cross_attention and cross.decoder.decoder.blocks[0].cross_attn.kdim == 32


def test_projectors_equal_their_formulas():
    x = torch.randn(2, 5, 16)
    mlp = ModalityProjector(16, 32, "mlp")
    torch.nn.init.normal_(mlp.net[0].bias)  # zero at the start; make the bias count
    torch.testing.assert_close(mlp(x), projector_by_hand(mlp, x))
    linear = ModalityProjector(16, 32, "linear")
    torch.testing.assert_close(linear(x), x @ linear.net.weight.T + linear.net.bias)
    assert abs(linear.net.weight.std().item() - 0.02) < 0.003 and torch.all(linear.net.bias == 0)
    with pytest.raises(ValueError, match=r"expected encoder tokens of shape \(B, N, 16\), got \(2, 5, 8\)"):
        linear(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"expected kind in \('linear', 'mlp'\), got 'deep'"):
        ModalityProjector(16, 32, "deep")


# --------------------------------------------------------------------------- shapes and layout

@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("with_image, with_audio", [(True, False), (False, True), (True, True), (False, False)])
def test_shapes_and_layout_for_every_combination_of_inputs(fusion, with_image, with_audio):
    model = tiny_model(fusion=fusion)
    idx, image, audio = inputs(B=3, T=6)
    image, audio = (image if with_image else None), (audio if with_audio else None)
    if fusion == "cross_attention" and not (with_image or with_audio):
        with pytest.raises(ValueError, match="fusion='cross_attention' attends to image or audio tokens"):
            model(idx)
        return
    out = model(idx, idx, image=image, audio=audio, return_attention=True)
    n_image, n_audio = N_IMAGE * with_image, N_AUDIO * with_audio
    N = n_image + n_audio
    layout = out.layout
    assert out.logits.shape == (3, 6, V) and out.loss.shape == ()
    assert layout.image_slice == (slice(0, N_IMAGE) if with_image else None)
    assert layout.audio_slice == (slice(n_image, N) if with_audio else None)
    assert layout.image_grid == ((4, 4) if with_image else None)
    assert layout.n_modality_tokens == N
    if fusion == "prefix":
        assert layout.text_slice == slice(N, N + 6)
        assert out.attention.shape == (2, 3, 2, N + 6, N + 6) and out.cross_attention is None
    else:
        assert layout.text_slice == slice(0, 6)
        assert out.attention.shape == (2, 3, 2, 6, 6) and out.cross_attention.shape == (2, 3, 2, 6, N)
    if with_image:
        assert out.image_attention().shape == (2, 3, 2, 6, N_IMAGE)
    if with_audio:
        assert out.audio_attention().shape == (2, 3, 2, 6, N_AUDIO)
    encoded = model.encode(image, audio)
    assert (encoded is None) if N == 0 else encoded.shape == (3, N, 32)


# --------------------------------------------------------------------------- thin composition and loss

def test_prefix_fusion_is_the_gpt_with_a_hand_built_prefix():
    model = tiny_model()
    idx, image, audio = inputs()
    targets = torch.roll(idx, -1, dims=1)
    out = model(idx, targets, image=image, audio=audio)
    expected = model.decoder(idx, targets, prefix=tokens_by_hand(model, image, audio))
    torch.testing.assert_close(out.logits, expected.logits)
    torch.testing.assert_close(out.loss, expected.loss)


def test_cross_attention_fusion_is_the_gpt_with_a_hand_built_context():
    model = tiny_model(fusion="cross_attention")
    idx, image, audio = inputs()
    out = model(idx, image=image, audio=audio)
    expected = model.decoder(idx, context=tokens_by_hand(model, image, audio))
    torch.testing.assert_close(out.logits, expected.logits)


def test_loss_is_cross_entropy_over_text_positions_only():
    model = tiny_model()
    idx, image, audio = inputs(B=2, T=6)
    targets = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(1))
    targets[0, :3] = -100  # e.g. the words of a question, not to be learned
    out = model(idx, targets, image=image, audio=audio)
    assert out.logits.shape == (2, 6, V)  # no logits at the 20 image and audio positions
    log_probs = out.logits.double().log_softmax(-1)
    kept = [(b, t) for b in range(2) for t in range(6) if targets[b, t] != -100]
    by_hand = -sum(log_probs[b, t, targets[b, t]] for b, t in kept) / len(kept)
    assert out.loss.item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert out.loss.item() == pytest.approx(F.cross_entropy(out.logits.reshape(-1, V), targets.flatten()).item())


# --------------------------------------------------------------------------- the modalities matter, the future does not

@pytest.mark.parametrize("fusion", FUSIONS)
def test_changing_the_image_or_the_audio_changes_the_text_logits(fusion):
    model = tiny_model(fusion=fusion)
    idx, image, audio = inputs()
    _, other_image, other_audio = inputs(seed=1)
    logits = model(idx, image=image, audio=audio).logits
    assert (model(idx, image=other_image, audio=audio).logits - logits).abs().amin(-1).max() > 1e-3
    assert (model(idx, image=image, audio=other_audio).logits - logits).abs().amin(-1).max() > 1e-3
    # and each example reads its own image and audio only
    swapped = model(idx, image=image.flip(0), audio=audio.flip(0)).logits
    assert not torch.allclose(swapped, logits, atol=1e-3)
    torch.testing.assert_close(model(idx[:1], image=image[:1], audio=audio[:1]).logits, logits[:1])


@pytest.mark.parametrize("fusion", FUSIONS)
def test_text_logits_do_not_depend_on_later_tokens(fusion):
    model = tiny_model(fusion=fusion)
    idx, image, audio = inputs(T=8)
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % V
    before = model(idx, image=image, audio=audio).logits
    after = model(changed, image=image, audio=audio).logits
    torch.testing.assert_close(after[:, :5], before[:, :5], atol=0, rtol=0)
    assert not torch.allclose(after[:, 5:], before[:, 5:])


# --------------------------------------------------------------------------- generation

@pytest.mark.parametrize("fusion", FUSIONS)
def test_greedy_generation_equals_repeated_forward_passes_with_and_without_cache(fusion):
    model = tiny_model(fusion=fusion).train()  # generate must switch to eval itself
    idx, image, audio = inputs(T=2)
    model.eval()
    by_hand = idx
    with torch.no_grad():
        for _ in range(8):
            next_token = model(by_hand, image=image, audio=audio).logits[:, -1].argmax(-1, keepdim=True)
            by_hand = torch.cat([by_hand, next_token], dim=1)
    model.train()
    cached = model.generate(idx, 8, image=image, audio=audio, greedy=True)
    uncached = model.generate(idx, 8, image=image, audio=audio, greedy=True, use_cache=False)
    assert model.training
    assert torch.equal(cached, by_hand) and torch.equal(uncached, by_hand)
    assert not torch.equal(model.generate(idx, 8, image=image.flip(0), audio=audio, greedy=True), cached)


def test_generation_with_one_modality_and_sampling():
    model = tiny_model(modalities=("audio",))
    idx, _, audio = inputs(T=1)
    sampled = [model.generate(idx, 6, audio=audio, temperature=1.0, top_k=5,
                              generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert sampled[0].shape == (2, 7) and torch.equal(sampled[0], sampled[1])
    assert torch.equal(sampled[0][:, :1], idx)


# --------------------------------------------------------------------------- attention

def test_prefix_attention_equals_layer_zero_by_hand_and_slices_pick_the_modalities():
    model = tiny_model()
    idx, image, audio = inputs(T=5)
    out = model(idx, image=image, audio=audio, return_attention=True)
    P = N_IMAGE + N_AUDIO
    gpt = model.decoder
    block = gpt.decoder.blocks[0]
    x = torch.cat([tokens_by_hand(model, image, audio), gpt.wte(idx)], dim=1) + gpt.wpe.table.weight[:P + 5]
    h = block.ln_1(x)
    q, k = heads(block.attn.q_proj(h), 2), heads(block.attn.k_proj(h), 2)
    by_hand = softmax_weights(q, k, causal_offset=0)  # (B, H, P+5, P+5)
    torch.testing.assert_close(out.attention[0], by_hand)
    torch.testing.assert_close(out.image_attention()[0], by_hand[:, :, P:, :N_IMAGE])
    torch.testing.assert_close(out.audio_attention()[0], by_hand[:, :, P:, N_IMAGE:P])
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(out.attention.shape[:-1]))
    # the text sees the whole prefix, so the image and audio shares are each less than 1
    shares = out.image_attention().sum(-1) + out.audio_attention().sum(-1)
    assert torch.all(shares < 1) and torch.all(shares > 0)


def test_cross_attention_equals_layer_zero_by_hand_and_slices_pick_the_modalities():
    model = tiny_model(fusion="cross_attention")
    idx, image, audio = inputs(T=5)
    out = model(idx, image=image, audio=audio, return_attention=True)
    gpt = model.decoder
    block = gpt.decoder.blocks[0]
    x = gpt.wte(idx) + gpt.wpe.table.weight[:5]
    x = x + block.attn(block.ln_1(x), is_causal=True)
    q = heads(block.cross_attn.q_proj(block.ln_cross(x)), 2)
    k = heads(block.cross_attn.k_proj(tokens_by_hand(model, image, audio)), 2)
    by_hand = softmax_weights(q, k)  # (B, H, 5, N)
    torch.testing.assert_close(out.cross_attention[0], by_hand)
    torch.testing.assert_close(out.image_attention()[0], by_hand[..., :N_IMAGE])
    torch.testing.assert_close(out.audio_attention()[0], by_hand[..., N_IMAGE:])
    both = out.image_attention().sum(-1) + out.audio_attention().sum(-1)
    torch.testing.assert_close(both, torch.ones(both.shape))


def test_audio_only_attention_starts_at_the_first_position():
    model = tiny_model(modalities=("audio",))
    idx, _, audio = inputs(T=3)
    out = model(idx, audio=audio, return_attention=True)
    assert out.layout.audio_slice == slice(0, N_AUDIO) and out.layout.text_slice == slice(N_AUDIO, N_AUDIO + 3)
    torch.testing.assert_close(out.audio_attention(), out.attention[..., N_AUDIO:, :N_AUDIO])
    spread = model.audio_encoder.to_spectrogram_frames(out.audio_attention(), T_AUDIO)
    assert spread.shape == (2, 2, 2, 3, T_AUDIO)


def test_cnn_image_tokens_are_the_feature_map_in_row_major_order():
    model = tiny_model(image_encoder="cnn", modalities=("image",))
    _, image, _ = inputs()
    _, features = model.image_encoder(image, return_features=True)  # (B, 16, 4, 4)
    rows = [features[:, :, r, c] for r in range(4) for c in range(4)]  # left to right, then down
    expected = projector_by_hand(model.image_projector, torch.stack(rows, dim=1))
    torch.testing.assert_close(model.encode(image), expected)


def test_image_features_are_the_encoders_tokens_before_projection():
    for encoder in ("patch", "cnn"):
        model = tiny_model(image_encoder=encoder, modalities=("image",))
        _, image, _ = inputs()
        features = model.image_features(image)
        assert features.shape == (2, N_IMAGE, 16)
        torch.testing.assert_close(features, image_tokens(model.image_encoder, image))
        torch.testing.assert_close(model.encode(image), projector_by_hand(model.image_projector, features))
    with pytest.raises(ValueError, match=r"this model has no image encoder \(config.modalities=\('audio',\)\)"):
        tiny_model(modalities=("audio",)).image_features(image)


def test_placed_projector_adds_one_learned_position_per_token():
    torch.manual_seed(0)
    placed = PlacedProjector(ModalityProjector(16, 32), n_tokens=4)
    x = torch.randn(3, 4, 16)
    torch.testing.assert_close(placed(x), projector_by_hand(placed.projector, x) + placed.position)
    assert placed.position.shape == (4, 32) and 0.01 < placed.position.std().item() < 0.03  # GPT-2's scale
    same = x[:, :1].expand(3, 4, 16)  # one feature vector at all four places
    out = placed(same)
    assert not torch.allclose(out[:, 0], out[:, 1])  # the place alone now tells the tokens apart
    assert sum(p.numel() for p in placed.parameters()) == sum(p.numel() for p in placed.projector.parameters()) + 4 * 32
    with pytest.raises(ValueError, match=r"expected encoder tokens of shape \(B, 4, 16\), one per position, got \(3, 5, 16\)"):
        placed(torch.randn(3, 5, 16))
    with pytest.raises(TypeError, match="expected a ModalityProjector to wrap, got Linear"):
        PlacedProjector(torch.nn.Linear(16, 32), 4)
    with pytest.raises(ValueError, match="n_tokens"):
        PlacedProjector(ModalityProjector(16, 32), 0)


def test_cross_attention_reads_token_order_only_with_placed_projector():
    """Attention treats its keys as a set: reordering the image tokens changes nothing unless they carry places."""
    model = tiny_model(fusion="cross_attention", modalities=("image",), image_encoder="cnn")
    idx, image, _ = inputs()
    features = model.image_features(image)  # (B, 16, C_img)
    reordered = features.flip(1)

    def logits(feats: torch.Tensor) -> torch.Tensor:
        return model.decoder(idx, context=model.image_projector(feats)).logits

    torch.testing.assert_close(logits(reordered), logits(features))
    torch.manual_seed(1)
    model.image_projector = PlacedProjector(model.image_projector, n_tokens=N_IMAGE)
    with torch.no_grad():
        model.image_projector.position.mul_(50)  # large places, so their effect is far above rounding
    assert not torch.allclose(logits(reordered), logits(features), atol=1e-3)
    torch.testing.assert_close(model(idx, image=image).logits, logits(features))  # forward goes through it
    generated = model.generate(idx, 3, image=image, greedy=True)
    assert generated.shape == (2, idx.shape[1] + 3)


# --------------------------------------------------------------------------- learning

CAPTIONS = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 10, 11, 12, 2]])  # start, four words, end


def two_scenes() -> torch.Tensor:
    scenes = [Scene((SceneObject("red", "square", "large", "top left"),)),
              Scene((SceneObject("blue", "circle", "small", "bottom right"),))]
    return torch.stack([torch.from_numpy(render(s)[0]).permute(2, 0, 1).float() / 255 for s in scenes])


@pytest.mark.parametrize("fusion, modality", [("prefix", "image"), ("cross_attention", "audio")])
def test_learns_two_different_captions_for_two_inputs(fusion, modality):
    torch.manual_seed(0)
    model = MultimodalGPT(tiny_config(fusion=fusion, modalities=(modality,), n_embd=48))
    if modality == "image":
        given = {"image": two_scenes()}
    else:  # two "sounds": energy in the low or the high mel bins
        audio = torch.full((2, F_MELS, T_AUDIO), -5.0)
        audio[0, :2], audio[1, -2:] = 3.0, 3.0
        given = {"audio": audio}
    optimizer = configure_optimizer(model, lr=3e-3, weight_decay=0.0)
    first = None
    for _ in range(120):
        loss = model(CAPTIONS[:, :-1], CAPTIONS[:, 1:], **given).loss
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first == pytest.approx(math.log(V), rel=0.1)  # starts at a uniform guess
    assert model(CAPTIONS[:, :-1], CAPTIONS[:, 1:], **given).loss.item() < 0.05
    # the start token is the same for both: only the input can tell the captions apart
    assert torch.equal(model.generate(CAPTIONS[:, :1], 5, greedy=True, **given), CAPTIONS)


# --------------------------------------------------------------------------- errors

def test_clear_errors_for_bad_inputs():
    model = tiny_model()
    idx, image, audio = inputs()
    with pytest.raises(ValueError, match=r"expected image of shape \(B, 3, 32, 32\), RGB in \[0, 1\], "
                                         r"got \(2, 1, 32, 32\)"):
        model(idx, image=image[:, :1])
    with pytest.raises(TypeError, match="expected image of a floating dtype .*, got torch.uint8"):
        model(idx, image=(image * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"expected audio as a log-mel spectrogram of shape \(B, F, T\) with F = "
                                         r"n_mels = 8, got \(2, 8000\); a waveform \(B, L\) goes through "
                                         r"mmcourse.audio.LogMel\(\) first"):
        model(idx, audio=torch.randn(2, 8000))
    with pytest.raises(ValueError, match=r"F = n_mels = 8, got \(2, 40, 13\)$"):
        model(idx, audio=torch.randn(2, 40, 13))
    with pytest.raises(TypeError, match="expected audio .log-mel. of a floating dtype, got torch.int64"):
        model(idx, audio=audio.long())
    with pytest.raises(ValueError, match="expected one batch size B for idx, image and audio, "
                                         "got idx 2, image 3, audio 2"):
        model(idx, image=torch.rand(3, 3, 32, 32), audio=audio)
    with pytest.raises(ValueError, match=r"expected idx of shape \(B, T\) with T >= 1 text tokens .*, got \(2, 0\)"):
        model(idx[:, :0], image=image)
    with pytest.raises(ValueError, match=r"expected idx of shape \(B, T\) .*, got \(5,\)"):
        model.generate(idx[0], 3, image=image)
    with pytest.raises(ValueError, match=r"20 prefix \+ 21 token positions = 41, more than block_size=40"):
        model(torch.zeros(2, 21, dtype=torch.long), image=image, audio=audio)
    image_only = tiny_model(modalities=("image",))
    with pytest.raises(ValueError, match=r"this model has no audio encoder \(config.modalities=\('image',\)\)"):
        image_only(idx, audio=audio)
    with pytest.raises(ValueError, match="this model has no audio encoder"):
        image_only.generate(idx, 3, audio=audio)
    out = model(idx, image=image)
    with pytest.raises(ValueError, match="no attention was kept: run the model with return_attention=True"):
        out.image_attention()
    with pytest.raises(ValueError, match="the model was run without audio"):
        model(idx, image=image, return_attention=True).audio_attention()
