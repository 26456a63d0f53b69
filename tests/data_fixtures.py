"""Builders of tiny copies of the real datasets in their exact official on-disk formats.

Each ``make_<dataset>(root, ...)`` writes a few images per class under ``root`` exactly as the
official archive extracts (file names, index files, binary and pickle formats), so the loaders
read them through the same code paths as a full copy. Counts and checksums cannot match the
official ones, so tests load them with ``verify=False``. Images are seeded noise, so every image
differs unless a test asks for a duplicate.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _save_image(path: Path, rng: np.random.Generator, size: int = 8, fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, format=fmt)
    return path


# ----------------------------------------------------------------------------------------------
# CIFAR: python-2 pickles (dict keys and strings are py2 ``str``, so ``pickle.load(f, encoding="bytes")``
# gives b'data', b'labels' as on the CIFAR page, and torchvision's ``encoding="latin1"`` gives 'data').


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc]
    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_py2_str(self, obj: str | bytes) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def _py2_pickle(path: Path, obj: object) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_images(rng: np.random.Generator, labels: list[int]) -> np.ndarray:
    # (N, 3072) uint8: the 1024 red, then green, then blue values of each 32x32 image, row-major.
    return rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)


def make_cifar10(root: Path, train_per_class: int = 1, test_per_class: int = 1, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``; returns root."""
    rng, base = _rng(seed), root / "cifar-10-batches-py"
    train = [c for _ in range(train_per_class) for c in range(10)]
    chunks = np.array_split(np.arange(len(train)), 5)
    for b, idx in enumerate(chunks, start=1):
        labels = [train[i] for i in idx]
        _py2_pickle(
            base / f"data_batch_{b}",
            {
                "batch_label": f"training batch {b} of 5",
                "labels": labels,
                "data": _cifar_images(rng, labels),
                "filenames": [f"img_{b}_{i}.png" for i in range(len(labels))],
            },
        )
    test = [c for _ in range(test_per_class) for c in range(10)]
    _py2_pickle(
        base / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": test,
            "data": _cifar_images(rng, test),
            "filenames": [f"test_{i}.png" for i in range(len(test))],
        },
    )
    _py2_pickle(base / "batches.meta", {"num_cases_per_batch": 10000, "label_names": CIFAR10_CLASSES, "num_vis": 3072})
    return root


def make_cifar100(root: Path, train_per_class: int = 1, test_per_class: int = 1, seed: int = 0) -> Path:
    """``root/cifar-100-python/{train,test,meta}`` with fine and coarse labels; returns root."""
    rng, base = _rng(seed), root / "cifar-100-python"
    fine = [f"class_{i:02d}" for i in range(100)]
    for split, per in (("train", train_per_class), ("test", test_per_class)):
        labels = [c for _ in range(per) for c in range(100)]
        _py2_pickle(
            base / split,
            {
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": labels,
                "coarse_labels": [c // 5 for c in labels],
                "data": _cifar_images(rng, labels),
                "filenames": [f"{split}_{i}.png" for i in range(len(labels))],
            },
        )
    _py2_pickle(base / "meta", {"fine_label_names": fine, "coarse_label_names": [f"super_{i}" for i in range(20)]})
    return root


# ----------------------------------------------------------------------------------------------
# STL-10 binary: uint8 images stored channel by channel, each channel column-major (3, 96, 96);
# labels are uint8 1..10.

STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def _stl_images(rng: np.random.Generator, n: int) -> tuple[bytes, np.ndarray]:
    hwc = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    return np.ascontiguousarray(hwc.transpose(0, 3, 2, 1)).tobytes(), hwc


def make_stl10(
    root: Path,
    train_per_class: int = 1,
    test_per_class: int = 1,
    unlabeled: int = 3,
    seed: int = 0,
) -> Path:
    """``root/stl10_binary/{train,test}_{X,y}.bin, unlabeled_X.bin, class_names.txt, fold_indices.txt``."""
    rng, base = _rng(seed), root / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    for split, per in (("train", train_per_class), ("test", test_per_class)):
        labels = np.array([c for _ in range(per) for c in range(10)], dtype=np.uint8)
        data, _ = _stl_images(rng, len(labels))
        (base / f"{split}_X.bin").write_bytes(data)
        (base / f"{split}_y.bin").write_bytes((labels + 1).tobytes())
    (base / "unlabeled_X.bin").write_bytes(_stl_images(rng, unlabeled)[0])
    (base / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    n_train = 10 * train_per_class
    (base / "fold_indices.txt").write_text(
        "\n".join(" ".join(str((i + k) % n_train) for i in range(2)) for k in range(10)) + "\n"
    )
    return root


def stl10_image(root: Path, split: str, index: int) -> np.ndarray:
    """Image ``index`` of a split as (96, 96, 3) HWC, decoded independently of torchvision."""
    raw = np.fromfile(root / "stl10_binary" / f"{split}_X.bin", dtype=np.uint8).reshape(-1, 3, 96, 96)
    return raw[index].transpose(2, 1, 0)


# ----------------------------------------------------------------------------------------------
# folder-of-JPEG datasets


def make_food101(
    root: Path,
    classes: tuple[str, ...] = ("apple_pie", "baby_back_ribs", "waffles"),
    train_per_class: int = 3,
    test_per_class: int = 1,
    seed: int = 0,
) -> Path:
    """``root/food-101/{images/<class>/<id>.jpg, meta/{train,test}.json, classes.txt, ...}``."""
    rng, base = _rng(seed), root / "food-101"
    ident = 1000
    for split, per in (("train", train_per_class), ("test", test_per_class)):
        meta: dict[str, list[str]] = {}
        for c in classes:
            meta[c] = []
            for _ in range(per):
                ident += 7
                meta[c].append(f"{c}/{ident}")
                _save_image(base / "images" / c / f"{ident}.jpg", rng)
        (base / "meta").mkdir(parents=True, exist_ok=True)
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta))
        (base / "meta" / f"{split}.txt").write_text("\n".join(p for v in meta.values() for p in v) + "\n")
    (base / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
    (base / "meta" / "labels.txt").write_text("\n".join(c.replace("_", " ").capitalize() for c in classes) + "\n")
    return root


SUN397_CLASSES = ("/a/abbey", "/b/bedroom", "/o/outhouse/outdoor")


def make_sun397(
    root: Path, classes: tuple[str, ...] = SUN397_CLASSES, per_class: int = 2, extra_per_class: int = 1, seed: int = 0
) -> Path:
    """``root/SUN397/{ClassName.txt, Training_01.txt, Testing_01.txt, <l>/<class>/sun_*.jpg}``.

    Every class also gets ``extra_per_class`` images that partition 01 does not use, as in the
    full copy (108 754 images, 19 850 per partition half).
    """
    rng, base = _rng(seed), root / "SUN397"
    base.mkdir(parents=True, exist_ok=True)
    (base / "ClassName.txt").write_text("\n".join(classes) + "\n")
    parts: dict[str, list[str]] = {"Training": [], "Testing": []}
    k = 0
    for c in classes:
        for role in ["Training"] * per_class + ["Testing"] * per_class + [None] * extra_per_class:
            k += 1
            rel = f"{c}/sun_{k:016x}.jpg"
            _save_image(base / rel.lstrip("/"), rng)
            if role:
                parts[role].append(rel)
    for role, lines in parts.items():
        (base / f"{role}_01.txt").write_text("\n".join(lines) + "\n")
    return root


def make_mit67(
    root: Path,
    classes: tuple[str, ...] = ("airport_inside", "bakery", "kitchen"),
    train_per_class: int = 3,
    test_per_class: int = 1,
    extra_per_class: int = 1,
    seed: int = 0,
) -> Path:
    """``root/{Images/<class>/*.jpg, TrainImages.txt, TestImages.txt}`` (lines ``<class>/<file>``)."""
    rng = _rng(seed)
    lists: dict[str, list[str]] = {"Train": [], "Test": []}
    for c in classes:
        roles = ["Train"] * train_per_class + ["Test"] * test_per_class + [None] * extra_per_class
        for i, role in enumerate(roles):
            rel = f"{c}/{c}_{i:04d}.jpg"
            _save_image(root / "Images" / rel, rng)
            if role:
                lists[role].append(rel)
    for role, lines in lists.items():
        (root / f"{role}Images.txt").write_text("\n".join(lines) + "\n")
    return root


def make_dtd(
    root: Path, classes: tuple[str, ...] = ("banded", "blotchy", "zigzagged"), per_split: int = 2, seed: int = 0
) -> Path:
    """``root/dtd/dtd/{images/<class>/<class>_NNNN.jpg, labels/{train,val,test}1.txt}`` (torchvision layout)."""
    rng, base = _rng(seed), root / "dtd" / "dtd"
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for c in classes:
        for i, split in enumerate(s for s in lines for _ in range(per_split)):
            rel = f"{c}/{c}_{i + 1:04d}.jpg"
            _save_image(base / "images" / rel, rng)
            lines[split].append(rel)
    (base / "labels").mkdir(parents=True, exist_ok=True)
    for split, rels in lines.items():
        (base / "labels" / f"{split}1.txt").write_text("\n".join(rels) + "\n")
    return root


IMAGENET_WNIDS = ("n01440764", "n01443537", "n01484850")


def make_imagenet(
    root: Path,
    wnids: tuple[str, ...] = IMAGENET_WNIDS,
    train_per_class: int = 3,
    val_per_class: int = 1,
    subsets: bool = True,
    seed: int = 0,
) -> Path:
    """``root/{train,val}/<wnid>/*.JPEG`` (val after valprep.sh) and SimCLR-style ``1percent.txt``/``10percent.txt``."""
    rng = _rng(seed)
    train_names = []
    for w in wnids:
        for i in range(train_per_class):
            name = f"{w}_{10000 + i}.JPEG"
            _save_image(root / "train" / w / name, rng)
            train_names.append(name)
    k = 0
    for w in wnids:
        for _ in range(val_per_class):
            k += 1
            _save_image(root / "val" / w / f"ILSVRC2012_val_{k:08d}.JPEG", rng)
    if subsets:
        (root / "1percent.txt").write_text("\n".join(train_names[::train_per_class]) + "\n")
        (root / "10percent.txt").write_text("\n".join(n for i, n in enumerate(train_names) if i % 3 != 2) + "\n")
    return root


def make_imagefolder(
    root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: dict[str, int] | None = None, seed: int = 0
) -> Path:
    """``root/{train,val,test}/<class>/*.png``; ``per_class`` maps split → images per class (0 = no folder)."""
    rng = _rng(seed)
    for split, n in (per_class or {"train": 5, "val": 1, "test": 2}).items():
        for c in classes:
            for i in range(n):
                _save_image(root / split / c / f"{c}_{i}.png", rng, fmt="PNG")
    return root


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under root: compare before/after to prove nothing was written."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


#: Dataset name → maker of its tiny copy, for every reader these fixtures cover.
REAL_MAKERS = {
    "cifar10": make_cifar10,
    "cifar100": make_cifar100,
    "stl10": make_stl10,
    "food101": make_food101,
    "sun397": make_sun397,
    "mit67": make_mit67,
    "dtd": make_dtd,
    "imagenet": make_imagenet,
    "imagefolder": make_imagefolder,
}
