"""ImageNet (ILSVRC2012) in the usual folder layout, read by torchvision's ImageFolder.

``torchvision.datasets.ImageNet`` needs the devkit archive and its generated ``meta.bin``; most
copies instead hold the extracted images with the validation set sorted into class folders by
the usual ``valprep.sh``, which is what this loader reads. Splits:

* ``train`` (1 281 167 images) and ``val`` (50 000, 50 per class): the official ones. ``val`` is
  the set ImageNet results are reported on (docs/protocols.md: nothing is selected on it), so this
  dataset declares no validation split for the transfer protocols.
* ``train-1pct`` / ``train-10pct``: the SimCLR semi-supervised subsets, from user-supplied lists
  ``<root>/1percent.txt`` and ``<root>/10percent.txt`` (one train file name per line, e.g.
  ``n01440764_10026.JPEG``); labels are the full 1000-class indices.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mast_bench.data.readers.folder import ClassFolder, class_folders, folder_listing, open_class_split
from mast_bench.data.register import register_reader
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing
from mast_bench.errors import DatasetError

NAME = "imagenet"
LAYOUT = (
    "<root>/train/<wnid>/<wnid>_<n>.JPEG and <root>/val/<wnid>/ILSVRC2012_val_<n>.JPEG (ILSVRC2012 with the "
    "validation images sorted into class folders by valprep.sh; read by torchvision.datasets.ImageFolder), "
    "optionally <root>/1percent.txt and <root>/10percent.txt (SimCLR subset lists, one train file name per line)"
)
# Russakovsky et al. 2015 (ILSVRC2012): 1000 classes, 1 281 167 train images, 50 000 val images (50 per class).
_EXPECTED = {"train": (1281167, None), "val": (50000, 50)}
SUBSETS = {"train-1pct": "1percent.txt", "train-10pct": "10percent.txt"}
_WNID = re.compile(r"^n\d{8}$")


def _classes(root: Path) -> list[str]:
    classes = class_folders(root / "train", dataset=NAME, layout=LAYOUT)
    odd = [c for c in classes if not _WNID.match(c)]
    if odd:  # a stray folder would become a class and shift every later label
        raise DatasetError(
            f"dataset {NAME!r}: train/ holds folders that are not WordNet ids: {odd[:5]} (expected layout: {LAYOUT})"
        )
    return classes


def _open(root: Path, split: str, transform: Callable[[Any], Any] | None) -> ClassFolder:
    _classes(root)
    if split == "val" and (root / "val").is_dir() and any(p.suffix == ".JPEG" for p in (root / "val").iterdir()):
        raise DatasetError(
            f"dataset {NAME!r}: val/ holds the images directly; sort them into one folder per class with the usual "
            f"valprep.sh first (expected layout: {LAYOUT})"
        )
    return open_class_split(root, split, transform, dataset=NAME, layout=LAYOUT)


def _subset_names(root: Path, split: str) -> list[str]:
    path = root / SUBSETS[split]
    if not path.is_file():
        raise DatasetError(
            f"dataset {NAME!r}: split {split!r} needs the SimCLR subset list {str(path)!r}, which is not there "
            f"(it is never downloaded; expected layout: {LAYOUT})"
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _open_subset(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> ClassFolder:
    names = _subset_names(root, split)
    wanted = set(names)
    ds = ClassFolder(
        root / "train", _classes(root), transform, is_valid_file=lambda p: Path(p).name in wanted, allow_empty=True
    )
    if verify:
        repeated = [n for n, c in Counter(names).items() if c > 1]
        missing = sorted(wanted - {Path(p).name for p, _ in ds.samples})
        if repeated or missing:
            raise DatasetError(
                f"dataset {NAME!r}: {SUBSETS[split]} lists {len(missing)} files not found under train/ "
                f"(e.g. {missing[:3]}) and {len(repeated)} names more than once (e.g. {repeated[:3]}). Pass "
                "--no-verify (verify=False) only for a copy you know is partial. "
                f"Expected layout: {LAYOUT}"
            )
    return ds


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """train and val of the copy at ``root``; subset lists that are present are checked against train/."""
    opened = {s: _open(root, s, None) for s in ("train", "val") if splits is None or s in splits}
    lst = folder_listing(NAME, LAYOUT, opened, root, _EXPECTED, num_classes=1000)
    if "train" not in opened:
        return lst
    have = Counter(Path(p).name for p, _ in opened["train"].samples)
    problems = []
    for split, fname in SUBSETS.items():
        if (root / fname).is_file():
            names = Counter(_subset_names(root, split))
            missing = [n for n in names if n not in have]
            repeated = [n for n, c in names.items() if c > 1]
            if missing or repeated:
                problems.append(
                    f"{fname}: {len(missing)} names not under train/ (e.g. {missing[:3]}), "
                    f"{len(repeated)} listed more than once (e.g. {repeated[:3]})"
                )
    return replace(lst, problems=problems)


def _loader(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> ClassFolder:
    if split in SUBSETS:
        return _open_subset(root, split, transform, verify)
    ds = _open(root, split, transform)
    if verify:
        verify_listing(folder_listing(NAME, LAYOUT, {split: ds}, root, _EXPECTED, num_classes=1000), [split])
    return ds


register_reader(
    name=NAME,
    title="ILSVRC2012 folders (val = the report set; SimCLR 1 %/10 % subsets from user lists)",
    num_classes=1000,
    metric="top1",
    layout=LAYOUT,
    open_split=_loader,
    splits=("train", "val", *SUBSETS),
    listing=listing,
    val_source="none",  # val is the report set: nothing may be selected on it
    report_split="val",
    also_report=("top5",),
)
