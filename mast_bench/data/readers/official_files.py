"""Datasets read from their official split files: one sample list, one image reader, clear errors.

The fine-grained transfer datasets (Aircraft, Caltech-101, Cars, Flowers-102, Pets, VOC2007,
CUB-200-2011, Stanford Dogs) each ship their own index format (txt lists, MATLAB ``.mat`` files,
XML). Each module parses that format into a :class:`~mast_bench.data.verify.listing.DatasetListing`
(what every split holds, in the official file order) and registers itself with :func:`register_listed`
(:func:`mast_bench.data.register.register_reader` with its ``open_split`` made by :func:`open_listed`).
Loading a split then means: list the copy, verify it against the official numbers
(:func:`mast_bench.data.verify.check.verify_listing`) unless ``verify=False``, and wrap the split's
``(file, target)`` pairs in a :class:`FileListDataset`, which decodes through
:func:`mast_bench.data.images.open_image`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from scipy.io.matlab import MatReadError
from torch.utils.data import Dataset

from mast_bench.data.base import DatasetInfo, Metric
from mast_bench.data.images import open_image
from mast_bench.data.register import OpenSplit, register_reader
from mast_bench.data.splits.seeded import OFFICIAL, ValRule
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing, ListingFn, SplitListing
from mast_bench.errors import DatasetError

_SHOW = 5  # offending entries quoted per error
#: ``val_splits`` of a dataset that ships a validation split: every linear protocol selects on it.
OFFICIAL_VAL: Mapping[str, ValRule] = MappingProxyType({"ericsson": OFFICIAL, "augself": OFFICIAL})
#: What reading MATLAB index files can raise: scipy cannot parse one, or a field the format defines is missing or
#: malformed (through torchvision also: an image id without a label).
MAT_ERRORS: tuple[type[Exception], ...] = (MatReadError, ValueError, KeyError, TypeError, OSError)


class FileListDataset(Dataset[Any]):
    """``(image, target)`` pairs from an explicit list of image files.

    Images are decoded by :func:`~mast_bench.data.images.open_image` (RGB; an unreadable file is a
    DatasetError naming it), then passed through ``transform``. Multi-label targets (VOC2007) are stored as
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
        image = open_image(path)
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


def torchvision_root(base: Path, folder: str, name: str, layout: str) -> Path:
    """The root a torchvision reader takes for the dataset folder ``base``: its parent.

    Raises:
        DatasetError: ``base`` is not named ``folder`` (torchvision looks for that name under the root).
    """
    if base.name != folder:
        raise DatasetError(f"dataset {name!r}: the dataset folder must be named {folder!r} (expected layout: {layout})")
    return base.parent


def pairs_listing(split: str, samples: Sequence[tuple[Path, Any]], expected: tuple[int, int | None]) -> SplitListing:
    """One split listed from its ``(file, target)`` pairs, with the official ``(count, count per class)``."""
    count, per_class = expected
    return SplitListing(
        split,
        [t for _, t in samples],
        files=[f for f, _ in samples],
        expected_count=count,
        expected_per_class=per_class,
    )


@contextmanager
def mat_errors(
    name: str, what: str, expected: str, layout: str, also: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Turn :data:`MAT_ERRORS` (and ``also``) raised while reading the MATLAB files ``what`` into a DatasetError.

    The message names the files, the error, and ``expected`` (what the files must hold).
    """
    try:
        yield
    except (*MAT_ERRORS, *also) as exc:
        raise DatasetError(
            f"dataset {name!r}: cannot read {what} ({type(exc).__name__}: {exc}); expected {expected} "
            f"(expected layout: {layout})"
        ) from None


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


def open_listed(name: str, num_classes: int, listing_fn: ListingFn, multilabel: bool = False) -> OpenSplit:
    """``open_split(root, split, transform, verify)`` for a dataset described by ``listing_fn``.

    The split is listed, checked (always :func:`check_labels`; with ``verify`` the full load-time
    verification) and wrapped in a :class:`FileListDataset`.
    """

    def open_split(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> FileListDataset:
        listing = listing_fn(root, [split])
        check_labels(listing, num_classes)
        if verify:
            verify_listing(listing, [split])
        return from_listing(listing, split, transform, multilabel)

    return open_split


def register_listed(
    name: str,
    title: str,
    num_classes: int,
    layout: str,
    listing_fn: ListingFn,
    splits: Sequence[str],
    *,
    metric: Metric = "top1",
    multilabel: bool = False,
    open_split: OpenSplit | None = None,
    **options: Any,
) -> DatasetInfo:
    """:func:`~mast_bench.data.register.register_reader` for a dataset that ``listing_fn`` describes.

    ``open_split`` defaults to :func:`open_listed` over ``listing_fn`` (a reader with its own dataset class
    passes its own); ``options`` are the other keywords of ``register_reader`` (``val_splits``, ...).
    """
    return register_reader(
        name=name,
        title=title,
        num_classes=num_classes,
        metric=metric,
        layout=layout,
        open_split=open_split or open_listed(name, num_classes, listing_fn, multilabel),
        listing=listing_fn,
        splits=splits,
        multilabel=multilabel,
        **options,
    )


def register_pool(name: str, title: str, num_classes: int, layout: str, listing_fn: ListingFn) -> DatasetInfo:
    """Register a few-shot pool (CD-FSL): one split ``all``, reported as such, top-1, opened from its listing."""
    return register_listed(name, title, num_classes, layout, listing_fn, ("all",), report_split="all")
