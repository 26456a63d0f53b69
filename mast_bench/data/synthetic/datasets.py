"""Registry entries of the synthetic suite: the five labelled tasks, the pretraining pool, few-shot.

Each loader reads the folders written by :func:`mast_bench.data.synthetic.suite.make_synthetic` with the
generic readers of :mod:`mast_bench.data.readers.imagefolder`. With ``verify=True`` the suite's
``manifest.json`` must be present and every split must hold exactly the images per class that the
manifest lists (a truncated or hand-edited copy is an error, not a smaller dataset); full sha256
verification is :func:`mast_bench.data.synthetic.suite.verify_suite`. Scenes are read by the detection
code from COCO JSON; :func:`scenes_paths` gives the two paths it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from mast_bench.data.readers.imagefolder import ImageFolderSplit, UnlabeledFolder
from mast_bench.data.register import register_reader
from mast_bench.data.synthetic.factors import FEWSHOT_CLASSES, IMAGE_SIZE, TASK_INVARIANCE, TASKS, TaskSpec
from mast_bench.data.synthetic.manifest import SCENE_SPLITS, SPLITS, check_suite_version, load_manifest
from mast_bench.errors import DatasetError

_MAKE = "write it with `mast-bench datasets make-synthetic --out <root>`"
POOL_LAYOUT = f"<root>/pool/*.png and <root>/manifest.json; {_MAKE}"
FEWSHOT_LAYOUT = f"<root>/fewshot/<shape>-<colour>/*.png and <root>/manifest.json; {_MAKE}"
SCENES_LAYOUT = f"<root>/scenes/{{train,val}}/*.png and <root>/scenes/annotations/instances_{{train,val}}.json; {_MAKE}"


def task_layout(spec: TaskSpec) -> str:
    """The expected layout of one task, quoted in its errors."""
    return (
        f"<root>/tasks/{spec.key}/{{train,val,test}}/<class>/*.png with classes {', '.join(sorted(spec.classes))}, "
        f"and <root>/manifest.json; {_MAKE}"
    )


def _check_counts(found: dict[str, int], expected: dict[str, int], folder: Path, layout: str) -> None:
    if found == expected:
        return
    bad = [f"{c}: {found.get(c, 0)} images, manifest lists {n}" for c, n in expected.items() if found.get(c) != n]
    raise DatasetError(
        f"{str(folder)!r} does not match the suite manifest ({'; '.join(bad[:3])}); "
        f"the copy is incomplete or was modified (expected layout: {layout})"
    )


def load_task(
    spec: TaskSpec, root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool
) -> ImageFolderSplit:
    """One split of a labelled task as an :class:`ImageFolderSplit` (class indices in sorted name order)."""
    layout = task_layout(spec)
    check_suite_version(root)
    entry = None
    if verify:
        entry = load_manifest(root)["tasks"].get(spec.name)
        if entry is None:
            raise DatasetError(
                f"the suite manifest in {str(root)!r} has no task {spec.name!r} (expected layout: {layout})"
            )
    folder = root / "tasks" / spec.key / split
    ds = ImageFolderSplit(folder, transform, classes=spec.classes, layout=layout)
    if entry is not None:
        _check_counts(ds.counts(), entry["counts"][split], folder, layout)
    return ds


def load_pool(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> UnlabeledFolder:
    """The unlabeled pretraining pool (targets are −1)."""
    check_suite_version(root)
    ds = UnlabeledFolder(root / "pool", transform, layout=POOL_LAYOUT)
    if verify:
        expected = load_manifest(root)["pool"]["count"]
        _check_counts({"pool": len(ds)}, {"pool": expected}, root / "pool", POOL_LAYOUT)
    return ds


def load_fewshot(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> ImageFolderSplit:
    """All images of the fine-grained shape×colour classes (episodes are drawn by the few-shot protocol)."""
    check_suite_version(root)
    ds = ImageFolderSplit(root / "fewshot", transform, classes=FEWSHOT_CLASSES, layout=FEWSHOT_LAYOUT)
    if verify:
        per_class = load_manifest(root)["fewshot"]["per_class"]
        _check_counts(ds.counts(), dict.fromkeys(ds.classes, per_class), root / "fewshot", FEWSHOT_LAYOUT)
    return ds


def scenes_paths(root: str | Path, split: str) -> tuple[Path, Path]:
    """``(instances json, image folder)`` of a scene split, e.g. for ``register_coco_instances``.

    Raises:
        DatasetError: unknown split, or either path missing.
    """
    if split not in SCENE_SPLITS:
        raise DatasetError(f"synthetic scenes have no split {split!r}; splits: {list(SCENE_SPLITS)}")
    root = Path(root)
    check_suite_version(root)
    ann, images = root / "scenes" / "annotations" / f"instances_{split}.json", root / "scenes" / split
    for path in (ann, images):
        if not path.exists():
            raise DatasetError(f"{str(path)!r} not found (expected layout: {SCENES_LAYOUT})")
    return ann, images


def _register() -> None:
    for t in TASKS:
        register_reader(
            name=t.name, num_classes=len(t.classes), splits=SPLITS, metric="top1",
            layout=task_layout(t), open_split=partial(load_task, t),
            title=f"synthetic {IMAGE_SIZE}px; label = {t.factor}; hurt by {TASK_INVARIANCE[t.name]} invariance",
        )  # fmt: skip
    register_reader(
        name="synthetic-pool", num_classes=0, splits=("train",), metric="none",
        layout=POOL_LAYOUT, open_split=load_pool, title=f"synthetic {IMAGE_SIZE}px unlabeled pretraining pool",
    )  # fmt: skip
    register_reader(
        name="synthetic-fewshot", num_classes=len(FEWSHOT_CLASSES), splits=("all",), metric="top1",
        layout=FEWSHOT_LAYOUT, open_split=load_fewshot,
        title=f"synthetic {IMAGE_SIZE}px fine-grained shape×colour classes for few-shot episodes",
    )  # fmt: skip


_register()
