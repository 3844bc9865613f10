"""Pictures of what models do: curves, attention maps, image and spectrogram overlays, widgets.

Introduced in notebook 00; attention maps from notebook 01 on, overlays in notebook 10.
One helper per picture; each draws with matplotlib and returns the ``Axes`` it drew on (when
it takes an ``ax``) or the ``Figure`` (when it lays out several panels), so a test or a
notebook can read back what was drawn.

1. :func:`plot_curves` — training curves;
2. :func:`attention_heatmap`, :func:`attention_grid` — attention weights of one head, of all;
3. :func:`overlay_on_image`, :func:`overlay_on_spectrogram` — attention over patches, frames;
4. :func:`image_grid` — a batch of images with captions;
5. :func:`attention_explorer` — a widget to browse layers, heads and query tokens;
6. :func:`show_source` — a package function's code, shown in a notebook instead of a copy.
"""

from __future__ import annotations

import inspect
import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

__all__ = [
    "plot_curves",
    "attention_heatmap",
    "attention_grid",
    "overlay_on_image",
    "overlay_on_spectrogram",
    "image_grid",
    "AttentionExplorer",
    "attention_explorer",
    "show_source",
]

# Beyond this many cells a heatmap is too dense to print the numbers in it.
ANNOTATE_UP_TO = 64


# --------------------------------------------------------------------------- input checks


def _as_numpy(value: Any, name: str) -> np.ndarray:
    """A tensor, array or nested list as a float NumPy array (detached, on the CPU)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float32).numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"expected {name} as a tensor or array of numbers, got {type(value).__name__}"
        ) from None
    return array


def _expect_shape(array: np.ndarray, name: str, dims: str) -> None:
    """Fail unless ``array`` has as many dimensions as ``dims`` (e.g. ``"(Tq, Tk)"``) names."""
    if array.ndim != dims.count(",") + 1 or array.size == 0:
        raise ValueError(f"expected {name} of shape {dims}, got {tuple(array.shape)}")


def _expect_labels(labels: Sequence | None, size: int, name: str, dim: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or len(labels) != size:
        got = "a string" if isinstance(labels, str) else f"{len(labels)}"
        raise ValueError(f"expected {size} {name} (one per {dim}), got {got}")
    return [str(label) for label in labels]


def _image_hwc(image: Any, name: str = "image") -> np.ndarray:
    """An image as ``(H, W, 3)`` or ``(H, W)`` floats in [0, 1], from (3, H, W), (1, H, W), (H, W, 3) or (H, W).

    ``uint8`` images are divided by 255; float images outside [0, 1] (normalised ones) are
    rescaled to [0, 1] for display.
    """
    is_uint8 = (isinstance(image, np.ndarray) and image.dtype == np.uint8) or (
        isinstance(image, torch.Tensor) and image.dtype == torch.uint8
    )
    array = _as_numpy(image, name)
    if array.ndim == 3 and array.shape[0] in (1, 3):  # (C, H, W), PyTorch's layout
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)) or array.size == 0:
        raise ValueError(
            f"expected {name} of shape (3, H, W), (H, W, 3) or (H, W), got {tuple(np.shape(image))}"
        )
    if is_uint8:
        return array / 255.0
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        array = (array - low) / max(high - low, 1e-12)
    return array


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


# --------------------------------------------------------------------------- curves


def plot_curves(
    history: dict, ax=None, *, xlabel: str = "step", ylabel: str = "value", title: str | None = None
):
    """Draw training curves on ``ax`` (a new figure if None) and return the axes.

    ``history`` maps a curve name to ``{"step": [...], "value": [...]}`` (the format
    ``mmcourse.train.History.to_dict()`` produces), e.g.
    ``{"train/loss": {"step": [0, 10], "value": [2.3, 1.9]}}``.
    """
    if not isinstance(history, dict):
        raise TypeError(
            f"expected history as a dict of name -> {{'step', 'value'}}, got {type(history).__name__}"
        )
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


# --------------------------------------------------------------------------- attention maps


def _draw_heatmap(
    ax: Axes,
    weights: np.ndarray,
    query_labels: list[str] | None,
    key_labels: list[str] | None,
    vmax: float,
    annotate: bool,
):
    """Draw ``(Tq, Tk)`` weights on ``ax``, rows = queries, columns = keys; return the image."""
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    Tq, Tk = weights.shape
    if key_labels is not None:
        ax.set_xticks(range(Tk), key_labels, rotation=90)
    if query_labels is not None:
        ax.set_yticks(range(Tq), query_labels)
    ax.set_xlabel("key token" if key_labels is not None else "key position")
    ax.set_ylabel("query token" if query_labels is not None else "query position")
    if annotate:
        for i in range(Tq):
            for j in range(Tk):
                dark = weights[i, j] < 0.6 * vmax  # light text on the dark end of viridis
                ax.text(
                    j,
                    i,
                    f"{weights[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    return image


def attention_heatmap(
    weights: Any,
    query_labels: Sequence | None = None,
    key_labels: Sequence | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    annotate: bool | None = None,
) -> Axes:
    """Draw attention weights ``(Tq, Tk)`` as a heatmap with a colour bar; return the axes.

    Introduced in notebook 01. Row ``i`` shows how query ``i`` spreads its attention over the
    keys. Token labels go on both axes when given. The colour scale starts at 0 and ends at
    the largest weight (at least 1, so maps stay comparable). The values are printed in the
    cells when ``annotate`` is True, or when None and the map has at most 64 cells.
    """
    array = _as_numpy(weights, "weights")
    _expect_shape(array, "weights", "(Tq, Tk)")
    Tq, Tk = array.shape
    query_labels = _expect_labels(query_labels, Tq, "query labels", "row of weights (Tq)")
    key_labels = _expect_labels(key_labels, Tk, "key labels", "column of weights (Tk)")
    ax = _new_axes(ax, (min(12.0, 1.5 + 0.35 * max(Tk, 8)), min(10.0, 1.0 + 0.35 * max(Tq, 6))))
    annotate = array.size <= ANNOTATE_UP_TO if annotate is None else annotate
    image = _draw_heatmap(ax, array, query_labels, key_labels, max(1.0, float(array.max())), annotate)
    ax.figure.colorbar(image, ax=ax, label="attention weight")
    if title:
        ax.set_title(title)
    return ax


def attention_grid(
    weights: Any,
    labels: Sequence | None = None,
    *,
    key_labels: Sequence | None = None,
    title: str | None = None,
    max_panels: int = 64,
) -> Figure:
    """Draw attention weights ``(L, H, Tq, Tk)`` as a grid: one row per layer, one column per head.

    Introduced in notebook 01. ``labels`` name the query tokens and, unless ``key_labels``
    are given, the keys too (self-attention). All panels share one colour scale and colour bar,
    so heads can be compared. Returns the figure.
    """
    array = _as_numpy(weights, "weights")
    _expect_shape(array, "weights", "(L, H, Tq, Tk)")
    L, H, Tq, Tk = array.shape
    if L * H > max_panels:
        raise ValueError(
            f"expected at most {max_panels} panels, got L * H = {L} * {H} = {L * H}; "
            "pick some layers or heads first, e.g. weights[:2, :4]"
        )
    query_labels = _expect_labels(labels, Tq, "labels", "query token (Tq)")
    if key_labels is None and query_labels is not None and Tk == Tq:
        key_labels = query_labels
    key_labels = _expect_labels(key_labels, Tk, "key labels", "key token (Tk)")
    side = 0.8 + 0.18 * max(Tq, Tk, 8)
    fig, axes = plt.subplots(L, H, figsize=(side * H + 1.2, side * L + 0.6), squeeze=False)
    vmax = max(1.0, float(array.max()))
    for layer in range(L):
        for head in range(H):
            ax = axes[layer, head]
            image = _draw_heatmap(ax, array[layer, head], query_labels, key_labels, vmax, annotate=False)
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            # Axis names and token labels only on the outer edge, to keep the grid readable.
            if head > 0:
                ax.set_ylabel("")
                ax.tick_params(labelleft=False)
            if layer < L - 1:
                ax.set_xlabel("")
                ax.tick_params(labelbottom=False)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- overlays


def _patch_grid(count: int, height: int, width: int) -> tuple[int, int]:
    """The ``(gh, gw)`` grid of square patches that tiles an ``H x W`` image with ``count`` patches."""
    patch = math.isqrt(height * width // count) if count else 0
    if patch and patch * patch * count == height * width and height % patch == 0 and width % patch == 0:
        return height // patch, width // patch
    raise ValueError(
        f"cannot lay {count} patch weights on a {height}x{width} image as square patches; "
        "pass patch_weights of shape (gh, gw)"
    )


def _upsample(weights: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour upsampling of a ``(gh, gw)`` grid (or ``(T',)`` row) to ``size``.

    Pixel ``y`` takes row ``y * gh // H``, so patch ``(i, j)`` covers exactly the pixels it was
    cut from when ``H`` and ``W`` are multiples of the grid.
    """
    index = np.ix_(*[(np.arange(n) * g) // n for n, g in zip(size, weights.shape)])
    return weights[index]


def overlay_on_image(
    image: Any,
    patch_weights: Any,
    ax: Axes | None = None,
    *,
    alpha: float = 0.55,
    title: str | None = None,
) -> Axes:
    """Draw attention over image patches on top of the image; return the axes.

    Introduced in notebook 10. ``image`` is ``(3, H, W)`` or ``(H, W, 3)`` (or grayscale);
    ``patch_weights`` is ``(gh, gw)`` in row-major patch order, or ``(N,)`` with
    ``N = gh * gw`` square patches (the grid is worked out from the image size). Each patch's
    weight fills the pixels it was cut from, semi-transparent, with the patch grid drawn.
    """
    picture = _image_hwc(image)
    height, width = picture.shape[:2]
    grid = _as_numpy(patch_weights, "patch_weights")
    if grid.ndim == 1:
        grid = grid.reshape(_patch_grid(grid.size, height, width))
    elif grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"expected patch_weights of shape (N,) or (gh, gw), got {tuple(grid.shape)}")
    gh, gw = grid.shape
    if gh > height or gw > width:
        raise ValueError(f"expected a patch grid no finer than the {height}x{width} image, got ({gh}, {gw})")
    ax = _new_axes(ax, (4.5, 4.5 * height / width))
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    overlay = ax.imshow(
        _upsample(grid, (height, width)), cmap="inferno", alpha=alpha, interpolation="nearest"
    )
    for i in range(1, gh):
        ax.axhline(i * height / gh - 0.5, color="white", linewidth=0.5, alpha=0.7)
    for j in range(1, gw):
        ax.axvline(j * width / gw - 0.5, color="white", linewidth=0.5, alpha=0.7)
    ax.figure.colorbar(overlay, ax=ax, label="attention weight")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(title or f"attention over {gh}x{gw} image patches")
    return ax


def overlay_on_spectrogram(
    spec: Any,
    frame_weights: Any,
    ax: Axes | None = None,
    *,
    seconds_per_frame: float | None = None,
    alpha: float = 0.45,
    title: str | None = None,
) -> Axes:
    """Draw attention over time frames on a log-mel spectrogram; return the spectrogram's axes.

    Introduced in notebook 10. ``spec`` is ``(F, T)`` (mel bins by frames); ``frame_weights``
    is ``(T',)`` with ``T' <= T``, for an encoder that downsamples time: each weight covers
    ``T / T'`` spectrogram frames. The weights are shaded over the spectrogram and drawn as a
    step curve on a second y axis. The time axis is in seconds when ``seconds_per_frame``
    (hop length / sample rate) is given, in frames otherwise.
    """
    spectrogram = _as_numpy(spec, "spec")
    _expect_shape(spectrogram, "spec", "(F, T)")
    weights = _as_numpy(frame_weights, "frame_weights")
    n_mels, frames = spectrogram.shape
    if weights.ndim != 1 or not 0 < weights.size <= frames:
        raise ValueError(
            f"expected frame_weights of shape (T',) with 1 <= T' <= T = {frames}, got {tuple(weights.shape)}"
        )
    if seconds_per_frame is not None and not seconds_per_frame > 0:
        raise ValueError(f"expected seconds_per_frame > 0, got {seconds_per_frame}")
    step = seconds_per_frame or 1.0
    extent = (0.0, frames * step, 0.0, float(n_mels))
    per_frame = _upsample(weights, (frames,))  # (T,)

    ax = _new_axes(ax, (7, 3.2))
    shown = ax.imshow(
        spectrogram, origin="lower", aspect="auto", cmap="gray_r", extent=extent, interpolation="nearest"
    )
    ax.imshow(
        per_frame[None, :],
        origin="lower",
        aspect="auto",
        cmap="Reds",
        alpha=alpha,
        extent=extent,
        vmin=0.0,
        vmax=max(float(weights.max()), 1e-12),
        interpolation="nearest",
    )
    ax.figure.colorbar(shown, ax=ax, label="log-mel energy", pad=0.12)
    ax.set_xlabel("time (s)" if seconds_per_frame else "time (frames)")
    ax.set_ylabel("mel bin")
    curve = ax.twinx()
    edges = np.arange(frames + 1) * step
    curve.stairs(per_frame, edges, color="tab:red", linewidth=1.5)
    curve.set_ylim(0, max(float(weights.max()), 1e-12) * 1.1)
    curve.set_ylabel("attention weight", color="tab:red")
    ax.set_title(title or f"attention over {weights.size} time frames")
    return ax


# --------------------------------------------------------------------------- image grid


_CAPTION_CHARS = 24  # characters per caption line that fit a 1.8-inch column at font size 8


def image_grid(
    images: Any,
    captions: Sequence[str] | None = None,
    ncols: int = 8,
    *,
    title: str | None = None,
) -> Figure:
    """Draw images ``(B, 3, H, W)`` (or ``(B, H, W)``, or a list of images) in a grid; return the figure.

    Introduced in notebook 00. Each image may be ``(3, H, W)``, ``(H, W, 3)``, ``(1, H, W)``
    or ``(H, W)``; ``captions`` (one per image) are printed under them.
    """
    if isinstance(images, (torch.Tensor, np.ndarray)):
        if images.ndim not in (3, 4) or len(images) == 0:
            raise ValueError(
                f"expected images of shape (B, 3, H, W), (B, H, W, 3) or (B, H, W), got {tuple(images.shape)}"
            )
        images = list(images)
    elif not isinstance(images, (list, tuple)) or not images:
        raise TypeError(
            f"expected images as a tensor (B, 3, H, W) or a non-empty list of images, got {type(images).__name__}"
        )
    pictures = [_image_hwc(image, f"images[{i}]") for i, image in enumerate(images)]
    captions = _expect_labels(captions, len(pictures), "captions", "image")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"expected ncols to be a positive int, got {ncols!r}")
    ncols = min(ncols, len(pictures))
    nrows = math.ceil(len(pictures) / ncols)
    # Wrap captions to the column width ourselves: tight_layout measures explicit line breaks,
    # but not matplotlib's own wrapping, so wrapped titles would overlap the row above.
    # A line break written in a caption starts a new line; each line is wrapped on its own.
    captions = (
        ["\n".join(textwrap.fill(line, _CAPTION_CHARS) for line in caption.split("\n")) for caption in captions]
        if captions else None
    )
    caption_lines = max((caption.count("\n") + 1 for caption in captions), default=0) if captions else 0
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.8 * ncols, (1.8 + 0.16 * caption_lines) * nrows + 0.2), squeeze=False,
        layout="constrained",  # makes room for the tallest caption of each row, which tight_layout can miss
    )
    for index, ax in enumerate(axes.ravel()):
        ax.axis("off")  # pixel coordinates say nothing here; the captions do
        if index < len(pictures):
            picture = pictures[index]
            ax.imshow(
                picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest"
            )
            if captions:
                ax.set_title(captions[index], fontsize=8)
    if title:
        fig.suptitle(title)
        fig.get_layout_engine().set(h_pad=0.1)  # inches: keep the tallest caption clear of the title
    return fig


# --------------------------------------------------------------------------- widget


class AttentionExplorer:
    """Browse attention weights ``(L, H, T, T)``: sliders for layer and head, a menu for the query.

    Introduced in notebook 01. Left, the head's heatmap with the chosen query's row framed;
    right, that row as bars over the key tokens. Displaying the explorer shows the controls and
    the figure as an ordinary image that every change redraws in place, so a saved notebook
    (or one viewed without a running kernel) still shows the last picture. ``figure`` is the
    current matplotlib figure; ``layer``, ``head`` and ``query`` are the widgets.
    """

    def __init__(self, weights: Any, tokens: Sequence[str]):
        import ipywidgets as widgets  # imported here, as IPython below: plain plotting needs neither

        self.weights = _as_numpy(weights, "weights")
        _expect_shape(self.weights, "weights", "(L, H, T, T)")
        L, H, Tq, Tk = self.weights.shape
        if Tq != Tk:
            raise ValueError(
                f"expected self-attention weights of shape (L, H, T, T), got {self.weights.shape}"
            )
        self.tokens = _expect_labels(tokens, Tk, "tokens", "position (T)")
        self.layer = widgets.IntSlider(value=0, min=0, max=L - 1, description="layer")
        self.head = widgets.IntSlider(value=0, min=0, max=H - 1, description="head")
        self.query = widgets.Dropdown(
            options=[(f"{i}: {token}", i) for i, token in enumerate(self.tokens)],
            value=Tq - 1,
            description="query",
        )
        self.controls = widgets.HBox([self.layer, self.head, self.query])
        # A plain Figure, not pyplot's: the inline backend would show a second copy of it.
        self.figure = Figure(figsize=(10, 4), layout="constrained")
        self.figure.get_layout_engine().set(wspace=0.1)
        self._display = None
        for control in (self.layer, self.head, self.query):
            control.observe(self._redraw, names="value")
        self._draw()

    def _draw(self) -> None:
        layer, head, query = self.layer.value, self.head.value, self.query.value
        row = self.weights[layer, head, query]  # (T,)
        self.figure.clear()
        heat, bars = self.figure.subplots(1, 2, width_ratios=[1.1, 1])
        image = _draw_heatmap(heat, self.weights[layer, head], self.tokens, self.tokens, 1.0, annotate=False)
        heat.add_patch(Rectangle((-0.5, query - 0.5), len(row), 1, fill=False, edgecolor="red", linewidth=2))
        heat.set_title(f"layer {layer}, head {head}")
        self.figure.colorbar(image, ax=heat, label="attention weight")
        bars.bar(range(len(row)), row, color="tab:blue")
        bars.set_xticks(range(len(row)), self.tokens, rotation=90)
        bars.set_ylim(0, 1)
        bars.set_xlabel("key token")
        bars.set_ylabel("attention weight")
        bars.set_title(f"query {query}: {self.tokens[query]!r}")

    def _png(self):
        from IPython.display import Image

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=90)
        return Image(data=buffer.getvalue(), format="png")

    def _redraw(self, change: Any = None) -> None:
        self._draw()
        if self._display is not None:
            self._display.update(self._png())

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.controls)
        self._display = display(self._png(), display_id=True)


def attention_explorer(weights: Any, tokens: Sequence[str]) -> AttentionExplorer:
    """An :class:`AttentionExplorer` for weights ``(L, H, T, T)`` and the ``T`` tokens; display it.

    Introduced in notebook 01. The figure starts at layer 0, head 0, the last query token.
    """
    return AttentionExplorer(weights, tokens)


# --------------------------------------------------------------------------- source


# --------------------------------------------------------------------------- the course pipeline

PIPELINE_STAGES = ("preprocess", "encode", "fuse", "generate")
PIPELINE_ROWS = (
    ("image", "pixels → patches", "vision encoder"),
    ("audio", "waveform → log-mel", "audio encoder"),
    ("text", "characters → tokens", "token embedding"),
)


def pipeline_diagram(fused: str = "one sequence\nof vectors", output: str = "“a large red circle\nat the top left”") -> Figure:
    """Draw the course's multimodal pipeline: preprocess → encode → fuse → generate.

    One row per modality (image, audio, text) through preprocessing and an encoder, all
    meeting in one fusion box, then a decoder that writes text. Introduced in notebook 00.
    """
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 3.8)
    ax.axis("off")

    def box(x: float, y: float, text: str, colour: str, width: float = 1.9) -> None:
        ax.add_patch(FancyBboxPatch((x, y - 0.3), width, 0.6, boxstyle="round,pad=0.05", facecolor=colour, edgecolor="0.3"))
        ax.text(x + width / 2, y, text, ha="center", va="center", fontsize=9)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "0.3"})

    for x, stage in zip((1.5, 3.9, 6.4, 8.8), PIPELINE_STAGES):
        ax.text(x + 0.95, 3.55, stage, ha="center", fontsize=11, fontweight="bold")
    for row, (modality, preprocess, encoder) in enumerate(PIPELINE_ROWS):
        y = 2.8 - row * 1.0
        ax.text(0.1, y, modality, va="center", fontsize=10, fontstyle="italic")
        arrow(0.8, y, 1.5, y)
        box(1.5, y, preprocess, "#dbe9f6")
        arrow(3.45, y, 3.9, y)
        box(3.9, y, encoder, "#e3f1dc")
        arrow(5.85, y, 6.4, 1.8)
    box(6.4, 1.8, f"fusion\n{fused}", "#fbe5cc")
    arrow(8.35, 1.8, 8.8, 1.8)
    box(8.8, 1.8, "decoder (GPT)\nwrites tokens", "#eadcf2")
    ax.text(9.75, 0.9, output, ha="center", va="center", fontsize=9)
    arrow(9.75, 1.45, 9.75, 1.2)
    return fig


def _source_text(obj: Any) -> tuple[str, str]:
    """A header naming where ``obj`` is defined (path relative to its package) and its source."""
    if not (
        inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj) or inspect.ismodule(obj)
    ):
        raise TypeError(f"expected a function, class, method or module, got {type(obj).__name__}")
    try:
        lines, start = inspect.getsourcelines(obj)
        path = Path(inspect.getsourcefile(obj) or "")
    except (OSError, TypeError):
        raise TypeError(f"no Python source is available for {getattr(obj, '__qualname__', obj)!r}") from None
    module = inspect.getmodule(obj)
    package = (module.__name__ if module else "").split(".")[0]
    parts = path.parts
    where = "/".join(parts[len(parts) - 1 - parts[::-1].index(package) :]) if package in parts else path.name
    qualname = getattr(obj, "__qualname__", getattr(obj, "__name__", ""))
    name = f"{module.__name__}.{qualname}" if module and not inspect.ismodule(obj) else qualname
    return f"{name}, from {where} line {max(start, 1)}", "".join(lines)


def show_source(obj: Any) -> None:
    """Show the source code of a function, class or module, syntax-highlighted in a notebook.

    Introduced in notebook 00. Notebooks show the package's code this way instead of pasting
    a copy that could drift. Outside IPython, prints plain text.
    """
    header, source = _source_text(obj)
    try:
        from IPython import get_ipython
        from IPython.display import Code, Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(f"# {header}\n{source}")
        return
    display(Markdown(f"`{header}`"))
    display(Code(source, language="python"))
