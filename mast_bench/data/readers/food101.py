"""Food-101 (Bossard et al. 2014) from ``meta/{train,test}.json``, read by torchvision.

Sample order: classes sorted by name (torchvision's labels; the same order as
``meta/classes.txt``), then the order of each class's list in the json file. This is AugSelf's
order, which the committed 68175/7575 split indexes; torchvision alone would follow the json's
key order instead, so the loader sets the sample list explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torchvision.datasets import Food101

from mast_bench.data.images import OpenImageItems
from mast_bench.data.readers.official_files import pairs_listing, register_listed
from mast_bench.data.splits.seeded import augself_split, ericsson_split
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import (
    DatasetListing,
    require_listed_files,
    require_paths,
    with_samples,
)
from mast_bench.errors import DatasetError

NAME = "food101"
TITLE = "Food-101 (official train/test json; seeded validation splits per protocol)"
LAYOUT = (
    "<root>/food-101/{images/<class>/<id>.jpg, meta/train.json, meta/test.json}: the extracted food-101.tar.gz "
    '(json: {"<class>": ["<class>/<id>", ...]}; read by torchvision.datasets.Food101)'
)
# Bossard et al. 2014: 101 classes, 750 training and 250 test images per class.
_EXPECTED = {"train": (75750, 750), "test": (25250, 250)}


class _Food101(OpenImageItems, Food101):
    """torchvision's Food-101 reader, decoding through ``open_image`` (an unreadable file names itself)."""


def _read(root: Path, split: str) -> dict[str, list[str]]:
    rel = f"food-101/meta/{split}.json"
    require_paths(root, ["food-101/images", rel], dataset=NAME, layout=LAYOUT)
    try:
        meta = json.loads((root / rel).read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"dataset {NAME!r}: {rel} is not valid json ({exc}) (expected layout: {LAYOUT})") from None
    if not isinstance(meta, dict) or not all(isinstance(v, list) for v in meta.values()):
        raise DatasetError(f"dataset {NAME!r}: {rel} must map class names to lists of images ({LAYOUT})")
    return meta


def _samples(root: Path, splits: Sequence[str]) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    # Read the other split's json too when present: both must list the same classes, or torchvision
    # (which numbers each split's sorted keys) would give the same class different labels.
    present = [s for s in ("train", "test") if s in splits or (root / f"food-101/meta/{s}.json").is_file()]
    metas = {s: _read(root, s) for s in present}
    classes = sorted(metas[splits[0]])
    for meta in metas.values():
        if sorted(meta) != classes:
            odd = sorted(set(meta) ^ set(classes))
            raise DatasetError(
                f"dataset {NAME!r}: meta/train.json and meta/test.json list different classes "
                f"(in one only: {odd[:5]}) (expected layout: {LAYOUT})"
            )
    out = {}
    for s in splits:
        images = root / "food-101" / "images"
        samples = [(images / f"{rel}.jpg", i) for i, c in enumerate(classes) for rel in metas[s][c]]
        require_listed_files([f for f, _ in samples], f"meta/{s}.json", root=root, dataset=NAME, layout=LAYOUT)
        out[s] = samples
    return classes, out


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    wanted = [s for s in ("train", "test") if splits is None or s in splits]
    classes, samples = _samples(root, wanted)
    extra_dirs = sorted({p.name for p in (root / "food-101" / "images").iterdir() if p.is_dir()} - set(classes))
    problems = [f"class folders under images/ that the meta files do not list: {extra_dirs[:5]}"] if extra_dirs else []
    listed = [pairs_listing(s, samples[s], _EXPECTED[s]) for s in wanted]
    return DatasetListing(NAME, root, LAYOUT, classes, 101, listed, (), problems, source="Bossard et al. 2014")


def _official(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> Food101:
    lst = listing(root, [split])
    if verify:
        verify_listing(lst, [split])
    ds = _Food101(root, split=split, transform=transform, download=False)
    return with_samples(ds, lst.splits[0].files or [], lst.splits[0].targets, lst.classes)


# docs/protocols.md (validation splits): AugSelf 68175/7575 seed 42; Ericsson 20 % of train, seed 0.
_VAL = {"augself": augself_split(68175, 7575, 42), "ericsson": ericsson_split(75750)}
register_listed(NAME, TITLE, 101, LAYOUT, listing, ("train", "test"), open_split=_official, val_splits=_VAL)
