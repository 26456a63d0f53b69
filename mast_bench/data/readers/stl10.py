"""STL-10 (Coates et al. 2011) from the official binary files, read by torchvision.

Splits: ``train`` (5000 labelled), ``test`` (8000), ``unlabeled`` (100 000, target -1) and
``train+unlabeled`` (pretraining pool, as in AugSelf), plus the protocols' seeded validation
splits of ``train`` (file order, which torchvision keeps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import STL10

from mast_bench.data.readers.official_files import register_listed
from mast_bench.data.splits.seeded import augself_split, ericsson_split
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing, OfficialChecksum, SplitListing, require_paths
from mast_bench.errors import DatasetError

NAME = "stl10"
TITLE = "STL-10 96x96 (train/test/unlabeled; seeded validation splits per protocol)"
FOLDER = STL10.base_folder
LAYOUT = (
    f"<root>/{FOLDER}/{{train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin, class_names.txt}}: "
    "the extracted stl10_binary.tar.gz (uint8 3x96x96 images, labels 1..10; read by torchvision.datasets.STL10)"
)
_IMAGE_BYTES = 3 * 96 * 96
# Official sizes (Coates et al. 2011; the STL-10 page): images, images per class.
_OFFICIAL = {"train": (5000, 500), "test": (8000, 800), "unlabeled": (100000, None)}
_PARTS = {
    "train": ("train",),
    "test": ("test",),
    "unlabeled": ("unlabeled",),
    "train+unlabeled": ("train", "unlabeled"),
}
_USED_BY = {"train": ("train", "train+unlabeled"), "test": ("test",), "unlabeled": ("unlabeled", "train+unlabeled")}


class _STL10(STL10):
    """torchvision's STL-10 reader minus its md5 pass over all five files (done by ``verify_listing``)."""

    def _check_integrity(self) -> bool:
        return True


def _checksums() -> list[OfficialChecksum]:
    return [
        OfficialChecksum(f"{FOLDER}/{f}", md5, "md5", "torchvision.datasets.STL10", _USED_BY[f.split("_")[0]])
        for f, md5 in STL10.train_list + STL10.test_list
    ]


def _files(parts: Sequence[str]) -> list[str]:
    return [f"{FOLDER}/{p}_{k}.bin" for p in parts for k in (("X",) if p == "unlabeled" else ("X", "y"))]


def _part(root: Path, part: str, problems: list[str]) -> SplitListing:
    """One binary part, memory-mapped (the unlabeled file is 2.6 GB): rows of 27648 bytes."""
    x = root / FOLDER / f"{part}_X.bin"
    size = x.stat().st_size
    if size % _IMAGE_BYTES:
        problems.append(f"{x.name} has {size} bytes, not a whole number of 3x96x96 images")
    n = size // _IMAGE_BYTES
    arrays = np.memmap(x, np.uint8, "r", shape=(n, _IMAGE_BYTES)) if n else np.zeros((0, _IMAGE_BYTES), np.uint8)
    count, per_class = _OFFICIAL[part]
    if part == "unlabeled":
        return SplitListing(part, [-1] * n, arrays=arrays, expected_count=count, labeled=False)
    labels = np.fromfile(root / FOLDER / f"{part}_y.bin", dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != n:
        problems.append(f"{part}_y.bin holds {len(labels)} labels for {n} images in {part}_X.bin")
    return SplitListing(part, labels.tolist(), arrays=arrays, expected_count=count, expected_per_class=per_class)


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """The copy at ``root`` (splits: any of train, test, unlabeled, train+unlabeled; None = all)."""
    parts = sorted({p for s in (splits or _PARTS) for p in _PARTS.get(s, ())}, key=list(_OFFICIAL).index)
    require_paths(root, [*_files(parts), f"{FOLDER}/class_names.txt"], dataset=NAME, layout=LAYOUT)
    classes = (root / FOLDER / "class_names.txt").read_text().split()
    problems: list[str] = []
    listed = [_part(root, p, problems) for p in parts]
    return DatasetListing(
        NAME,
        root,
        LAYOUT,
        classes,
        10,
        listed,
        _checksums(),
        problems,
        source="Coates et al. 2011; md5 values as recorded by torchvision",
    )


def check_sizes(root: Path, parts: Sequence[str]) -> None:
    """Refuse binary files that do not hold whole images, or as many labels as images (any copy, verified or not).

    Raises:
        DatasetError: naming the file, its size and the size of the official file.
    """
    for part in parts:
        x = root / FOLDER / f"{part}_X.bin"
        size, (official, _) = x.stat().st_size, _OFFICIAL[part]
        if size % _IMAGE_BYTES:
            raise DatasetError(
                f"dataset {NAME!r}: {FOLDER}/{x.name} has {size} bytes, not a whole number of 3x96x96 images "
                f"({_IMAGE_BYTES} bytes each); the official file has {official * _IMAGE_BYTES} bytes ({official} "
                f"images): it is truncated or corrupt, re-extract stl10_binary.tar.gz (expected layout: {LAYOUT})"
            )
        y = root / FOLDER / f"{part}_y.bin"
        images = size // _IMAGE_BYTES
        labels = y.stat().st_size if part != "unlabeled" else images  # one label byte per image
        if labels != images:
            # Truncation only shortens a file: the one holding fewer entries is the damaged one.
            if images < labels:
                short, expected = x.name, f"{labels * _IMAGE_BYTES} bytes ({labels} images of {_IMAGE_BYTES} bytes)"
            else:
                short, expected = y.name, f"{images} bytes (one label byte per image)"
            raise DatasetError(
                f"dataset {NAME!r}: {FOLDER}/{x.name} holds {images} images ({size} bytes) but {FOLDER}/{y.name} "
                f"holds {labels} labels; {FOLDER}/{short} should have {expected} to match (the official files hold "
                f"{official} images, {official * _IMAGE_BYTES} bytes, and {official} labels): it is truncated or "
                f"corrupt, re-extract stl10_binary.tar.gz (expected layout: {LAYOUT})"
            )


def _official(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> STL10:
    require_paths(root, _files(_PARTS[split]), dataset=NAME, layout=LAYOUT)
    check_sizes(root, _PARTS[split])
    if verify:
        verify_listing(listing(root, [split]), [split])
    ds = _STL10(root, split=split, transform=transform, download=False)
    ds.targets = ds.labels.tolist()  # the attribute every other loader of the package exposes
    return ds


# docs/protocols.md (validation splits): AugSelf 4500/500 seed 50; Ericsson 20 % of train, seed 0.
_VAL = {"augself": augself_split(4500, 500, 50), "ericsson": ericsson_split(5000)}
register_listed(NAME, TITLE, 10, LAYOUT, listing, tuple(_PARTS), open_split=_official, val_splits=_VAL)
