"""A picture of the synthetic suite: sample images of every task class, the pool, few-shot and scenes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from mast_bench.data.synthetic.factors import FEWSHOT_COLOURS, SHAPES, TASKS
from mast_bench.data.synthetic.manifest import load_manifest
from mast_bench.fileio import atomic_savefig

CELL = 128  # pixels per sample in the mosaic (32-px images ×4, 64-px scenes ×2, nearest-neighbour)
GAP = 22  # room for a caption above each sample


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        return np.asarray(im.resize((CELL, CELL), Image.Resampling.NEAREST))


def _nth(folder: Path, index: int = 0) -> Path:
    files = sorted(folder.glob("*.png"))
    return files[index % len(files)]


def render_sample_grid(root: str | os.PathLike[str], out_png: str | os.PathLike[str], columns: int = 8) -> Path:
    """Draw one row per task (one image of each class, captioned with the class), a row of pool
    images, a row of few-shot classes and a row of scenes with their COCO boxes.

    Args:
        root: a suite written by :func:`mast_bench.data.synthetic.suite.make_synthetic`.
        out_png: the figure to write (atomically).
        columns: images per row (a task with more classes shows its first ``columns``).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    root = Path(root)
    manifest = load_manifest(root)
    rows: list[tuple[str, list[tuple[str, Path]]]] = []
    for t in TASKS:
        cells = [(c, _nth(root / "tasks" / t.key / "train" / c)) for c in t.classes[:columns]]
        rows.append((f"{t.key}\nhurt by {', '.join(t.hurt_by) or 'none'}", cells))
    rows.append(("pool\n(unlabeled)", [("", _nth(root / "pool", i)) for i in range(columns)]))
    few = [f"{s}-{FEWSHOT_COLOURS[i % len(FEWSHOT_COLOURS)]}" for i, s in enumerate(SHAPES)][:columns]
    rows.append(("few-shot\n(shape-colour)", [(c, _nth(root / "fewshot" / c)) for c in few]))
    coco = json.loads((root / "scenes" / "annotations" / "instances_train.json").read_text())
    scenes = coco["images"][:columns]
    rows.append(("scenes\n(COCO boxes)", [("", root / "scenes" / "train" / im["file_name"]) for im in scenes]))

    pitch = CELL + GAP
    mosaic = np.full((len(rows) * pitch, columns * (CELL + 8), 3), 255, dtype=np.uint8)
    margin = 2.4  # inches left of the mosaic for the row titles
    width = mosaic.shape[1] / 100 + margin
    fig = plt.figure(figsize=(width, mosaic.shape[0] / 100 + 0.4), dpi=100)
    ax = fig.add_axes((margin / width, 0.0, 1 - margin / width, 0.97))
    for r, (title, cells) in enumerate(rows):
        top = r * pitch + GAP
        for c, (caption, path) in enumerate(cells):
            left = c * (CELL + 8)
            mosaic[top : top + CELL, left : left + CELL] = _load(path)
            ax.text(left + CELL / 2, top - 4, caption, ha="center", va="bottom", fontsize=8)
        ax.text(-10, top + CELL / 2, title, ha="right", va="center", fontsize=9)
    scale = CELL / coco["images"][0]["width"] if scenes else 1.0
    names = {c["id"]: c["name"] for c in coco["categories"]}
    top = (len(rows) - 1) * pitch + GAP
    for c, im in enumerate(scenes):
        for ann in (a for a in coco["annotations"] if a["image_id"] == im["id"]):
            x, y, w, h = (v * scale for v in ann["bbox"])
            # imshow centres mosaic pixel i at i; pixel i spans [i − 0.5, i + 0.5).
            x0, y0 = c * (CELL + 8) + x - 0.5, top + y - 0.5
            ax.add_patch(Rectangle((x0, y0), w, h, fill=False, lw=0.8, ec="white"))
            ax.text(x0, y0 - 1, names[ann["category_id"]], fontsize=6, color="white", va="bottom")
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(f"synthetic invariance suite (size {manifest['size']}, seed {manifest['seed']})", fontsize=10)
    try:
        return atomic_savefig(out_png, fig)
    finally:
        plt.close(fig)
