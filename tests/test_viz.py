"""mmcourse.viz, drawn headless: the arrays handed to matplotlib are read back and compared
with the inputs, or with an independent upsampling (np.kron / np.repeat)."""

import inspect

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mmcourse import viz

matplotlib.use("Agg")

TOKENS = ["<s>", "a", "red", "circle"]


@pytest.fixture(autouse=True)
def close_figures():
    torch.manual_seed(0)
    yield
    plt.close("all")


def attention(*shape):
    return torch.softmax(torch.randn(*shape), dim=-1)


def colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


# --------------------------------------------------------------------------- curves


def test_plot_curves_draws_each_curve_with_labels():
    history = {
        "train/loss": {"step": [0, 10, 20], "value": [2.3, 1.9, 1.5]},
        "val/loss": {"step": [0, 20], "value": [2.4, 1.7]},
    }
    ax = viz.plot_curves(history, ylabel="loss (nats)")
    assert [line.get_label() for line in ax.lines] == ["train/loss", "val/loss"]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [2.3, 1.9, 1.5])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step", "loss (nats)")
    with pytest.raises(ValueError, match="has 2 steps but 1 values"):
        viz.plot_curves({"loss": {"step": [0, 1], "value": [1.0]}})


# --------------------------------------------------------------------------- heatmaps


def test_attention_heatmap_shows_the_weights_with_token_labels_and_a_colour_bar():
    weights = attention(4, 4)
    ax = viz.attention_heatmap(weights, TOKENS, TOKENS, title="head 0")
    (image,) = ax.images
    np.testing.assert_allclose(image.get_array(), weights.numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
    assert [t.get_text() for t in ax.get_yticklabels()] == TOKENS
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("key token", "query token", "head 0")
    assert colorbar_labels(ax.figure) == ["attention weight"]
    # 16 cells: small enough to print each weight in its cell
    assert sorted(float(t.get_text()) for t in ax.texts) == pytest.approx(
        sorted(weights.flatten().tolist()), abs=0.005
    )


def test_attention_heatmap_accepts_rectangular_maps_and_an_existing_axes():
    fig, (left, right) = plt.subplots(1, 2)
    weights = attention(2, 5)
    assert viz.attention_heatmap(weights.numpy(), ax=right) is right
    assert right.images[0].get_array().shape == (2, 5) and not left.images
    assert (right.get_xlabel(), right.get_ylabel()) == ("key position", "query position")


def test_attention_heatmap_rejects_bad_shapes_and_labels():
    with pytest.raises(ValueError, match=r"expected weights of shape \(Tq, Tk\), got \(2, 3, 4\)"):
        viz.attention_heatmap(torch.rand(2, 3, 4))
    with pytest.raises(
        ValueError, match=r"expected 4 key labels \(one per column of weights \(Tk\)\), got 3"
    ):
        viz.attention_heatmap(torch.rand(2, 4), key_labels=["a", "b", "c"])
    with pytest.raises(TypeError, match="expected weights as a tensor or array of numbers, got str"):
        viz.attention_heatmap("weights")


def test_attention_grid_draws_layers_by_heads():
    weights = attention(2, 3, 4, 4)
    fig = viz.attention_grid(weights, TOKENS)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6
    for index, ax in enumerate(panels):
        layer, head = divmod(index, 3)
        assert ax.get_title() == f"layer {layer}, head {head}"
        np.testing.assert_allclose(ax.images[0].get_array(), weights[layer, head].numpy(), rtol=1e-6)
    assert colorbar_labels(fig) == ["attention weight"]
    with pytest.raises(ValueError, match=r"expected weights of shape \(L, H, Tq, Tk\), got \(3, 4, 4\)"):
        viz.attention_grid(weights[0])
    with pytest.raises(ValueError, match=r"at most 64 panels, got L \* H = 12 \* 12 = 144"):
        viz.attention_grid(torch.rand(12, 12, 2, 2))


# --------------------------------------------------------------------------- overlays


def test_overlay_on_image_puts_each_patch_weight_on_its_pixels():
    image = torch.rand(3, 32, 48)
    grid = torch.arange(24, dtype=torch.float32).reshape(4, 6)  # 8x8-pixel patches
    ax = viz.overlay_on_image(image, grid.flatten())
    picture, overlay = ax.images
    np.testing.assert_allclose(picture.get_array(), image.permute(1, 2, 0).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(overlay.get_array(), np.kron(grid.numpy(), np.ones((8, 8))))
    assert overlay.get_alpha() < 1
    assert len(ax.lines) == (4 - 1) + (6 - 1)  # the patch grid
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (pixels)", "y (pixels)")
    assert colorbar_labels(ax.figure) == ["attention weight"]


def test_overlay_on_image_takes_channels_last_uint8_and_a_2d_grid():
    image = (torch.rand(16, 16, 3) * 255).to(torch.uint8)
    ax = viz.overlay_on_image(image, torch.eye(2))
    np.testing.assert_allclose(ax.images[0].get_array(), image.numpy() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ax.images[1].get_array()[:8, :8], np.ones((8, 8)))
    np.testing.assert_array_equal(ax.images[1].get_array()[:8, 8:], np.zeros((8, 8)))


def test_overlay_on_image_rejects_weights_that_do_not_tile_the_image():
    with pytest.raises(ValueError, match="cannot lay 10 patch weights on a 32x32 image"):
        viz.overlay_on_image(torch.rand(3, 32, 32), torch.rand(10))
    with pytest.raises(
        ValueError, match=r"expected image of shape \(3, H, W\), \(H, W, 3\) or \(H, W\), got \(2, 4, 4, 4\)"
    ):
        viz.overlay_on_image(torch.rand(2, 4, 4, 4), torch.rand(4))


def test_overlay_on_spectrogram_spreads_each_weight_over_its_frames():
    spec = torch.randn(20, 12)  # (F, T)
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4])  # (T',) = one weight per 3 frames
    ax = viz.overlay_on_spectrogram(spec, weights, seconds_per_frame=0.01)
    shown, overlay = ax.images
    np.testing.assert_allclose(shown.get_array(), spec.numpy(), rtol=1e-6)
    np.testing.assert_allclose(overlay.get_array(), np.repeat(weights.numpy(), 3)[None, :], rtol=1e-6)
    assert shown.get_extent() == pytest.approx([0.0, 0.12, 0.0, 20.0])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("time (s)", "mel bin")
    (twin,) = [
        other for other in ax.figure.axes if other is not ax and other.get_ylabel() == "attention weight"
    ]
    (steps,) = twin.patches
    np.testing.assert_allclose(steps.get_data().values, np.repeat(weights.numpy(), 3), rtol=1e-6)
    assert viz.overlay_on_spectrogram(spec, weights).get_xlabel() == "time (frames)"


def test_overlay_on_spectrogram_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected spec of shape \(F, T\), got \(1, 20, 12\)"):
        viz.overlay_on_spectrogram(torch.randn(1, 20, 12), torch.rand(4))
    with pytest.raises(ValueError, match=r"1 <= T' <= T = 12, got \(13,\)"):
        viz.overlay_on_spectrogram(torch.randn(20, 12), torch.rand(13))


# --------------------------------------------------------------------------- image grid


def test_image_grid_lays_out_images_with_captions():
    images = torch.rand(5, 3, 8, 8)
    fig = viz.image_grid(images, captions=[f"shape {i}" for i in range(5)], ncols=3)
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last one empty
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == [f"shape {i}" for i in range(5)]
    np.testing.assert_allclose(drawn[4].images[0].get_array(), images[4].permute(1, 2, 0).numpy(), rtol=1e-6)
    gray = viz.image_grid([torch.rand(1, 8, 8), np.zeros((8, 8))])
    assert gray.axes[0].images[0].get_array().shape == (8, 8)
    with pytest.raises(ValueError, match=r"expected 5 captions \(one per image\), got 2"):
        viz.image_grid(images, captions=["a", "b"])


def test_image_grid_long_captions_stay_clear_of_the_row_above():
    long = "a large red circle at the top left and a small blue square at the bottom right"
    fig = viz.image_grid(torch.rand(4, 3, 8, 8), captions=[long] * 4, ncols=2)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top_row_image = fig.axes[0].get_window_extent(renderer)
    second_row_title = fig.axes[2].title.get_window_extent(renderer)
    assert fig.axes[2].get_title().count("\n") >= 2  # wrapped to the column width
    assert second_row_title.y1 <= top_row_image.y0, "a caption overlaps the image above it"
    plt.close(fig)


def test_image_grid_keeps_written_line_breaks_and_clears_the_tallest_caption_of_a_row():
    short, long = "C: one\nS: two", "C: " + "a large red circle at the top left and " * 3 + "\nS: three objects"
    fig = viz.image_grid(torch.rand(8, 3, 32, 32), captions=[short] * 7 + [long], ncols=4, title="a grid")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig.axes[0].get_title() == short  # a written break stays a break
    lines = fig.axes[7].get_title().split("\n")
    assert lines[-1] == "S: three objects" and len(lines) >= 6  # the long line wrapped, the break kept
    for below in range(4, 8):
        title = fig.axes[below].title.get_window_extent(renderer)
        assert title.y1 <= fig.axes[below - 4].get_window_extent(renderer).y0, f"caption {below} overlaps the image above"
    plt.close(fig)


def test_image_grid_title_stays_clear_of_long_captions():
    long = "a large red square at the top right and a large purple square at the bottom left and a large green circle"
    fig = viz.image_grid(torch.rand(8, 3, 32, 32), captions=["short", long] * 4, ncols=8, title="a row of scenes")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_title = fig._suptitle.get_window_extent(renderer)
    for index, ax in enumerate(fig.axes):
        assert ax.title.get_window_extent(renderer).y1 < figure_title.y0, f"caption {index} touches the title"
    plt.close(fig)


# --------------------------------------------------------------------------- explorer


def test_attention_explorer_redraws_when_a_control_changes():
    weights = attention(2, 3, 4, 4)
    explorer = viz.attention_explorer(weights, TOKENS)

    def drawn():
        heat, bars = [ax for ax in explorer.figure.axes if ax.get_label() != "<colorbar>"]
        return (
            heat.images[0].get_array(),
            np.array([bar.get_height() for bar in bars.patches]),
            heat.get_title(),
        )

    heat, bars, title = drawn()
    np.testing.assert_allclose(heat, weights[0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(bars, weights[0, 0, 3].numpy(), rtol=1e-6)  # starts at the last query
    explorer.layer.value = 1
    explorer.head.value = 2
    explorer.query.value = 1
    heat, bars, title = drawn()
    assert title == "layer 1, head 2"
    np.testing.assert_allclose(heat, weights[1, 2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(bars, weights[1, 2, 1].numpy(), rtol=1e-6)


@pytest.fixture
def ipython():
    """An IPython shell whose display outputs can be captured, removed again afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_attention_explorer_shows_controls_and_an_image_it_updates_in_place(ipython):
    from IPython.display import display
    from IPython.utils.capture import capture_output

    explorer = viz.attention_explorer(attention(2, 1, 4, 4), TOKENS)
    with capture_output() as captured:
        display(explorer)
        explorer.layer.value = 1
    controls, image, update = captured.outputs
    assert "application/vnd.jupyter.widget-view+json" in controls.data
    # A plain PNG survives in a saved notebook; the update replaces it (same display id).
    assert image.data["image/png"] and not image.update
    assert update.update and update.transient["display_id"] == image.transient["display_id"]
    assert update.data["image/png"] != image.data["image/png"]


def test_show_source_highlights_in_a_notebook(ipython):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        viz.show_source(viz.show_source)
    header, code = captured.outputs
    assert header.data["text/markdown"].startswith("`mmcourse.viz.show_source, from mmcourse/viz.py line ")
    assert "def show_source(obj" in code.data["text/plain"] and "<span" in code.data["text/html"]


def test_attention_explorer_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"expected weights of shape \(L, H, T, T\), got \(4, 4\)"):
        viz.attention_explorer(torch.rand(4, 4), TOKENS)
    with pytest.raises(ValueError, match=r"expected 4 tokens \(one per position \(T\)\), got 3"):
        viz.attention_explorer(torch.rand(1, 1, 4, 4), TOKENS[:3])


# --------------------------------------------------------------------------- source


def test_show_source_prints_the_code_and_where_it_lives(capsys):
    viz.show_source(viz.attention_heatmap)
    out = capsys.readouterr().out
    header, source = out.split("\n", 1)
    line = inspect.getsourcelines(viz.attention_heatmap)[1]
    assert header == f"# mmcourse.viz.attention_heatmap, from mmcourse/viz.py line {line}"
    assert source.rstrip("\n") == inspect.getsource(viz.attention_heatmap).rstrip("\n")


def test_show_source_rejects_what_has_no_python_source():
    with pytest.raises(TypeError, match="expected a function, class, method or module, got int"):
        viz.show_source(5)
    with pytest.raises(TypeError, match="no Python source is available for 'dict'"):
        viz.show_source(dict)


# --------------------------------------------------------------------------- pipeline


def test_pipeline_diagram_names_every_stage_and_modality():
    fig = viz.pipeline_diagram()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for word in (*viz.PIPELINE_STAGES, "image", "audio", "text", "decoder"):
        assert word in texts
    assert len(fig.axes[0].patches) == 2 * len(viz.PIPELINE_ROWS) + 2
