"""Tests for mmcourse.rnn against torch.nn's recurrent layers, autograd and backprop by hand."""

import pytest
import torch
from torch import nn

from mmcourse.rnn import (
    ElmanRNN,
    RNNEncoder,
    gradient_norms_through_time,
    gru_cell,
    lstm_cell,
    rnn_cell,
    rnn_loop,
)

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def _close(got, want, dtype):
    torch.testing.assert_close(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def _weights(module, suffix=""):
    return [getattr(module, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


# --------------------------------------------------------------------------- the Elman RNN

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rnn_loop_equals_nn_rnn(dtype):
    torch.manual_seed(0)
    reference = nn.RNN(3, 5, batch_first=True).to(dtype)
    x = torch.randn(4, 6, 3, dtype=dtype)
    h0 = torch.randn(4, 5, dtype=dtype)
    expected_out, expected_h = reference(x, h0[None])
    outputs, h_T = rnn_loop(x, h0, *_weights(reference, "_l0"))
    _close(outputs, expected_out, dtype)
    _close(h_T, expected_h[0], dtype)
    # no initial state means zeros, as in nn.RNN
    _close(rnn_loop(x, None, *_weights(reference, "_l0"))[0], reference(x)[0], dtype)


def test_rnn_cell_equals_nn_rnn_cell():
    torch.manual_seed(0)
    reference = nn.RNNCell(3, 4).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    _close(rnn_cell(x, h, *_weights(reference)), reference(x, h), torch.float64)


def test_rnn_loop_passes_gradcheck():
    g = torch.Generator().manual_seed(1)
    shapes = [(2, 4, 3), (2, 3), (3, 3), (3, 3), (3,), (3,)]
    inputs = [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(lambda *a: rnn_loop(*a)[0], inputs)


def test_rnn_loop_without_biases_matches_nn_rnn_without_biases():
    torch.manual_seed(0)
    reference = nn.RNN(3, 4, bias=False, batch_first=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    out, _ = rnn_loop(x, None, reference.weight_ih_l0, reference.weight_hh_l0)
    _close(out, reference(x)[0], torch.float64)


def test_elman_rnn_module_runs_rnn_loop_with_its_parameters():
    torch.manual_seed(0)
    model = ElmanRNN(3, 4)
    assert {n for n, _ in model.named_parameters()} == {"W_ih", "W_hh", "b_ih", "b_hh"}
    assert all(p.abs().max() <= 0.5 for p in model.parameters())   # nn.RNN's init bound 1/sqrt(4)
    reference = nn.RNN(3, 4, batch_first=True)
    with torch.no_grad():
        for mine, theirs in zip((model.W_ih, model.W_hh, model.b_ih, model.b_hh), _weights(reference, "_l0")):
            theirs.copy_(mine)
    x = torch.randn(2, 5, 3)
    out, h_T = model(x)
    _close(out, reference(x)[0], torch.float32)
    _close(h_T, reference(x)[1][0], torch.float32)


def test_rnn_rejects_bad_inputs_with_clear_messages():
    W_ih, W_hh = torch.randn(4, 3), torch.randn(4, 4)
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, C_in\) = \(\?, \?, \?\), got \(5, 3\)"):
        rnn_loop(x[0], None, W_ih, W_hh)
    with pytest.raises(ValueError, match=r"expected W_ih of shape \(C_hidden, C_in\) = \(4, 3\), got \(4, 2\)"):
        rnn_loop(x, None, W_ih[:, :2], W_hh)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(B, C_hidden\) = \(2, 4\), got \(3, 4\)"):
        rnn_loop(x, torch.zeros(3, 4), W_ih, W_hh)
    with pytest.raises(ValueError, match=r"expected b_hh of shape \(C_hidden,\) = \(4,\), got \(3,\)"):
        rnn_loop(x, None, W_ih, W_hh, torch.zeros(4), torch.zeros(3))
    with pytest.raises(TypeError, match="expected W_hh with dtype torch.float32 .* got torch.float64"):
        rnn_loop(x, None, W_ih, W_hh.double())
    with pytest.raises(TypeError, match="expected x with a floating-point dtype, got torch.int64"):
        rnn_loop(x.long(), None, W_ih, W_hh)
    with pytest.raises(ValueError, match="expected input_size as a positive int, got 0"):
        ElmanRNN(0, 4)


# --------------------------------------------------------------------------- gated cells

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lstm_cell_equals_nn_lstm_cell(dtype):
    torch.manual_seed(0)
    reference = nn.LSTMCell(3, 5).to(dtype)
    x = torch.randn(4, 3, dtype=dtype)
    h, c = torch.randn(4, 5, dtype=dtype), torch.randn(4, 5, dtype=dtype)
    expected_h, expected_c = reference(x, (h, c))
    got_h, got_c = lstm_cell(x, (h, c), *_weights(reference))
    _close(got_h, expected_h, dtype)
    _close(got_c, expected_c, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gru_cell_equals_nn_gru_cell(dtype):
    torch.manual_seed(0)
    reference = nn.GRUCell(3, 5).to(dtype)
    x, h = torch.randn(4, 3, dtype=dtype), torch.randn(4, 5, dtype=dtype)
    _close(gru_cell(x, h, *_weights(reference)), reference(x, h), dtype)


def test_lstm_cell_gate_order_by_hand():
    # one hidden unit, no input weights: the gates are exactly the biases, in order i, f, g, o
    x = torch.zeros(1, 1, dtype=torch.float64)
    W_ih, W_hh = torch.zeros(4, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)
    i, f, g, o = 0.3, -0.7, 0.5, 1.1
    b = torch.tensor([i, f, g, o], dtype=torch.float64)
    c_prev = 2.0
    h, c = lstm_cell(x, (torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), c_prev, dtype=torch.float64)),
                     W_ih, W_hh, b, None)
    sig = lambda v: 1 / (1 + torch.exp(-torch.tensor(v, dtype=torch.float64)))
    expected_c = sig(f) * c_prev + sig(i) * torch.tanh(torch.tensor(g, dtype=torch.float64))
    _close(c[0, 0], expected_c, torch.float64)
    _close(h[0, 0], sig(o) * torch.tanh(expected_c), torch.float64)


def test_gated_cells_reject_bad_inputs_with_clear_messages():
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"expected W_ih of shape \(4 \* C_hidden, C_in\) = \(16, 3\), got \(12, 3\)"):
        lstm_cell(x, (h, h), torch.randn(12, 3), torch.randn(16, 4))
    with pytest.raises(TypeError, match="expected state as a pair \\(h, c\\), got Tensor"):
        lstm_cell(x, h, torch.randn(16, 3), torch.randn(16, 4))
    with pytest.raises(ValueError, match=r"expected c of shape \(B, C\) like h = \(2, 4\), got \(2, 5\)"):
        lstm_cell(x, (h, torch.randn(2, 5)), torch.randn(16, 3), torch.randn(16, 4))
    with pytest.raises(ValueError, match=r"expected W_hh of shape \(3 \* C_hidden, C_hidden\) = \(12, 4\), got \(16, 4\)"):
        gru_cell(x, h, torch.randn(12, 3), torch.randn(16, 4))
    with pytest.raises(ValueError, match=r"expected h of shape \(B, C\) = \(2, \?\), got \(3, 4\)"):
        gru_cell(x, torch.randn(3, 4), torch.randn(12, 3), torch.randn(12, 4))


# --------------------------------------------------------------------------- vanishing gradients

def test_gradient_norms_equal_backprop_through_time_by_hand():
    torch.manual_seed(0)
    model = ElmanRNN(3, 4).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    norms = gradient_norms_through_time(model, x)
    # by hand: delta_t = dL/dh_t; through h_t = tanh(a_t), da_t = delta_t * (1 - h_t^2);
    # dL/dx_t = da_t W_ih, and delta_{t-1} = da_t W_hh
    with torch.no_grad():
        outputs, _ = model(x)
        delta = torch.ones(2, 4, dtype=torch.float64)        # L = sum of the last output
        expected = []
        for t in reversed(range(6)):
            da = delta * (1 - outputs[:, t] ** 2)
            expected.append((da @ model.W_ih).norm(dim=1).mean())
            delta = da @ model.W_hh
    _close(norms, torch.stack(expected), torch.float64)


def test_gradient_norms_equal_autograd_per_step_for_lstm():
    torch.manual_seed(0)
    model = nn.LSTM(3, 4, batch_first=True).double()
    steps = [torch.randn(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(5)]
    outputs, _ = model(torch.stack(steps, dim=1))
    grads = torch.autograd.grad(outputs[:, -1].sum(), steps)
    expected = torch.stack([g.norm(dim=1).mean() for g in reversed(grads)])
    _close(gradient_norms_through_time(model, torch.stack(steps, dim=1).detach()), expected, torch.float64)


def test_tanh_rnn_gradients_vanish_faster_than_lstm_gradients():
    torch.manual_seed(0)
    x = torch.randn(4, 30, 4)
    rnn_norms = gradient_norms_through_time(ElmanRNN(4, 16), x)
    lstm_norms = gradient_norms_through_time(nn.LSTM(4, 16, batch_first=True), x)
    rnn_ratio, lstm_ratio = rnn_norms[25] / rnn_norms[0], lstm_norms[25] / lstm_norms[0]
    assert rnn_ratio < 1e-5                                  # many orders of magnitude lost in 25 steps
    assert lstm_ratio > 10 * rnn_ratio


def test_gradient_norms_reject_bad_inputs_with_clear_messages():
    with pytest.raises(ValueError, match="expected a batch-first rnn"):
        gradient_norms_through_time(nn.RNN(3, 4), torch.randn(2, 5, 3))
    with pytest.raises(TypeError, match="expected rnn as a torch.nn.Module, got function"):
        gradient_norms_through_time(lambda x: x, torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, C_in\)"):
        gradient_norms_through_time(ElmanRNN(3, 4), torch.randn(5, 3))


# --------------------------------------------------------------------------- the text encoder

def _reference_encoding(encoder, tokens):
    """One unpadded sequence (T,) through the encoder's embedding and cells stepped by hand."""
    embedded = encoder.embed(tokens)                                   # (T, C)
    cells = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}
    directions = ["", "_reverse"] if encoder.bidirectional else [""]
    lasts, outputs = [], []
    for suffix in directions:
        cell = cells[encoder.cell](embedded.shape[1], encoder.rnn.hidden_size).double()
        with torch.no_grad():
            for mine, theirs in zip(_weights(encoder.rnn, "_l0" + suffix), _weights(cell)):
                theirs.copy_(mine)
        steps = embedded.flip(0) if suffix else embedded
        state = None
        hs = []
        for x_t in steps:
            state = cell(x_t[None], state)
            hs.append(state[0] if encoder.cell == "lstm" else state)
        hs = torch.cat(hs)                                             # (T, hidden)
        lasts.append(hs[-1])
        outputs.append(hs.flip(0) if suffix else hs)
    return torch.cat(lasts), torch.cat(outputs, dim=1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_equals_each_sequence_run_alone(cell, bidirectional):
    torch.manual_seed(0)
    encoder = RNNEncoder(20, 6, 5, cell=cell, bidirectional=bidirectional).double()
    lengths = torch.tensor([3, 7, 1, 5])
    tokens = torch.randint(1, 20, (4, 7))
    last, outputs = encoder(tokens, lengths)
    assert last.shape == (4, encoder.out_dim) and outputs.shape == (4, 7, encoder.out_dim)
    assert encoder.out_dim == (10 if bidirectional else 5)
    for b, n in enumerate(lengths.tolist()):
        expected_last, expected_outputs = _reference_encoding(encoder, tokens[b, :n])
        _close(last[b], expected_last, torch.float64)
        _close(outputs[b, :n], expected_outputs, torch.float64)
        assert (outputs[b, n:] == 0).all()
        alone_last, _ = encoder(tokens[b:b + 1, :n])                   # no padding at all
        _close(alone_last[0], last[b], torch.float64)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_ignores_what_the_padding_holds(bidirectional):
    torch.manual_seed(0)
    encoder = RNNEncoder(30, 8, 6, bidirectional=bidirectional)
    lengths = torch.tensor([2, 6, 4])
    tokens = torch.randint(1, 30, (3, 6))
    other = tokens.clone()
    for b, n in enumerate(lengths.tolist()):
        other[b, n:] = torch.randint(0, 30, (6 - n,))
        tokens[b, n:] = 0
    last_a, out_a = encoder(tokens, lengths)
    last_b, out_b = encoder(other, lengths)
    _close(last_a, last_b, torch.float32)
    _close(out_a, out_b, torch.float32)
    # without lengths, the padding id marks where each row ends
    last_c, out_c = encoder(tokens)
    _close(last_c, last_a, torch.float32)
    _close(out_c, out_a, torch.float32)


def test_encoder_lengths_from_padding_by_hand():
    encoder = RNNEncoder(10, 4, 4, pad_id=0)
    tokens = torch.tensor([[5, 0, 3, 0, 0], [1, 2, 3, 4, 5], [7, 0, 0, 0, 0]])
    # an inner pad id is a token like any other; only trailing ones are padding
    assert encoder.lengths_from_padding(tokens).tolist() == [3, 5, 1]


def test_encoder_gradients_reach_the_embedding_but_not_the_pad_row():
    torch.manual_seed(0)
    encoder = RNNEncoder(12, 4, 3, pad_id=0)
    last, _ = encoder(torch.tensor([[3, 4, 0, 0], [5, 6, 7, 8]]))
    last.sum().backward()
    grad = encoder.embed.weight.grad
    assert grad[0].abs().sum() == 0 and grad[3].abs().sum() > 0


def test_encoder_rejects_bad_inputs_with_clear_messages():
    encoder = RNNEncoder(10, 4, 4)
    tokens = torch.randint(1, 10, (2, 5))
    with pytest.raises(ValueError, match=r"expected every length <= T = 5 .* got \[3, 6\]"):
        encoder(tokens, torch.tensor([3, 6]))
    with pytest.raises(ValueError, match=r"expected every length >= 1, got \[0, 5\]"):
        encoder(tokens, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(B,\) = \(2,\), got \(3,\)"):
        encoder(tokens, torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="expected lengths as integers, got torch.float32"):
        encoder(tokens, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"expected tokens of shape \(B, T\), got \(5,\)"):
        encoder(tokens[0])
    with pytest.raises(TypeError, match=r"expected tokens as integer ids \(torch.long\), got torch.float32"):
        encoder(tokens.float())
    with pytest.raises(ValueError, match=r"expected token ids in \[0, 10\), got values from 1 to 12"):
        encoder(torch.tensor([[1, 12]]))
    with pytest.raises(ValueError, match="row 1 of tokens holds only padding"):
        encoder(torch.tensor([[1, 0], [0, 0]]))
    with pytest.raises(ValueError, match=r"expected cell to be one of \['gru', 'lstm', 'rnn'\], got 'transformer'"):
        RNNEncoder(10, 4, 4, cell="transformer")
    with pytest.raises(ValueError, match=r"expected pad_id as an int in \[0, 10\), got 10"):
        RNNEncoder(10, 4, 4, pad_id=10)
