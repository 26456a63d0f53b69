"""How a dataset module describes a local copy, so that it can be checked.

A real-data module reads its official index files into a :class:`DatasetListing` (what each split
holds, in the loader's sample order, plus the official counts and published checksums) and
registers the function that builds it as ``DatasetInfo.listing`` with the signature
``listing(root: Path, splits: Sequence[str] | None) -> DatasetListing`` (``splits`` = the splits
about to be loaded; ``None`` = all). :mod:`mast_bench.data.verify.check` runs the checks on it.
Datasets without such a function (the synthetic tasks) are listed from what their loader builds
(:func:`listing_from_build`); :func:`listing_for` picks the right way for a registered name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mast_bench.errors import DatasetError

_SHOW = 5  # missing paths quoted in an error


@dataclass(frozen=True)
class OfficialChecksum:
    """A checksum the dataset's authors (or torchvision, quoting them) publish for one file.

    Attributes:
        path: file path relative to the data root.
        digest: expected hex digest.
        algorithm: a :mod:`hashlib` name (``"md5"`` for the torchvision tables).
        source: where the value comes from, quoted in reports.
        splits: the splits that read this file (load-time verification hashes only these); empty = all.
    """

    path: str
    digest: str
    algorithm: str = "md5"
    source: str = ""
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class SplitListing:
    """What one split of a local copy holds, in the loader's sample order.

    Attributes:
        name: split name (``train``, ``test``, ...).
        targets: one label per item: an int, or for multi-label data a tuple of the positive class
            indices or a multi-hot vector (C,).
        files: one image file per item (file-backed datasets), else None.
        arrays: an indexable of per-item uint8 arrays (array-backed datasets such as CIFAR), else None.
        expected_count: the official number of items, or None when not published.
        expected_per_class: the official number of items of every class, or None when not uniform.
        scanned: ``files`` came from a directory scan, so they exist by construction (skip the stat).
        labeled: False for unlabeled pools (STL-10 ``unlabeled``): no class checks.
    """

    name: str
    targets: Sequence[Any]
    files: Sequence[Path] | None = None
    arrays: Any = None
    expected_count: int | None = None
    expected_per_class: int | None = None
    scanned: bool = False
    labeled: bool = True

    def __len__(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class DatasetListing:
    """A local copy described split by split, with the official numbers to compare against.

    Attributes:
        dataset: registry name.
        root: the data root.
        layout: the expected on-disk layout (quoted in every error).
        classes: class names in label order.
        expected_num_classes: the official number of classes, or None (generic folders).
        splits: the listed splits.
        checksums: published checksums of files under ``root``.
        problems: layout problems found while listing (extra class folders, ...): each is a failure.
        source: where the official numbers come from.
    """

    dataset: str
    root: Path
    layout: str
    classes: Sequence[str]
    expected_num_classes: int | None
    splits: Sequence[SplitListing]
    checksums: Sequence[OfficialChecksum] = ()
    problems: Sequence[str] = ()
    source: str = ""


ListingFn = Callable[[Path, "Sequence[str] | None"], DatasetListing]


def require_paths(root: Path, relative: Iterable[str], *, dataset: str, layout: str) -> None:
    """Raise DatasetError naming the missing files or folders (up to 5) and the expected layout."""
    missing = [rel for rel in relative if not (root / rel).exists()]
    if missing:
        shown = ", ".join(missing[:_SHOW]) + (", ..." if len(missing) > _SHOW else "")
        raise DatasetError(f"dataset {dataset!r}: {shown} not found under {str(root)!r} (expected layout: {layout})")


def require_listed_files(files: Sequence[Path], index: str, *, root: Path, dataset: str, layout: str) -> None:
    """Raise DatasetError if files that an official index file lists are missing (always, verify or not)."""
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        shown = ", ".join(os.path.relpath(m, root) for m in missing[:_SHOW]) + (", ..." if len(missing) > _SHOW else "")
        raise DatasetError(
            f"dataset {dataset!r}: {len(missing)} of the {len(files)} images listed in {index} are missing under "
            f"{str(root)!r}: {shown} (expected layout: {layout})"
        )


def with_samples(ds: Any, files: Sequence[Path], targets: Sequence[int], classes: Sequence[str]) -> Any:
    """Point a torchvision file-list dataset (Food101, SUN397) at an explicit sample list.

    Sets the reader's private ``_image_files``/``_labels`` and the public ``samples``, ``targets``,
    ``classes`` and ``class_to_idx`` that every loader of this package exposes.
    """
    if not (hasattr(ds, "_image_files") and hasattr(ds, "_labels")):
        raise TypeError(f"{type(ds).__name__} from this torchvision version has no _image_files/_labels")
    ds._image_files, ds._labels = list(files), list(targets)
    ds.samples, ds.targets = list(zip(ds._image_files, ds._labels)), ds._labels
    ds.classes, ds.class_to_idx = list(classes), {c: i for i, c in enumerate(classes)}
    return ds


# ----------------------------------------------------------------------------------------------
# hashing

_DIGESTS: dict[tuple[str, int, int, str], str] = {}


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5") -> str:
    """Hex digest of a file; remembered for the process while size and mtime stay the same."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, algorithm)
    if key not in _DIGESTS:
        h = hashlib.new(algorithm, usedforsecurity=False)
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def listing_from_build(info: Any, root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """List a dataset that has no listing function from the datasets its loader builds.

    Works for any loader returning a torchvision ``ImageFolder``-like object (``.samples`` of
    ``(path, target)`` and ``.classes``); otherwise only ``.targets`` are listed. No official
    numbers are known, so counts are reported, not compared.
    """
    wanted = [s for s in info.splits if "@" not in s and (splits is None or s in splits)]
    listed: list[SplitListing] = []
    classes: Sequence[str] = ()
    for name in wanted:
        ds = info.build(root, name, None, verify=False)
        samples = getattr(ds, "samples", None)
        if samples is not None:
            files: list[Path] | None = [Path(p) for p, _ in samples]
            targets = [t for _, t in samples]
        else:
            files, targets = None, list(getattr(ds, "targets", []))
        classes = classes or tuple(getattr(ds, "classes", ()))
        listed.append(SplitListing(name, targets, files=files, scanned=True))
    return DatasetListing(info.name, root, info.layout, classes, info.num_classes or None, listed)


def _file_key(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()


def content_keys(split: SplitListing, workers: int = 4, progress: bool = False) -> list[str]:
    """A 128-bit blake2b key of every item's bytes (file content or array row), in split order."""
    import numpy as np
    from tqdm import tqdm

    n = len(split.files) if split.files is not None else len(split.arrays) if split.arrays is not None else 0
    bar = tqdm(total=n, desc=f"hashing {split.name}", unit="img", disable=not progress or not n, leave=False)
    keys: list[str] = []
    if split.files is not None:
        # Blocks bound the pending futures (ImageNet has 1.3M files); file reads and blake2b release the GIL.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, n, 4096):
                block = split.files[start : start + 4096]
                keys.extend(pool.map(_file_key, block))
                bar.update(len(block))
    elif split.arrays is not None:  # small in-memory rows: threads would cost more than they save
        for i in range(n):
            keys.append(hashlib.blake2b(np.ascontiguousarray(split.arrays[i]).tobytes(), digest_size=16).hexdigest())
            if i % 4096 == 4095 or i == n - 1:
                bar.update(i % 4096 + 1)
    bar.close()
    return keys


def listing_for(name: str, root: str | os.PathLike[str], splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy of dataset ``name`` at ``root`` (raises DatasetError on a wrong layout)."""
    from mast_bench.registry import DATASETS

    info = DATASETS.get(name)
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"data root {str(root)!r} for dataset {name!r} does not exist (expected layout: {info.layout})"
        )
    if info.listing is None:
        return listing_from_build(info, root, splits)
    return info.listing(root, splits)
