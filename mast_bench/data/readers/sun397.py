"""SUN397 (Xiao et al. 2010), partition 01, read by torchvision.

``torchvision.datasets.SUN397`` reads every image under ``<root>/SUN397`` and labels it from its
folder; the protocols use the official partition 01 (``Training_01.txt`` / ``Testing_01.txt``,
50 + 50 images per class), so the loader restricts the reader to those files, in list order
(the order Ericsson et al.'s loader has, which the committed validation split indexes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torchvision.datasets import SUN397

from mast_bench.data.images import OpenImageItems
from mast_bench.data.readers.official_files import pairs_listing, register_listed
from mast_bench.data.splits.seeded import ericsson_split
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import (
    DatasetListing,
    require_listed_files,
    require_paths,
    with_samples,
)
from mast_bench.errors import DatasetError

NAME = "sun397"
TITLE = "SUN397 partition 01 (seeded Ericsson validation split)"
LAYOUT = (
    "<root>/SUN397/{ClassName.txt, Training_01.txt, Testing_01.txt, <letter>/<class>/sun_*.jpg}: the extracted "
    "SUN397.tar.gz with the official partition files (from Partitions.zip) copied into SUN397/; list lines read "
    "/<letter>/<class>/sun_<id>.jpg (read by torchvision.datasets.SUN397, restricted to partition 01)"
)
LISTS = {"train": "Training_01.txt", "test": "Testing_01.txt"}
# Xiao et al. 2010: 397 classes; each of the 10 partitions has 50 training and 50 test images per class.
_EXPECTED = {"train": (19850, 50), "test": (19850, 50)}


class _SUN397(OpenImageItems, SUN397):
    """torchvision's SUN397 reader, decoding through ``open_image`` (an unreadable file names itself)."""


def _read(root: Path, splits: Sequence[str]) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    base = root / "SUN397"
    require_paths(root, ["SUN397/ClassName.txt", *(f"SUN397/{LISTS[s]}" for s in splits)], dataset=NAME, layout=LAYOUT)
    classes = [ln.strip()[3:] for ln in (base / "ClassName.txt").read_text().splitlines() if ln.strip()]
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for s in splits:
        lines = [ln.strip() for ln in (base / LISTS[s]).read_text().splitlines() if ln.strip()]
        rels = [Path(ln.lstrip("/")) for ln in lines]
        unknown = [ln for ln, rel in zip(lines, rels) if "/".join(rel.parts[1:-1]) not in index]
        if unknown:
            raise DatasetError(
                f"dataset {NAME!r}: {LISTS[s]} lists images of classes missing from ClassName.txt, "
                f"e.g. {unknown[:3]} (expected layout: {LAYOUT})"
            )
        samples = [(base / rel, index["/".join(rel.parts[1:-1])]) for rel in rels]
        require_listed_files([f for f, _ in samples], LISTS[s], root=root, dataset=NAME, layout=LAYOUT)
        out[s] = samples
    return classes, out


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    wanted = [s for s in LISTS if splits is None or s in splits]
    classes, samples = _read(root, wanted)
    listed = [pairs_listing(s, samples[s], _EXPECTED[s]) for s in wanted]
    return DatasetListing(NAME, root, LAYOUT, classes, 397, listed, source="Xiao et al. 2010")


def _official(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> SUN397:
    lst = listing(root, [split])
    if verify:
        verify_listing(lst, [split])
    try:
        ds = _SUN397(root, transform=transform, download=False)
    except KeyError as exc:  # an image whose folder is not a class of ClassName.txt
        raise DatasetError(
            f"dataset {NAME!r}: an image under SUN397/ lies in {exc}, which is not a class of "
            f"ClassName.txt (expected layout: {LAYOUT})"
        ) from None
    if ds.classes != lst.classes:
        raise DatasetError(f"dataset {NAME!r}: ClassName.txt was read differently by torchvision ({LAYOUT})")
    return with_samples(ds, lst.splits[0].files or [], lst.splits[0].targets, lst.classes)


# docs/protocols.md (validation splits): Ericsson 20 % of train, seed 0. AugSelf drew its SUN397 split into a
# binary file of its own, not a seeded rule we can redraw, so no augself split is declared (the protocol refuses).
_VAL = {"ericsson": ericsson_split(19850)}
register_listed(NAME, TITLE, 397, LAYOUT, listing, ("train", "test"), open_split=_official, val_splits=_VAL)
