"""ISIC 2018 Task 3 (lesion diagnosis): 10 015 dermoscopic images in 7 classes, labels in a CSV.

Codella et al. 2019 / Tschandl et al. 2018 (HAM10000). The training archive extracts to
``ISIC2018_Task3_Training_Input/<image id>.jpg``; the ground truth to
``ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv`` with the header
``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC`` and one one-hot row per image (values ``1.0``/``0.0``). CD-FSL
(Guo et al. 2020, ``datasets/ISIC_few_shot.py``) labels each image with its column (in that order)
and draws episodes from all 10 015; one split ``all`` here. Sample order: the CSV's.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.official_files import listing_text, locate, register_pool
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_listed_files
from mast_bench.errors import DatasetError

NAME = "isic2018"
TITLE = "ISIC 2018 Task 3 training images (CD-FSL; one pooled split 'all' for few-shot episodes)"
IMAGES = "ISIC2018_Task3_Training_Input"
TRUTH = "ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv"
#: Diagnosis columns of the ground-truth CSV, in file order (= label order).
CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
#: Images in the training set (ISIC 2018 challenge; HAM10000).
COUNT = 10015
LAYOUT = (
    f"<root>/{IMAGES}/<image>.jpg and <root>/{TRUTH} (header 'image,{','.join(CLASSES)}', one one-hot row per image)"
)


def read_truth(path: Path) -> tuple[list[str], list[int]]:
    """``(image ids, labels)`` from the ground-truth CSV (labels index :data:`CLASSES`).

    Raises:
        DatasetError: a wrong header, or a row that is not exactly one 1 among 0s (names the line).
    """
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip() for c in rows[0]] != ["image", *CLASSES]:
        head = ",".join(rows[0]) if rows else "(empty file)"
        raise DatasetError(f"dataset {NAME!r}: {path.name} has header {head!r} (expected layout: {LAYOUT})")
    ids, labels, bad = [], [], []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            values = []
        if len(values) != len(CLASSES) or sorted(values) != [0.0] * (len(CLASSES) - 1) + [1.0]:
            bad.append(n)
            continue
        ids.append(row[0].strip())
        labels.append(values.index(1.0))
    if bad:
        raise DatasetError(
            f"dataset {NAME!r}: {path.name} lines {listing_text(bad)} are not one-hot rows of {len(CLASSES)} values "
            f"(expected layout: {LAYOUT})"
        )
    return ids, labels


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: one split ``all`` in the CSV's order."""
    base = locate(root, "", (IMAGES, TRUTH), NAME, LAYOUT)
    ids, labels = read_truth(base / TRUTH)
    files = [base / IMAGES / f"{i}.jpg" for i in ids]
    require_listed_files(files, TRUTH, root=base, dataset=NAME, layout=LAYOUT)
    split = SplitListing("all", labels, files=files, expected_count=COUNT)
    return DatasetListing(NAME, base, LAYOUT, list(CLASSES), len(CLASSES), [split], source="ISIC 2018 Task 3")


register_pool(NAME, TITLE, len(CLASSES), LAYOUT, listing)
