"""ChestX: the single-finding images of ChestX-ray14 in CD-FSL's seven classes.

Wang et al. 2017 ("ChestX-ray8"; NIH Clinical Center). The twelve image archives extract to
``images/<Image Index>.png``; ``Data_Entry_2017.csv`` has one row per image with the columns
``Image Index`` and ``Finding Labels`` (findings joined by ``|``) first. CD-FSL (Guo et al. 2020,
``datasets/Chest_few_shot.py``) keeps the rows with exactly one finding among Atelectasis,
Cardiomegaly, Effusion, Infiltration, Mass, Nodule and Pneumothorax (its code lists Pneumonia too but
excludes it, and ``No Finding``), labelled in that order: 25 848 images. One split ``all``; sample
order: the CSV's.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.official_files import locate, register_pool
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_listed_files
from mast_bench.errors import DatasetError

NAME = "chestx"
TITLE = "ChestX-ray14, CD-FSL's 7 single-finding classes (one pooled split 'all' for few-shot episodes)"
CSV = "Data_Entry_2017.csv"
#: CD-FSL's seven classes, in label order (``labels_maps`` of its ``Chest_few_shot.py``).
CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
#: Single-finding images of those classes in the full ChestX-ray14 release.
COUNT = 25848
LAYOUT = f"<root>/{CSV} (columns 'Image Index', 'Finding Labels', ...) and <root>/images/<Image Index> (PNG)"


def read_entries(path: Path) -> tuple[list[str], list[int]]:
    """``(image names, labels)`` of the single-finding rows in :data:`CLASSES` (labels index it).

    Raises:
        DatasetError: the header does not start with ``Image Index,Finding Labels``.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if [h.strip() for h in header[:2]] != ["Image Index", "Finding Labels"]:
            raise DatasetError(
                f"dataset {NAME!r}: {CSV} starts with {','.join(header[:2])!r}, not 'Image Index,Finding Labels' "
                f"(expected layout: {LAYOUT})"
            )
        names, labels = [], []
        for row in reader:
            if len(row) < 2:
                continue
            findings = row[1].strip().split("|")
            if len(findings) == 1 and findings[0] in CLASSES:
                names.append(row[0].strip())
                labels.append(CLASSES.index(findings[0]))
    return names, labels


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: one split ``all`` in the CSV's order."""
    base = locate(root, "", (CSV, "images"), NAME, LAYOUT)
    names, labels = read_entries(base / CSV)
    files = [base / "images" / n for n in names]
    require_listed_files(files, CSV, root=base, dataset=NAME, layout=LAYOUT)
    split = SplitListing("all", labels, files=files, expected_count=COUNT)
    return DatasetListing(NAME, base, LAYOUT, list(CLASSES), len(CLASSES), [split], source="Wang et al. 2017; CD-FSL")


register_pool(NAME, TITLE, len(CLASSES), LAYOUT, listing)
