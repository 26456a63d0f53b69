"""Register a task's datasets with Detectron2 from their official layouts under ``--data-root``.

``--data-root`` is the folder Detectron2 calls ``$DETECTRON2_DATASETS``: it holds ``VOC2007/`` and
``VOC2012/`` as the VOC tarballs unpack (``VOCdevkit/`` may sit in between) and ``coco/`` as COCO's 2017
zips unpack. Detectron2's built-in names (``voc_2007_trainval``, ``coco_2017_val`` ...) are registered at
import time under ``./datasets``; they are re-registered here under ``--data-root``, with Detectron2's own
loaders (``register_pascal_voc``, ``register_coco_instances``) and metadata. The synthetic suite's scenes
are COCO files too. A missing file is a :class:`DatasetError` that shows the expected tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mast_bench.data.synthetic.datasets import SCENES_LAYOUT, scenes_paths
from mast_bench.downstream.detection.requirement import require_detectron2
from mast_bench.downstream.detection.tasks import DetectionTask
from mast_bench.errors import DatasetError

VOC_LAYOUT = """<data-root>/
  VOC2007/  (or VOCdevkit/VOC2007/)
    Annotations/<id>.xml
    ImageSets/Main/{trainval,test}.txt
    JPEGImages/<id>.jpg
  VOC2012/  (or VOCdevkit/VOC2012/)
    Annotations/<id>.xml
    ImageSets/Main/trainval.txt
    JPEGImages/<id>.jpg"""
COCO_LAYOUT = """<data-root>/
  coco/
    annotations/instances_{train2017,val2017}.json
    train2017/<id>.jpg
    val2017/<id>.jpg"""
SYNTHETIC_PREFIX = "mast_bench_synthetic_scenes_"
# Detectron2's names → (VOC folder, image set); the year decides the VOC07 11-point metric at test.
_VOC = {
    "voc_2007_trainval": ("VOC2007", "trainval"),
    "voc_2007_test": ("VOC2007", "test"),
    "voc_2012_trainval": ("VOC2012", "trainval"),
}
_COCO = {"coco_2017_train": "train2017", "coco_2017_val": "val2017"}


def one_line_tree(layout: str) -> str:
    """A two-level layout tree as one line: ``<data-root>/coco/ holding a, b; <data-root>/VOC2012/ ...``.

    Errors are one line, and the tree's indentation does not survive being joined with ``;``.
    """
    root, *lines = layout.splitlines()
    parts: list[list[str]] = []
    for line in lines:
        if line.startswith("    "):  # a file pattern inside the current folder
            parts[-1].append(line.strip())
        else:  # a folder directly under the root, with an optional "(or ...)" note
            parts.append([root + " ".join(line.split())])
    return "; ".join(f"{head} holding {', '.join(files)}" for head, *files in parts)


def _layout_error(what: str, root: Path, layout: str) -> DatasetError:
    return DatasetError(f"{what} under --data-root {str(root)!r}; expected layout: {one_line_tree(layout)}")


def _voc_dir(root: Path, folder: str) -> Path:
    for candidate in (root / folder, root / "VOCdevkit" / folder):
        if candidate.is_dir():
            return candidate
    raise _layout_error(f"no {folder}/ folder", root, VOC_LAYOUT)


def voc_paths(root: Path, name: str) -> tuple[Path, str, int]:
    """``(VOC folder, image set, year)`` of a Detectron2 VOC dataset name, checked on disk."""
    folder, split = _VOC[name]
    base = _voc_dir(root, folder)
    for sub in ("Annotations", "JPEGImages", f"ImageSets/Main/{split}.txt"):
        if not (base / sub).exists():
            raise _layout_error(f"{folder}/{sub} is missing", root, VOC_LAYOUT)
    return base, split, int(folder[-4:])


def coco_paths(root: Path, name: str) -> tuple[Path, Path]:
    """``(instances json, image folder)`` of a Detectron2 COCO 2017 dataset name, checked on disk."""
    split = _COCO[name]
    ann, images = root / "coco" / "annotations" / f"instances_{split}.json", root / "coco" / split
    for path in (ann, images):
        if not path.exists():
            raise _layout_error(f"coco/{path.relative_to(root / 'coco')} is missing", root, COCO_LAYOUT)
    return ann, images


def _plan(task: DetectionTask, names: list[str], data_root: str | Path | None) -> list[tuple[str, str, Any]]:
    root = Path(data_root) if data_root is not None else None
    if root is None or not root.is_dir():
        layout = {"voc": VOC_LAYOUT, "coco": COCO_LAYOUT}.get(task.kind)
        raise DatasetError(
            f"--data-root {str(root) if root else '(none)'!r} is not a folder; expected layout: "
            + (one_line_tree(layout) if layout else SCENES_LAYOUT.replace("\n", "; "))
        )
    plans: list[tuple[str, str, Any]] = []
    for name in names:  # every path is checked before anything is registered
        if task.kind == "voc" and name in _VOC:
            plans.append((name, "voc", voc_paths(root, name)))
        elif task.kind == "coco" and name in _COCO:
            plans.append((name, "coco", coco_paths(root, name)))
        elif task.kind == "synthetic" and name.startswith(SYNTHETIC_PREFIX):
            plans.append((name, "coco", scenes_paths(root, name[len(SYNTHETIC_PREFIX) :])))
        else:
            raise DatasetError(f"task {task.name!r} cannot register dataset {name!r} (a {task.kind} task)")
    return plans


def check_layout(task: DetectionTask, data_root: str | Path | None) -> None:
    """Check that ``data_root`` holds every dataset the task's pinned config names, registering nothing.

    Raises:
        DatasetError: a missing folder or file; the message shows the expected tree.
    """
    from mast_bench.downstream.detection.d2config import load_config

    cfg = load_config(task.config)
    _plan(task, list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST), data_root)


def register_task_datasets(task: DetectionTask, names: list[str], data_root: str | Path) -> None:
    """(Re-)register every dataset in ``names`` (a config's TRAIN + TEST) for ``task`` under ``data_root``.

    Raises:
        DatasetError: ``data_root`` does not hold the task's layout (the message shows the expected tree),
            or the config names a dataset this task does not know; nothing is registered then.
    """
    require_detectron2()
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances
    from detectron2.data.datasets.pascal_voc import register_pascal_voc

    for name, kind, paths in _plan(task, names, data_root):
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        if kind == "voc":
            base, split, year = paths
            register_pascal_voc(name, str(base), split, year)
            MetadataCatalog.get(name).evaluator_type = "pascal_voc"
        else:
            ann, images = paths
            register_coco_instances(name, {}, str(ann), str(images))
