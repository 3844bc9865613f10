"""Tests for mmcourse.shapes, checked against small references written here from the words alone.

The references (a question interpreter, a caption parser in both languages, colour and shape
recognisers working on pixels) know only the vocabulary and the object list, not how the
generator builds scenes, captions or questions.
"""

import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mmcourse import shapes
from mmcourse.shapes import (
    ANSWERS,
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    ShapesWorld,
    caption,
    caption_zh,
    collate,
    make_scenes,
    questions,
    random_scene,
    render,
    render_batch,
    split_of,
)

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4}
# Which channels a colour switches on, judged by eye, not read from the palette.
CHANNELS_ON = {
    "red": (1, 0, 0),
    "green": (0, 1, 0),
    "blue": (0, 0, 1),
    "yellow": (1, 1, 0),
    "purple": (1, 0, 1),
}
ZH = {
    "左上": "top left", "右上": "top right", "左下": "bottom left", "右下": "bottom right",
    "大": "large", "小": "small",
    "红色": "red", "绿色": "green", "蓝色": "blue", "黄色": "yellow", "紫色": "purple",
    "圆形": "circle", "正方形": "square", "三角形": "triangle",
}


def content(scene):
    """The scene's objects as a set of word tuples, jitter ignored."""
    return frozenset((o.position, o.size, o.colour, o.shape) for o in scene.objects)


def correct_answers(objects, question):
    """Every answer that is right for the question, or None when its referent is not unique."""
    if question == "how many objects are there":
        return {word for word, count in NUMBER_WORDS.items() if count == len(objects)}
    if m := re.fullmatch(r"what shape is at the (top|bottom) (left|right)", question):
        found = [o for o in objects if o.position == f"{m[1]} {m[2]}"]
        return {o.shape for o in found} if len(found) == 1 else None
    if m := re.fullmatch(r"what colour is the (\w+)", question):
        found = [o for o in objects if o.shape == m[1]]
        return {o.colour for o in found} if len(found) == 1 else None
    if m := re.fullmatch(r"what size is the (\w+) (\w+)", question):
        found = [o for o in objects if (o.colour, o.shape) == (m[1], m[2])]
        return {o.size for o in found} if len(found) == 1 else None
    if m := re.fullmatch(r"is there a (\w+) (\w+)", question):
        assert m[1] in COLOURS and m[2] in SHAPES, question
        return {"yes"} if any((o.colour, o.shape) == (m[1], m[2]) for o in objects) else {"no"}
    raise AssertionError(f"unknown question: {question!r}")


def parse_caption(text):
    parts = text.split(" and ")
    found = [re.fullmatch(r"a (small|large) (\w+) (\w+) at the ((?:top|bottom) (?:left|right))", p) for p in parts]
    assert all(found), text
    return [(m[4], m[1], m[2], m[3]) for m in found]


def parse_caption_zh(text):
    words = "|".join(ZH)
    parts = text.split("，")
    found = [re.fullmatch(f"({words})有一个({words})的({words})({words})", p) for p in parts]
    assert all(found), text
    return [tuple(ZH[m[i]] for i in range(1, 5)) for m in found]


def shape_from_mask(mask):
    """Classify a mask by how much of its bounding box it fills: 1, π/4 or 1/2."""
    ys, xs = np.nonzero(mask)
    fill = mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
    return min(("square", 1.0), ("circle", np.pi / 4), ("triangle", 0.5), key=lambda t: abs(t[1] - fill))[0]


@pytest.fixture(scope="module")
def train_scenes():
    return make_scenes("train", 3000)


# --------------------------------------------------------------------------- questions

def test_every_answer_is_the_only_right_one(train_scenes):
    rng = np.random.default_rng(1)
    openings, answers = set(), []
    for scene in train_scenes[:1500]:
        for question, answer in questions(scene, rng):
            right = correct_answers(scene.objects, question)
            assert right is not None, f"ambiguous question {question!r} for {caption(scene)!r}"
            assert right == {answer}, (question, answer, caption(scene))
            assert answer in ANSWERS and " " not in answer
            openings.add(" ".join(question.split()[:2]))
            answers.append(answer)
    assert openings == {"how many", "what shape", "what colour", "what size", "is there"}
    # questions about absent objects (hallucination checks) come as often as about present ones
    assert answers.count("no") == answers.count("yes") > 0


def test_questions_follow_the_rng():
    scene = make_scenes("train", 1, seed=5)[0]
    assert questions(scene, np.random.default_rng(3)) == questions(scene, np.random.default_rng(3))


# --------------------------------------------------------------------------- rendering

def test_render_batch_stacks_render_channels_first(train_scenes):
    scenes = train_scenes[:5]
    images = render_batch(scenes, 64)
    assert images.shape == (5, 3, 64, 64) and images.dtype == torch.uint8 and images.is_contiguous()
    for image, scene in zip(images, scenes):
        assert np.array_equal(image.permute(1, 2, 0).numpy(), render(scene, 64)[0])
    with pytest.raises(ValueError, match="expected a non-empty sequence of Scene, got Scene"):
        render_batch(scenes[0])
    with pytest.raises(ValueError, match="expected a non-empty sequence of Scene, got list"):
        render_batch([])
    with pytest.raises(TypeError, match="expected a Scene, got str"):
        render_batch(["not a scene"])


@pytest.mark.parametrize("image_size", [32, 64])
def test_render_pixels_masks_and_cells(train_scenes, image_size):
    half = image_size // 2
    for scene in train_scenes[:200]:
        image, masks = render(scene, image_size)
        assert image.shape == (image_size, image_size, 3) and image.dtype == np.uint8
        assert masks.shape == (len(scene.objects), image_size, image_size) and masks.dtype == bool
        assert masks.sum(axis=0).max() <= 1, "masks overlap"
        background = image[~masks.any(axis=0)]
        assert (background == background[0]).all() and background.max() < 50
        for obj, mask in zip(scene.objects, masks):
            pixels = image[mask]
            assert len(pixels) > 0 and (pixels == pixels[0]).all()
            assert tuple(pixels[0] > 128) == tuple(bool(c) for c in CHANNELS_ON[obj.colour]), obj.colour
            rows = slice(0, half) if obj.position.startswith("top") else slice(half, None)
            cols = slice(0, half) if obj.position.endswith("left") else slice(half, None)
            inside = np.zeros_like(mask)
            inside[rows, cols] = True
            assert not (mask & ~inside).any(), f"{obj.position} object leaves its cell"
            # at least one free pixel around it, so neighbours never touch
            assert not (mask[rows, cols][[0, -1]].any() or mask[rows, cols][:, [0, -1]].any())


@pytest.mark.parametrize("image_size, tolerance", [(32, 0.06), (64, 0.05)])
def test_mask_areas_match_the_shape_formulas(train_scenes, image_size, tolerance):
    formula = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}  # share of the side squared
    sides = {"small": set(), "large": set()}
    for scene in train_scenes[:300]:
        _, masks = render(scene, image_size)
        for obj, mask in zip(scene.objects, masks):
            xs = np.nonzero(mask)[1]
            side = np.ptp(xs) + 1  # the base of a triangle and the width of the others span the box
            sides[obj.size].add(side)
            assert mask.sum() == pytest.approx(formula[obj.shape] * side**2, rel=tolerance)
            assert shape_from_mask(mask) == obj.shape
    assert max(sides["small"]) * 1.4 < min(sides["large"]), sides


def test_scenes_fill_all_four_cells_without_overlap():
    for jitter in [(1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)]:
        scene = Scene(tuple(SceneObject("red", "square", "large", p, jitter) for p in POSITIONS))
        for image_size in (32, 64):
            _, masks = render(scene, image_size)
            assert masks.sum(axis=0).max() == 1 and masks.sum() == 4 * (0.75 * image_size / 2) ** 2


def test_jitter_moves_pixels_but_not_words():
    moved = [Scene((SceneObject("blue", "circle", "small", "top right", (j, -j)),)) for j in (-1.0, 1.0)]
    assert not np.array_equal(render(moved[0])[0], render(moved[1])[0])
    assert caption(moved[0]) == caption(moved[1]) and split_of(moved[0]) == split_of(moved[1])


# --------------------------------------------------------------------------- captions

def test_caption_parses_back_in_position_order(train_scenes):
    for scene in train_scenes[:1000]:
        objects = parse_caption(caption(scene))
        assert set(objects) == content(scene) and len(objects) == len(scene.objects)
        assert [POSITIONS.index(o[0]) for o in objects] == sorted(POSITIONS.index(o[0]) for o in objects)
        assert parse_caption_zh(caption_zh(scene)) == objects
        assert caption(scene).split() == caption(scene).split(" ")  # single spaces, word tokens


def test_caption_is_a_function_of_the_content(train_scenes):
    a = SceneObject("green", "triangle", "large", "bottom left", (0.3, -0.2))
    b = SceneObject("yellow", "circle", "small", "top right", (-0.9, 0.4))
    assert Scene((a, b)) == Scene((b, a))
    assert caption(Scene((a, b))) == caption(Scene((b, a))) == (
        "a small yellow circle at the top right and a large green triangle at the bottom left"
    )
    assert caption_zh(Scene((a, b))) == "右上有一个小的黄色圆形，左下有一个大的绿色三角形"
    by_content = {}
    for scene in train_scenes:
        by_content.setdefault(content(scene), set()).add(caption(scene))
    assert all(len(c) == 1 for c in by_content.values())
    assert len({c for cs in by_content.values() for c in cs}) == len(by_content)  # and tells them apart


# --------------------------------------------------------------------------- splits

def test_splits_never_share_a_scene(train_scenes):
    val, test = make_scenes("val", 1000), make_scenes("test", 1000, seed=7)
    train = {content(s) for s in train_scenes} | {content(s) for s in make_scenes("train", 1000, seed=7)}
    assert not train & {content(s) for s in val}
    assert not train & {content(s) for s in test}
    assert not {content(s) for s in val} & {content(s) for s in test}
    assert {split_of(s) for s in val} == {"val"} and {split_of(s) for s in test} == {"test"}


def test_split_shares_and_object_counts():
    rng = np.random.default_rng(0)
    drawn = [random_scene(rng) for _ in range(4000)]
    share = {split: sum(split_of(s) == split for s in drawn) / len(drawn) for split in ("train", "val", "test")}
    assert share["train"] == pytest.approx(0.8, abs=0.03) and share["test"] == pytest.approx(0.1, abs=0.02)
    assert {len(s.objects) for s in drawn} == {1, 2, 3}
    assert {len(s.objects) for s in make_scenes("val", 200, max_objects=4)} == {1, 2, 3, 4}


def test_make_scenes_is_deterministic(train_scenes):
    assert make_scenes("train", 3000) == train_scenes
    assert make_scenes("train", 50) == train_scenes[:50]
    assert make_scenes("train", 50, seed=1) != train_scenes[:50]
    assert make_scenes("val", 20, seed=4) == make_scenes("val", 20, seed=4)


# --------------------------------------------------------------------------- dataset

def test_dataset_items_and_batches():
    world = ShapesWorld("test", 12, seed=2, image_size=64)
    assert len(world) == 12
    item = world[-1]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    image, masks = render(item["scene"], 64)
    torch.testing.assert_close(item["image"], torch.from_numpy(image).permute(2, 0, 1) / 255.0)
    assert torch.equal(item["masks"], torch.from_numpy(masks))
    assert item["caption"] == caption(item["scene"]) and item["caption_zh"] == caption_zh(item["scene"])
    for question, answer in item["questions"]:
        assert correct_answers(item["scene"].objects, question) == {answer}
    assert world[3]["questions"] == ShapesWorld("test", 12, seed=2)[3]["questions"]
    batch = next(iter(DataLoader(world, batch_size=5, collate_fn=collate)))
    assert batch["image"].shape == (5, 3, 64, 64) and len(batch["caption"]) == len(batch["masks"]) == 5


# --------------------------------------------------------------------------- bad arguments

DOT = SceneObject("red", "circle", "small", "top left")


@pytest.mark.parametrize("call, error, message", [
    (lambda: make_scenes("training", 5), ValueError, r"split to be one of \('train', 'val', 'test'\), got 'training'"),
    (lambda: make_scenes("train", 0), ValueError, r"expected n >= 1, got 0"),
    (lambda: make_scenes("train", 2.5), TypeError, r"expected n to be an int, got float"),
    (lambda: make_scenes("train", 5, seed=-1), ValueError, r"expected seed >= 0, got -1"),
    (lambda: make_scenes("train", 5, max_objects=5), ValueError, r"max_objects >= 1 and <= 4, got 5"),
    (lambda: ShapesWorld("val", 5, image_size=16), ValueError, r"expected image_size >= 32, got 16"),
    (lambda: ShapesWorld("val", 5, image_size=36), ValueError, r"multiple of 8 .* got 36"),
    (lambda: ShapesWorld("val", 5)[5], ValueError, r"expected index >= -5 and <= 4, got 5"),
    (lambda: render("a red circle"), TypeError, r"expected a Scene, got str"),
    (lambda: caption(None), TypeError, r"expected a Scene, got NoneType"),
    (lambda: questions(make_scenes("val", 1)[0], 3), TypeError, r"numpy.random.Generator, got int"),
    (lambda: random_scene(np.random.default_rng(), max_objects=0), ValueError, r"max_objects >= 1"),
    (lambda: SceneObject("pink", "circle", "small", "top left"), ValueError, r"colour to be one of .* got 'pink'"),
    (lambda: SceneObject("red", "circle", "huge", "top left"), ValueError, r"size to be one of .* got 'huge'"),
    (lambda: SceneObject("red", "circle", "small", "middle"), ValueError, r"position to be one of .* got 'middle'"),
    (lambda: SceneObject("red", "circle", "small", "top left", (2.0, 0.0)), ValueError, r"jitter .* in \[-1, 1\]"),
    (lambda: SceneObject("red", "circle", "small", "top left", "up"), ValueError, r"jitter as two numbers"),
    (lambda: Scene(DOT), TypeError, r"tuple of SceneObject, got SceneObject"),
    (lambda: DOT.box(30), ValueError, r"image_size >= 32, got 30"),
    (lambda: Scene(()), ValueError, r"expected 1 to 4 objects, got 0"),
    (lambda: Scene(("red circle",)), TypeError, r"expected objects to be SceneObject, got \['str'\]"),
    (lambda: Scene((DOT, DOT)), ValueError, r"one object per position"),
    (lambda: collate([]), ValueError, r"non-empty list of ShapesWorld items"),
])
def test_bad_arguments_fail_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_vocabulary_words_are_single_tokens_with_one_meaning():
    words = COLOURS + SHAPES + SIZES + ("top", "bottom", "left", "right")
    assert all(" " not in w for w in words) and len(set(words)) == len(words)
    assert {w for p in POSITIONS for w in p.split()} == {"top", "bottom", "left", "right"}
    assert set(shapes.COLOURS_ZH) == set(COLOURS) and set(shapes.SHAPES_ZH) == set(SHAPES)
    assert set(shapes.SIZES_ZH) == set(SIZES) and set(shapes.POSITIONS_ZH) == set(POSITIONS)
