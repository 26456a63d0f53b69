"""The synthetic invariance suite: generation (``make_synthetic``) and the public names of the suite.

``make_synthetic(out, seed, size)`` writes, under ``out``::

    manifest.json                         seed, size, generator version, factors, tasks, counts, file sha256s
    factors.csv                           each 32-px image's factors (path, part, split, label, object, bg_*)
    pool/<id>.png                         unlabeled pretraining pool
    tasks/<task>/{train,val,test}/<class>/<id>.png    labelled tasks (ImageFolder layout)
    fewshot/<shape>-<colour>/<id>.png     fine-grained classes for few-shot episodes
    scenes/{train,val}/<id>.png           64-px multi-object scenes
    scenes/annotations/instances_{train,val}.json     their COCO instance annotations

The suite is generated into a hidden staging folder inside ``out`` and moved into place only when
complete; ``manifest.json`` is written last, so a folder with a manifest holds a whole suite.
Same seed and size ⇒ byte-identical files (fixed PNG options, no timestamps) for the same
numpy/Pillow/zlib versions, which the manifest records.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image
from tqdm import tqdm

from mast_bench.data.synthetic.factors import (
    FACTOR_COLUMNS,
    FACTOR_DEFINITIONS,
    FEWSHOT_CLASSES,
    IMAGE_SIZE,
    SCENE_SIZE,
    SYNTHETIC_TASKS,
    TASK_HURT_BY,
    TASK_INVARIANCE,
    TASKS,
    factor_row,
    sample_labelled,
    sample_unlabelled,
    stream_rng,
)
from mast_bench.data.synthetic.manifest import (
    FORMAT,
    GENERATOR_VERSION,
    MANIFEST,
    PARTS,
    SCENE_SPLITS,
    SPLITS,
    SUITE_LAYOUT,
    load_manifest,
    read_factors,
    verify_suite,
)
from mast_bench.data.synthetic.render import render_batch
from mast_bench.data.synthetic.scenes import CATEGORIES, coco_document, sample_scene
from mast_bench.fileio import atomic_write_json, prepare_out_dir

__all__ = [
    "SIZES", "SUITE_LAYOUT", "SYNTHETIC_TASKS", "TASKS", "TASK_HURT_BY", "TASK_INVARIANCE",
    "load_manifest", "make_synthetic", "read_factors", "verify_suite",
]  # fmt: skip

STAGING_PREFIX = ".synthetic-staging-"
CHUNK = 256
#: Fixed encoder settings: identical pixels always give identical PNG bytes (Pillow adds no timestamp).
PNG_OPTIONS: dict[str, Any] = {"format": "PNG", "compress_level": 6, "optimize": False}


@dataclass(frozen=True)
class SuiteSize:
    """Image counts of one suite size (``per_class`` is train/val/test images per task class)."""

    pool: int
    per_class: tuple[int, int, int]
    fewshot_per_class: int
    scenes: tuple[int, int]


SIZES: dict[str, SuiteSize] = {
    "test": SuiteSize(pool=48, per_class=(6, 3, 6), fewshot_per_class=5, scenes=(6, 4)),
    "quick": SuiteSize(pool=1000, per_class=(40, 20, 40), fewshot_per_class=20, scenes=(100, 40)),
    "demo": SuiteSize(pool=6000, per_class=(100, 50, 100), fewshot_per_class=40, scenes=(400, 100)),
}


@dataclass(frozen=True)
class _Stream:
    """A run of 32-px images drawn from one generator into one folder."""

    name: str
    part: str
    split: str
    label: str
    count: int
    task: str | None  # sample_labelled task key; None draws unlabeled pool images


def _streams(sz: SuiteSize) -> list[_Stream]:
    out = [_Stream("pool", "pool", "train", "", sz.pool, None)]
    for t in TASKS:
        for split, n in zip(SPLITS, sz.per_class):
            out += [_Stream(f"tasks/{t.key}/{split}/{c}", "tasks", split, c, n, t.key) for c in t.classes]
    out += [_Stream(f"fewshot/{c}", "fewshot", "all", c, sz.fewshot_per_class, "fewshot") for c in FEWSHOT_CLASSES]
    return out


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, **PNG_OPTIONS)  # (H, W, 3) uint8 → RGB
    return buf.getvalue()


class _Writer:
    """Writes the suite's files under the staging folder and records their sha256."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.files: dict[str, str] = {}
        self._folders: set[str] = set()

    def put(self, rel: str, data: bytes) -> None:
        folder = rel.rpartition("/")[0]
        if folder not in self._folders:
            (self.staging / folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        with open(self.staging / rel, "xb") as fh:  # "x": a name written twice is a bug, not an overwrite
            fh.write(data)
        self.files[rel] = sha256(data).hexdigest()


def _generate(staging: Path, seed: int, sz: SuiteSize, progress: bool | None) -> dict[str, str]:
    """Draw and write every file of the suite into ``staging``; returns ``{relpath: sha256}``."""
    streams = _streams(sz)
    out = _Writer(staging)
    rows: list[dict[str, Any]] = []
    total = sum(s.count for s in streams) + sum(sz.scenes)
    disable = None if progress is None else not progress
    with tqdm(total=total, desc="synthetic suite", unit="img", disable=disable) as bar:
        for st in streams:
            rng = stream_rng(seed, st.name)
            draws = [sample_unlabelled(rng) if st.task is None else sample_labelled(rng, st.task, st.label)
                     for _ in range(st.count)]  # fmt: skip
            for start in range(0, st.count, CHUNK):
                chunk = draws[start : start + CHUNK]
                images, _ = render_batch([b for b, _ in chunk], [[o] for _, o in chunk], IMAGE_SIZE)
                for k, img in enumerate(images):
                    rel = f"{st.name}/{start + k:06d}.png"
                    out.put(rel, _png_bytes(img))
                    rows.append({"path": rel, "part": st.part, "split": st.split, "label": st.label,
                                 **factor_row(*chunk[k])})  # fmt: skip
                bar.update(len(chunk))
        for split, n in zip(SCENE_SPLITS, sz.scenes):
            rng = stream_rng(seed, f"scenes/{split}")
            scenes = [sample_scene(rng) for _ in range(n)]
            entries = []
            for start in range(0, n, CHUNK):
                chunk = scenes[start : start + CHUNK]
                images, _ = render_batch([b for b, _ in chunk], [objs for _, objs in chunk], SCENE_SIZE)
                for k, img in enumerate(images):
                    name = f"{start + k + 1:06d}.png"
                    out.put(f"scenes/{split}/{name}", _png_bytes(img))
                    entries.append((name, chunk[k][1]))
                bar.update(len(chunk))
            doc = coco_document(entries, SCENE_SIZE, f"mast-bench synthetic scenes ({split})")
            out.put(f"scenes/annotations/instances_{split}.json", json.dumps(doc).encode())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["path", "part", "split", "label", *FACTOR_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out.put("factors.csv", text.getvalue().encode())
    return out.files


def _manifest(seed: int, size: str, sz: SuiteSize, files: dict[str, str]) -> dict[str, Any]:
    per_split = dict(zip(SPLITS, sz.per_class))
    return {
        "format": FORMAT,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "libraries": {"numpy": np.__version__, "pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION},
        "factors": FACTOR_DEFINITIONS,
        "pool": {"folder": "pool", "count": sz.pool},
        "tasks": {
            t.name: {
                "folder": f"tasks/{t.key}",
                "label": t.factor,
                "classes": sorted(t.classes),
                "rewards": t.rewards,
                "hurt_by": list(t.hurt_by),
                "invariance": TASK_INVARIANCE[t.name],
                "counts": {s: dict.fromkeys(sorted(t.classes), n) for s, n in per_split.items()},
            }
            for t in TASKS
        },
        "fewshot": {"folder": "fewshot", "classes": sorted(FEWSHOT_CLASSES), "per_class": sz.fewshot_per_class},
        "scenes": {
            "image_size": SCENE_SIZE,
            "categories": [c["name"] for c in CATEGORIES],
            "counts": dict(zip(SCENE_SPLITS, sz.scenes)),
            "annotations": {s: f"scenes/annotations/instances_{s}.json" for s in SCENE_SPLITS},
        },
        "files": dict(sorted(files.items())),
    }


def _install(staging: Path, out: Path) -> None:
    """Move the finished parts from ``staging`` into ``out``, parking replaced ones in staging."""
    (out / MANIFEST).unlink(missing_ok=True)  # from here until the new manifest, ``out`` is incomplete
    parked = staging / ".replaced"
    parked.mkdir()
    for part in PARTS:
        if (out / part).exists() or (out / part).is_symlink():
            os.replace(out / part, parked / part)
        os.replace(staging / part, out / part)


def make_synthetic(
    out: str | os.PathLike[str],
    seed: int = 0,
    size: str = "demo",
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Generate the synthetic invariance suite into ``out``.

    Args:
        out: destination folder; must be missing or empty unless ``overwrite``.
        seed: non-negative integer; the same seed and size give byte-identical files.
        size: ``"test"`` (tiny, for unit tests), ``"quick"`` or ``"demo"`` (see :data:`SIZES`).
        overwrite: replace a previous suite in ``out`` (other files in ``out`` are left alone).
        progress: show a progress bar (default: only on a terminal).

    Returns:
        The manifest (also written to ``out/manifest.json``); ``manifest["files"]`` maps every
        relative path to its sha256.

    Raises:
        ValueError: unknown size or a negative/non-integer seed.
        OutputDirError: ``out`` holds other files (without ``overwrite``) or is not writable.
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic suite size {size!r}; valid sizes: {', '.join(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    root = prepare_out_dir(out, overwrite=overwrite)
    for stale in root.glob(STAGING_PREFIX + "*"):  # left by a killed run; only reachable with overwrite
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    try:
        files = _generate(staging, seed, SIZES[size], progress)
        manifest = _manifest(seed, size, SIZES[size], files)
        _install(staging, root)
        atomic_write_json(root / MANIFEST, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
