"""MIT Indoor-67 (Quattoni & Torralba 2009) from ``Images/`` and the official split lists.

torchvision has no MIT-67 class; the images are read by torchvision's ``ImageFolder`` over
``Images/`` restricted to the files of ``TrainImages.txt`` / ``TestImages.txt``. Classes are the
sorted class names of the lists and samples follow ImageFolder's order (class, then file name):
the order AugSelf's ImageFolder over a prepared ``train/`` folder has, which the committed
4690/670 split indexes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mast_bench.data.readers.folder import ClassFolder
from mast_bench.data.readers.official_files import pairs_listing, register_listed
from mast_bench.data.splits.seeded import augself_split, ericsson_split
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing, require_listed_files, require_paths
from mast_bench.errors import DatasetError

NAME = "mit67"
TITLE = "MIT Indoor-67 (official 80/20 lists; seeded validation splits per protocol)"
LAYOUT = (
    "<root>/Images/<class>/<image>.jpg (the extracted indoorCVPR_09.tar) with <root>/TrainImages.txt and "
    "<root>/TestImages.txt (official lists, one <class>/<image>.jpg per line); read by "
    "torchvision.datasets.ImageFolder restricted to the listed files"
)
LISTS = {"train": "TrainImages.txt", "test": "TestImages.txt"}
# Quattoni & Torralba 2009: 67 classes, 80 training and 20 test images per class.
_EXPECTED = {"train": (5360, 80), "test": (1340, 20)}


def _read_lists(root: Path) -> tuple[list[str], dict[str, list[str]]]:
    require_paths(root, ["Images", *LISTS.values()], dataset=NAME, layout=LAYOUT)
    entries = {s: [ln.strip() for ln in (root / f).read_text().splitlines() if ln.strip()] for s, f in LISTS.items()}
    malformed = [e for lines in entries.values() for e in lines if e.count("/") != 1]
    if malformed:
        raise DatasetError(
            f"dataset {NAME!r}: list lines must read <class>/<image>, got {malformed[:3]} (expected layout: {LAYOUT})"
        )
    classes = {s: sorted({e.split("/")[0] for e in lines}) for s, lines in entries.items()}
    if classes["test"] != classes["train"]:
        extra = sorted(set(classes["test"]) - set(classes["train"]))
        missing = sorted(set(classes["train"]) - set(classes["test"]))
        raise DatasetError(
            f"dataset {NAME!r}: TestImages.txt has classes not in TrainImages.txt {extra[:5]} "
            f"and lacks {missing[:5]} (expected layout: {LAYOUT})"
        )
    return classes["train"], entries


def _samples(root: Path, split: str, classes: list[str], entries: dict[str, list[str]]) -> list[tuple[Path, int]]:
    index = {c: i for i, c in enumerate(classes)}
    files = [root / "Images" / e for e in entries[split]]
    require_listed_files(files, LISTS[split], root=root, dataset=NAME, layout=LAYOUT)
    # ImageFolder order: classes sorted, then the sorted file names within each class folder.
    return sorted(((f, index[f.parent.name]) for f in files), key=lambda s: (s[1], s[0].name))


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    classes, entries = _read_lists(root)
    listed = []
    for split in LISTS:
        if splits is None or split in splits:
            listed.append(pairs_listing(split, _samples(root, split, classes, entries), _EXPECTED[split]))
    return DatasetListing(NAME, root, LAYOUT, classes, 67, listed, source="Quattoni & Torralba 2009")


def _official(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> ClassFolder:
    lst = listing(root, [split])
    if verify:
        verify_listing(lst, [split])
    wanted = {os.path.normpath(f) for f in lst.splits[0].files or ()}
    ds = ClassFolder(root / "Images", lst.classes, transform, is_valid_file=lambda p: os.path.normpath(p) in wanted)
    if [Path(p) for p, _ in ds.samples] != list(lst.splits[0].files or ()):
        raise DatasetError(
            f"dataset {NAME!r}: the images under Images/ do not match {LISTS[split]} (expected layout: {LAYOUT})"
        )
    return ds


# docs/protocols.md (validation splits): AugSelf 4690/670 seed 51; Ericsson 20 % of train, seed 0.
_VAL = {"augself": augself_split(4690, 670, 51), "ericsson": ericsson_split(5360)}
register_listed(NAME, TITLE, 67, LAYOUT, listing, ("train", "test"), open_split=_official, val_splits=_VAL)
