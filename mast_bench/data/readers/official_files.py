"""Datasets read from their official split files: one sample list, one image reader, clear errors.

The fine-grained transfer datasets (Aircraft, Caltech-101, Cars, Flowers-102, Pets, VOC2007,
CUB-200-2011, Stanford Dogs) each ship their own index format (txt lists, MATLAB ``.mat`` files,
XML). Each module parses that format into a :class:`~mast_bench.data.verify.listing.DatasetListing`
(what every split holds, in the official file order) and registers itself with
:func:`register_official`. Loading a split then means: list the copy, verify it against the
official numbers (:func:`mast_bench.data.verify.check.verify_listing`) unless ``verify=False``, and wrap
the split's ``(file, target)`` pairs in a :class:`FileListDataset`. Seeded validation splits
(``train@ericsson``, ``val@augself``, …) are subsets of the official ``train`` split, drawn by
:mod:`mast_bench.data.splits.seeded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from mast_bench.data.base import DatasetInfo, Metric
from mast_bench.data.readers.imagefolder import load_rgb
from mast_bench.data.splits.seeded import OFFICIAL, build_protocol_split, protocol_split_names
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing
from mast_bench.errors import DatasetError
from mast_bench.registry import DATASETS

ListingFn = Callable[[Path, "Sequence[str] | None"], DatasetListing]
_SHOW = 5  # offending entries quoted per error


class FileListDataset(Dataset[Any]):
    """``(image, target)`` pairs from an explicit list of image files.

    Images are decoded with PIL and converted to RGB (several official copies hold grayscale and
    CMYK JPEGs), then passed through ``transform``. Multi-label targets (VOC2007) are stored as
    tuples of positive class indices and returned as multi-hot ``float32`` tensors of shape (C,).

    Attributes:
        name: registry name of the dataset.
        split: the split this list holds.
        samples: ``[(image path, target), ...]`` in the official file order.
        classes: class names; ``classes[i]`` names target ``i``.
        multilabel: targets are multi-hot vectors.
    """

    def __init__(
        self,
        name: str,
        split: str,
        samples: Sequence[tuple[Path, Any]],
        classes: Sequence[str],
        transform: Callable[[Any], Any] | None = None,
        multilabel: bool = False,
    ) -> None:
        self.name = name
        self.split = split
        self.samples = list(samples)
        self.classes = list(classes)
        self.transform = transform
        self.multilabel = multilabel

    def encode(self, target: Any) -> Any:
        """A stored target as returned by ``__getitem__``: int, or multi-hot float32 tensor (C,)."""
        if not self.multilabel:
            return target
        hot = torch.zeros(len(self.classes), dtype=torch.float32)
        hot[list(target)] = 1.0
        return hot

    @property
    def targets(self) -> list[Any]:
        """Every target in sample order, as ``__getitem__`` returns it."""
        return [self.encode(t) for _, t in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        image = load_rgb(Path(path))
        if self.transform is not None:
            image = self.transform(image)
        return image, self.encode(target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)})"


def listing_text(items: Sequence[Any]) -> str:
    """The first few items of a list of offenders, for an error message."""
    shown = ", ".join(str(i) for i in items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


def locate(root: Path, folder: str, markers: Sequence[str], name: str, layout: str) -> Path:
    """The dataset folder: ``root/folder``, or ``root`` itself when it holds the markers.

    Users point ``--data-root`` at the folder above the one the official archive extracts to
    (torchvision's convention) or at that folder itself; both work.

    Raises:
        DatasetError: neither holds every marker; the message lists what is missing.
    """
    for base in (root / folder, root):
        if all((base / m).exists() for m in markers):
            return base
    base = root / folder if (root / folder).is_dir() or root.name != folder else root
    missing = [m for m in markers if not (base / m).exists()]
    raise DatasetError(
        f"dataset {name!r}: {listing_text(missing)} not found under {str(base)!r} (expected layout: {layout})"
    )


def check_labels(listing: DatasetListing, num_classes: int) -> None:
    """Errors that no copy, partial or not, may have: more classes than the dataset, labels out of range.

    (Fewer classes, or counts that differ, are what ``verify_listing`` reports on a full copy.)
    """
    name = listing.dataset
    if len(listing.classes) > num_classes:
        raise DatasetError(
            f"dataset {name!r}: {len(listing.classes)} classes found, the official copy has {num_classes}, e.g. "
            f"{listing_text(list(listing.classes)[num_classes:])} (expected layout: {listing.layout})"
        )
    for split in listing.splits:
        flat = [c for t in split.targets for c in (t if isinstance(t, tuple) else (t,))]
        bad = sorted({c for c in flat if not 0 <= c < len(listing.classes)})
        if bad:
            raise DatasetError(
                f"dataset {name!r} {split.name}: labels {listing_text(bad)} outside the "
                f"{len(listing.classes)} listed classes (expected layout: {listing.layout})"
            )


def from_listing(
    listing: DatasetListing, split: str, transform: Callable[[Any], Any] | None, multilabel: bool = False
) -> FileListDataset:
    """The :class:`FileListDataset` of one listed split."""
    for s in listing.splits:
        if s.name == split and s.files is not None:
            samples = list(zip(s.files, s.targets))
            return FileListDataset(listing.dataset, split, samples, listing.classes, transform, multilabel)
    raise DatasetError(f"dataset {listing.dataset!r}: split {split!r} was not listed")


def official_loader(
    name: str, num_classes: int, listing_fn: ListingFn, multilabel: bool = False
) -> Callable[[Path, str, Callable[[Any], Any] | None, bool], Dataset[Any]]:
    """``loader(root, split, transform, verify)`` for a dataset described by ``listing_fn``.

    Official splits are listed, checked (always :func:`check_labels`; with ``verify`` the full
    load-time verification) and wrapped; ``train@P`` / ``val@P`` are the seeded subsets of the
    official ``train`` split that protocol ``P`` uses.
    """

    def official(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> FileListDataset:
        listing = listing_fn(root, [split])
        check_labels(listing, num_classes)
        if verify:
            verify_listing(listing, [split])
        return from_listing(listing, split, transform, multilabel)

    def loader(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> Dataset[Any]:
        if "@" in split:
            return build_protocol_split(name, split, lambda s: official(root, s, transform, verify))
        return official(root, split, transform, verify)

    return loader


def register_official(
    *,
    name: str,
    title: str,
    num_classes: int,
    metric: Metric,
    layout: str,
    listing_fn: ListingFn,
    official_splits: Sequence[str],
    val_splits: Mapping[str, Any],
    multilabel: bool = False,
) -> DatasetInfo:
    """Register a dataset read from official index files in :data:`~mast_bench.registry.DATASETS`.

    Args:
        official_splits: the splits the dataset ships (``train``/``test``, plus ``val`` where official).
        val_splits: protocol → ``OFFICIAL`` or a :class:`~mast_bench.data.splits.seeded.SeededSplit` of ``train``.
    """
    has_val = "val" in official_splits
    info = DatasetInfo(
        name=name,
        num_classes=num_classes,
        splits=(*official_splits, *protocol_split_names(val_splits)),
        metric=metric,
        val_source="official" if has_val else ("seeded" if val_splits else "none"),
        layout=layout,
        loader=official_loader(name, num_classes, listing_fn, multilabel),
        multilabel=multilabel,
        description=title,
        extra={"listing": listing_fn, "val_splits": dict(val_splits)},
    )
    if has_val and any(v != OFFICIAL for v in val_splits.values()):
        raise ValueError(f"{name}: a dataset with an official val split uses it for every protocol")
    DATASETS.add(name, info)
    return info
