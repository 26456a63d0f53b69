"""Oxford Flowers-102 (102 classes), read by torchvision's ``Flowers102``.

Splits: ``setid.mat`` ``trnid`` / ``valid`` / ``tstid`` (1020 / 1020 / 6149 images), labels from
``imagelabels.mat`` (Nilsback & Zisserman 2008, "Automated Flower Classification over a Large
Number of Classes"). Both protocols select on the official val split. Metric: mean per-class
accuracy (docs/protocols.md, datasets and metrics). Sample order: the order of the ids in ``setid.mat``.
The two ``.mat`` files have published md5 sums (torchvision's table); ``verify`` compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torchvision.datasets import Flowers102

from mast_bench.data.readers.official_files import OFFICIAL_VAL, locate, mat_errors, register_listed, torchvision_root
from mast_bench.data.verify.listing import DatasetListing, OfficialChecksum, SplitListing

NAME = "flowers102"
TITLE = "Oxford Flowers-102 (setid.mat trnid / valid / tstid)"
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
    root = torchvision_root(base, FOLDER, NAME, LAYOUT)
    with mat_errors(NAME, "setid.mat / imagelabels.mat", "'trnid', 'valid', 'tstid' and 'labels'", LAYOUT):
        return _Flowers102(root, split=split, download=False)


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


register_listed(NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, metric="mean_per_class", val_splits=OFFICIAL_VAL)
