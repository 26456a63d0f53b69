"""Describable Textures (Cimpoi et al. 2014), split 1, read by torchvision.

The official validation split ``val1.txt`` is the protocols' validation split (PROTOCOLS.md §1).
torchvision numbers the classes present in the requested split file; the loader instead numbers
the sorted union of the three split files' classes, so labels agree across splits even on a
partial copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torchvision.datasets import DTD

from mast_bench.data.base import DatasetInfo
from mast_bench.data.splits.seeded import OFFICIAL
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import (
    DatasetListing,
    SplitListing,
    require_listed_files,
    require_paths,
    with_samples,
)
from mast_bench.errors import DatasetError
from mast_bench.registry import DATASETS

NAME = "dtd"
BASE = "dtd/dtd"  # torchvision reads <root>/dtd/dtd: it extracts the archive (top folder dtd/) into <root>/dtd
LAYOUT = (
    "<root>/dtd/dtd/{images/<class>/<class>_<n>.jpg, labels/train1.txt, labels/val1.txt, labels/test1.txt}: "
    "dtd-r1.0.1.tar.gz extracted into <root>/dtd (list lines read <class>/<image>.jpg; read by "
    "torchvision.datasets.DTD, partition 1)"
)
SPLITS = ("train", "val", "test")
# Cimpoi et al. 2014: 47 classes x 120 images, split into 40 train / 40 val / 40 test per class.
_PER_CLASS = 40


def _base(root: Path) -> Path:
    for guess, hint in ((root, "<root>"), (root / "dtd", "<root>/dtd")):
        if (guess / "labels").is_dir() and (guess / "images").is_dir():
            raise DatasetError(
                f"dataset {NAME!r}: found images/ and labels/ in {hint}, but torchvision's DTD reader expects them "
                f"in <root>/dtd/dtd; create that folder level (expected layout: {LAYOUT})"
            )
    return root / BASE


def _read(root: Path, splits: Sequence[str]) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    base = _base(root)
    require_paths(root, [f"{BASE}/images", *(f"{BASE}/labels/{s}1.txt" for s in SPLITS)], dataset=NAME, layout=LAYOUT)
    lines = {
        s: [ln.strip() for ln in (base / "labels" / f"{s}1.txt").read_text().splitlines() if ln.strip()] for s in SPLITS
    }
    malformed = [ln for v in lines.values() for ln in v if ln.count("/") != 1]
    if malformed:
        raise DatasetError(
            f"dataset {NAME!r}: label files must list <class>/<image>, got {malformed[:3]} (expected layout: {LAYOUT})"
        )
    classes = sorted({ln.split("/")[0] for v in lines.values() for ln in v})
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for s in splits:
        samples = [(base / "images" / ln, index[ln.split("/")[0]]) for ln in lines[s]]
        require_listed_files([f for f, _ in samples], f"labels/{s}1.txt", root=root, dataset=NAME, layout=LAYOUT)
        out[s] = samples
    return classes, out


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    wanted = [s for s in SPLITS if splits is None or s in splits]
    classes, samples = _read(root, wanted)
    listed = [
        SplitListing(
            s,
            [t for _, t in samples[s]],
            files=[f for f, _ in samples[s]],
            expected_count=47 * _PER_CLASS,
            expected_per_class=_PER_CLASS,
        )
        for s in wanted
    ]
    return DatasetListing(NAME, root, LAYOUT, classes, 47, listed, source="Cimpoi et al. 2014")


def _loader(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> DTD:
    lst = listing(root, [split])
    if verify:
        verify_listing(lst, [split])
    ds = DTD(root, split=split, partition=1, transform=transform, download=False)
    return with_samples(ds, lst.splits[0].files or [], lst.splits[0].targets, lst.classes)


DATASETS.add(
    NAME,
    DatasetInfo(
        name=NAME,
        num_classes=47,
        splits=SPLITS,
        metric="top1",
        val_source="official",
        layout=LAYOUT,
        loader=_loader,
        description="Describable Textures, split 1 (official train/val/test)",
        extra={"listing": listing, "val_splits": {"ericsson": OFFICIAL, "augself": OFFICIAL}},
    ),
)
