"""Pictures of what models do: curves, attention maps, image and spectrogram overlays, widgets.

Introduced in notebook 00; attention maps from notebook 01 on.
"""

from __future__ import annotations

import matplotlib.pyplot as plt


def plot_curves(history: dict, ax=None, *, xlabel: str = "step", ylabel: str = "value", title: str | None = None):
    """Draw training curves on ``ax`` (a new figure if None) and return the axes.

    ``history`` maps a curve name to ``{"step": [...], "value": [...]}`` (the format
    ``mmcourse.train.History.to_dict()`` produces), e.g.
    ``{"train/loss": {"step": [0, 10], "value": [2.3, 1.9]}}``.
    """
    if not isinstance(history, dict):
        raise TypeError(f"expected history as a dict of name -> {{'step', 'value'}}, got {type(history).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in history.items():
        if not isinstance(curve, dict) or set(curve) != {"step", "value"}:
            raise ValueError(f"expected history[{name!r}] to have keys 'step' and 'value', got {curve!r:.80}")
        if len(curve["step"]) != len(curve["value"]):
            raise ValueError(
                f"history[{name!r}] has {len(curve['step'])} steps but {len(curve['value'])} values"
            )
        ax.plot(curve["step"], curve["value"], label=name, marker="o" if len(curve["step"]) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if history:
        ax.legend()
    ax.grid(alpha=0.3)
    return ax
