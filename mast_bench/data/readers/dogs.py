"""Stanford Dogs (120 breeds) from the official ``train_list.mat`` / ``test_list.mat``.

Each list holds ``file_list`` (N×1 cell of ``<wnid>-<breed>/<wnid>_<n>.jpg`` under ``Images/``)
and ``labels`` (N×1, one-based) (Khosla et al. 2011, "Novel Dataset for Fine-Grained Image
Categorization"): 12000 train (100 per class) / 8580 test images. The lists come in ``lists.tar``;
they are read from ``lists/`` or, where the archive was extracted in place, from the dataset
folder itself. torchvision has no reader for it. No official validation split: the Ericsson rule
(20 % of train, seed 0) applies. Metric: top-1. Sample order: the order of ``file_list``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io as sio

from mast_bench.data.readers.official_files import listing_text, locate, mat_errors, register_listed
from mast_bench.data.splits.seeded import ericsson_split
from mast_bench.data.verify.listing import DatasetListing, SplitListing
from mast_bench.errors import DatasetError

NAME = "dogs"
TITLE = "Stanford Dogs (official train/test lists; seeded validation split)"
FOLDER = "stanford_dogs"
SPLITS = ("train", "test")
#: Official split sizes (Khosla et al. 2011): 100 training images per breed.
COUNTS = {"train": 12000, "test": 8580}
PER_CLASS = {"train": 100, "test": None}
NUM_CLASSES = 120
LAYOUT = (
    f"<root>/{FOLDER}/{{Images/<wnid>-<breed>/<wnid>_<n>.jpg, lists/train_list.mat, lists/test_list.mat}}: the "
    "extracted images.tar and lists.tar (the two .mat files may also sit directly in the dataset folder; "
    f"<root> may also be the {FOLDER} folder itself)"
)


def _list_file(base: Path, split: str) -> Path:
    for folder in (base / "lists", base):
        if (folder / f"{split}_list.mat").is_file():
            return folder / f"{split}_list.mat"
    raise DatasetError(
        f"dataset {NAME!r}: lists/{split}_list.mat not found under {str(base)!r} (expected layout: {LAYOUT})"
    )


def _read(path: Path) -> list[tuple[str, int]]:
    """``[(relative image path, one-based label), ...]`` from one list file."""
    with mat_errors(NAME, path.name, "the N×1 cell 'file_list' and the N×1 'labels'", LAYOUT, also=(IndexError,)):
        mat = sio.loadmat(path)
        files = [str(np.asarray(cell).ravel()[0]) for cell in mat["file_list"].ravel()]
        labels = [int(v) for v in np.asarray(mat["labels"]).ravel()]
    if len(files) != len(labels):
        raise DatasetError(f"dataset {NAME!r}: {path.name} has {len(files)} files but {len(labels)} labels")
    return list(zip(files, labels))


def _classes(entries: Sequence[tuple[str, int]]) -> list[str]:
    """Breed folder by label: labels must run 1..K and name exactly one folder each."""
    folders: dict[int, set[str]] = {}
    for rel, label in entries:
        folders.setdefault(label, set()).add(rel.split("/", 1)[0])
    clash = [f"{k}: {sorted(v)}" for k, v in sorted(folders.items()) if len(v) > 1]
    owners: dict[str, list[int]] = {}
    for k, v in folders.items():
        for f in v:
            owners.setdefault(f, []).append(k)
    clash += [f"{f}: labels {sorted(ks)}" for f, ks in sorted(owners.items()) if len(ks) > 1]
    if clash:
        raise DatasetError(f"dataset {NAME!r}: labels and breed folders disagree: {listing_text(clash)}")
    if sorted(folders) != list(range(1, len(folders) + 1)):
        raise DatasetError(
            f"dataset {NAME!r}: labels must run 1..K without gaps, found {listing_text(sorted(folders))} "
            f"(expected layout: {LAYOUT})"
        )
    return [next(iter(folders[k])) for k in sorted(folders)]


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``. Class names come from both lists, so read both."""
    base = locate(root, FOLDER, ("Images",), NAME, LAYOUT)
    read = {s: _read(_list_file(base, s)) for s in SPLITS}
    classes = _classes([e for s in SPLITS for e in read[s]])
    listed = [
        SplitListing(
            s,
            [label - 1 for _, label in read[s]],
            files=[base / "Images" / rel for rel, _ in read[s]],
            expected_count=COUNTS[s],
            expected_per_class=PER_CLASS[s],
        )
        for s in SPLITS
        if splits is None or s in splits
    ]
    return DatasetListing(NAME, base, LAYOUT, classes, NUM_CLASSES, listed, source="Khosla et al. 2011")


# docs/protocols.md (validation splits): without an official val split, a seeded random 20 % of train (seed 0).
register_listed(
    NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, val_splits={"ericsson": ericsson_split(COUNTS["train"])}
)
