import pytest
import torch

from mmcourse import runtime


@pytest.mark.parametrize("raw, expected", [("", "full"), ("full", "full"), ("smoke", "smoke"), (" SMOKE ", "smoke")])
def test_mode_reads_the_variable(monkeypatch, raw, expected):
    monkeypatch.setenv(runtime.MODE_VARIABLE, raw)
    assert runtime.mode() == expected
    assert runtime.is_smoke() == (expected == "smoke")


def test_mode_defaults_to_full(monkeypatch):
    monkeypatch.delenv(runtime.MODE_VARIABLE, raising=False)
    assert runtime.mode() == "full"


def test_unknown_mode_is_named(monkeypatch):
    monkeypatch.setenv(runtime.MODE_VARIABLE, "fast")
    with pytest.raises(ValueError, match=r"MMCOURSE_MODE must be one of \('full', 'smoke'\), got 'fast'"):
        runtime.mode()


def test_per_mode_picks_by_mode(monkeypatch):
    monkeypatch.setenv(runtime.MODE_VARIABLE, "full")
    assert runtime.per_mode(full=2000, smoke=20) == 2000
    monkeypatch.setenv(runtime.MODE_VARIABLE, "smoke")
    assert runtime.per_mode(full=2000, smoke=20) == 20
    assert runtime.per_mode(full=(64, 64), smoke=(8, 8)) == (8, 8)


def test_per_mode_rejects_mixed_types():
    with pytest.raises(TypeError, match="same type, got int and float"):
        runtime.per_mode(full=10, smoke=0.5)


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv(runtime.DEVICE_VARIABLE, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    choice = runtime.choose_device()
    assert choice.device == torch.device("cpu")
    assert "no CUDA GPU or Apple MPS" in choice.reason

    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.choose_device().device == torch.device("mps")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
    choice = runtime.choose_device()
    assert choice.device == torch.device("cuda")
    assert "Test GPU" in choice.reason


def test_device_override(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_VARIABLE, "cpu")
    choice = runtime.choose_device()
    assert choice.device == torch.device("cpu")
    assert "MMCOURSE_DEVICE" in str(choice)


def test_device_override_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(runtime.DEVICE_VARIABLE, "cuda")
    with pytest.raises(RuntimeError, match="asks for CUDA, but this PyTorch sees no CUDA GPU"):
        runtime.choose_device()
    monkeypatch.setenv(runtime.DEVICE_VARIABLE, "tpu")
    with pytest.raises(ValueError, match="must be cpu, cuda, cuda:N or mps, got 'tpu'"):
        runtime.choose_device()


def test_describe_names_mode_and_device(monkeypatch):
    monkeypatch.setenv(runtime.MODE_VARIABLE, "smoke")
    monkeypatch.setenv(runtime.DEVICE_VARIABLE, "cpu")
    line = runtime.describe()
    assert "mode: smoke" in line and "device: cpu" in line and torch.__version__ in line


def _losses(seed: int) -> list[float]:
    """A few SGD steps on random data, with dropout: every random source is exercised."""
    runtime.seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        x = torch.randn(32, 8)
        loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_same_seed_same_losses_on_cpu():
    assert _losses(7) == _losses(7)
    assert _losses(7) != _losses(8)


def test_seed_validation():
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        runtime.seed_everything(1.5)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*32\), got -1"):
        runtime.seed_everything(-1)
