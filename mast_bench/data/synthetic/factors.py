"""Factors of variation of the synthetic invariance suite, their distributions, and the tasks.

Every image shows one flat-coloured object over a textured background. Its factors are:
shape, colour (hue, saturation, value), size, position, orientation (angle and mirror) and the
background (texture class, tint, brightness, texture contrast, period, angle, phase). A task
fixes one factor as the label and draws every other factor at random, so the label is the only
thing that the classes share. Which augmentation family destroys each label is what makes the
tasks "reward different invariances" (the MAST paper's premise, Huang et al., ICLR 2023).

Randomness: every stream of images (one per part, split and class, e.g.
``tasks/shape/train/circle``) has its own generator seeded by ``(seed, crc32(stream))``
(:func:`stream_rng`) from which its images are drawn one after another, so streams are
independent of each other and a larger suite size extends each stream without changing its
first images.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

IMAGE_SIZE = 32
SCENE_SIZE = 64
SHAPES = ("circle", "triangle", "square", "plus", "star", "arrow", "L", "F")
#: Shapes without any symmetry: all 8 rotation-by-90°/mirror images are distinct pictures.
CHIRAL_SHAPES = ("L", "F")
#: The shape task's classes: distinct silhouettes that stay legible at 32 px under any rotation
#: (L and F differ by one short arm, which is the few-shot pool's fine-grained job, not this task's).
SHAPE_CLASSES = ("circle", "triangle", "square", "plus", "star", "arrow")
#: The orientation task draws one chiral shape, so its 8 classes are 8 poses of one silhouette.
ORIENTATION_SHAPE = "L"
HUE_BINS = {"red": 0.0, "yellow": 60.0, "green": 120.0, "cyan": 180.0, "blue": 240.0, "magenta": 300.0}
#: Hue is drawn within ±20° of the bin centre: a 20° gap separates neighbouring 60°-wide bins.
HUE_JITTER = 20.0
TEXTURES = ("smooth", "stripes", "checker", "dots")
ORIENTATIONS = ("r000", "r090", "r180", "r270", "m000", "m090", "m180", "m270")
#: Angle jitter around the multiple of 90°, well inside the ±45° that separates classes.
ORIENT_JITTER = 12.0
#: Vertical thirds. Bands (not quadrants) so that a horizontal flip keeps the label and crop is
#: the only augmentation family that moves it.
POSITIONS = ("top", "middle", "bottom")
POSITION_MARGIN = 1.5
#: Object size (centroid to farthest vertex, px). Large enough that an L, F or star is legible at
#: 32 px; the position task uses smaller objects so that each vertical third can hold one whole,
#: and the pool covers both ranges.
SIZE_RANGE = (5.5, 9.0)
POSITION_SIZE_RANGE = (4.0, 6.5)
POOL_SIZE_RANGE = (4.0, 9.0)
SCENE_SIZE_RANGE = (6.0, 11.0)
OBJ_SAT, OBJ_VAL = (0.55, 1.0), (0.35, 1.0)
BG_SAT, BG_VAL = (0.0, 0.25), (0.1, 0.9)
#: Minimum |object value − background value|, so every object is visible in grayscale too.
MIN_CONTRAST = 0.25
TEX_AMP, TEX_PERIOD = (0.08, 0.16), (3.5, 5.0)
FEWSHOT_COLOURS = ("red", "green", "blue")
FEWSHOT_CLASSES = tuple(f"{s}-{c}" for s in SHAPES for c in FEWSHOT_COLOURS)


@dataclass(frozen=True)
class ObjectFactors:
    """One object. ``size``: pixels from centroid to farthest vertex; ``angle``: degrees, CCW on screen."""

    shape: str
    hue: float
    sat: float
    val: float
    size: float
    cx: float
    cy: float
    angle: float
    mirror: bool


@dataclass(frozen=True)
class Background:
    """The background: tint (hue, sat), brightness ``val`` and a texture of contrast ``amp``."""

    texture: str
    hue: float
    sat: float
    val: float
    amp: float
    period: float
    tex_angle: float
    phase_u: float
    phase_v: float


@dataclass(frozen=True)
class TaskSpec:
    """A labelled task: which factor is the label, and which augmentation family destroys it."""

    name: str
    key: str
    factor: str
    classes: tuple[str, ...]
    rewards: str
    hurt_by: tuple[str, ...]


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("synthetic-shape", "shape", "shape", SHAPE_CLASSES,
             "invariance to colour, size, position, orientation and background", ()),
    TaskSpec("synthetic-colour", "colour", "hue bin", tuple(HUE_BINS),
             "sensitivity to hue", ("color_jitter", "grayscale")),
    TaskSpec("synthetic-orientation", "orientation", "rotation by 90° and mirror of an L", ORIENTATIONS,
             "sensitivity to orientation and handedness", ("flip",)),
    TaskSpec("synthetic-position", "position", "vertical third holding the object's centroid", POSITIONS,
             "sensitivity to absolute position", ("crop",)),
    TaskSpec("synthetic-texture", "texture", "background texture", TEXTURES,
             "sensitivity to fine background texture", ("blur",)),
)  # fmt: skip
TASKS_BY_KEY = {t.key: t for t in TASKS}
SYNTHETIC_TASKS: tuple[str, ...] = tuple(t.name for t in TASKS)
#: Task → the augmentation family (a name in ``mast_bench.augment.FAMILIES``) whose invariance
#: hurts it; "none" for the shape task, the control that every family leaves intact.
TASK_INVARIANCE: dict[str, str] = {t.name: (t.hurt_by[0] if t.hurt_by else "none") for t in TASKS}
TASK_HURT_BY: dict[str, tuple[str, ...]] = {t.name: t.hurt_by for t in TASKS}


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """The generator of one stream of images (crc32 rather than ``hash()``: stable across processes)."""
    return np.random.default_rng([int(seed), zlib.crc32(stream.encode())])


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def sample_background(rng: np.random.Generator, texture: str | None = None) -> Background:
    tex = texture if texture is not None else TEXTURES[int(rng.integers(len(TEXTURES)))]
    return Background(
        texture=tex, hue=_u(rng, (0.0, 360.0)), sat=_u(rng, BG_SAT), val=_u(rng, BG_VAL), amp=_u(rng, TEX_AMP),
        period=_u(rng, TEX_PERIOD), tex_angle=_u(rng, (0.0, 180.0)),
        phase_u=_u(rng, (0.0, 2 * np.pi)), phase_v=_u(rng, (0.0, 2 * np.pi)),
    )  # fmt: skip


def _contrasting_value(rng: np.random.Generator, bg_val: float) -> float:
    """Uniform over the object values at least MIN_CONTRAST away from the background's."""
    lo, hi = OBJ_VAL
    below = max(0.0, min(hi, bg_val - MIN_CONTRAST) - lo)
    above = max(0.0, hi - max(lo, bg_val + MIN_CONTRAST))
    x = float(rng.uniform(0.0, below + above))
    return lo + x if x < below else max(lo, bg_val + MIN_CONTRAST) + (x - below)


def sample_object(
    rng: np.random.Generator,
    bg_val: float,
    canvas: int = IMAGE_SIZE,
    shape: str | None = None,
    hue: float | None = None,
    angle: float | None = None,
    mirror: bool | None = None,
    cy_range: tuple[float, float] | None = None,
    size_range: tuple[float, float] = SIZE_RANGE,
) -> ObjectFactors:
    """Draw one object; any factor given is fixed, the rest are random. The object lies fully inside."""
    shape = shape if shape is not None else SHAPES[int(rng.integers(len(SHAPES)))]
    hue = hue if hue is not None else _u(rng, (0.0, 360.0))
    sat, val = _u(rng, OBJ_SAT), _contrasting_value(rng, bg_val)
    size = _u(rng, size_range)
    inside = (size + 0.5, canvas - size - 0.5)
    cx = _u(rng, inside)
    if cy_range is None:
        cy = _u(rng, inside)
    else:
        cy = _u(rng, (max(cy_range[0], inside[0]), min(cy_range[1], inside[1])))
    angle = angle if angle is not None else _u(rng, (0.0, 360.0))
    mirror = mirror if mirror is not None else bool(rng.integers(2))
    return ObjectFactors(shape, hue, sat, val, size, cx, cy, angle, mirror)


def position_band(label: str, canvas: int = IMAGE_SIZE) -> tuple[float, float]:
    """The range of centroid ``y`` (pixels, y down) that defines a position class, margins included."""
    i = POSITIONS.index(label)
    return (canvas * i / 3 + POSITION_MARGIN, canvas * (i + 1) / 3 - POSITION_MARGIN)


def sample_labelled(rng: np.random.Generator, task_key: str, label: str) -> tuple[Background, ObjectFactors]:
    """Draw the factors of one image of class ``label`` of a task; all other factors are random."""
    if task_key == "texture":
        bg = sample_background(rng, texture=label)
    else:
        bg = sample_background(rng)
    if task_key == "shape":
        return bg, sample_object(rng, bg.val, shape=label)
    if task_key == "colour":
        return bg, sample_object(rng, bg.val, hue=HUE_BINS[label] + _u(rng, (-HUE_JITTER, HUE_JITTER)))
    if task_key == "orientation":
        angle = (int(label[1:]) + _u(rng, (-ORIENT_JITTER, ORIENT_JITTER))) % 360.0
        return bg, sample_object(rng, bg.val, shape=ORIENTATION_SHAPE, angle=angle, mirror=label.startswith("m"))
    if task_key == "position":
        return bg, sample_object(rng, bg.val, cy_range=position_band(label), size_range=POSITION_SIZE_RANGE)
    if task_key == "texture":
        return bg, sample_object(rng, bg.val)
    if task_key == "fewshot":
        shape, colour = label.split("-")
        return bg, sample_object(rng, bg.val, shape=shape, hue=HUE_BINS[colour] + _u(rng, (-HUE_JITTER, HUE_JITTER)))
    raise ValueError(f"unknown synthetic task {task_key!r}; valid: {[*TASKS_BY_KEY, 'fewshot']}")


def sample_unlabelled(rng: np.random.Generator) -> tuple[Background, ObjectFactors]:
    """Draw the factors of one pretraining-pool image: every factor random."""
    bg = sample_background(rng)
    return bg, sample_object(rng, bg.val, size_range=POOL_SIZE_RANGE)


FACTOR_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ObjectFactors)) + tuple(
    f"bg_{f.name}" for f in fields(Background)
)


_OBJ_FIELDS = tuple(f.name for f in fields(ObjectFactors))
_BG_FIELDS = tuple(f.name for f in fields(Background))


def factor_row(bg: Background, obj: ObjectFactors) -> dict[str, Any]:
    """Flatten one image's factors to a row of ``factors.csv`` (object fields, then ``bg_*``)."""
    return {**{k: getattr(obj, k) for k in _OBJ_FIELDS}, **{f"bg_{k}": getattr(bg, k) for k in _BG_FIELDS}}


def factors_from_row(row: dict[str, str]) -> tuple[Background, ObjectFactors]:
    """Inverse of :func:`factor_row` for a row read back from ``factors.csv`` (floats round-trip exactly)."""

    def conv(cls: type, prefix: str) -> Any:
        kw: dict[str, Any] = {}
        for f in fields(cls):
            raw = row[prefix + f.name]
            kw[f.name] = raw if f.type == "str" else (raw == "True" if f.type == "bool" else float(raw))
        return cls(**kw)

    return conv(Background, "bg_"), conv(ObjectFactors, "")


FACTOR_DEFINITIONS: dict[str, Any] = {
    "image_size": IMAGE_SIZE, "scene_size": SCENE_SIZE, "shapes": list(SHAPES), "chiral_shapes": list(CHIRAL_SHAPES),
    "shape_task_classes": list(SHAPE_CLASSES), "orientation_shape": ORIENTATION_SHAPE,
    "hue_bins_deg": HUE_BINS, "hue_jitter_deg": HUE_JITTER, "object_saturation": list(OBJ_SAT),
    "object_value": list(OBJ_VAL), "min_value_contrast": MIN_CONTRAST, "size_px": list(SIZE_RANGE),
    "position_size_px": list(POSITION_SIZE_RANGE), "pool_size_px": list(POOL_SIZE_RANGE),
    "scene_size_px": list(SCENE_SIZE_RANGE), "angle_deg": [0.0, 360.0], "orientation_jitter_deg": ORIENT_JITTER,
    "position_bands": {p: list(position_band(p)) for p in POSITIONS}, "textures": list(TEXTURES),
    "background_saturation": list(BG_SAT), "background_value": list(BG_VAL), "texture_contrast": list(TEX_AMP),
    "texture_period_px": list(TEX_PERIOD), "fewshot_colours": list(FEWSHOT_COLOURS),
}  # fmt: skip
