"""Caltech-101 with the background class (102 classes) and a seeded 30-per-class train split.

The dataset ships no split. The transfer protocol (Kornblith et al. 2019, "Do Better ImageNet
Models Transfer Better?", followed by Ericsson et al. 2021) trains on 30 images per class and
tests on the rest: 3060 / 6084 of the 9144 images, ``BACKGROUND_Google`` counted as a class.
One published list was drawn *with* replacement (the same image twice in train), so the draw here
is a permutation, and every split is checked for repeated and shared entries.

The split rule (:func:`draw_split`), identical on every faithful copy: classes are the folders of
``101_ObjectCategories`` in sorted order; within a class, the image files in sorted order are
numbered 0..n-1, and the train images are the first 30 entries of
``numpy.random.RandomState([seed, crc32(class name)]).permutation(n)`` (seed 0), kept in file
order; the other n-30 images are test. The legacy ``RandomState`` stream is frozen by NumPy, so the
split does not change with the NumPy version, and each class's draw is independent of the others.
torchvision's ``Caltech101`` drops the background class (and creates folders under the root), so
the folders are read here. Metric: mean per-class accuracy (docs/protocols.md, datasets and metrics).
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mast_bench.data.readers.imagefolder import is_image_file
from mast_bench.data.readers.official_files import listing_text, locate, register_listed
from mast_bench.data.splits.seeded import ericsson_split
from mast_bench.data.verify.listing import DatasetListing, SplitListing
from mast_bench.errors import DatasetError

NAME = "caltech101"
FOLDER = "caltech101"
SPLITS = ("train", "test")
NUM_CLASSES = 102
BACKGROUND = "BACKGROUND_Google"
#: Training images per class (Kornblith et al. 2019, Ericsson et al. 2021).
PER_CLASS = 30
TITLE = f"Caltech-101 incl. background ({PER_CLASS} train images per class, seeded, without replacement)"
SEED = 0
#: 102 classes × 30 train images; the remaining 6084 of the 9144 images are test (Kornblith et al. 2019).
COUNTS = {"train": NUM_CLASSES * PER_CLASS, "test": 6084}
LAYOUT = (
    f"<root>/{FOLDER}/101_ObjectCategories/<class>/image_<nnnn>.jpg: the extracted 101_ObjectCategories "
    f"archive, 102 class folders including {BACKGROUND} (<root> may also be the {FOLDER} folder itself)"
)


def draw_split(
    files_by_class: Mapping[str, Sequence[str]], per_class: int = PER_CLASS, seed: int = SEED
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The seeded train/test split of Caltech-101, drawn without replacement.

    Args:
        files_by_class: class folder name → image file names in that folder.
        per_class: training images per class.
        seed: the split seed (0 for the published protocol).

    Returns:
        (train, test): ``[(class/file, class index), ...]`` in sorted class order and file order,
        class indices numbering the sorted class names.

    Raises:
        DatasetError: a class has no more than ``per_class`` images (nothing would be left to test on).
    """
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for k, cls in enumerate(sorted(files_by_class)):
        names = sorted(files_by_class[cls])
        if len(names) <= per_class:
            raise DatasetError(
                f"dataset {NAME!r}: class {cls!r} has {len(names)} images; the split needs more than {per_class} "
                f"(expected layout: {LAYOUT})"
            )
        picked = set(np.random.RandomState([seed, zlib.crc32(cls.encode())]).permutation(len(names))[:per_class])
        for i, name in enumerate(names):
            (train if i in picked else test).append((f"{cls}/{name}", k))
    check_split_lists(train, test)
    return train, test


def check_split_lists(train: Sequence[tuple[str, int]], test: Sequence[tuple[str, int]]) -> None:
    """Reject a split that repeats an image within train or test, or puts one image in both."""
    for name, entries in (("train", train), ("test", test)):
        repeated = sorted(f for f, n in Counter(f for f, _ in entries).items() if n > 1)
        if repeated:
            raise DatasetError(
                f"dataset {NAME!r}: the {name} list names {len(repeated)} images more than once (drawn with "
                f"replacement?): {listing_text(repeated)}"
            )
    shared = sorted({f for f, _ in train} & {f for f, _ in test})
    if shared:
        raise DatasetError(f"dataset {NAME!r}: {len(shared)} images are in both train and test: {listing_text(shared)}")


def _scan(categories: Path) -> dict[str, list[str]]:
    """Class folder → image file names. More folders than classes is an error on any copy."""
    classes = sorted(e for e in os.listdir(categories) if not e.startswith(".") and (categories / e).is_dir())
    if len(classes) > NUM_CLASSES:
        raise DatasetError(
            f"dataset {NAME!r}: {len(classes)} class folders in {str(categories)!r}, the official copy has "
            f"{NUM_CLASSES} ({BACKGROUND} included) (expected layout: {LAYOUT})"
        )
    return {c: [n for n in os.listdir(categories / c) if is_image_file(n)] for c in classes}


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root`` with the seeded split drawn from its files."""
    base = locate(root, FOLDER, ("101_ObjectCategories",), NAME, LAYOUT)
    categories = base / "101_ObjectCategories"
    files = _scan(categories)
    problems = [] if BACKGROUND in files else [f"the {BACKGROUND} class folder is missing (it is the 102nd class)"]
    drawn = dict(zip(SPLITS, draw_split(files)))
    listed = [
        SplitListing(
            s,
            [k for _, k in drawn[s]],
            files=[categories / f for f, _ in drawn[s]],
            expected_count=COUNTS[s],
            expected_per_class=PER_CLASS if s == "train" else None,
            scanned=True,
        )
        for s in SPLITS
        if splits is None or s in splits
    ]
    return DatasetListing(
        NAME,
        base,
        LAYOUT,
        sorted(files),
        NUM_CLASSES,
        listed,
        problems=problems,
        source=f"Kornblith et al. 2019 protocol; {PER_CLASS} train images per class drawn with seed {SEED}",
    )


# docs/protocols.md (validation splits): Ericsson et al. validate on a seeded random 20 % of train (seed 0).
_VAL = {"ericsson": ericsson_split(COUNTS["train"])}
register_listed(NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, metric="mean_per_class", val_splits=_VAL)
