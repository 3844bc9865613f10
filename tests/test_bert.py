"""Tests for mmcourse.bert against Hugging Face BERT with copied weights, masking counted, and F.cross_entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig as HFBertConfig
from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel

from mmcourse.bert import BERT, BertClassifier, BertConfig, BertForMLM, load_hf_bert, mask_tokens

V = 100
PAD, CLS, SEP, MASK = 0, 1, 2, 3



def ids(*shape: int, seed: int = 0, low: int = 4, high: int = V) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=torch.Generator().manual_seed(seed))


def hf_config(**options) -> HFBertConfig:
    sizes = dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=24, type_vocab_size=2, num_labels=3, attn_implementation="eager")
    return HFBertConfig(**(sizes | options))


@torch.no_grad()
def perturbed(hf_model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Move every weight off its initial value (LayerNorm 1/0, bias 0), so that each one matters."""
    torch.manual_seed(0)
    hf_model = hf_model.to(dtype).eval()
    for p in hf_model.parameters():
        p.add_(torch.randn_like(p) * 0.1)
    return hf_model


def padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three sequences of lengths 20, 13 and 6: ids, segment ids and the (B, T) attention mask."""
    x, segments = ids(3, 20), ids(3, 20, seed=1, low=0, high=2)
    lengths = torch.tensor([20, 13, 6])
    keep = torch.arange(20)[None] < lengths[:, None]
    return x.masked_fill(~keep, PAD), segments, keep


# --------------------------------------------------------------------------- masking

def test_mask_tokens_statistics():
    x = ids(400, 500, low=0)  # 200k tokens, a few of them special
    special = (PAD, CLS, SEP)
    inputs, labels = mask_tokens(x, vocab_size=V, mask_id=MASK, special_ids=special,
                                 generator=torch.Generator().manual_seed(0))
    is_special = torch.isin(x, torch.tensor([*special, MASK]))
    chosen = labels != -100
    assert not chosen[is_special].any()  # special tokens are never chosen
    assert abs(chosen[~is_special].float().mean().item() - 0.15) < 0.005
    assert torch.equal(labels[chosen], x[chosen])
    assert torch.equal(inputs[~chosen], x[~chosen])  # what is not chosen stays as it was
    masked = inputs[chosen] == MASK
    kept = inputs[chosen] == x[chosen]
    replaced = ~masked & ~kept
    # A random replacement equals the original token with chance 1/96: count it as kept.
    n_ordinary = V - 4
    assert abs(masked.float().mean().item() - 0.8) < 0.01
    assert abs(replaced.float().mean().item() - 0.1 * (1 - 1 / n_ordinary)) < 0.01
    assert abs(kept.float().mean().item() - 0.1 * (1 + 1 / n_ordinary)) < 0.01
    assert not torch.isin(inputs[chosen][replaced], torch.tensor([*special, MASK])).any()


def test_mask_tokens_is_repeatable_and_keeps_dtype():
    x = ids(4, 30)
    first = mask_tokens(x, vocab_size=V, mask_id=MASK, generator=torch.Generator().manual_seed(1))
    second = mask_tokens(x, vocab_size=V, mask_id=MASK, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert first[0].dtype == first[1].dtype == torch.int64
    nothing, none_chosen = mask_tokens(x, vocab_size=V, mask_id=MASK, p=0.0)
    assert torch.equal(nothing, x) and torch.all(none_chosen == -100)


def test_mask_tokens_errors():
    with pytest.raises(TypeError, match="expected ids as an integer tensor"):
        mask_tokens(torch.zeros(2, 3), vocab_size=V, mask_id=MASK)
    with pytest.raises(ValueError, match=r"expected ids in \[0, vocab_size=100\), got values in \[4, 100\]"):
        mask_tokens(torch.tensor([4, 100]), vocab_size=V, mask_id=MASK)
    with pytest.raises(ValueError, match=r"expected mask_id and special_ids in \[0, vocab_size=100\), got 100"):
        mask_tokens(ids(2, 3), vocab_size=V, mask_id=100)
    with pytest.raises(ValueError, match=r"expected p in \[0, 1\], got 1.5"):
        mask_tokens(ids(2, 3), vocab_size=V, mask_id=MASK, p=1.5)
    with pytest.raises(ValueError, match="every id is special"):
        mask_tokens(torch.tensor([0, 1]), vocab_size=2, mask_id=1, special_ids=(0,))


# --------------------------------------------------------------------------- Hugging Face BERT

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_mlm_logits_equal_hugging_face(dtype, tol):
    hf = perturbed(BertForMaskedLM(hf_config()), dtype)
    model = load_hf_bert(BertForMLM(BertConfig.from_hf(hf.config)).to(dtype), hf).eval()
    x, segments, keep = padded_batch()
    with torch.no_grad():
        theirs = hf(x, token_type_ids=segments, attention_mask=keep.long())
        ours = model(x, token_type_ids=segments, attention_mask=keep, return_attention=True)
    assert (ours.logits - theirs.logits).abs().max().item() <= tol
    assert theirs.logits.std() > 0.5  # the comparison is not between two near-constant outputs
    assert model.decoder.weight is model.bert.wte.weight


def test_attention_weights_equal_hugging_face():
    hf = perturbed(BertModel(hf_config(), add_pooling_layer=False), torch.float64)
    model = load_hf_bert(BERT(BertConfig.from_hf(hf.config)).double(), hf).eval()
    x, segments, keep = padded_batch()
    with torch.no_grad():
        theirs = hf(x, token_type_ids=segments, attention_mask=keep.long(), output_attentions=True)
        hidden, weights = model(x, token_type_ids=segments, attention_mask=keep, return_attention=True)
    torch.testing.assert_close(hidden, theirs.last_hidden_state, atol=1e-12, rtol=0)
    torch.testing.assert_close(weights, torch.stack(theirs.attentions), atol=1e-12, rtol=0)
    assert torch.all(weights[:, 2, :, :, 6:] == 0)  # nobody attends to the padding


def test_classifier_logits_equal_hugging_face():
    hf = perturbed(BertForSequenceClassification(hf_config()), torch.float32)
    model = load_hf_bert(BertClassifier(BertConfig.from_hf(hf.config), n_classes=3), hf).eval()
    x, segments, keep = padded_batch()
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        theirs = hf(x, token_type_ids=segments, attention_mask=keep.long(), labels=labels)
        ours = model(x, labels, token_type_ids=segments, attention_mask=keep)
    assert ours.logits.shape == (3, 3)
    assert (ours.logits - theirs.logits).abs().max().item() <= 1e-5
    assert abs(ours.loss.item() - theirs.loss.item()) <= 1e-5


def test_load_hf_bert_refuses_mismatches():
    hf = BertForMaskedLM(hf_config())
    with pytest.raises(ValueError, match="expected a BERT of configuration"):
        load_hf_bert(BertForMLM(BertConfig(vocab_size=V, block_size=24, n_layer=1, n_head=4, n_embd=32)), hf)
    with pytest.raises(TypeError, match="expected a Hugging Face BertForSequenceClassification with 3 labels"):
        load_hf_bert(BertClassifier(BertConfig.from_hf(hf.config), n_classes=3), hf)


# --------------------------------------------------------------------------- behaviour

def small_bert(seed: int = 0) -> BertForMLM:
    """A small BERT with weights larger than BERT's initial ones, so that every token's influence shows."""
    torch.manual_seed(seed)
    model = BertForMLM(BertConfig(vocab_size=V, block_size=24, n_layer=2, n_head=2, n_embd=16, dropout=0.1)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            std = 1.0 if p.dim() < 2 or p is model.bert.wte.weight else 2 / p.shape[-1] ** 0.5
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def test_padding_does_not_change_the_real_tokens():
    model = small_bert().double()
    x = ids(1, 7)
    alone = model(x).logits
    padded = torch.cat([x, ids(1, 5, seed=9)], dim=1)  # arbitrary tokens in the padding
    keep = torch.tensor([[True] * 7 + [False] * 5])
    torch.testing.assert_close(model(padded, attention_mask=keep).logits[:, :7], alone, atol=1e-10, rtol=1e-10)
    assert not torch.allclose(model(padded).logits[:, :7], alone, atol=1e-3)  # unmasked padding would leak


def test_every_token_sees_the_whole_sequence():
    model = small_bert()
    x = ids(1, 8)
    changed = x.clone()
    changed[0, 7] = (changed[0, 7] + 1 - 4) % (V - 4) + 4
    assert not torch.allclose(model(changed).logits[:, 0], model(x).logits[:, 0])  # bidirectional


def test_mlm_loss_counts_only_labelled_positions():
    model = small_bert()
    x = ids(2, 10)
    inputs, labels = mask_tokens(x, vocab_size=V, mask_id=MASK, special_ids=(PAD, CLS, SEP), p=0.4,
                                 generator=torch.Generator().manual_seed(3))
    out = model(inputs, labels)
    chosen = labels != -100
    by_hand = F.cross_entropy(out.logits[chosen], labels[chosen])
    assert chosen.sum() > 0 and abs(out.loss.item() - by_hand.item()) < 1e-6


def test_pretrained_encoder_moves_into_the_classifier():
    mlm = small_bert()
    clf = BertClassifier(mlm.config, n_classes=2).eval()
    clf.bert.load_state_dict(mlm.bert.state_dict())
    x = ids(2, 6)
    torch.testing.assert_close(clf.bert(x), mlm.bert(x))


def test_clear_errors():
    model = small_bert()
    with pytest.raises(ValueError, match="expected at most block_size=24 tokens, got T=25; truncate the input"):
        model(ids(1, 25))
    with pytest.raises(TypeError, match=r"expected ids of dtype torch.long \(token ids\), got torch.float32"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"expected token_type_ids in \[0, 2\), got values in \[0, 2\]"):
        model(ids(1, 3), token_type_ids=torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"expected attention_mask of shape \(B, T\) = \(1, 3\)"):
        model(ids(1, 3), attention_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected labels in \[0, 100\) or -100 \(ignored\), got 100"):
        model(ids(1, 3), torch.tensor([[-100, 100, 5]]))
    with pytest.raises(ValueError, match="expected n_classes to be an int >= 2, got 1"):
        BertClassifier(model.config, n_classes=1)
    with pytest.raises(ValueError, match="expected n_embd divisible by n_head, got n_embd=10 and n_head=4"):
        BertConfig(vocab_size=V, n_embd=10, n_head=4)
