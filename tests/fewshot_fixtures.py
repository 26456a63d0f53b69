"""Tiny copies of the few-shot datasets in their official on-disk layouts, and few-shot feature pools.

``make_<dataset>(parent, ...)`` writes a few images per class exactly as the official archive (or the
copy the peers' code reads) extracts, and returns the data root to pass as ``--data-root``. Counts
cannot match the official ones, so tests load them with ``verify=False``. Images are seeded noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from data_fixtures import _cifar_images, _py2_pickle
from data_fixtures_fg import write_jpeg
from PIL import Image

from mast_bench.data.readers.fc100 import SUPERCLASSES

#: CIFAR-100's fine classes in the meta file's (alphabetical) order, and each one's superclass.
CIFAR100_FINE = sorted(c for fine in SUPERCLASSES.values() for c in fine)
CIFAR100_COARSE = sorted(SUPERCLASSES)
_COARSE_OF = {c: CIFAR100_COARSE.index(s) for s, fine in SUPERCLASSES.items() for c in fine}


def make_fc100(parent: Path, train_per_class: int = 3, test_per_class: int = 1, seed: int = 0) -> Path:
    """``parent/cifar-100-python/{train,test,meta}`` with the real class names; returns ``parent``."""
    rng, base = np.random.default_rng(seed), parent / "cifar-100-python"
    for split, per in (("train", train_per_class), ("test", test_per_class)):
        labels = [c for _ in range(per) for c in range(100)]
        _py2_pickle(base / split, {
            "batch_label": f"{split}ing batch 1 of 1", "fine_labels": labels,
            "coarse_labels": [_COARSE_OF[CIFAR100_FINE[c]] for c in labels],
            "data": _cifar_images(rng, labels), "filenames": [f"{split}_{i}.png" for i in range(len(labels))],
        })  # fmt: skip
    _py2_pickle(base / "meta", {"fine_label_names": CIFAR100_FINE, "coarse_label_names": CIFAR100_COARSE})
    return parent


def _folder_tree(base: Path, classes: list[str], per_class: int, rng: np.random.Generator, stem: str = "") -> None:
    for c in classes:
        for i in range(per_class):
            write_jpeg(base / c / f"{stem or c}_{i + 1}.jpg", rng)


def make_eurosat(parent: Path, classes: tuple[str, ...] = ("AnnualCrop", "Forest", "River"), per_class: int = 4,
                 folder: str = "2750", seed: int = 0) -> Path:  # fmt: skip
    """``parent/<folder>/<Class>/<Class>_<n>.jpg`` (the extracted EuroSAT.zip); returns ``parent``."""
    _folder_tree(parent / folder, list(classes), per_class, np.random.default_rng(seed))
    return parent


CROP_CLASSES = ("Apple___Apple_scab", "Apple___healthy", "Corn_(maize)___Common_rust_", "Tomato___Late_blight")


def make_cropdiseases(parent: Path, per_class: int = 4, seed: int = 0) -> Path:
    """``parent/dataset/train/<class>/<image>.JPG`` (CD-FSL's layout); returns ``parent``."""
    rng = np.random.default_rng(seed)
    for c in CROP_CLASSES:
        for i in range(per_class):
            write_jpeg(parent / "dataset" / "train" / c / f"{i:04x}-leaf___RS_{i}.JPG", rng)
    return parent


def make_plantdisease(parent: Path, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/{train,test}/<class>/<image>.JPG`` (AugSelf's layout); returns ``parent``."""
    rng = np.random.default_rng(seed)
    for split, n in (per_split or {"train": 3, "test": 2}).items():
        for c in CROP_CLASSES:
            for i in range(n):
                write_jpeg(parent / split / c / f"{split}_{i}.JPG", rng)
    return parent


ISIC_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


def make_isic2018(parent: Path, per_class: int = 3, seed: int = 0) -> Path:
    """``ISIC2018_Task3_Training_Input/ISIC_<id>.jpg`` + the ground-truth CSV (one-hot floats); returns ``parent``."""
    rng = np.random.default_rng(seed)
    rows = ["image," + ",".join(ISIC_CLASSES)]
    n = 24306  # the first image id of the official archive
    for i in range(per_class * len(ISIC_CLASSES)):
        c = i % len(ISIC_CLASSES)
        name = f"ISIC_{n + i:07d}"
        write_jpeg(parent / "ISIC2018_Task3_Training_Input" / f"{name}.jpg", rng)
        rows.append(name + "," + ",".join("1.0" if k == c else "0.0" for k in range(len(ISIC_CLASSES))))
    (parent / "ISIC2018_Task3_Training_Input" / "LICENSE.txt").write_text("license\n")
    truth = parent / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text("\n".join(rows) + "\n")
    return parent


CHESTX_CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
CHESTX_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)


def make_chestx(parent: Path, per_class: int = 3, seed: int = 0) -> Path:
    """``Data_Entry_2017.csv`` + ``images/<n>_<k>.png`` (grayscale PNGs), with rows CD-FSL skips; returns ``parent``.

    Besides ``per_class`` single-finding rows of each class, the CSV holds a ``No Finding`` row, a
    ``Pneumonia`` row and a two-finding row (images present): none of them belongs to the pool.
    """
    rng = np.random.default_rng(seed)
    findings = [c for _ in range(per_class) for c in CHESTX_CLASSES] + ["No Finding", "Pneumonia", "Effusion|Mass"]
    rows = [CHESTX_HEADER]
    for i, f in enumerate(findings):
        name = f"{i + 1:08d}_000.png"
        path = parent / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(path)
        label = f'"{f}"' if "|" in f else f
        rows.append(f"{name},{label},0,{i + 1},58,M,PA,2682,2749,0.143,0.143,")
    (parent / "Data_Entry_2017.csv").write_text("\n".join(rows) + "\n")
    return parent


def feature_pool(
    classes: int, per_class: int, dim: int, seed: int = 0, spread: float = 0.35
) -> tuple[np.ndarray, np.ndarray]:
    """``(features (P, dim) float32, labels (P,))``: ReLU of a Gaussian mixture, classes separable but not trivially."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dim)) * spread
    y = np.repeat(np.arange(classes), per_class)
    x = means[y] + rng.normal(size=(len(y), dim))
    return np.maximum(x + 0.3, 0).astype(np.float32), y


#: Dataset name → maker of its tiny copy, for every few-shot reader.
FEWSHOT_MAKERS = {
    "fc100": make_fc100, "eurosat": make_eurosat, "cropdiseases": make_cropdiseases,
    "plantdisease": make_plantdisease, "isic2018": make_isic2018, "chestx": make_chestx,
}  # fmt: skip
