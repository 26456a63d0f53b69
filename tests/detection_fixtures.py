"""Tiny PASCAL VOC and COCO copies in their official on-disk layouts, for the detection tests.

``make_voc(root)`` writes ``VOC2007/`` (trainval + test) and ``VOC2012/`` (trainval) as the VOC tarballs
extract: ``Annotations/<id>.xml`` with every field Detectron2 and the VOC devkit read (``size``, and per object
``name``, ``pose``, ``truncated``, ``difficult``, ``bndbox``), ``ImageSets/Main/<split>.txt`` and
``JPEGImages/<id>.jpg``. ``make_coco(root)`` writes ``coco/annotations/instances_{train2017,val2017}.json``
and ``coco/{train2017,val2017}/<id>.jpg`` with polygon instances, a crowd region and non-contiguous category
ids, as COCO's files have. Both return the ground truth they wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

VOC_SIZE = (64, 48)  # width, height

# (image id, [(class, pose, truncated, difficult, (xmin, ymin, xmax, ymax)), ...]) per VOC folder and split.
VOC_IMAGES: dict[str, dict[str, list[tuple[str, list[tuple[str, str, int, int, tuple[int, int, int, int]]]]]]] = {
    "VOC2007": {
        "trainval": [
            ("000005", [("dog", "Left", 0, 0, (5, 6, 30, 40)), ("cat", "Unspecified", 1, 0, (34, 4, 60, 30))]),
            ("000007", [("dog", "Frontal", 0, 0, (10, 10, 50, 44))]),
        ],
        "test": [
            (
                "000001",
                [
                    ("dog", "Left", 0, 0, (4, 4, 30, 30)),
                    ("dog", "Right", 0, 0, (34, 10, 60, 44)),
                    ("dog", "Rear", 1, 1, (2, 32, 14, 46)),
                ],
            ),
            ("000002", [("cat", "Unspecified", 0, 0, (8, 8, 40, 40))]),
        ],
    },
    "VOC2012": {"trainval": [("2008_000008", [("cat", "Left", 0, 0, (6, 6, 44, 40))])]},
}


def _jpeg(path: Path, size: tuple[int, int], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def voc_xml(folder: str, image_id: str, objects: list[Any], size: tuple[int, int] = VOC_SIZE) -> str:
    """One VOC annotation file, field for field as the official ones."""
    parts = [
        "<annotation>", f"\t<folder>{folder}</folder>", f"\t<filename>{image_id}.jpg</filename>",
        "\t<source>\n\t\t<database>The VOC Database</database>\n\t</source>",
        f"\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n\t</size>",
        "\t<segmented>0</segmented>",
    ]  # fmt: skip
    for name, pose, truncated, difficult, (x0, y0, x1, y1) in objects:
        parts.append(
            f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>{pose}</pose>\n\t\t<truncated>{truncated}</truncated>\n"
            f"\t\t<difficult>{difficult}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
            f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def make_voc(root: Path, images: dict[str, Any] | None = None) -> Path:
    """Write ``root/VOC2007`` and ``root/VOC2012``; returns ``root`` (a Detectron2 datasets folder)."""
    images = images or VOC_IMAGES
    seed = 0
    for folder, splits in images.items():
        base = root / folder
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        for split, entries in splits.items():
            (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i, _ in entries))
            for image_id, objects in entries:
                (base / "Annotations" / f"{image_id}.xml").write_text(voc_xml(folder, image_id, objects))
                _jpeg(base / "JPEGImages" / f"{image_id}.jpg", VOC_SIZE, seed)
                seed += 1
    return root


# COCO: categories with non-contiguous ids, as COCO's own (1 person, 3 car here).
COCO_CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
                   {"id": 3, "name": "car", "supercategory": "vehicle"}]  # fmt: skip
COCO_SIZE = 48


def _square(x: float, y: float, s: float) -> list[float]:
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a binary ``(H, W)`` mask: run lengths in column-major order, zeros first."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return [int(c) for c in counts]


def coco_document(n_images: int, seed: int) -> dict[str, Any]:
    """A COCO instances file: ``n_images`` 48-px images with 1-3 square instances each (and one crowd)."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(n_images):
        image_id = 100 + i
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": COCO_SIZE, "height": COCO_SIZE})
        for j in range(int(rng.integers(1, 4))):
            s = float(rng.integers(8, 14))
            x, y = 2.0 + 15 * j, float(rng.integers(2, COCO_SIZE - 16))
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(rng.choice([1, 3])),
                "segmentation": [_square(x, y, s)], "bbox": [x, y, s, s], "area": s * s, "iscrowd": 0,
            })  # fmt: skip
    crowd = np.zeros((COCO_SIZE, COCO_SIZE), dtype=np.uint8)
    crowd[42:46, 40:46] = 1  # a crowd region in COCO's uncompressed RLE (column-major runs, zeros first)
    annotations.append({
        "id": len(annotations) + 1, "image_id": 100, "category_id": 1, "iscrowd": 1, "area": float(crowd.sum()),
        "segmentation": {"counts": uncompressed_rle(crowd), "size": [COCO_SIZE, COCO_SIZE]},
        "bbox": [40.0, 42.0, 6.0, 4.0],
    })  # fmt: skip
    return {"info": {"description": "tiny COCO fixture"}, "licenses": [], "images": images,
            "annotations": annotations, "categories": COCO_CATEGORIES}  # fmt: skip


def make_coco(root: Path, n_train: int = 3, n_val: int = 2) -> Path:
    """Write ``root/coco/`` with train2017 and val2017; returns ``root``."""
    for k, (split, n) in enumerate((("train2017", n_train), ("val2017", n_val))):
        doc = coco_document(n, seed=k)
        ann = root / "coco" / "annotations" / f"instances_{split}.json"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(json.dumps(doc))
        for i, image in enumerate(doc["images"]):
            _jpeg(root / "coco" / split / image["file_name"], (COCO_SIZE, COCO_SIZE), 1000 * k + i)
    return root
