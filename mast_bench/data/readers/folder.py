"""Any classification dataset stored as class folders (registry name ``imagefolder``).

Also provides :class:`ClassFolder`, torchvision's ``ImageFolder`` with the class list fixed to
the training split's, which the ImageNet and MIT-67 loaders use: torchvision numbers the classes
of each split from that split's own folders, so a split missing one class would silently shift
every later label.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from mast_bench.data.images import open_image
from mast_bench.data.readers.official_files import register_listed
from mast_bench.data.splits.seeded import GENERATED, OFFICIAL
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing, SplitListing
from mast_bench.errors import DatasetError

NAME = "imagefolder"
TITLE = "any train/[val/]test class-folder dataset (val/ or a seeded 20 % of train/)"
LAYOUT = (
    "<root>/train/<class>/<image>, <root>/test/<class>/<image>, optionally <root>/val/<class>/<image>: the same "
    "class folder names in every split (read by torchvision.datasets.ImageFolder; classes numbered in sorted "
    "order of train/'s folders; without val/ the protocols draw a seeded 20 % of train/ on first use)"
)


class ClassFolder(ImageFolder):
    """``torchvision.datasets.ImageFolder`` with a fixed class list (``classes[i]`` has label ``i``).

    Images are decoded by :func:`~mast_bench.data.images.open_image` (an unreadable file names itself).

    Args:
        root: the split folder holding ``<class>/`` sub-folders.
        classes: the class names in label order; None = sorted folder names (torchvision's rule).
        transform: applied to each PIL image.
        is_valid_file: keep only files for which this returns True (e.g. an official file list).
        allow_empty: accept classes without any image in this split.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        classes: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        self._fixed = list(classes) if classes is not None else None
        super().__init__(
            str(root), transform=transform, loader=open_image, is_valid_file=is_valid_file, allow_empty=allow_empty
        )

    def find_classes(self, directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
        if self._fixed is None:
            return super().find_classes(directory)
        return self._fixed, {c: i for i, c in enumerate(self._fixed)}


def class_folders(split_dir: Path, *, dataset: str, layout: str) -> list[str]:
    """Sorted class-folder names of one split; DatasetError for a missing, flat or empty split folder."""
    if not split_dir.is_dir():
        raise DatasetError(f"dataset {dataset!r}: folder {str(split_dir)!r} not found (expected layout: {layout})")
    entries = sorted(e for e in os.listdir(split_dir) if not e.startswith("."))
    folders = [e for e in entries if (split_dir / e).is_dir()]
    loose = [e for e in entries if e.lower().endswith(IMG_EXTENSIONS) and (split_dir / e).is_file()]
    if loose:
        raise DatasetError(
            f"dataset {dataset!r}: {str(split_dir)!r} holds images directly ({loose[0]}, ...) instead of one folder "
            f"per class (expected layout: {layout})"
        )
    if not folders:
        raise DatasetError(f"dataset {dataset!r}: {str(split_dir)!r} has no class folders (expected layout: {layout})")
    return folders


def same_classes(found: Sequence[str], expected: Sequence[str], where: Path, *, dataset: str, layout: str) -> None:
    """DatasetError naming extra and missing class folders of a split relative to the training classes."""
    extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if extra or missing:
        raise DatasetError(
            f"dataset {dataset!r}: class folders of {str(where)!r} differ from train/: extra {extra[:5]}, "
            f"missing {missing[:5]} (expected layout: {layout})"
        )


def open_class_split(
    root: Path, split: str, transform: Callable[[Any], Any] | None, *, dataset: str, layout: str
) -> ClassFolder:
    """One split of a class-folder dataset, labelled with train/'s classes (errors name the layout)."""
    classes = class_folders(root / "train", dataset=dataset, layout=layout)
    if split != "train":
        same_classes(
            class_folders(root / split, dataset=dataset, layout=layout),
            classes,
            root / split,
            dataset=dataset,
            layout=layout,
        )
    try:
        return ClassFolder(root / split, classes, transform)
    except FileNotFoundError as exc:  # a class folder without a single image file
        raise DatasetError(f"dataset {dataset!r}: {exc} (expected layout: {layout})") from None


def folder_listing(
    name: str,
    layout: str,
    opened: dict[str, ImageFolder],
    root: Path,
    expected: dict[str, tuple[int | None, int | None]] | None = None,
    num_classes: int | None = None,
) -> DatasetListing:
    """A listing from opened class-folder splits; ``expected`` maps split → (count, per class)."""
    expected = expected or {}
    splits = [
        SplitListing(
            s,
            ds.targets,
            files=[Path(p) for p, _ in ds.samples],
            scanned=True,
            expected_count=expected.get(s, (None, None))[0],
            expected_per_class=expected.get(s, (None, None))[1],
        )
        for s, ds in opened.items()
    ]
    classes = next(iter(opened.values())).classes if opened else []
    return DatasetListing(name, root, layout, classes, num_classes, splits)


def _present(root: Path) -> list[str]:
    return [s for s in ("train", "val", "test") if (root / s).is_dir()]


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    present = _present(root)
    wanted = [s for s in present if splits is None or s in splits]
    # train/ labels every split; test/ is required too (the layout above), except when only other splits are read.
    for required in ("train", "test"):
        if required not in present and (required == "train" or splits is None or required in splits):
            raise DatasetError(f"dataset {NAME!r}: {str(root / required)!r} not found (expected layout: {LAYOUT})")
    return folder_listing(
        NAME, LAYOUT, {s: open_class_split(root, s, None, dataset=NAME, layout=LAYOUT) for s in wanted}, root
    )


def _loader(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> ClassFolder:
    if split == "val" and not (root / "val").is_dir():
        raise DatasetError(
            f"dataset {NAME!r}: {str(root)!r} has no val/ folder; the linear-probe protocols then draw a seeded "
            f"validation split from train/ (expected layout: {LAYOUT})"
        )
    ds = open_class_split(root, split, transform, dataset=NAME, layout=LAYOUT)
    if verify:  # no official numbers: the check is that the split is well formed (done above) and non-repeating
        verify_listing(folder_listing(NAME, LAYOUT, {split: ds}, root), [split])
    return ds


def _val_source(root: Path) -> str:
    """A val/ folder is the validation split; otherwise one is drawn from train/ on first use."""
    return OFFICIAL if (root / "val").is_dir() else GENERATED


_VAL = {"ericsson": _val_source, "augself": _val_source}
register_listed(NAME, TITLE, 0, LAYOUT, listing, ("train", "val", "test"), open_split=_loader, val_splits=_VAL)
