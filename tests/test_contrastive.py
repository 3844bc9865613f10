"""Tests for mmcourse.contrastive: InfoNCE against F.cross_entropy, hand values and gradcheck;
towers on the course's encoders; the learned temperature; retrieval and zero-shot on
hand-made embeddings whose answers are known."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.audio import AudioEncoder
from mmcourse.contrastive import (
    ContrastiveModel,
    TextEncoder,
    Tower,
    info_nce,
    recall_at_k,
    retrieval_ranks,
    similarity,
    zero_shot_classify,
)
from mmcourse.rnn import RNNEncoder
from mmcourse.vision import CNNEncoder, PatchEmbedding


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(randn(*shape, seed=seed), dim=-1)


# --------------------------------------------------------------------------- InfoNCE

@pytest.mark.parametrize("scale", [1.0, 14.3])
def test_info_nce_equals_cross_entropy_in_both_directions(scale):
    a, b = unit(6, 5, seed=1), unit(6, 5, seed=2)
    targets = torch.arange(6)
    expected = (F.cross_entropy(scale * a @ b.T, targets) + F.cross_entropy(scale * b @ a.T, targets)) / 2
    torch.testing.assert_close(info_nce(a, b, scale), expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(info_nce(a, b, torch.tensor(scale, dtype=torch.float64)), expected, atol=1e-12, rtol=0)


def test_info_nce_hand_values():
    eye = torch.eye(2, dtype=torch.float64)
    # logits [[s, 0], [0, s]]: each row and column gives -log(e^s / (e^s + 1)) = log(1 + e^-s)
    for s in (1.0, 5.0):
        assert info_nce(eye, eye, s).item() == pytest.approx(math.log(1 + math.exp(-s)), rel=1e-12)
    # all similarities equal: the right pair is one of B equally likely, loss ln B
    same = torch.ones(4, 3, dtype=torch.float64) / math.sqrt(3)
    assert info_nce(same, same, 10.0).item() == pytest.approx(math.log(4), rel=1e-12)
    # swapping the roles of a and b changes nothing: the loss is symmetric
    a, b = unit(5, 3, seed=1), unit(5, 3, seed=2)
    torch.testing.assert_close(info_nce(a, b, 3.0), info_nce(b, a, 3.0), atol=1e-12, rtol=0)


def test_info_nce_gradients_pass_gradcheck():
    a, b = unit(4, 3, seed=1).requires_grad_(), unit(4, 3, seed=2).requires_grad_()
    scale = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(info_nce, (a, b, scale))


def test_info_nce_rejects_bad_inputs():
    a = unit(4, 3)
    with pytest.raises(ValueError, match=r"expected a and b of the same shape \(B, D\), got a \(4, 3\) and b \(3, 3\)"):
        info_nce(a, a[:3])
    with pytest.raises(ValueError, match="expected at least 2 pairs .*, got B=1"):
        info_nce(a[:1], a[:1])
    with pytest.raises(ValueError, match=r"expected b of shape \(B, D\), got \(4,\)"):
        info_nce(a, a[:, 0])
    with pytest.raises(ValueError, match=r"expected logit_scale > 0 and finite \(it is 1 / temperature\), got 0"):
        info_nce(a, a, 0)
    with pytest.raises(ValueError, match=r"expected logit_scale as a number or a one-element float tensor, got \(2,\)"):
        info_nce(a, a, torch.ones(2))
    with pytest.raises(TypeError, match="expected a and b of one dtype"):
        info_nce(a, a.float())


# --------------------------------------------------------------------------- towers on the course's encoders

def test_towers_on_every_encoder_give_unit_vectors():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 16, 16)
    cases = [
        (Tower(CNNEncoder(1, widths=(4, 8), norm="group"), 8, 6), (images,)),
        (Tower(PatchEmbedding(16, 4, 1, 10, positional=True), 10, 6), (images,)),
        (Tower(AudioEncoder(n_mels=8, dim=12), 12, 6, hidden=16), (torch.randn(3, 8, 30),)),
        (Tower(TextEncoder(20, 8, n_head=2), 8, 6), (torch.tensor([[3, 4, 0], [5, 0, 0], [1, 2, 7]]),)),
        (Tower(RNNEncoder(20, 8, 9), 9, 6), (torch.tensor([[3, 4, 0], [5, 0, 0], [1, 2, 7]]),)),
    ]
    for tower, inputs in cases:
        z = tower(*inputs)
        assert z.shape == (3, 6)
        torch.testing.assert_close(z.norm(dim=1), torch.ones(3), atol=1e-6, rtol=0)


def test_tower_says_when_the_encoder_width_is_wrong():
    tower = Tower(CNNEncoder(1, widths=(4, 8)), 16, 6)
    with pytest.raises(ValueError, match=r"expected the CNNEncoder to give vectors \(B, in_dim=16\) .* got \(2, 8\)"):
        tower(torch.rand(2, 1, 8, 8))
    with pytest.raises(TypeError, match="expected encoder to be an nn.Module, got function"):
        Tower(lambda x: x, 4, 4)


def test_text_encoder_ignores_padding_and_without_blocks_is_a_mean_of_embeddings():
    torch.manual_seed(0)
    encoder = TextEncoder(12, 8, n_head=2).eval()
    tokens = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]])
    other_padding = tokens.clone()
    other_padding[0, 3:], other_padding[1, 2:] = torch.tensor([9, 1]), torch.tensor([2, 2, 11])
    mask = tokens != 0
    out = encoder(tokens)
    torch.testing.assert_close(encoder(other_padding, padding_mask=mask).pooled, out.pooled)
    torch.testing.assert_close(encoder(tokens[1:, :2]).pooled, out.pooled[1:])  # the row without padding
    assert out.tokens.shape == (2, 5, 8) and torch.equal(out.mask, mask)

    bag = TextEncoder(12, 8, n_layer=0)
    E, P = bag.embed.weight, bag.positions.table.weight
    by_hand = torch.stack([(E[[3, 4, 5]] + P[:3]).mean(0), (E[[6, 7]] + P[:2]).mean(0)])
    torch.testing.assert_close(bag(tokens).pooled, by_hand)


def test_text_encoder_rejects_bad_inputs():
    encoder = TextEncoder(12, 8, n_head=2)
    with pytest.raises(ValueError, match=r"expected token ids in \[0, vocab_size=12\), got values in \[1, 12\]"):
        encoder(torch.tensor([[1, 12]]))
    with pytest.raises(ValueError, match=r"row 1 of tokens has no real token \(all pad_id=0\)"):
        encoder(torch.tensor([[1, 2], [0, 0]]))
    with pytest.raises(TypeError, match=r"expected tokens as integer ids \(torch.long\), got torch.float32"):
        encoder(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="expected padding_mask of dtype bool .*, got torch.float32"):
        encoder(torch.tensor([[1, 2]]), padding_mask=torch.ones(1, 2))
    with pytest.raises(ValueError, match="expected n_layer to be an int >= 0, got -1"):
        TextEncoder(12, 8, n_layer=-1)


# --------------------------------------------------------------------------- the model and its temperature

def linear_towers(dims: dict[str, int], dim: int = 6) -> dict[str, Tower]:
    return {name: Tower(nn.Linear(d, 10), 10, dim) for name, d in dims.items()}


def test_temperature_starts_at_clip_value_and_is_clamped():
    model = ContrastiveModel(linear_towers({"image": 4, "text": 3}))
    assert model.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert model.temperature == pytest.approx(0.07, rel=1e-6)
    assert isinstance(model.log_logit_scale, nn.Parameter)
    z = {"image": unit(5, 6, seed=1).float(), "text": unit(5, 6, seed=2).float()}
    model.loss(z).backward()
    assert model.log_logit_scale.grad != 0
    for log_value, scale in ((10.0, 100.0), (-3.0, 1.0)):  # beyond the clamp: no gradient
        model.log_logit_scale.grad = None
        with torch.no_grad():
            model.log_logit_scale.fill_(log_value)
        assert model.logit_scale.item() == pytest.approx(scale, rel=1e-6)
        model.loss(z).backward()
        assert model.log_logit_scale.grad == 0
    fixed = ContrastiveModel(linear_towers({"image": 4, "text": 3}), temperature=0.5, learn_temperature=False)
    assert "log_logit_scale" not in dict(fixed.named_parameters()) and fixed.temperature == pytest.approx(0.5)


def test_three_towers_loss_is_the_mean_over_the_three_pairs():
    torch.manual_seed(0)
    model = ContrastiveModel(linear_towers({"image": 4, "text": 3, "audio": 5})).double()
    z = model(image=randn(6, 4, seed=1), text=randn(6, 3, seed=2), audio=randn(6, 5, seed=3))
    assert set(z) == {"image", "text", "audio"} and all(v.shape == (6, 6) for v in z.values())
    s, targets = model.logit_scale, torch.arange(6)

    def by_hand(x, y):
        return (F.cross_entropy(s * z[x] @ z[y].T, targets) + F.cross_entropy(s * z[y] @ z[x].T, targets)) / 2

    expected = (by_hand("image", "text") + by_hand("image", "audio") + by_hand("text", "audio")) / 3
    torch.testing.assert_close(model.loss(z), expected, atol=1e-12, rtol=0)
    anchored = model.loss(z, pairs=[("image", "text"), ("audio", "text")])
    torch.testing.assert_close(anchored, (by_hand("image", "text") + by_hand("audio", "text")) / 2, atol=1e-12, rtol=0)


def test_training_aligns_three_modalities_of_the_same_items():
    # Eight items, each seen through three different random linear "sensors" plus noise.
    g = torch.Generator().manual_seed(0)
    items = torch.randn(8, 4, generator=g)
    sensors = {name: torch.randn(4, d, generator=g) for name, d in (("image", 6), ("text", 5), ("audio", 7))}
    torch.manual_seed(0)
    model = ContrastiveModel(linear_towers({name: s.shape[1] for name, s in sensors.items()}, dim=8))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    start_scale = model.logit_scale.item()
    for _ in range(100):
        inputs = {name: items @ s + 0.05 * torch.randn(8, s.shape[1], generator=g) for name, s in sensors.items()}
        loss = model.loss(model(**inputs))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        z = model(**{name: items @ s for name, s in sensors.items()})
    assert loss.item() < 0.1
    assert recall_at_k(similarity(z["image"], z["audio"]), 1) == 1.0
    assert recall_at_k(similarity(z["text"], z["image"]), 1) == 1.0
    assert model.logit_scale.item() > start_scale  # a confident model lowers its temperature


def test_model_rejects_bad_towers_and_inputs():
    with pytest.raises(ValueError, match="expected every tower to give the same dim, got {'image': 6, 'text': 4}"):
        ContrastiveModel({"image": Tower(nn.Linear(3, 3), 3, 6), "text": Tower(nn.Linear(3, 3), 3, 4)})
    with pytest.raises(ValueError, match="expected towers as a dict of at least two modalities"):
        ContrastiveModel(linear_towers({"image": 4}))
    with pytest.raises(ValueError, match=r"expected temperature in \[1 / max_logit_scale, 1\] = \[0.01, 1\], got 0.0"):
        ContrastiveModel(linear_towers({"image": 4, "text": 3}), temperature=0.001)
    model = ContrastiveModel(linear_towers({"image": 4, "text": 3}))
    with pytest.raises(ValueError, match=r"expected a modality in \('image', 'text'\), got 'audio'"):
        model.encode("audio", torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"expected embeddings of at least two modalities, got \['image'\]"):
        model.loss({"image": unit(3, 6).float()})


# --------------------------------------------------------------------------- retrieval and zero-shot

def test_similarity_is_cosine_similarity():
    a, b = randn(4, 5, seed=1) * 3, randn(6, 5, seed=2)
    expected = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
    torch.testing.assert_close(similarity(a, b), expected, atol=1e-12, rtol=0)


def test_recall_at_k_on_a_hand_made_score_matrix():
    scores = torch.tensor([[0.9, 0.1, 0.3],    # right item 0 scores highest: rank 0
                           [0.8, 0.2, 0.5],    # right item 1 is beaten by two: rank 2
                           [0.1, 0.7, 0.6]])   # right item 2 is beaten by one: rank 1
    assert retrieval_ranks(scores).tolist() == [0, 2, 1]
    assert [recall_at_k(scores, k) for k in (1, 2, 3)] == [1 / 3, 2 / 3, 1.0]
    # the same with the right items given as indices, in another order
    assert retrieval_ranks(scores[:, [2, 0, 1]], torch.tensor([1, 2, 0])).tolist() == [0, 2, 1]


def test_ties_count_against_the_query_and_several_items_may_be_right():
    assert recall_at_k(torch.zeros(4, 4), 1) == 0.0  # a model that scores all alike finds nothing
    assert retrieval_ranks(torch.zeros(4, 4)).tolist() == [3, 3, 3, 3]
    scores = torch.tensor([[0.2, 0.9, 0.5, 0.4], [0.1, 0.3, 0.8, 0.6]])
    right = torch.tensor([[True, False, True, False], [True, True, False, False]])
    # query 0: best right item 0.5, beaten by 0.9 -> rank 1; query 1: best right 0.3, beaten by 0.8, 0.6 -> rank 2
    assert retrieval_ranks(scores, right).tolist() == [1, 2]
    assert recall_at_k(scores, 2, right) == 0.5


def test_zero_shot_classification_on_hand_made_embeddings():
    classes = torch.eye(3, dtype=torch.float64)  # class k points along axis k
    queries = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, -1.0], [-0.5, 0.6, 0.1], [0.0, 0.3, 0.2]], dtype=torch.float64)
    assert zero_shot_classify(queries, classes).tolist() == [0, 0, 1, 1]
    # two prompts per class, whose mean direction is the class axis
    prompts = torch.stack([classes + classes.roll(1, dims=1), classes - classes.roll(1, dims=1)], dim=1)  # (3, 2, 3)
    assert zero_shot_classify(queries, prompts).tolist() == [0, 0, 1, 1]


def test_retrieval_helpers_reject_bad_inputs():
    with pytest.raises(ValueError, match="item i of the gallery must answer query i: expected Q == G, got 2 and 3"):
        recall_at_k(torch.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="query 1 has no relevant gallery item"):
        recall_at_k(torch.zeros(2, 3), 1, torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match=r"expected relevant indices in \[0, G=3\), got values in \[0, 3\]"):
        recall_at_k(torch.zeros(2, 3), 1, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="expected k to be a positive int, got 0"):
        recall_at_k(torch.zeros(2, 2), 0)
    with pytest.raises(ValueError, match=r"expected class_embeddings of width D = 3 \(that of queries\), got \(4, 2\)"):
        zero_shot_classify(torch.zeros(2, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"expected a \(Q, D\) and b \(G, D\) of one width D"):
        similarity(torch.zeros(2, 3), torch.zeros(2, 4))
