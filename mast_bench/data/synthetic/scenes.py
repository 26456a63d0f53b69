"""Multi-object scenes of the synthetic suite and their COCO instance annotations.

A scene is a 64×64 image with 1–4 non-overlapping objects (any shape, colour, size, angle) on a
textured background. Each object is one COCO instance of category = its shape, with its outline
polygon as the segmentation, the polygon's extent as ``bbox`` ``[x, y, w, h]`` and the area of
the polygon rasterised by pycocotools as ``area``, so ``COCO.annToMask(ann).sum() == ann["area"]``.
Objects do not overlap (rejection sampling on their enclosing circles), so no instance is
occluded and every polygon is the visible outline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mast_bench.data.synthetic.factors import (
    SCENE_SIZE,
    SCENE_SIZE_RANGE,
    SHAPES,
    Background,
    ObjectFactors,
    sample_background,
    sample_object,
)
from mast_bench.data.synthetic.render import shape_polygon

MAX_OBJECTS = 4
#: Placement attempts per object before giving up on it (the scene keeps at least one object).
MAX_TRIES = 30
CATEGORIES: list[dict[str, Any]] = [
    {"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)
]


def sample_scene(rng: np.random.Generator, canvas: int = SCENE_SIZE) -> tuple[Background, list[ObjectFactors]]:
    """Draw a background and 1–4 objects whose enclosing circles are ≥ 1 px apart."""
    bg = sample_background(rng)
    wanted = int(rng.integers(1, MAX_OBJECTS + 1))
    objects: list[ObjectFactors] = []
    for _ in range(wanted):
        for _ in range(MAX_TRIES):
            obj = sample_object(rng, bg.val, canvas=canvas, size_range=SCENE_SIZE_RANGE)
            if all(np.hypot(obj.cx - o.cx, obj.cy - o.cy) >= obj.size + o.size + 1.0 for o in objects):
                objects.append(obj)
                break
    return bg, objects


def coco_annotation(obj: ObjectFactors, ann_id: int, image_id: int, canvas: int) -> dict[str, Any]:
    """One COCO instance: polygon segmentation (2-decimal pixel coordinates), bbox, area, iscrowd 0."""
    from pycocotools import mask as mask_utils

    poly = np.round(shape_polygon(obj), 2)
    flat = [float(v) for v in poly.reshape(-1)]
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    rle = mask_utils.merge(mask_utils.frPyObjects([flat], canvas, canvas))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": SHAPES.index(obj.shape) + 1,
        "segmentation": [flat],
        "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
        "area": float(mask_utils.area(rle)),
        "iscrowd": 0,
    }


def coco_document(scenes: list[tuple[str, list[ObjectFactors]]], canvas: int, description: str) -> dict[str, Any]:
    """A complete COCO instances file for scenes ``[(file_name, objects), ...]`` (ids from 1, in order)."""
    images, annotations = [], []
    for image_id, (file_name, objects) in enumerate(scenes, start=1):
        images.append({"id": image_id, "file_name": file_name, "width": canvas, "height": canvas})
        for obj in objects:
            annotations.append(coco_annotation(obj, len(annotations) + 1, image_id, canvas))
    return {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
