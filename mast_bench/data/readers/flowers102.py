"""Oxford Flowers-102 (102 classes), read by torchvision's ``Flowers102``.

Splits: ``setid.mat`` ``trnid`` / ``valid`` / ``tstid`` (1020 / 1020 / 6149 images), labels from
``imagelabels.mat`` (Nilsback & Zisserman 2008, "Automated Flower Classification over a Large
Number of Classes"). Both protocols select on the official val split. Metric: mean per-class
accuracy (PROTOCOLS.md §1). Sample order: the order of the ids in ``setid.mat``.
The two ``.mat`` files have published md5 sums (torchvision's table); ``verify`` compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scipy.io.matlab import MatReadError
from torchvision.datasets import Flowers102

from mast_bench.data.readers.official_files import locate, register_official
from mast_bench.data.splits.seeded import OFFICIAL
from mast_bench.data.verify.listing import DatasetListing, OfficialChecksum, SplitListing
from mast_bench.errors import DatasetError

NAME = "flowers102"
FOLDER = "flowers-102"
SPLITS = ("train", "val", "test")
#: Official split sizes (Nilsback & Zisserman 2008): 10 train and 10 val images per class.
COUNTS = {"train": 1020, "val": 1020, "test": 6149}
PER_CLASS = {"train": 10, "val": 10, "test": None}
NUM_CLASSES = 102
LAYOUT = (
    f"<root>/{FOLDER}/{{jpg/image_<nnnnn>.jpg, imagelabels.mat, setid.mat}}: the extracted 102flowers.tgz "
    f"plus the two .mat files, as torchvision.datasets.Flowers102 reads them (<root> may also be the {FOLDER} folder)"
)


class _Flowers102(Flowers102):
    """torchvision's reader minus its md5 gate (``verify`` compares the same md5 sums through the listing)."""

    def _check_integrity(self) -> bool:
        return self._images_folder.is_dir()


def checksums() -> list[OfficialChecksum]:
    """The published md5 sums of the index files, as torchvision records them."""
    src = "torchvision.datasets.Flowers102"
    return [
        OfficialChecksum(fname, md5, "md5", src)
        for key, (fname, md5) in Flowers102._file_dict.items()
        if key in ("label", "setid")
    ]


def _read(base: Path, split: str) -> Flowers102:
    if base.name != FOLDER:
        raise DatasetError(f"dataset {NAME!r}: the dataset folder must be named {FOLDER!r} (expected layout: {LAYOUT})")
    try:
        return _Flowers102(base.parent, split=split, download=False)
    # an unreadable .mat file, a missing field, or an image id without a label
    except (MatReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DatasetError(
            f"dataset {NAME!r}: cannot read setid.mat / imagelabels.mat ({type(exc).__name__}: {exc}); expected "
            f"'trnid', 'valid', 'tstid' and 'labels' (expected layout: {LAYOUT})"
        ) from None


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: the images of ``splits`` (default all three)."""
    base = locate(root, FOLDER, ("jpg", "setid.mat", "imagelabels.mat"), NAME, LAYOUT)
    listed = []
    for split in [s for s in SPLITS if splits is None or s in splits]:
        tv = _read(base, split)
        listed.append(
            SplitListing(
                split,
                list(tv._labels),
                files=[Path(p) for p in tv._image_files],
                expected_count=COUNTS[split],
                expected_per_class=PER_CLASS[split],
            )
        )
    labels = {t for s in listed for t in s.targets}
    # The class list is the published one; a copy whose labels go past it has extra classes.
    classes = list(Flowers102.classes) + [f"extra class {k + 1}" for k in sorted(labels) if k >= NUM_CLASSES]
    return DatasetListing(
        NAME,
        base,
        LAYOUT,
        classes,
        NUM_CLASSES,
        listed,
        checksums(),
        source="Nilsback & Zisserman 2008; md5 values as recorded by torchvision",
    )


register_official(
    name=NAME,
    title="Oxford Flowers-102 (setid.mat trnid / valid / tstid)",
    num_classes=NUM_CLASSES,
    metric="mean_per_class",
    layout=LAYOUT,
    listing_fn=listing,
    official_splits=SPLITS,
    val_splits={"ericsson": OFFICIAL, "augself": OFFICIAL},
)
