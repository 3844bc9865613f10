"""Audio front end and encoder: from a waveform to frames a model can attend to.

Introduced in notebook 04; the encoder is reused by the contrastive (08), fusion (09) and
multimodal (10) notebooks. The parts come in the order they compose:

    waveform (B, L) --frame--> (B, T, n_fft) --window, DFT--> STFT (B, n_fft//2+1, T)
      --|.|^2--> power --mel filterbank--> (B, F, T) --log--> log-mel --mean_normalize-->
      (B, F, T) --AudioEncoder--> pooled (B, C) and frames (B, T', C)

and, for training only, ``change_speed`` makes new voices from a waveform (B, L).
``trim_silence`` cuts a clip (L,) to its loud part, e.g. to join spoken words into a sentence.

Course audio is 8 kHz mono, one-second clips (8000 samples). With the defaults (``n_fft=256``,
32 ms windows; ``hop_length=80``, 10 ms hops; ``center=True``) a clip gives T = 101 frames,
frame t centred on sample ``t * hop_length``. Everything here is plain tensor code, so it runs
on any device and gradients flow through it.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

PAD_MODES = ("reflect", "constant", "replicate", "circular")
MEL_SCALES = ("htk", "slaney")


# --------------------------------------------------------------------------- checks

def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected {name} to be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"expected {name} > 0, got {name}={value}")
    return value


def _check_waveform(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (1, 2):
        raise ValueError(f"expected waveform {name} of shape (B, L) or (L,), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"expected a floating-point waveform {name}, got {x.dtype} "
            "(convert 16-bit PCM with x.float() / 32768)"
        )
    return x


# --------------------------------------------------------------------------- framing

def num_frames(n_samples: int, frame_length: int, hop_length: int, center: bool = True) -> int:
    """How many frames :func:`frame` (and :func:`stft`) cut from ``n_samples`` samples.

    Introduced in notebook 04. With ``center=True`` the signal is first padded by
    ``frame_length // 2`` on each side, so for an even frame_length T = 1 + n_samples // hop_length
    (101 for a course clip).
    """
    for value, name in ((n_samples, "n_samples"), (frame_length, "frame_length"), (hop_length, "hop_length")):
        _check_positive_int(value, name)
    padded = n_samples + 2 * (frame_length // 2) if center else n_samples
    return 1 + (padded - frame_length) // hop_length


def frame(
    x: torch.Tensor,
    frame_length: int,
    hop_length: int,
    center: bool = True,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Cut a waveform into overlapping frames, exactly as ``torch.stft`` does.

    Introduced in notebook 04. ``x`` is (B, L) or (L,); the result is (B, T, frame_length), or
    (T, frame_length) for an unbatched input, with frame t starting at sample ``t * hop_length``
    of the (padded) signal. ``center=True`` pads ``frame_length // 2`` samples on each side
    (``pad_mode`` as in ``torch.nn.functional.pad``) so that frame t is centred on sample
    ``t * hop_length`` of the original signal.
    """
    _check_waveform(x)
    _check_positive_int(frame_length, "frame_length")
    _check_positive_int(hop_length, "hop_length")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"expected pad_mode to be one of {PAD_MODES}, got {pad_mode!r}")
    unbatched = x.ndim == 1
    if unbatched:
        x = x.unsqueeze(0)  # (1, L)
    length = x.shape[-1]
    if center:
        pad = frame_length // 2
        if (pad_mode == "reflect" and pad >= length) or (pad_mode == "circular" and pad > length):
            raise ValueError(
                f"{pad_mode} padding by frame_length // 2 = {pad} samples needs a longer signal, "
                f"got L={length}; use a shorter frame or pad_mode='constant'"
            )
        # F.pad pads the last dimension of a (B, 1, L) tensor in every mode.
        x = F.pad(x.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)  # (B, L + 2 * pad)
    elif frame_length > length:
        raise ValueError(
            f"expected frame_length (n_fft) <= signal length L when center=False, "
            f"got frame_length={frame_length} and L={length}"
        )
    frames = x.unfold(-1, frame_length, hop_length)  # (B, T, frame_length)
    return frames.squeeze(0) if unbatched else frames


# --------------------------------------------------------------------------- windows

def _cosine_window(
    n: int, a0: float, periodic: bool, dtype: torch.dtype | None, device: torch.device | str | None
) -> torch.Tensor:
    """w[i] = a0 - (1 - a0) cos(2 pi i / M), with M = n (periodic) or n - 1 (symmetric)."""
    _check_positive_int(n, "window length")
    dtype = dtype or torch.get_default_dtype()
    if n == 1:  # a one-sample window is [1], as in torch (the formula would divide by zero)
        return torch.ones(1, dtype=dtype, device=device)
    period = n if periodic else n - 1
    i = torch.arange(n, dtype=torch.float64, device=device)
    window = a0 - (1.0 - a0) * torch.cos(2 * math.pi * i / period)
    return window.to(dtype)


def hann_window(
    n: int,
    periodic: bool = True,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Hann window of length n: w[i] = 0.5 - 0.5 cos(2 pi i / M), shape (n,).

    Introduced in notebook 04. ``periodic=True`` (M = n) is the window for spectral analysis:
    shifted copies at hop n/4 sum to a constant. ``periodic=False`` (M = n - 1) is symmetric.
    Equals ``torch.hann_window``.
    """
    return _cosine_window(n, 0.5, periodic, dtype, device)


def hamming_window(
    n: int,
    periodic: bool = True,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Hamming window of length n: w[i] = 0.54 - 0.46 cos(2 pi i / M), shape (n,).

    Introduced in notebook 04. Unlike Hann it does not reach zero at the ends, which lowers the
    first side lobe. Equals ``torch.hamming_window``.
    """
    return _cosine_window(n, 0.54, periodic, dtype, device)


# --------------------------------------------------------------------------- DFT and STFT

def dft_matrix(
    n: int,
    onesided: bool = False,
    dtype: torch.dtype = torch.complex128,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The DFT matrix W[k, i] = exp(-2 pi j k i / n), shape (K, n) with K = n or n // 2 + 1.

    Introduced in notebook 04. ``onesided=True`` keeps only the rows k = 0 .. n // 2: for a real
    signal the other rows are their complex conjugates and carry nothing new.
    """
    _check_positive_int(n, "n")
    n_rows = n // 2 + 1 if onesided else n
    k = torch.arange(n_rows, device=device)
    i = torch.arange(n, device=device)
    # k * i is reduced mod n in integers first, so the angle stays in [0, 2 pi) and accurate for large n
    turns = (k[:, None] * i[None, :]) % n  # (K, n)
    angle = -2 * math.pi * turns.to(torch.float64) / n
    return torch.polar(torch.ones_like(angle), angle).to(dtype)


def dft(x: torch.Tensor, onesided: bool = False) -> torch.Tensor:
    """Discrete Fourier transform over the last dimension, as one matrix product.

    Introduced in notebook 04. X[..., k] = sum_i x[..., i] exp(-2 pi j k i / N) for a real or
    complex x of shape (..., N); the result is complex, (..., N), or (..., N // 2 + 1) with
    ``onesided=True``. Equals ``torch.fft.fft`` (and ``torch.fft.rfft`` when onesided), but
    costs O(N^2) instead of the FFT's O(N log N).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected x to be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"expected x of shape (..., N) with N >= 1, got {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"expected a floating-point or complex x, got {x.dtype}")
    if onesided and x.is_complex():
        raise ValueError("onesided=True needs a real x: a complex signal's spectrum is not symmetric")
    complex_dtype = torch.promote_types(x.dtype, torch.complex64)
    w = dft_matrix(x.shape[-1], onesided, complex_dtype, x.device)  # (K, N)
    if x.is_complex():
        return x @ w.T  # (..., K)
    # a real signal needs only real products, x @ cos and x @ -sin: half the work of complex ones
    x = x.to(w.real.dtype)
    return torch.complex(x @ w.real.T, x @ w.imag.T)  # (..., K)


def stft(
    x: torch.Tensor,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: torch.Tensor | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """Short-time Fourier transform by hand: frame, multiply by the window, DFT each frame.

    Introduced in notebook 04. ``x`` is (B, L) or (L,); the result is complex,
    (B, n_fft // 2 + 1, T) or (n_fft // 2 + 1, T), bin k at frequency k * sample_rate / n_fft.
    Equals ``torch.stft(x, n_fft, hop_length, win_length, window, center, pad_mode,
    return_complex=True)`` given the same window. ``hop_length`` defaults to n_fft // 4 and
    ``win_length`` to n_fft, as in torch; a window shorter than n_fft is zero-padded on both
    sides to n_fft. **Unlike torch**, whose default window is rectangular, ``window=None``
    means a periodic Hann window of length ``win_length``.
    """
    _check_waveform(x)
    _check_positive_int(n_fft, "n_fft")
    hop_length = n_fft // 4 if hop_length is None else hop_length
    win_length = n_fft if win_length is None else win_length
    _check_positive_int(hop_length, "hop_length")
    _check_positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ValueError(f"expected win_length <= n_fft, got win_length={win_length}, n_fft={n_fft}")
    if window is None:
        window = hann_window(win_length, dtype=x.dtype, device=x.device)
    if not isinstance(window, torch.Tensor) or window.shape != (win_length,):
        got = tuple(window.shape) if isinstance(window, torch.Tensor) else type(window).__name__
        raise ValueError(f"expected window of shape (win_length,) = ({win_length},), got {got}")
    left = (n_fft - win_length) // 2
    window = F.pad(window.to(dtype=x.dtype, device=x.device), (left, n_fft - win_length - left))
    frames = frame(x, n_fft, hop_length, center, pad_mode)  # (B, T, n_fft)
    spectrum = dft(frames * window, onesided=True)  # (B, T, n_fft // 2 + 1)
    return spectrum.transpose(-1, -2)  # (B, n_fft // 2 + 1, T)


def power_spectrogram(
    x: torch.Tensor,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: torch.Tensor | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
) -> torch.Tensor:
    """|STFT|^2, the energy in each frequency bin and frame: real, (B, n_fft // 2 + 1, T).

    Introduced in notebook 04. Same arguments as :func:`stft`. Squared magnitude rather than
    magnitude, because it is smooth at zero (the magnitude's gradient is not).
    """
    spectrum = stft(x, n_fft, hop_length, win_length, window, center, pad_mode)
    return spectrum.real.square() + spectrum.imag.square()


# --------------------------------------------------------------------------- mel scale

def _check_scale(scale: str) -> None:
    if scale not in MEL_SCALES:
        raise ValueError(f"expected scale to be one of {MEL_SCALES}, got {scale!r}")


def hz_to_mel(freq: float | torch.Tensor, scale: str = "htk") -> float | torch.Tensor:
    """Frequency in Hz to mel, for a number or a tensor of any shape.

    Introduced in notebook 04. The mel scale spaces pitches the way listeners hear them:
    roughly linear below 1 kHz, logarithmic above.

    - ``"htk"``: m = 2595 log10(1 + f / 700), so 1000 Hz is about 1000 mel;
    - ``"slaney"`` (Auditory Toolbox): m = 3 f / 200 below 1000 Hz (1000 Hz = 15 mel), then
      m = 15 + 27 ln(f / 1000) / ln(6.4), so each factor 6.4 in frequency adds 27 mel.
    """
    _check_scale(scale)
    f = torch.as_tensor(freq, dtype=torch.float64) if not isinstance(freq, torch.Tensor) else freq
    if bool((f < 0).any()):
        raise ValueError(f"expected frequencies >= 0 Hz, got a minimum of {f.min().item()}")
    if scale == "htk":
        mel = 2595.0 * torch.log10(1.0 + f / 700.0)
    else:
        # clamp keeps the unused log branch finite (and its gradient free of NaN) below 1 kHz
        log_part = 15.0 + 27.0 * torch.log(f.clamp(min=1000.0) / 1000.0) / math.log(6.4)
        mel = torch.where(f < 1000.0, 3.0 * f / 200.0, log_part)
    return mel if isinstance(freq, torch.Tensor) else mel.item()


def mel_to_hz(mel: float | torch.Tensor, scale: str = "htk") -> float | torch.Tensor:
    """Mel back to Hz, the inverse of :func:`hz_to_mel` (same ``scale`` names).

    Introduced in notebook 04. HTK: f = 700 (10^(m / 2595) - 1).
    """
    _check_scale(scale)
    m = torch.as_tensor(mel, dtype=torch.float64) if not isinstance(mel, torch.Tensor) else mel
    if bool((m < 0).any()):
        raise ValueError(f"expected mels >= 0, got a minimum of {m.min().item()}")
    if scale == "htk":
        f = 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)
    else:
        log_part = 1000.0 * torch.exp(math.log(6.4) * (m.clamp(min=15.0) - 15.0) / 27.0)
        f = torch.where(m < 15.0, 200.0 * m / 3.0, log_part)
    return f if isinstance(mel, torch.Tensor) else f.item()


def mel_filterbank(
    n_mels: int,
    n_fft: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: str = "htk",
    norm: str | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Triangular mel filters, shape (F, n_fft // 2 + 1) with F = n_mels.

    Introduced in notebook 04. n_mels + 2 edge frequencies are spaced equally in mel from
    ``f_min`` to ``f_max`` (default: Nyquist, sample_rate / 2). Filter m rises linearly from 0 at
    edge m to 1 at edge m + 1 (its centre) and falls back to 0 at edge m + 2, evaluated at the
    STFT bin frequencies k * sample_rate / n_fft. Neighbouring triangles cross at 1/2, so the
    filters sum to 1 between the first and the last centre. ``norm="slaney"`` divides each
    filter by half its width in Hz, so that each has the same area instead of the same peak.
    Multiply a power spectrogram (B, n_fft // 2 + 1, T) by it to get a mel spectrogram (B, F, T).
    """
    _check_positive_int(n_mels, "n_mels")
    _check_positive_int(n_fft, "n_fft")
    _check_positive_int(sample_rate, "sample_rate")
    _check_scale(scale)
    if norm not in (None, "slaney"):
        raise ValueError(f"expected norm to be None or 'slaney', got {norm!r}")
    nyquist = sample_rate / 2
    f_max = nyquist if f_max is None else f_max
    if f_max > nyquist:
        raise ValueError(
            f"expected f_max <= Nyquist frequency sample_rate / 2 = {nyquist} Hz, got f_max={f_max}"
        )
    if not 0 <= f_min < f_max:
        raise ValueError(f"expected 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")

    bin_hz = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft  # (K,)
    edges_mel = torch.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2,
                               dtype=torch.float64)
    edges_hz = mel_to_hz(edges_mel, scale)  # (F + 2,)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]  # (F, 1)
    rising = (bin_hz - lower) / (centre - lower)  # (F, K)
    falling = (upper - bin_hz) / (upper - centre)
    filters = torch.minimum(rising, falling).clamp(min=0.0)
    if norm == "slaney":
        filters = filters * (2.0 / (upper - lower))
    empty = (filters.amax(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        warnings.warn(
            f"mel filters {empty} contain no STFT bin: n_mels={n_mels} is too many for "
            f"n_fft={n_fft} at {sample_rate} Hz; use fewer mels or a larger n_fft",
            stacklevel=2,
        )
    return filters.to(dtype=dtype or torch.get_default_dtype(), device=device)


# --------------------------------------------------------------------------- log-mel

def _log_mel_with(
    x: torch.Tensor,
    window: torch.Tensor,
    filters: torch.Tensor,
    n_fft: int,
    hop_length: int,
    center: bool,
    eps: float,
) -> torch.Tensor:
    power = power_spectrogram(x, n_fft, hop_length, window.shape[0], window, center)  # (B, K, T)
    mel = filters.to(power.dtype) @ power  # (B, F, T)
    return torch.log(mel + eps)


def log_mel(
    x: torch.Tensor,
    sample_rate: int = 8000,
    n_fft: int = 256,
    hop_length: int = 80,
    n_mels: int = 40,
    win_length: int | None = None,
    f_min: float = 0.0,
    f_max: float | None = None,
    eps: float = 1e-6,
    center: bool = True,
) -> torch.Tensor:
    """Log-mel spectrogram: log(mel filterbank @ |STFT|^2 + eps), shape (B, F, T) or (F, T).

    Introduced in notebook 04. ``x`` is (B, L) or (L,), F = n_mels. The STFT uses a periodic
    Hann window of ``win_length`` (default n_fft) samples; filters are HTK-scale triangles with
    peak 1 (:func:`mel_filterbank`). The floor: ``eps`` is added before the natural log, so
    silence gives log(eps) (about -13.8 for 1e-6) instead of -inf, and the gradient stays
    finite. For samples in [-1, 1] a full-scale tone reaches about +8.
    """
    _check_waveform(x)
    if not eps > 0:
        raise ValueError(f"expected eps > 0 (the floor inside the log), got eps={eps}")
    _check_positive_int(n_fft, "n_fft")
    win_length = n_fft if win_length is None else win_length
    window = hann_window(win_length, dtype=x.dtype, device=x.device)
    filters = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max, dtype=x.dtype, device=x.device)
    return _log_mel_with(x, window, filters, n_fft, hop_length, center, eps)


class LogMel(nn.Module):
    """:func:`log_mel` as a module: waveform (B, L) to log-mel (B, F, T).

    Introduced in notebook 04. The window and the filterbank are buffers, so they follow the
    module through ``.to(device)`` and ``.double()``; they are not saved in ``state_dict``
    because the arguments rebuild them exactly.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        n_fft: int = 256,
        hop_length: int = 80,
        n_mels: int = 40,
        win_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
        center: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_int(n_fft, "n_fft")
        _check_positive_int(hop_length, "hop_length")
        if not eps > 0:
            raise ValueError(f"expected eps > 0 (the floor inside the log), got eps={eps}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.eps, self.center = n_mels, eps, center
        win_length = n_fft if win_length is None else win_length
        self.register_buffer("window", hann_window(win_length), persistent=False)
        self.register_buffer(
            "filters", mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max), persistent=False
        )

    def num_frames(self, n_samples: int) -> int:
        """T, the number of frames for a waveform of ``n_samples`` samples."""
        return num_frames(n_samples, self.n_fft, self.hop_length, self.center)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_waveform(x)
        return _log_mel_with(
            x, self.window.to(x.dtype), self.filters, self.n_fft, self.hop_length, self.center, self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"n_mels={self.n_mels}, eps={self.eps}, center={self.center}"
        )


# --------------------------------------------------------------------------- per-clip normalization

def mean_normalize(log_mel: torch.Tensor, top_db: float = 40.0) -> torch.Tensor:
    """Subtract each clip's mean log-mel over its loud frames; quiet frames become 0.

    Introduced in notebook 04. ``log_mel`` is (B, F, T) or (F, T), natural-log power as
    :func:`log_mel` gives; the result has the same shape. A frame is loud when its total mel
    power, ``logsumexp`` over the F bins, is within ``top_db`` decibels of the clip's loudest
    frame. A voice's timbre and the recording's loudness add (about) the same constant to a mel
    bin in every frame of a log spectrum, so subtracting the per-bin mean over the loud frames
    removes them (cepstral mean normalization); the silence and the faint edges of the word,
    where that mean would be meaningless, are set to 0, the new mean.
    """
    if not isinstance(log_mel, torch.Tensor):
        raise TypeError(f"expected log_mel to be a torch.Tensor, got {type(log_mel).__name__}")
    if log_mel.ndim not in (2, 3) or 0 in log_mel.shape:
        raise ValueError(f"expected log_mel of shape (B, F, T) or (F, T), got {tuple(log_mel.shape)}")
    if not log_mel.is_floating_point():
        raise TypeError(f"expected a floating-point log_mel, got {log_mel.dtype}")
    if not top_db > 0:
        raise ValueError(f"expected top_db > 0, got top_db={top_db}")
    frame_level = torch.logsumexp(log_mel, dim=-2, keepdim=True)  # (B, 1, T): log total power
    floor = frame_level.amax(dim=-1, keepdim=True) - top_db / 10 * math.log(10)  # dB -> natural log
    loud = (frame_level > floor).to(log_mel.dtype)  # (B, 1, T); the loudest frame always counts
    mean = (log_mel * loud).sum(dim=-1, keepdim=True) / loud.sum(dim=-1, keepdim=True)  # (B, F, 1)
    return (log_mel - mean) * loud


# --------------------------------------------------------------------------- trimming silence

def trim_silence(waveform: torch.Tensor, threshold: float = 0.05, frame_length: int = 80) -> torch.Tensor:
    """The loud part of a clip ``(L,)`` → ``(L',)``, cut at whole frames of ``frame_length`` samples.

    Introduced in notebook 11. A frame is loud when its largest absolute sample reaches
    ``threshold`` times the clip's largest; the result runs from the first loud frame to the
    last (quiet frames between them stay). A trailing part shorter than a frame is ignored.
    """
    if not isinstance(waveform, torch.Tensor) or waveform.dim() != 1 or len(waveform) < frame_length:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError(f"expected a waveform of shape (L,) with L >= frame_length = {frame_length}, got {shape}")
    if not waveform.is_floating_point():
        raise TypeError(f"expected a floating waveform in [-1, 1], got {waveform.dtype}")
    if not 0 < threshold < 1:
        raise ValueError(f"expected 0 < threshold < 1, got {threshold}")
    n_frames = len(waveform) // frame_length
    level = waveform[: n_frames * frame_length].reshape(n_frames, frame_length).abs().amax(dim=1)  # (frames,)
    if level.max() == 0:  # an all-zero clip has no loud part
        return waveform[:0]
    loud = torch.nonzero(level >= threshold * level.max()).flatten()
    return waveform[loud[0] * frame_length: (loud[-1] + 1) * frame_length]


# --------------------------------------------------------------------------- speed augmentation

def change_speed(x: torch.Tensor, rate: float) -> torch.Tensor:
    """Play waveforms ``rate`` times as fast, keeping their length: (B, L) or (L,), same shape.

    Introduced in notebook 04, where it makes new training voices from old ones: playing
    faster raises the pitch and the formants together, as a shorter vocal tract would. The
    signal is resampled to L' = ``round(L / rate)`` samples by linear interpolation (sample i
    of the result is read at position ``(i + 0.5) * L / L' - 0.5`` of the input, clamped to
    the ends, as ``torch.nn.functional.interpolate(mode="linear", align_corners=False)``
    does; L / L' is ``rate`` up to the rounding of L'), then cut or
    zero-padded back to L samples about the middle, so a centred word stays centred. Linear
    interpolation does not filter before it drops samples; for the small changes used as
    augmentation (0.8 to 1.25) the aliasing it lets through is faint.
    """
    _check_waveform(x)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"expected rate to be a number > 0, got {rate!r}")
    length = x.shape[-1]
    new_length = round(length / rate)
    if new_length < 1:
        raise ValueError(f"rate={rate} leaves no sample of a waveform of L={length} samples")
    batched = x if x.ndim == 2 else x.unsqueeze(0)  # (B, L)
    stretched = F.interpolate(batched.unsqueeze(1), size=new_length, mode="linear", align_corners=False)
    stretched = stretched.squeeze(1)  # (B, L')
    left = (length - new_length) // 2
    out = F.pad(stretched, (left, length - new_length - left))  # negative padding cuts: (B, L)
    return out if x.ndim == 2 else out.squeeze(0)


# --------------------------------------------------------------------------- encoder

class AudioFeatures(NamedTuple):
    """What :class:`AudioEncoder` returns: ``pooled`` (B, C) and ``frames`` (B, T', C)."""

    pooled: torch.Tensor
    frames: torch.Tensor


class _FrameNorm(nn.LayerNorm):
    """LayerNorm over channels of each frame of a (B, C, T) tensor; never mixes frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def _conv_block(channels_in: int, channels_out: int, kernel_size: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(channels_in, channels_out, kernel_size, stride, padding=kernel_size // 2),
        _FrameNorm(channels_out),
        nn.GELU(),
    )


class AudioEncoder(nn.Module):
    """A small 1-D convolutional encoder over log-mel frames.

    Introduced in notebook 04; reused in notebooks 08 to 10. Input: log-mel (B, F, T) with
    F = ``n_mels`` (mel bins are the input channels, convolution runs over time). Output:
    :class:`AudioFeatures` with per-frame features ``frames`` (B, T', C) and their mean
    ``pooled`` (B, C), C = ``dim``.

    Layout: a stem convolution (kernel 5), then ``n_downsample`` stages, each a stride-2
    convolution followed by a residual convolution (kernel 3), then a LayerNorm. Every
    convolution is followed by a per-frame LayerNorm and GELU; nothing mixes frames except
    the convolutions, so each output frame sees only its receptive field.

    Alignment with the spectrogram: T' = ceil(T / stride) with ``stride = 2 ** n_downsample``,
    and output frame j is centred on spectrogram frame ``j * stride``, i.e. on sample
    ``j * stride * hop_length`` of the waveform. With the defaults (stride 4, hop 10 ms) a
    one-second clip's 101 frames become 26, one every 40 ms, each seeing
    ``receptive_field`` = 23 spectrogram frames (about 0.23 s). To overlay attention over
    output frames on a spectrogram, repeat each weight ``stride`` times along time
    (:meth:`to_spectrogram_frames`).
    """

    def __init__(
        self,
        n_mels: int = 40,
        dim: int = 128,
        n_downsample: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_positive_int(n_mels, "n_mels")
        _check_positive_int(dim, "dim")
        if isinstance(n_downsample, bool) or not isinstance(n_downsample, int) or n_downsample < 0:
            raise ValueError(f"expected n_downsample to be an int >= 0, got {n_downsample!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"expected 0 <= dropout < 1, got {dropout}")
        self.n_mels, self.dim, self.stride = n_mels, dim, 2**n_downsample
        self.stem = _conv_block(n_mels, dim, kernel_size=5, stride=1)
        self.down = nn.ModuleList(_conv_block(dim, dim, 3, stride=2) for _ in range(n_downsample))
        self.refine = nn.ModuleList(_conv_block(dim, dim, 3, stride=1) for _ in range(n_downsample))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        # stem: 5 frames; each stage adds 2 input steps for the stride-2 conv and 2 output steps
        # (twice the input spacing) for the residual conv
        self.receptive_field = 5 + sum(2 * 2**s + 2 * 2 ** (s + 1) for s in range(n_downsample))

    def output_length(self, n_frames: int) -> int:
        """T' for an input of T = ``n_frames`` spectrogram frames: ceil(T / stride)."""
        return -(-n_frames // self.stride)

    def to_spectrogram_frames(self, per_frame: torch.Tensor, n_frames: int) -> torch.Tensor:
        """Spread values over output frames (..., T') back onto T spectrogram frames (..., T).

        Spectrogram frame t takes the value of the output frame centred nearest to it,
        round(t / stride); use it to draw attention weights over a spectrogram.
        """
        expected = self.output_length(n_frames)
        if per_frame.shape[-1] != expected:
            raise ValueError(
                f"expected (..., T') with T' = ceil({n_frames} / {self.stride}) = {expected}, "
                f"got {tuple(per_frame.shape)}"
            )
        t = torch.arange(n_frames, device=per_frame.device)
        nearest = torch.div(2 * t + self.stride, 2 * self.stride, rounding_mode="floor")
        return per_frame[..., nearest.clamp(max=expected - 1)]

    def forward(self, log_mel: torch.Tensor) -> AudioFeatures:
        if not isinstance(log_mel, torch.Tensor):
            raise TypeError(f"expected log_mel to be a torch.Tensor, got {type(log_mel).__name__}")
        if log_mel.ndim != 3 or log_mel.shape[1] != self.n_mels or log_mel.shape[2] == 0:
            raise ValueError(
                f"expected log_mel of shape (B, F, T) with F = n_mels = {self.n_mels}, "
                f"got {tuple(log_mel.shape)}"
            )
        if not log_mel.is_floating_point():
            raise TypeError(f"expected a floating-point log_mel, got {log_mel.dtype}")
        h = self.stem(log_mel)  # (B, C, T)
        for down, refine in zip(self.down, self.refine):
            h = down(h)  # (B, C, ceil(T / 2)) per stage
            h = h + self.dropout(refine(h))
        frames = self.norm(h.transpose(1, 2))  # (B, T', C)
        return AudioFeatures(pooled=frames.mean(dim=1), frames=frames)
