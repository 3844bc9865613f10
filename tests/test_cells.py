"""Tests for mmcourse.cells against labels and cross-entropies written out by hand, and a short training run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmcourse import shapes
from mmcourse.cells import N_CLASSES, CellReader, cell_accuracy, cell_labels, cell_loss, token_cells
from mmcourse.shapes import Scene, SceneObject
from mmcourse.vision import CNNEncoder, PatchEmbedding

TWO_OBJECTS = Scene((SceneObject("blue", "triangle", "large", "bottom left"),
                     SceneObject("red", "circle", "small", "top right")))
ONE_OBJECT = Scene((SceneObject("purple", "square", "small", "top left"),))


def test_cell_labels_by_hand():
    # colours: red 0 green 1 blue 2 yellow 3 purple 4, empty 5; shapes: circle 0 square 1 triangle 2, empty 3;
    # sizes: small 0 large 1, empty 2; cells: top left, top right, bottom left, bottom right
    expected = torch.tensor([
        [[5, 3, 2], [0, 0, 0], [2, 2, 1], [5, 3, 2]],
        [[4, 1, 0], [5, 3, 2], [5, 3, 2], [5, 3, 2]],
    ])
    labels = cell_labels([TWO_OBJECTS, ONE_OBJECT])
    assert labels.dtype == torch.int64
    assert torch.equal(labels, expected)
    assert N_CLASSES == (6, 4, 3)


def test_token_cells_by_hand():
    assert token_cells(2).tolist() == [0, 1, 2, 3]
    assert token_cells(4).tolist() == [0, 0, 1, 1,
                                       0, 0, 1, 1,
                                       2, 2, 3, 3,
                                       2, 2, 3, 3]
    # every token of a 6x6 grid lies in the cell its centre falls in
    for t, cell in enumerate(token_cells(6).tolist()):
        row, column = divmod(t, 6)
        assert cell == (row >= 3) * 2 + (column >= 3)


def test_reader_heads_loss_and_accuracy_by_hand():
    torch.manual_seed(0)
    encoder = CNNEncoder(3, (4, 8), norm="group")  # 32 -> 16 -> 8: 64 tokens of width 8
    reader = CellReader(encoder, 8)
    images = shapes.render_batch([TWO_OBJECTS, ONE_OBJECT])  # uint8
    logits = reader(images)
    assert [tuple(z.shape) for z in logits] == [(2, 64, 6), (2, 64, 4), (2, 64, 3)]
    _, features = encoder(images.float() / 255, return_features=True)
    tokens = features.flatten(2).transpose(1, 2)  # (2, 64, 8)
    for head, z in zip(reader.heads, logits):
        torch.testing.assert_close(z, tokens @ head.weight.T + head.bias)
    torch.testing.assert_close(reader(images.float() / 255)[0], logits[0])  # floats in [0, 1] give the same
    labels = cell_labels([TWO_OBJECTS, ONE_OBJECT])[:, token_cells(8)]  # (2, 64, 3)
    by_hand = 0.0
    for k, z in enumerate(logits):
        log_p = z.log_softmax(-1)
        by_hand += -log_p.gather(-1, labels[..., k:k + 1]).mean()
    torch.testing.assert_close(cell_loss(logits, labels), by_hand)
    # accuracy: make the colour head certain of "empty" everywhere; 5 of 8 cells are empty
    certain = [torch.zeros(2, 64, 6).index_fill_(-1, torch.tensor([5]), 1.0), logits[1], logits[2]]
    assert cell_accuracy(certain, labels)["colour accuracy"] == pytest.approx(5 / 8)


def test_reader_learns_the_cells_of_training_scenes():
    torch.manual_seed(0)
    scenes = shapes.make_scenes("train", 256, seed=1)
    images = shapes.render_batch(scenes)
    labels = cell_labels(scenes)  # patches of 16: one token per cell
    reader = CellReader(PatchEmbedding(32, 16, 3, 32), 32)
    optimizer = torch.optim.Adam(reader.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = cell_loss(reader(images), labels)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first == pytest.approx(sum(math.log(k) for k in N_CLASSES), rel=0.2)  # a guess at the start
    with torch.no_grad():
        accuracy = cell_accuracy(reader(images), labels)
    assert accuracy["colour accuracy"] > 0.95 and accuracy["size accuracy"] > 0.9, accuracy


def test_clear_errors_for_bad_inputs():
    with pytest.raises(ValueError, match="expected a non-empty sequence of Scene, got Scene"):
        cell_labels(ONE_OBJECT)
    with pytest.raises(TypeError, match="expected a Scene, got int"):
        cell_labels([ONE_OBJECT, 3])
    with pytest.raises(ValueError, match="expected an even grid size >= 2 .*, got 3"):
        token_cells(3)
    with pytest.raises(TypeError, match="expected the encoder to be an nn.Module, got str"):
        CellReader("cnn", 8)
    with pytest.raises(ValueError, match="expected dim as a positive int, got 0"):
        CellReader(nn.Identity(), 0)
    reader = CellReader(PatchEmbedding(32, 16, 3, 12), 8)
    with pytest.raises(ValueError, match=r"expected the encoder's tokens to be 8 wide, got \(1, 4, 12\)"):
        reader(torch.rand(1, 3, 32, 32))
    logits = [torch.zeros(2, 4, k) for k in N_CLASSES]
    with pytest.raises(ValueError, match=r"expected labels \(B, N, 3\) int64, got \(2, 4\) torch.int64"):
        cell_loss(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected colour logits of shape \(2, 16, 6\) to match the labels, got \(2, 4, 6\)"):
        cell_accuracy(logits, torch.zeros(2, 16, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected size logits of shape \(2, 4, 3\) to match the labels, got \(2, 4, 2\)"):
        cell_accuracy(logits[:2] + [torch.zeros(2, 4, 2)], torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected 3 logits \('colour', 'shape', 'size'\), got list"):
        cell_loss(logits[:2], torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="int64"):
        cell_loss(logits, torch.zeros(2, 4, 3))
    torch.testing.assert_close(cell_loss(logits, torch.zeros(2, 4, 3, dtype=torch.long)),
                               torch.tensor(sum(math.log(k) for k in N_CLASSES)))  # uniform logits
