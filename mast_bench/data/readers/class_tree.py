"""Listing a folder of class folders (one sub-folder of images per class) as one split.

The CD-FSL copies of EuroSAT and CropDiseases are read by their benchmark with torchvision's
``ImageFolder`` over one such folder: classes numbered in sorted order of the folder names, images in
sorted path order under each (recursively). :func:`class_tree_split` lists a folder the same way,
with errors that name the folder and the expected layout; :func:`find_base` picks the folder among
the places the official archives extract to.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.folder import class_folders
from mast_bench.data.readers.imagefolder import IMAGE_EXTENSIONS, is_image_file
from mast_bench.data.verify.listing import SplitListing
from mast_bench.errors import DatasetError


def find_base(root: Path, candidates: Sequence[str], markers: Sequence[str], *, dataset: str, layout: str) -> Path:
    """The first of ``root/<candidate>`` (``""`` = ``root``) that contains any of ``markers``.

    Raises:
        DatasetError: none does; the message lists the places looked at.
    """
    for c in candidates:
        base = root / c if c else root
        if any((base / m).exists() for m in markers):
            return base
    looked = ", ".join(repr(str(root / c if c else root)) for c in candidates)
    what = f"{markers[0]!r} not" if len(markers) == 1 else f"none of {', '.join(markers[:3])}, ... was"
    raise DatasetError(f"dataset {dataset!r}: {what} found in any of {looked} (expected layout: {layout})")


def class_tree_split(
    folder: Path,
    split: str,
    *,
    dataset: str,
    layout: str,
    classes: Sequence[str] | None = None,
    expected_count: int | None = None,
) -> tuple[list[str], SplitListing]:
    """``(class names, split listing)`` of a folder holding one image folder per class.

    Args:
        folder: the folder of class folders.
        split: the split name the listing gets.
        classes: the class list to label with (None: the sorted folder names); a folder outside it is an error.
        expected_count: the official number of images, where published.

    Raises:
        DatasetError: no class folders, images directly in ``folder``, an unknown class folder, or a
            class folder without images.
    """  # fmt: skip
    found = class_folders(folder, dataset=dataset, layout=layout)
    names = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DatasetError(
            f"dataset {dataset!r}: class folders {unknown[:5]} in {str(folder)!r} are not classes of this dataset "
            f"(expected layout: {layout})"
        )
    files: list[Path] = []
    targets: list[int] = []
    for label, name in enumerate(names):
        if name not in found:
            continue
        images = sorted(p for p in (folder / name).rglob("*") if p.is_file() and is_image_file(p.name))
        if not images:
            raise DatasetError(
                f"dataset {dataset!r}: class folder {str(folder / name)!r} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)}) (expected layout: {layout})"
            )
        files += images
        targets += [label] * len(images)
    return names, SplitListing(split, targets, files=files, scanned=True, expected_count=expected_count)
