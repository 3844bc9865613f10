"""The shapes world: generated scenes of coloured shapes with captions, questions and splits.

Introduced in notebook 00 (the tour of the data sets); used for retrieval in 08, fusion in 09,
captioning and question answering in 10, translation and hallucination tests in 11.

A scene holds one to four objects, each in its own cell of a 2x2 grid of **positions**. An
object has a colour, a shape and a size; where exactly it sits inside its cell is a small
seeded **jitter** that changes the pixels but never the words. Everything a learner sees
follows from the scene alone:

- :func:`render` draws it, ``(H, W, 3)`` uint8, and returns one boolean mask per object,
  ``(O, H, W)``, so later notebooks can measure how much attention falls on an object;
  :func:`render_batch` draws many scenes into one ``(S, 3, H, W)`` tensor for a model;
- :func:`caption` and :func:`caption_zh` describe it in English and Chinese;
- :func:`questions` asks about it, each question with exactly one right one-word answer;
- :func:`split_of` puts every scene *content* (objects without jitter) into exactly one of
  train, val and test, so an evaluation scene is never a training scene with shifted pixels.

At the default 32x32 image each grid cell is 16x16 pixels, i.e. 2x2 patches of 8 pixels.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch
from torch.utils.data import Dataset

# --------------------------------------------------------------------------- vocabulary

COLOURS = ("red", "green", "blue", "yellow", "purple")
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")  # row-major 2x2 grid
COUNTS = ("one", "two", "three", "four")  # one per possible number of objects

COLOURS_ZH = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色"}
SHAPES_ZH = {"circle": "圆形", "square": "正方形", "triangle": "三角形"}
SIZES_ZH = {"small": "小", "large": "大"}
POSITIONS_ZH = {"top left": "左上", "top right": "右上", "bottom left": "左下", "bottom right": "右下"}

# Every answer :func:`questions` can give; a question-answering head can classify over these.
ANSWERS = COLOURS + SHAPES + SIZES + COUNTS + ("yes", "no")

DEFAULT_MAX_OBJECTS = 3

# Saturated colours far apart in RGB, on a dark background, so one pixel tells the colour.
RGB = {
    "red": (230, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 100, 240),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 210),
}
BACKGROUND = (20, 20, 20)

# Geometry in units of a grid cell's side: the side of an object's bounding square, and the
# margin kept free on each side of the cell so that objects in neighbouring cells never touch.
# With image sizes that are multiples of 8 every side is a whole number of pixels.
EXTENT = {"small": 0.5, "large": 0.75}
MARGIN = 0.05
MIN_IMAGE_SIZE = 32  # below this a small triangle is a handful of pixels


# --------------------------------------------------------------------------- scene

def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"expected {name} to be one of {choices}, got {value!r}")


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"expected {name} to be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise ValueError(f"expected {name} >= {low}{upper}, got {value}")


def _check_image_size(image_size: object) -> None:
    _check_int("image_size", image_size, MIN_IMAGE_SIZE)
    if image_size % 8:
        raise ValueError(f"expected image_size to be a multiple of 8 (e.g. 32 or 64), got {image_size}")


@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene: colour, shape, size, grid position and jitter inside the cell.

    ``jitter = (jx, jy)``, each in [-1, 1], moves the object from the centre of its cell
    towards the cell's edges, as far as the object can go while staying inside the margin.
    Introduced in notebook 00.
    """

    colour: str
    shape: str
    size: str
    position: str
    jitter: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _check_choice("colour", self.colour, COLOURS)
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("size", self.size, SIZES)
        _check_choice("position", self.position, POSITIONS)
        try:
            jitter = tuple(float(j) for j in self.jitter)
        except (TypeError, ValueError):
            jitter = ()
        if len(jitter) != 2 or not all(-1.0 <= j <= 1.0 for j in jitter):
            raise ValueError(f"expected jitter as two numbers in [-1, 1], got {self.jitter!r}")
        object.__setattr__(self, "jitter", jitter)

    def box(self, image_size: int) -> tuple[float, float, float]:
        """Pixel centre ``(x, y)`` and side of the object's bounding square in an image of that size.

        The jitter moves the centre by whole pixels, so a shape of a given size always covers
        the same pattern of pixels wherever it sits.
        """
        _check_image_size(image_size)
        cell = image_size // 2
        row, col = divmod(POSITIONS.index(self.position), 2)
        extent = EXTENT[self.size]
        reach = math.floor(((1 - extent) / 2 - MARGIN) * cell)  # whole pixels the centre may move
        x = (col + 0.5) * cell + round(self.jitter[0] * reach)
        y = (row + 0.5) * cell + round(self.jitter[1] * reach)
        return x, y, extent * cell


@dataclass(frozen=True)
class Scene:
    """A tuple of :class:`SceneObject`, at most one per position, kept in position order.

    The order is canonical (``POSITIONS``), so two scenes with the same objects are equal
    whatever order they were given in. Introduced in notebook 00.
    """

    objects: tuple[SceneObject, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.objects, (tuple, list)):
            raise TypeError(f"expected objects as a tuple of SceneObject, got {type(self.objects).__name__}")
        objects = tuple(self.objects)
        if not all(isinstance(o, SceneObject) for o in objects):
            kinds = sorted({type(o).__name__ for o in objects})
            raise TypeError(f"expected objects to be SceneObject, got {kinds}")
        if not 1 <= len(objects) <= len(POSITIONS):
            raise ValueError(f"expected 1 to {len(POSITIONS)} objects, got {len(objects)}")
        positions = [o.position for o in objects]
        if len(set(positions)) != len(positions):
            raise ValueError(f"expected one object per position, got positions {positions}")
        object.__setattr__(self, "objects", tuple(sorted(objects, key=lambda o: POSITIONS.index(o.position))))

    @property
    def signature(self) -> tuple[tuple[str, str, str, str], ...]:
        """The scene's content without jitter: ``(position, size, colour, shape)`` per object."""
        return tuple((o.position, o.size, o.colour, o.shape) for o in self.objects)


# --------------------------------------------------------------------------- render

def _check_scene(scene: object) -> None:
    if not isinstance(scene, Scene):
        raise TypeError(f"expected a Scene, got {type(scene).__name__}")


def render(scene: Scene, image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Draw a scene: an image ``(H, W, 3)`` uint8 and object masks ``(O, H, W)`` bool.

    ``H = W = image_size``; mask ``o`` marks the pixels of ``scene.objects[o]``, which are
    painted exactly in ``RGB[colour]`` (no anti-aliasing, so a mask is the object). A pixel
    belongs to a shape when its centre does: a circle fills π/4 of its bounding square, a
    square all of it, a triangle (apex up) half of it. Introduced in notebook 00.
    """
    _check_scene(scene)
    _check_image_size(image_size)
    ys, xs = np.mgrid[0:image_size, 0:image_size] + 0.5  # pixel centres, (H, W) each
    image = np.empty((image_size, image_size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    masks = np.zeros((len(scene.objects), image_size, image_size), dtype=bool)  # (O, H, W)
    for o, obj in enumerate(scene.objects):
        x, y, side = obj.box(image_size)
        half = side / 2
        dx, dy = xs - x, ys - y
        if obj.shape == "circle":
            mask = dx**2 + dy**2 <= half**2
        elif obj.shape == "square":
            mask = (np.abs(dx) <= half) & (np.abs(dy) <= half)
        else:  # the triangle widens linearly from its apex (dy = -half) to its base (dy = half)
            mask = (np.abs(dy) <= half) & (np.abs(dx) <= (dy + half) / 2)
        masks[o] = mask
        image[mask] = RGB[obj.colour]
    return image, masks


def render_batch(scenes: Sequence[Scene], image_size: int = 32) -> torch.Tensor:
    """Draw many scenes into one tensor: uint8 images ``(S, 3, H, W)``, channels first, as models take them.

    Image ``s`` is ``render(scenes[s], image_size)[0]`` with its axes moved. uint8 takes a quarter
    of the memory of float32: divide by 255 to get the ``[0, 1]`` floats an encoder expects.
    Introduced in notebook 09.
    """
    if isinstance(scenes, Scene) or not isinstance(scenes, Sequence) or len(scenes) == 0:
        raise ValueError(f"expected a non-empty sequence of Scene, got {type(scenes).__name__}")
    _check_image_size(image_size)
    pictures = np.stack([render(scene, image_size)[0] for scene in scenes])  # (S, H, W, 3)
    return torch.from_numpy(pictures).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------- language

def caption(scene: Scene) -> str:
    """The English caption, objects in position order, words separated by single spaces.

    e.g. ``"a large red circle at the top left and a small blue square at the bottom right"``.
    Depends on the scene's signature only, never on jitter. Introduced in notebook 00.
    """
    _check_scene(scene)
    return " and ".join(f"a {o.size} {o.colour} {o.shape} at the {o.position}" for o in scene.objects)


def caption_zh(scene: Scene) -> str:
    """The Chinese caption with the same content and order as :func:`caption`.

    e.g. ``"左上有一个大的红色圆形，右下有一个小的蓝色正方形"``. Introduced in notebook 00.
    """
    _check_scene(scene)
    return "，".join(
        f"{POSITIONS_ZH[o.position]}有一个{SIZES_ZH[o.size]}的{COLOURS_ZH[o.colour]}{SHAPES_ZH[o.shape]}"
        for o in scene.objects
    )


def _pick(rng: np.random.Generator, options: list):
    return options[rng.integers(len(options))]


def questions(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Question-answer pairs about a scene, each answer one word from ``ANSWERS``.

    One question of each type that has an unambiguous answer, in this order:

    - ``how many objects are there`` → ``one`` … ``four``;
    - ``what shape is at the <position>`` (an occupied position) → a shape;
    - ``what colour is the <shape>`` (only if exactly one object has that shape) → a colour;
    - ``what size is the <colour> <shape>`` (only if exactly one such object) → a size;
    - ``is there a <colour> <shape>`` about an object that is there → ``yes``;
    - ``is there a <colour> <shape>`` about one that is not → ``no``. It shares its colour or
      its shape with an object in the scene, so answering needs both words.

    ``rng`` chooses among the candidates. Introduced in notebook 00.
    """
    _check_scene(scene)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"expected rng to be a numpy.random.Generator, got {type(rng).__name__}")
    objects = scene.objects
    shape_counts = {s: sum(o.shape == s for o in objects) for s in SHAPES}
    pair_counts = {(c, s): sum((o.colour, o.shape) == (c, s) for o in objects) for c in COLOURS for s in SHAPES}

    pairs = [("how many objects are there", COUNTS[len(objects) - 1])]
    obj = _pick(rng, list(objects))
    pairs.append((f"what shape is at the {obj.position}", obj.shape))
    unique_shapes = [o for o in objects if shape_counts[o.shape] == 1]
    if unique_shapes:
        obj = _pick(rng, unique_shapes)
        pairs.append((f"what colour is the {obj.shape}", obj.colour))
    unique_pairs = [o for o in objects if pair_counts[(o.colour, o.shape)] == 1]
    if unique_pairs:
        obj = _pick(rng, unique_pairs)
        pairs.append((f"what size is the {obj.colour} {obj.shape}", obj.size))
    obj = _pick(rng, list(objects))
    pairs.append((f"is there a {obj.colour} {obj.shape}", "yes"))
    # An object has six near misses (its colour or its shape changed) and the at most three
    # other objects can be only three of them, so one is always left.
    near_misses = [
        (c, s) for (c, s), count in pair_counts.items()
        if count == 0 and any(o.colour == c or o.shape == s for o in objects)
    ]
    colour, shape = _pick(rng, near_misses)
    pairs.append((f"is there a {colour} {shape}", "no"))
    return pairs


# --------------------------------------------------------------------------- splits

SPLITS = ("train", "val", "test")
SPLIT_PERCENT = {"train": 80, "val": 10, "test": 10}  # share of all scene contents
_KINDS = tuple(product(SIZES, COLOURS, SHAPES))  # the 30 kinds of object, drawn uniformly


def _split_of_signature(signature: tuple[tuple[str, str, str, str], ...]) -> str:
    text = ";".join(",".join(fields) for fields in signature)
    bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % 100
    for split in SPLITS:
        if bucket < SPLIT_PERCENT[split]:
            return split
        bucket -= SPLIT_PERCENT[split]
    raise AssertionError("SPLIT_PERCENT must add up to 100")


def split_of(scene: Scene) -> str:
    """The split a scene's content belongs to, from a hash of its signature (jitter ignored).

    A fixed hash, not Python's salted ``hash``, so the split is the same on every machine.
    Introduced in notebook 00.
    """
    _check_scene(scene)
    return _split_of_signature(scene.signature)


def _random_signature(rng: np.random.Generator, max_objects: int) -> tuple[tuple[str, str, str, str], ...]:
    # One call to the generator per draw: make_scenes tries about ten per val or test scene kept.
    u = rng.random(1 + 2 * len(POSITIONS))
    count = 1 + int(u[0] * max_objects)
    slots = sorted(np.argsort(u[1 : 1 + len(POSITIONS)])[:count])  # a uniform random set of cells
    kinds = (u[1 + len(POSITIONS) :][:count] * len(_KINDS)).astype(int)
    return tuple((POSITIONS[slot], *_KINDS[kind]) for slot, kind in zip(slots, kinds))


def _scene_with_jitter(signature: tuple[tuple[str, str, str, str], ...], rng: np.random.Generator) -> Scene:
    jitters = rng.uniform(-1.0, 1.0, size=(len(signature), 2))  # (O, 2)
    return Scene(tuple(
        SceneObject(colour=colour, shape=shape, size=size, position=position, jitter=tuple(jitter))
        for (position, size, colour, shape), jitter in zip(signature, jitters)
    ))


def random_scene(rng: np.random.Generator, max_objects: int = DEFAULT_MAX_OBJECTS) -> Scene:
    """A scene with 1 to ``max_objects`` objects (count uniform) in random distinct positions.

    Colour, shape and size are uniform and independent; jitter is uniform in [-1, 1]².
    Introduced in notebook 00.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"expected rng to be a numpy.random.Generator, got {type(rng).__name__}")
    _check_int("max_objects", max_objects, 1, len(POSITIONS))
    return _scene_with_jitter(_random_signature(rng, max_objects), rng)


def _stream(seed: int, split: str, purpose: int) -> np.random.Generator:
    # Each (split, purpose) gets its own child of the seed, so streams never overlap.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split), purpose)))


def _check_split_args(split: object, n: object, seed: object, max_objects: object) -> None:
    _check_choice("split", split, SPLITS)
    _check_int("n", n, 1)
    _check_int("seed", seed, 0)
    _check_int("max_objects", max_objects, 1, len(POSITIONS))


def make_scenes(split: str, n: int, seed: int = 0, max_objects: int = DEFAULT_MAX_OBJECTS) -> list[Scene]:
    """``n`` scenes of one split, the same for the same arguments.

    Scenes come from the split's own random stream, and a scene whose content
    :func:`split_of` gives to another split is drawn again, so no val or test content ever
    appears in train. The first ``k`` scenes do not depend on ``n``. Introduced in notebook 00.
    """
    _check_split_args(split, n, seed, max_objects)
    rng = _stream(seed, split, purpose=0)
    scenes: list[Scene] = []
    while len(scenes) < n:
        signature = _random_signature(rng, max_objects)
        if _split_of_signature(signature) == split:  # jitter is drawn only for kept contents
            scenes.append(_scene_with_jitter(signature, rng))
    return scenes


# --------------------------------------------------------------------------- dataset

class ShapesWorld(Dataset):
    """The shapes world as a torch ``Dataset`` of ``n`` scenes from one split.

    Item ``i`` is a dict: ``image`` float tensor ``(3, H, W)`` in [0, 1], ``masks`` bool
    tensor ``(O, H, W)``, ``caption``, ``caption_zh``, ``questions`` (list of
    ``(question, answer)``) and ``scene``. Images are drawn when asked for; scenes and
    questions are fixed at construction. Batch items with :func:`collate`, since ``O``
    differs between scenes. Introduced in notebook 00.
    """

    def __init__(
        self,
        split: str,
        n: int,
        seed: int = 0,
        image_size: int = 32,
        max_objects: int = DEFAULT_MAX_OBJECTS,
    ) -> None:
        _check_split_args(split, n, seed, max_objects)
        _check_image_size(image_size)
        self.split, self.seed, self.image_size = split, seed, image_size
        self.scenes = make_scenes(split, n, seed, max_objects)
        rng = _stream(seed, split, purpose=1)
        self.questions = [questions(scene, rng) for scene in self.scenes]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> dict:
        _check_int("index", index, -len(self), len(self) - 1)
        scene = self.scenes[index]
        image, masks = render(scene, self.image_size)
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1).float() / 255,  # (3, H, W)
            "masks": torch.from_numpy(masks),  # (O, H, W)
            "caption": caption(scene),
            "caption_zh": caption_zh(scene),
            "questions": self.questions[index],
            "scene": scene,
        }


def collate(items: list[dict]) -> dict:
    """Batch :class:`ShapesWorld` items: ``image`` stacked to ``(B, 3, H, W)``, the rest as lists.

    Use as ``DataLoader(world, batch_size=..., collate_fn=collate)``. Introduced in notebook 00.
    """
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"expected a non-empty list of ShapesWorld items, got {items!r:.80}")
    return {
        "image": torch.stack([item["image"] for item in items]),  # (B, 3, H, W)
        **{key: [item[key] for item in items] for key in ("masks", "caption", "caption_zh", "questions", "scene")},
    }
