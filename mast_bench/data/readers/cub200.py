"""CUB-200-2011 (200 bird species) from its official index files.

``images.txt`` (``<id> <class folder>/<file>``), ``image_class_labels.txt`` (``<id> <class 1-200>``),
``train_test_split.txt`` (``<id> <1 = train, 0 = test>``) and ``classes.txt`` (Wah et al. 2011,
"The Caltech-UCSD Birds-200-2011 Dataset"): 5994 train / 5794 test images. torchvision has no
reader for it. No official validation split: the Ericsson rule (20 % of train, seed 0) applies.
Metric: top-1. Sample order: ``images.txt`` order (ascending image id) within each split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.official_files import listing_text, locate, register_listed
from mast_bench.data.splits.seeded import ericsson_split
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_paths
from mast_bench.errors import DatasetError

NAME = "cub200"
TITLE = "CUB-200-2011 (official train/test; seeded validation split)"
FOLDER = "CUB_200_2011"
SPLITS = ("train", "test")
#: Official split sizes (Wah et al. 2011).
COUNTS = {"train": 5994, "test": 5794}
NUM_CLASSES = 200
_INDEX = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
LAYOUT = (
    f"<root>/{FOLDER}/{{images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, "
    "images/<nnn.Class_name>/<file>.jpg}: the extracted CUB_200_2011.tgz, each index line '<image id> <value>' "
    f"(<root> may also be the {FOLDER} folder itself)"
)


def _table(path: Path) -> dict[int, str]:
    """``<id> <value>`` lines → {id: value}; a malformed or repeated id is a DatasetError."""
    table: dict[int, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        if not key.isdigit() or not value or int(key) in table:
            raise DatasetError(
                f"dataset {NAME!r}: {path.name} line {n} ({line.strip()!r}) is not '<unique image id> <value>' "
                f"(expected layout: {LAYOUT})"
            )
        table[int(key)] = value.strip()
    return table


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: the train and test images of ``splits`` (default both)."""
    base = locate(root, FOLDER, ("images.txt", "images"), NAME, LAYOUT)
    require_paths(base, _INDEX, dataset=NAME, layout=LAYOUT)
    images, labels, is_train, class_table = (_table(base / f) for f in _INDEX)
    unlabelled = sorted(set(images) - set(labels)) + sorted(set(images) - set(is_train))
    if unlabelled:
        raise DatasetError(
            f"dataset {NAME!r}: image ids {listing_text(unlabelled)} from images.txt have no class or no "
            f"train/test entry (expected layout: {LAYOUT})"
        )
    bad = [i for i in images if not labels[i].isdigit() or is_train[i] not in ("0", "1")]
    if bad:
        raise DatasetError(
            f"dataset {NAME!r}: image ids {listing_text(bad)} have a class that is not a number or a train/test "
            f"flag that is not 0 or 1 (expected layout: {LAYOUT})"
        )
    if sorted(class_table) != list(range(1, len(class_table) + 1)):
        raise DatasetError(f"dataset {NAME!r}: classes.txt must number the classes 1..K (expected layout: {LAYOUT})")
    classes = [class_table[k] for k in sorted(class_table)]
    listed = []
    for split, flag in (("train", "1"), ("test", "0")):
        if splits is not None and split not in splits:
            continue
        ids = [i for i in sorted(images) if is_train[i] == flag]
        files = [base / "images" / images[i] for i in ids]
        listed.append(SplitListing(split, [int(labels[i]) - 1 for i in ids], files=files, expected_count=COUNTS[split]))
    return DatasetListing(NAME, base, LAYOUT, classes, NUM_CLASSES, listed, source="Wah et al. 2011")


# docs/protocols.md (validation splits): without an official val split, a seeded random 20 % of train (seed 0).
register_listed(
    NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, val_splits={"ericsson": ericsson_split(COUNTS["train"])}
)
