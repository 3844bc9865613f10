"""Tests for mmcourse.audio against torch's own ops, hand-computed values and NumPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mmcourse.audio import (
    AudioEncoder,
    LogMel,
    dft,
    dft_matrix,
    frame,
    hamming_window,
    hann_window,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    change_speed,
    mean_normalize,
    mel_to_hz,
    trim_silence,
    num_frames,
    power_spectrogram,
    stft,
)

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5)}



def signal(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- framing

def test_frame_by_hand_without_centring():
    frames = frame(torch.arange(10.0), frame_length=4, hop_length=3, center=False)
    assert torch.equal(frames, torch.tensor([[0.0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]))


def test_frame_by_hand_with_reflect_centring():
    # reflect-padding [0..5] by 2 gives [2, 1, 0, 1, 2, 3, 4, 5, 4, 3]
    frames = frame(torch.arange(6.0), frame_length=4, hop_length=2)
    expected = torch.tensor([[2.0, 1, 0, 1], [0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 4, 3]])
    assert torch.equal(frames, expected)


@pytest.mark.parametrize("n_fft, hop, center, pad_mode", [
    (16, 4, True, "reflect"), (16, 5, False, "reflect"), (15, 7, True, "constant"),
    (32, 32, True, "replicate"), (8, 3, True, "circular"),
])
def test_frame_matches_torch_stft_framing(n_fft, hop, center, pad_mode):
    # a rectangular-window STFT is the FFT of torch's own frames
    x = signal(3, 101)
    ours = torch.fft.rfft(frame(x, n_fft, hop, center, pad_mode), dim=-1).transpose(1, 2)
    theirs = torch.stft(x, n_fft, hop, window=torch.ones(n_fft, dtype=x.dtype), center=center,
                        pad_mode=pad_mode, return_complex=True)
    torch.testing.assert_close(ours, theirs, **TOL[torch.float64])
    assert frame(x, n_fft, hop, center, pad_mode).shape == (3, num_frames(101, n_fft, hop, center), n_fft)


def test_frame_unbatched_is_first_row_of_batched():
    x = signal(2, 50)
    assert torch.equal(frame(x[0], 8, 2), frame(x, 8, 2)[0])


def test_course_clip_gives_101_frames():
    assert num_frames(8000, 256, 80) == 101
    assert frame(torch.zeros(8000), 256, 80).shape == (101, 256)


# --------------------------------------------------------------------------- windows

@pytest.mark.parametrize("n", [1, 2, 7, 64, 256])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_windows_match_torch(n, periodic, dtype):
    torch.testing.assert_close(hann_window(n, periodic, dtype=dtype),
                               torch.hann_window(n, periodic, dtype=dtype), **TOL[dtype])
    torch.testing.assert_close(hamming_window(n, periodic, dtype=dtype),
                               torch.hamming_window(n, periodic, dtype=dtype), **TOL[dtype])


def test_periodic_hann_overlap_adds_to_a_constant():
    # the reason the STFT uses the periodic window: copies at hop n/4 sum to 2 everywhere
    w = hann_window(16, dtype=torch.float64)
    total = sum(torch.roll(w, shift) for shift in range(0, 16, 4))
    torch.testing.assert_close(total, torch.full((16,), 2.0, dtype=torch.float64))


# --------------------------------------------------------------------------- DFT

@pytest.mark.parametrize("n", [1, 2, 7, 16, 255, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dft_matches_torch_fft(n, dtype):
    x = signal(3, n, dtype=dtype)
    torch.testing.assert_close(dft(x), torch.fft.fft(x), **TOL[dtype])
    torch.testing.assert_close(dft(x, onesided=True), torch.fft.rfft(x), **TOL[dtype])
    z = torch.complex(x, signal(3, n, dtype=dtype, seed=1))
    torch.testing.assert_close(dft(z), torch.fft.fft(z), **TOL[dtype])


def test_dft_by_hand():
    # [1, 2, 3, 4]: X0 = 10, X1 = -2 + 2j, X2 = -2, X3 = -2 - 2j
    expected = torch.tensor([10, -2 + 2j, -2, -2 - 2j], dtype=torch.complex128)
    torch.testing.assert_close(dft(torch.tensor([1.0, 2, 3, 4], dtype=torch.float64)), expected)


def test_dft_matrix_by_hand():
    # rows are powers of exp(-2 pi j k / 4): 1, -j, -1, j
    expected = torch.tensor([[1, 1, 1, 1], [1, -1j, -1, 1j], [1, -1, 1, -1], [1, 1j, -1, -1j]])
    torch.testing.assert_close(dft_matrix(4), expected.to(torch.complex128))
    torch.testing.assert_close(dft_matrix(4, onesided=True), expected[:3].to(torch.complex128))


def test_dft_parseval():
    x = torch.complex(signal(4, 100), signal(4, 100, seed=1))
    energy_time = x.abs().square().sum(-1)
    energy_freq = dft(x).abs().square().sum(-1) / 100
    torch.testing.assert_close(energy_freq, energy_time, **TOL[torch.float64])


def test_dft_gradcheck():
    assert torch.autograd.gradcheck(dft, (signal(2, 9).requires_grad_(),))


# --------------------------------------------------------------------------- STFT

@pytest.mark.parametrize("n_fft, hop, win_length, center, pad_mode", [
    (256, 80, None, True, "reflect"),
    (256, 64, 200, False, "reflect"),
    (64, 16, None, True, "constant"),
    (63, 10, 50, True, "reflect"),
    (32, 32, 31, False, "reflect"),
    (16, 1, 16, True, "replicate"),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stft_matches_torch(n_fft, hop, win_length, center, pad_mode, dtype):
    x = signal(3, 1000, dtype=dtype)
    window = torch.hann_window(win_length or n_fft, dtype=dtype)
    theirs = torch.stft(x, n_fft, hop, win_length, window, center, pad_mode, return_complex=True)
    ours = stft(x, n_fft, hop, win_length, window, center, pad_mode)
    assert ours.shape == theirs.shape == (3, n_fft // 2 + 1, num_frames(1000, n_fft, hop, center))
    torch.testing.assert_close(ours, theirs, **TOL[dtype])
    torch.testing.assert_close(stft(x[1], n_fft, hop, win_length, window, center, pad_mode),
                               theirs[1], **TOL[dtype])
    torch.testing.assert_close(power_spectrogram(x, n_fft, hop, win_length, window, center, pad_mode),
                               theirs.abs().square(), **TOL[dtype])


def test_stft_default_window_is_periodic_hann():
    x = signal(2, 500)
    theirs = torch.stft(x, 64, window=torch.hann_window(64, dtype=x.dtype), return_complex=True)
    torch.testing.assert_close(stft(x, 64), theirs, **TOL[torch.float64])


@pytest.mark.parametrize("freq, expected_bin", [(1000.0, 32), (1240.0, 40), (3000.0, 96)])
def test_stft_of_a_sine_peaks_at_its_bin(freq, expected_bin):
    # bins are 8000 / 256 = 31.25 Hz apart: 1240 Hz is bin 39.7, nearest 40
    t = torch.arange(8000, dtype=torch.float64) / 8000
    spectrum = stft(0.5 * torch.sin(2 * math.pi * freq * t), 256, 80).abs()  # (129, 101)
    # frames 2 .. 98 lie wholly inside the clip; the outer ones also see the reflected padding
    assert torch.equal(spectrum[:, 2:-2].argmax(dim=0), torch.full((97,), expected_bin))


def test_stft_magnitude_of_a_bin_centred_sine():
    # a sine of amplitude A on bin k gives |X_k| = A * sum(window) / 2 = A * n_fft / 4 with Hann
    t = torch.arange(8000, dtype=torch.float64) / 8000
    spectrum = stft(0.5 * torch.sin(2 * math.pi * 1000.0 * t), 256, 80).abs()
    torch.testing.assert_close(spectrum[32, 5:-5], torch.full((91,), 0.5 * 256 / 4, dtype=torch.float64))


def test_stft_gradcheck():
    x = signal(2, 12).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: stft(x, 8, 3), (x,))


# --------------------------------------------------------------------------- mel scale

def test_mel_scale_hand_values():
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.02)  # 999.985: the scale's anchor
    assert hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    assert hz_to_mel(0.0) == 0.0
    assert hz_to_mel(500.0, "slaney") == pytest.approx(7.5)  # linear part: 3 f / 200
    assert hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert hz_to_mel(6400.0, "slaney") == pytest.approx(42.0)  # a factor 6.4 adds 27 mel
    assert mel_to_hz(42.0, "slaney") == pytest.approx(6400.0)
    assert isinstance(hz_to_mel(440.0), float)


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_mel_scale_round_trips_and_increases(scale):
    f = torch.linspace(0, 8000, 1001, dtype=torch.float64)
    mel = hz_to_mel(f, scale)
    assert bool((mel.diff() > 0).all())
    torch.testing.assert_close(mel_to_hz(mel, scale), f, rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------------- mel filterbank

def numpy_filterbank(n_mels, n_fft, sample_rate, f_min, f_max, scale):
    """The definition, written out with loops: triangles between mel-spaced edges."""
    if scale == "htk":
        to_mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
        to_hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    else:
        to_mel = lambda f: 3 * f / 200 if f < 1000 else 15 + 27 * np.log(f / 1000) / np.log(6.4)  # noqa: E731
        to_hz = lambda m: 200 * m / 3 if m < 15 else 1000 * 6.4 ** ((m - 15) / 27)  # noqa: E731
    low, high = to_mel(f_min), to_mel(f_max)
    edges = [to_hz(low + i * (high - low) / (n_mels + 1)) for i in range(n_mels + 2)]
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * sample_rate / n_fft
            if left <= f <= centre:
                out[m, k] = (f - left) / (centre - left)
            elif centre < f <= right:
                out[m, k] = (right - f) / (right - centre)
    return out


@pytest.mark.parametrize("n_mels, n_fft, sample_rate, f_min, f_max, scale", [
    (40, 256, 8000, 0.0, None, "htk"),
    (40, 256, 8000, 0.0, None, "slaney"),
    (20, 512, 16000, 60.0, 7000.0, "htk"),
    (10, 64, 8000, 300.0, 3400.0, "slaney"),
])
def test_filterbank_matches_numpy_definition(n_mels, n_fft, sample_rate, f_min, f_max, scale):
    ours = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max, scale, dtype=torch.float64)
    reference = numpy_filterbank(n_mels, n_fft, sample_rate, f_min, f_max or sample_rate / 2, scale)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-12)


def test_filterbank_hand_case_linear_region():
    # Slaney below 1 kHz is linear, so edges are 0, 266.7, 533.3, 800 Hz; bins are 0, 200 .. 800 Hz.
    # filter 0 at 200 Hz: 200/266.7 = 0.75, at 400 Hz: (533.3-400)/266.7 = 0.5; filter 1 mirrors it
    expected = torch.tensor([[0, 0.75, 0.5, 0, 0], [0, 0, 0.5, 0.75, 0]], dtype=torch.float64)
    ours = mel_filterbank(2, 8, 1600, scale="slaney", dtype=torch.float64)
    torch.testing.assert_close(ours, expected)


def test_filterbank_hand_case_htk():
    # one HTK filter over 0-4000 Hz: mel(4000) = 2146.06, centre 1073.03 mel = 1113.8 Hz;
    # bins at 1, 2, 3 kHz: 1000/1113.8, (4000-2000)/(4000-1113.8), (4000-3000)/(4000-1113.8)
    ours = mel_filterbank(1, 8, 8000, dtype=torch.float64)
    expected = torch.tensor([[0, 0.8978, 0.6930, 0.3465, 0]], dtype=torch.float64)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4)


def test_filterbank_properties():
    n_mels, n_fft, sample_rate = 40, 8192, 8000  # a dense grid of bins, so peaks are resolved
    fb = mel_filterbank(n_mels, n_fft, sample_rate, f_min=50.0, dtype=torch.float64)
    bin_hz = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    assert bool((fb >= 0).all())
    assert bool((fb <= 1).all()) and bool((fb.amax(dim=1) > 0.97).all())  # peak 1 at the centre
    peaks = bin_hz[fb.argmax(dim=1)]
    spacing = hz_to_mel(peaks).diff()
    expected_spacing = (hz_to_mel(4000.0) - hz_to_mel(50.0)) / (n_mels + 1)
    torch.testing.assert_close(spacing, torch.full_like(spacing, expected_spacing), rtol=0, atol=2.0)
    first_centre = mel_to_hz(hz_to_mel(50.0) + expected_spacing)
    last_centre = mel_to_hz(hz_to_mel(50.0) + n_mels * expected_spacing)
    interior = (bin_hz >= first_centre) & (bin_hz <= last_centre)
    torch.testing.assert_close(fb.sum(0)[interior], torch.ones(int(interior.sum()), dtype=torch.float64),
                               rtol=0, atol=1e-12)
    assert bool(((fb[:-1] > 0) & (fb[1:] > 0)).any(dim=1).all())  # neighbours overlap
    assert bool((fb[:, bin_hz < 50.0] == 0).all())  # nothing below f_min


def test_filterbank_slaney_norm_gives_unit_area():
    n_fft, sample_rate = 16384, 8000
    fb = mel_filterbank(20, n_fft, sample_rate, norm="slaney", dtype=torch.float64)
    area = fb.sum(dim=1) * sample_rate / n_fft  # a Riemann sum over the bin spacing in Hz
    torch.testing.assert_close(area, torch.ones(20, dtype=torch.float64), rtol=0, atol=1e-3)


def test_filterbank_warns_about_empty_filters():
    with pytest.warns(UserWarning, match="contain no STFT bin"):
        mel_filterbank(128, 64, 8000)


# --------------------------------------------------------------------------- log-mel

def test_log_mel_matches_torch_composition():
    x = signal(2, 8000)
    power = torch.stft(x, 256, 80, window=torch.hann_window(256, dtype=x.dtype), return_complex=True)
    fb = torch.from_numpy(numpy_filterbank(40, 256, 8000, 0.0, 4000.0, "htk"))
    expected = torch.log(fb @ power.abs().square() + 1e-6)
    ours = log_mel(x)
    assert ours.shape == (2, 40, 101)
    torch.testing.assert_close(ours, expected, **TOL[torch.float64])
    torch.testing.assert_close(log_mel(x[0]), expected[0], **TOL[torch.float64])


def test_log_mel_floor_on_silence():
    silence = log_mel(torch.zeros(1, 800), eps=1e-4)
    torch.testing.assert_close(silence, torch.full((1, 40, 11), math.log(1e-4)))


def test_log_mel_gradcheck():
    x = signal(1, 32).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: log_mel(x, n_fft=16, hop_length=8, n_mels=4), (x,))


def test_log_mel_module_equals_function_and_moves_its_buffers():
    module = LogMel()
    x = signal(3, 8000, dtype=torch.float32)
    torch.testing.assert_close(module(x), log_mel(x), **TOL[torch.float32])
    assert module.num_frames(8000) == 101
    assert dict(module.named_buffers()).keys() == {"window", "filters"}
    assert module.state_dict() == {}  # rebuilt from the arguments, not saved
    module.double()  # the buffers were built in float32, so agreement stays at float32 level
    assert module.window.dtype == module.filters.dtype == module(x.double()).dtype == torch.float64
    torch.testing.assert_close(module(x.double()), log_mel(x.double()), **TOL[torch.float32])
    module.to("meta")  # any device: the buffers follow the module
    assert module.window.device.type == module.filters.device.type == "meta"


# --------------------------------------------------------------------------- encoder

@pytest.mark.parametrize("n_frames", [1, 2, 5, 101])
def test_encoder_shapes(n_frames):
    encoder = AudioEncoder(n_mels=40, dim=32)
    out = encoder(signal(3, 40, n_frames, dtype=torch.float32))
    expected_length = math.ceil(n_frames / 4)
    assert encoder.output_length(n_frames) == expected_length
    assert out.frames.shape == (3, expected_length, 32)
    assert out.pooled.shape == (3, 32)
    torch.testing.assert_close(out.pooled, out.frames.mean(dim=1))


@pytest.mark.parametrize("spectrogram_frame", [0, 48, 50, 100])
def test_encoder_frame_j_sees_spectrogram_frames_around_stride_times_j(spectrogram_frame):
    # the documented alignment: output frame j is centred on input frame 4 j and sees
    # receptive_field (23) frames, so a change at frame t reaches the j with |4 j - t| <= 11
    torch.manual_seed(0)
    encoder = AudioEncoder(n_mels=8, dim=16).eval()
    x = torch.randn(1, 8, 101)
    moved = x.clone()
    moved[0, :, spectrogram_frame] += 10.0
    with torch.no_grad():
        changed = (encoder(moved).frames - encoder(x).frames).abs().amax(dim=-1)[0] > 1e-6
    half = encoder.receptive_field // 2
    expected = [abs(encoder.stride * j - spectrogram_frame) <= half for j in range(26)]
    assert changed.tolist() == expected
    assert encoder.receptive_field == 23


def test_to_spectrogram_frames_by_hand():
    encoder = AudioEncoder(n_mels=8, dim=8)
    # T = 10 gives T' = 3 output frames centred on spectrogram frames 0, 4, 8
    spread = encoder.to_spectrogram_frames(torch.tensor([10.0, 20.0, 30.0]), n_frames=10)
    assert spread.tolist() == [10, 10, 20, 20, 20, 20, 30, 30, 30, 30]


def test_encoder_overfits_a_tiny_batch():
    torch.manual_seed(0)
    t = torch.arange(2000) / 8000  # quarter-second clips keep the test fast
    tones = [torch.sin(2 * math.pi * f * t) for f in (300.0, 700.0, 1500.0)]
    chirp = torch.sin(2 * math.pi * (200 * t + 6000 * t**2))  # sweeps 200 -> 3200 Hz
    waves = torch.stack(tones + [chirp]).repeat(2, 1) * (0.1 + torch.rand(8, 1))  # random loudness
    labels = torch.arange(4).repeat(2)
    features = LogMel()(waves)  # (8, 40, 26)
    encoder, head = AudioEncoder(dim=16), nn.Linear(16, 4)
    optimiser = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
    initial = nn.functional.cross_entropy(head(encoder(features).pooled), labels).item()
    for _ in range(40):
        loss = nn.functional.cross_entropy(head(encoder(features).pooled), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert initial > 1.0 and loss.item() < 0.05


# --------------------------------------------------------------------------- per-clip normalization

def numpy_mean_normalize(log_mel: np.ndarray, top_db: float) -> np.ndarray:
    """The definition clip by clip and frame by frame, in NumPy and decibels."""
    out = np.zeros_like(log_mel)
    for b, clip in enumerate(log_mel):  # (F, T)
        level_db = [10 * np.log10(np.exp(clip[:, t]).sum()) for t in range(clip.shape[1])]
        loud = [t for t in range(clip.shape[1]) if level_db[t] > max(level_db) - top_db]
        mean = clip[:, loud].mean(axis=1)
        for t in loud:
            out[b, :, t] = clip[:, t] - mean
    return out


def test_mean_normalize_by_hand():
    # two mel bins, three frames; frame 2 is 50 dB below frame 0, so it is quiet at 40 dB
    powers = torch.tensor([[[1.0, 0.2, 1e-5], [3.0, 0.6, 1e-5]]], dtype=torch.float64)
    out = mean_normalize(torch.log(powers))
    # loud frames 0 and 1: per-bin means log(sqrt(0.2)) and log(sqrt(1.8)), i.e. out = ±log(sqrt(5))
    half = math.log(5) / 2
    expected = torch.tensor([[[half, -half, 0.0], [half, -half, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, **TOL[torch.float64])
    # at 60 dB the third frame is loud too, and the means include it
    assert mean_normalize(torch.log(powers), top_db=60.0)[0, :, 2].abs().min() > 1.0


@pytest.mark.parametrize("top_db", [20.0, 40.0, 80.0])
def test_mean_normalize_matches_numpy_definition(top_db):
    waves = signal(3, 4000) * torch.linspace(0, 1, 4000) ** 3  # a fade-in: quiet to loud frames
    features = log_mel(waves)
    expected = numpy_mean_normalize(features.numpy(), top_db)
    torch.testing.assert_close(mean_normalize(features, top_db), torch.from_numpy(expected), **TOL[torch.float64])
    assert torch.equal(mean_normalize(features[1], top_db), mean_normalize(features, top_db)[1])


def test_mean_normalize_removes_gain_and_colour_and_centres_loud_frames():
    features = log_mel(signal(2, 4000, seed=1) * torch.linspace(0, 1, 4000))  # (2, 40, 51)
    out = mean_normalize(features)
    loud = out.abs().amax(dim=1) > 0  # (2, T): quiet frames are exactly 0
    assert 0 < loud.sum() < loud.numel()
    loud_mean = out.sum(dim=-1) / loud.sum(dim=-1, keepdim=True)  # (2, 40)
    torch.testing.assert_close(loud_mean, torch.zeros_like(loud_mean), **TOL[torch.float64])
    # a gain and a per-bin colour add a constant to each mel bin of a log spectrum
    colour = torch.linspace(-3.0, 2.0, 40, dtype=torch.float64)[:, None] + math.log(7.0)
    torch.testing.assert_close(mean_normalize(features + colour), out, **TOL[torch.float64])


# --------------------------------------------------------------------------- speed augmentation

def numpy_change_speed(x: np.ndarray, rate: float) -> np.ndarray:
    """Linear interpolation at positions (i + 0.5) L / L' - 0.5, then centred in L samples."""
    length = len(x)
    new_length = round(length / rate)
    positions = np.clip((np.arange(new_length) + 0.5) * length / new_length - 0.5, 0, length - 1)
    stretched = np.interp(positions, np.arange(length), x)
    out = np.zeros(length)
    left = (length - new_length) // 2
    if left >= 0:
        out[left:left + new_length] = stretched
    else:
        out[:] = stretched[-left:-left + length]
    return out


def test_change_speed_by_hand():
    x = torch.arange(8.0, dtype=torch.float64)
    # twice as fast: 4 samples read at 0.5, 2.5, 4.5, 6.5, padded by 2 on each side
    assert change_speed(x, 2.0).tolist() == [0, 0, 0.5, 2.5, 4.5, 6.5, 0, 0]
    # half as fast: 16 samples read at 0.5 i - 0.25 (clamped at 0); the middle 8 are kept
    assert change_speed(x, 0.5).tolist() == [1.75, 2.25, 2.75, 3.25, 3.75, 4.25, 4.75, 5.25]
    assert torch.equal(change_speed(x, 1.0), x)


@pytest.mark.parametrize("rate", [0.8, 0.85, 1.18, 1.25, 3.0])
def test_change_speed_matches_numpy_interp(rate):
    x = signal(2, 1001)
    out = change_speed(x, rate)
    assert out.shape == x.shape
    for row, ours in zip(x.numpy(), out):
        torch.testing.assert_close(ours, torch.from_numpy(numpy_change_speed(row, rate)), **TOL[torch.float64])
    assert torch.equal(change_speed(x[1], rate), out[1])


def test_change_speed_moves_a_tone_to_rate_times_its_frequency():
    t = torch.arange(8000, dtype=torch.float64) / 8000
    tone = torch.sin(2 * math.pi * 400 * t)  # 400 Hz: bin 400 of a one-second FFT
    for rate, expected_hz in ((1.25, 500), (0.8, 320)):
        spectrum = torch.fft.rfft(change_speed(tone, rate)).abs()
        assert spectrum.argmax().item() == expected_hz


# --------------------------------------------------------------------------- clear errors

@pytest.mark.parametrize("call, error, message", [
    (lambda: frame(torch.zeros(2, 3, 100), 16, 4),
     ValueError, r"expected waveform x of shape \(B, L\) or \(L,\), got \(2, 3, 100\)"),
    (lambda: stft(torch.zeros(100, dtype=torch.int16), 16, 4),
     TypeError, "expected a floating-point waveform x, got torch.int16"),
    (lambda: stft(torch.zeros(100), 16, 0),
     ValueError, "expected hop_length > 0, got hop_length=0"),
    (lambda: stft(torch.zeros(100), 16.0, 4),
     TypeError, "expected n_fft to be an int, got float"),
    (lambda: stft(torch.zeros(100), 128, 4, center=False),
     ValueError, "frame_length .n_fft. <= signal length L when center=False, got frame_length=128 and L=100"),
    (lambda: stft(torch.zeros(100), 256, 4),
     ValueError, "reflect padding by frame_length // 2 = 128 samples needs a longer signal, got L=100"),
    (lambda: stft(torch.zeros(100), 16, 4, window=torch.ones(8)),
     ValueError, r"expected window of shape \(win_length,\) = \(16,\), got \(8,\)"),
    (lambda: stft(torch.zeros(100), 16, 4, win_length=32),
     ValueError, "expected win_length <= n_fft"),
    (lambda: frame(torch.zeros(100), 16, 4, pad_mode="mirror"),
     ValueError, "expected pad_mode to be one of"),
    (lambda: dft(torch.arange(4)),
     TypeError, "expected a floating-point or complex x, got torch.int64"),
    (lambda: hz_to_mel(-5.0),
     ValueError, "expected frequencies >= 0 Hz"),
    (lambda: hz_to_mel(5.0, scale="bark"),
     ValueError, "expected scale to be one of"),
    (lambda: mel_filterbank(40, 256, 8000, f_max=5000.0),
     ValueError, r"expected f_max <= Nyquist frequency sample_rate / 2 = 4000.0 Hz, got f_max=5000.0"),
    (lambda: mel_filterbank(40, 256, 8000, f_min=4000.0),
     ValueError, "expected 0 <= f_min < f_max"),
    (lambda: log_mel(torch.zeros(8000), eps=0.0),
     ValueError, "expected eps > 0"),
    (lambda: AudioEncoder(n_mels=40)(torch.zeros(2, 64, 101)),
     ValueError, r"expected log_mel of shape \(B, F, T\) with F = n_mels = 40, got \(2, 64, 101\)"),
    (lambda: mean_normalize(torch.zeros(40, 101, 2, 1)),
     ValueError, r"expected log_mel of shape \(B, F, T\) or \(F, T\), got \(40, 101, 2, 1\)"),
    (lambda: mean_normalize(torch.zeros(2, 40, 101, dtype=torch.int64)),
     TypeError, "expected a floating-point log_mel, got torch.int64"),
    (lambda: mean_normalize(torch.zeros(2, 40, 101), top_db=0.0),
     ValueError, "expected top_db > 0, got top_db=0.0"),
    (lambda: change_speed(torch.zeros(100), 0.0),
     ValueError, "expected rate to be a number > 0, got 0.0"),
    (lambda: change_speed(torch.zeros(100), 500.0),
     ValueError, "rate=500.0 leaves no sample of a waveform of L=100 samples"),
    (lambda: change_speed(torch.zeros(100, dtype=torch.int16), 1.1),
     TypeError, "expected a floating-point waveform x, got torch.int16"),
    (lambda: AudioEncoder(n_mels=40).to_spectrogram_frames(torch.zeros(5), 101),
     ValueError, r"T' = ceil\(101 / 4\) = 26, got \(5,\)"),
])
def test_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_trim_silence_cuts_whole_quiet_frames_by_hand():
    wave = torch.zeros(800)
    wave[250] = 1.0  # frame 3 (samples 240-319) is the loudest
    wave[500] = -0.2  # frame 6 is loud enough for a threshold of 0.1
    wave[700] = 0.01  # frame 8 is not
    torch.testing.assert_close(trim_silence(wave, threshold=0.1), wave[240:560])
    torch.testing.assert_close(trim_silence(wave, threshold=0.5), wave[240:320])
    assert len(trim_silence(torch.zeros(400))) == 0
    with pytest.raises(ValueError, match=r"expected a waveform of shape \(L,\) with L >= frame_length = 80, got \(2, 400\)"):
        trim_silence(torch.zeros(2, 400))
    with pytest.raises(TypeError, match="expected a floating waveform"):
        trim_silence(torch.zeros(400, dtype=torch.int16))
