"""Recurrent networks by hand, and the text encoder built from them.

Introduced in notebook 03. The file follows the notebook:

1. the Elman recurrence ``h_t = tanh(W x_t + U h_{t-1} + b)``: one step (:func:`rnn_cell`),
   the loop over time (:func:`rnn_loop`) and a module around it (:class:`ElmanRNN`);
2. the gated cells :func:`lstm_cell` and :func:`gru_cell`, with PyTorch's weight layout and
   gate order, so that weights copy over from ``nn.LSTMCell`` / ``nn.GRUCell``;
3. :func:`gradient_norms_through_time`, which measures how much the last output still
   depends on inputs further back: vanishing gradients, tanh RNN against LSTM;
4. :class:`RNNEncoder`, token ids of different lengths -> one vector per sequence, the text
   encoder later notebooks reuse.

Shapes: ``B`` batch, ``T`` time steps, ``C`` input or hidden width. Batches are batch-first.
Weights follow PyTorch: ``W_ih`` (G * C_hidden, C_in), ``W_hh`` (G * C_hidden, C_hidden),
biases (G * C_hidden,), with G = 1 (tanh RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


# --------------------------------------------------------------------------- checks

def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _check_float(name: str, value: object, shape: tuple[int, ...], layout: str, dtype: torch.dtype | None) -> None:
    """``value`` is a floating tensor of ``shape`` (-1 matches any size) and ``dtype`` if given."""
    if not isinstance(value, Tensor):
        raise TypeError(f"expected {name} as a torch.Tensor of shape {layout}, got {type(value).__name__}")
    if value.dim() != len(shape) or any(s != -1 and s != v for s, v in zip(shape, value.shape)):
        wanted = str(tuple("?" if s == -1 else s for s in shape)).replace("'", "")
        raise ValueError(f"expected {name} of shape {layout} = {wanted}, got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise TypeError(f"expected {name} with a floating-point dtype, got {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"expected {name} with dtype {dtype} (the dtype of x), got {value.dtype}")


def _check_weights(
    x: Tensor, hidden: int, gates: int,
    W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None,
) -> None:
    g = {1: "", 3: "3 * ", 4: "4 * "}[gates]
    _check_float("W_ih", W_ih, (gates * hidden, x.shape[-1]), f"({g}C_hidden, C_in)", x.dtype)
    _check_float("W_hh", W_hh, (gates * hidden, hidden), f"({g}C_hidden, C_hidden)", x.dtype)
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            _check_float(name, b, (gates * hidden,), f"({g}C_hidden,)", x.dtype)


def _affine(x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
    return x @ W.T if b is None else x @ W.T + b


def _rnn_step(x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    return torch.tanh(_affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh))


# --------------------------------------------------------------------------- 1. the Elman RNN

def rnn_cell(
    x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None,
) -> Tensor:
    """One step of the tanh RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Introduced in notebook 03. ``x`` (B, C_in), ``h`` (B, C) -> ``h'`` (B, C); equals
    ``nn.RNNCell`` with the same weights.
    """
    _check_float("x", x, (-1, -1), "(B, C_in)", None)
    _check_float("h", h, (x.shape[0], -1), "(B, C)", x.dtype)
    _check_weights(x, h.shape[1], 1, W_ih, W_hh, b_ih, b_hh)
    return _rnn_step(x, h, W_ih, W_hh, b_ih, b_hh)


def rnn_loop(
    x: Tensor, h0: Tensor | None, W_ih: Tensor, W_hh: Tensor,
    b_ih: Tensor | None = None, b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The tanh RNN over a whole sequence, one step at a time.

    Introduced in notebook 03. ``x`` (B, T, C_in), ``h0`` (B, C) or None for zeros ->
    ``(outputs, h_T)``: every step's hidden state (B, T, C) and the last one (B, C).
    Equals ``nn.RNN(batch_first=True)`` (one layer, tanh) with the same weights, whose
    ``h_n`` is ``h_T[None]``.
    """
    _check_float("x", x, (-1, -1, -1), "(B, T, C_in)", None)
    if not isinstance(W_hh, Tensor) or W_hh.dim() != 2:
        raise ValueError(f"expected W_hh of shape (C_hidden, C_hidden), got {_shape(W_hh)}")
    hidden = W_hh.shape[1]
    _check_weights(x, hidden, 1, W_ih, W_hh, b_ih, b_hh)
    if h0 is None:
        h = x.new_zeros(x.shape[0], hidden)
    else:
        _check_float("h0", h0, (x.shape[0], hidden), "(B, C_hidden)", x.dtype)
        h = h0
    outputs = []
    for t in range(x.shape[1]):
        h = _rnn_step(x[:, t], h, W_ih, W_hh, b_ih, b_hh)                     # (B, C)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h                                       # (B, T, C), (B, C)


class ElmanRNN(nn.Module):
    """The tanh RNN as a module: parameters ``W_ih, W_hh, b_ih, b_hh`` around :func:`rnn_loop`.

    Introduced in notebook 03. ``forward(x, h0=None)``: ``x`` (B, T, input_size) ->
    ``(outputs (B, T, hidden_size), h_T (B, hidden_size))``. Initialised like ``nn.RNN``:
    uniform in ``[-1/sqrt(hidden_size), 1/sqrt(hidden_size)]``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"expected {name} as a positive int, got {value!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = hidden_size ** -0.5
        self.W_ih = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.b_ih = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
        self.b_hh = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return rnn_loop(x, h0, self.W_ih, self.W_hh, self.b_ih, self.b_hh)


# --------------------------------------------------------------------------- 2. gated cells

def lstm_cell(
    x: Tensor, state: tuple[Tensor, Tensor], W_ih: Tensor, W_hh: Tensor,
    b_ih: Tensor | None = None, b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step; gates in PyTorch's order i (input), f (forget), g (candidate), o (output).

    Introduced in notebook 03. ``x`` (B, C_in), ``state = (h, c)`` each (B, C) ->
    ``(h', c')`` each (B, C):
    ``c' = f * c + i * g`` and ``h' = o * tanh(c')``. The cell state ``c`` is updated by a
    sum rather than squashed through a matrix each step, which is why gradients survive
    longer. Equals ``nn.LSTMCell`` with the same weights.
    """
    _check_float("x", x, (-1, -1), "(B, C_in)", None)
    if not (isinstance(state, tuple) and len(state) == 2):
        raise TypeError(f"expected state as a pair (h, c), got {type(state).__name__}")
    h, c = state
    _check_float("h", h, (x.shape[0], -1), "(B, C)", x.dtype)
    _check_float("c", c, tuple(h.shape), "(B, C) like h", x.dtype)
    _check_weights(x, h.shape[1], 4, W_ih, W_hh, b_ih, b_hh)
    gates = _affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh)                     # (B, 4C)
    i, f, g, o = gates.chunk(4, dim=1)                                          # each (B, C)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gru_cell(
    x: Tensor, h: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None,
) -> Tensor:
    """One GRU step; gates in PyTorch's order r (reset), z (update), n (candidate).

    Introduced in notebook 03. ``x`` (B, C_in), ``h`` (B, C) -> ``h'`` (B, C):
    ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))`` and ``h' = (1 - z) * n + z * h``.
    Equals ``nn.GRUCell`` with the same weights (note the reset gate multiplies the
    hidden part *after* its bias, as PyTorch does).
    """
    _check_float("x", x, (-1, -1), "(B, C_in)", None)
    _check_float("h", h, (x.shape[0], -1), "(B, C)", x.dtype)
    _check_weights(x, h.shape[1], 3, W_ih, W_hh, b_ih, b_hh)
    x_r, x_z, x_n = _affine(x, W_ih, b_ih).chunk(3, dim=1)                      # each (B, C)
    h_r, h_z, h_n = _affine(h, W_hh, b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


# --------------------------------------------------------------------------- 3. vanishing gradients

def gradient_norms_through_time(rnn: nn.Module, x: Tensor) -> Tensor:
    """How strongly the last output depends on each earlier input: ``||d L / d x_{T-1-k}||``.

    Introduced in notebook 03. ``rnn`` is a batch-first recurrent module returning
    ``(outputs, state)`` (``ElmanRNN``, ``nn.RNN/LSTM/GRU(batch_first=True)``); ``x``
    (B, T, C_in). With ``L`` the sum of the last step's outputs, returns (T,): entry ``k``
    is the norm of the gradient with respect to the input ``k`` steps before the end,
    averaged over the batch. A tanh RNN's entries typically shrink geometrically with
    ``k``; an LSTM's shrink far more slowly.
    """
    if not isinstance(rnn, nn.Module):
        raise TypeError(f"expected rnn as a torch.nn.Module, got {type(rnn).__name__}")
    if not getattr(rnn, "batch_first", True):
        raise ValueError("expected a batch-first rnn (batch_first=True), got batch_first=False")
    _check_float("x", x, (-1, -1, -1), "(B, T, C_in)", None)
    x = x.detach().requires_grad_(True)
    result = rnn(x)
    if not (isinstance(result, tuple) and isinstance(result[0], Tensor) and result[0].dim() == 3):
        raise TypeError("expected rnn(x) to return (outputs of shape (B, T, C), state)")
    (grad,) = torch.autograd.grad(result[0][:, -1].sum(), x)                      # (B, T, C_in)
    norms = grad.norm(dim=2).mean(dim=0)                                        # (T,) by time
    return norms.flip(0)                                                        # (T,) by distance


# --------------------------------------------------------------------------- 4. the text encoder

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNEncoder(nn.Module):
    """Token ids -> embedding -> recurrent layer -> one vector per sequence.

    Introduced in notebook 03; reused as a text encoder in notebooks 08-09.
    ``forward(tokens, lengths=None)``: ``tokens`` (B, T) integer ids, ``lengths`` (B,) the
    number of real tokens in each row (the rest is padding). When ``lengths`` is None,
    each row ends after its last token that is not ``pad_id``. Returns
    ``(last, outputs)``: ``last`` (B, C') the hidden state after each sequence's last
    real token (for ``bidirectional``, the forward state there joined with the backward
    state at the first token) and ``outputs`` (B, T, C') every step's output, zeros at
    padded steps; ``C' = hidden`` or ``2 * hidden`` when bidirectional (``out_dim``).
    Padding is skipped with ``pack_padded_sequence``, so a sequence's encoding is the
    same as running it alone, whatever the padding holds.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden: int, cell: str = "lstm",
        bidirectional: bool = False, pad_id: int = 0, num_layers: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size), ("embed_dim", embed_dim), ("hidden", hidden), ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"expected {name} as a positive int, got {value!r}")
        if cell not in _CELLS:
            raise ValueError(f"expected cell to be one of {sorted(_CELLS)}, got {cell!r}")
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < vocab_size:
            raise ValueError(f"expected pad_id as an int in [0, {vocab_size}), got {pad_id!r}")
        self.vocab_size, self.pad_id, self.cell = vocab_size, pad_id, cell
        self.bidirectional = bool(bidirectional)
        self.out_dim = hidden * (2 if self.bidirectional else 1)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = _CELLS[cell](
            embed_dim, hidden, num_layers=num_layers, batch_first=True, bidirectional=self.bidirectional,
        )

    def lengths_from_padding(self, tokens: Tensor) -> Tensor:
        """(B,) lengths: the position after each row's last token that is not ``pad_id``."""
        self._check_tokens(tokens)
        positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
        lengths = ((tokens != self.pad_id) * positions).amax(dim=1)
        if (lengths == 0).any():
            row = int((lengths == 0).nonzero()[0])
            raise ValueError(f"row {row} of tokens holds only padding (pad_id={self.pad_id}), length 0")
        return lengths

    def _check_tokens(self, tokens: Tensor) -> None:
        if not isinstance(tokens, Tensor):
            raise TypeError(f"expected tokens as a torch.Tensor of shape (B, T), got {type(tokens).__name__}")
        if tokens.dim() != 2:
            raise ValueError(f"expected tokens of shape (B, T), got {tuple(tokens.shape)}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise TypeError(f"expected tokens as integer ids (torch.long), got {tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"expected token ids in [0, {self.vocab_size}), got values from "
                f"{int(tokens.min())} to {int(tokens.max())}"
            )

    def _check_lengths(self, lengths: Tensor, tokens: Tensor) -> None:
        B, T = tokens.shape
        if not isinstance(lengths, Tensor):
            raise TypeError(f"expected lengths as a torch.Tensor of shape (B,), got {type(lengths).__name__}")
        if lengths.shape != (B,):
            raise ValueError(f"expected lengths of shape (B,) = ({B},), got {tuple(lengths.shape)}")
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(f"expected lengths as integers, got {lengths.dtype}")
        if (lengths <= 0).any():
            raise ValueError(f"expected every length >= 1, got {lengths.tolist()}")
        if (lengths > T).any():
            raise ValueError(f"expected every length <= T = {T} (the tokens' width), got {lengths.tolist()}")

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check_tokens(tokens)
        if lengths is None:
            lengths = self.lengths_from_padding(tokens)
        else:
            self._check_lengths(lengths, tokens)
        B, T = tokens.shape
        packed = pack_padded_sequence(
            self.embed(tokens), lengths.cpu().long(), batch_first=True, enforce_sorted=False,
        )
        packed_out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)   # (B, T, C')
        h_n = state[0] if self.cell == "lstm" else state                  # (layers * dirs, B, hidden)
        if self.bidirectional:
            # last layer: forward state after the last real token, backward state after the first
            last = torch.cat([h_n[-2], h_n[-1]], dim=1)                   # (B, 2 * hidden)
        else:
            last = h_n[-1]                                                # (B, hidden)
        return last, outputs
