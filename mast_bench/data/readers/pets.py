"""Oxford-IIIT Pets (37 breeds), read by torchvision's ``OxfordIIITPet``.

``train`` is the official ``annotations/trainval.txt`` (3680 images), ``test`` is
``annotations/test.txt`` (3669) (Parkhi et al. 2012, "Cats and Dogs"). There is no official
validation split; the protocols draw one from ``train`` (docs/protocols.md, validation splits): AugSelf
``random_split`` 2940 / 740 with seed 49, Ericsson 20 % with seed 0. Metric: mean per-class
accuracy. Sample order: the order of the lines of each list file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torchvision.datasets import OxfordIIITPet

from mast_bench.data.readers.official_files import listing_text, locate, register_listed, torchvision_root
from mast_bench.data.splits.seeded import augself_split, ericsson_split
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_paths
from mast_bench.errors import DatasetError

NAME = "pets"
TITLE = "Oxford-IIIT Pets (trainval / test lists; seeded validation splits per protocol)"
FOLDER = "oxford-iiit-pet"
SPLITS = ("train", "test")
_LISTS = {"train": "trainval", "test": "test"}
#: Official split sizes (Parkhi et al. 2012).
COUNTS = {"train": 3680, "test": 3669}
NUM_CLASSES = 37
LAYOUT = (
    f"<root>/{FOLDER}/{{images/<Breed>_<n>.jpg, annotations/trainval.txt, annotations/test.txt}}: the extracted "
    "images.tar.gz and annotations.tar.gz, list lines '<image> <class id 1-37> <species> <breed id>' "
    f"(<root> may also be the {FOLDER} folder itself)"
)


def _read(base: Path, split: str) -> OxfordIIITPet:
    root = torchvision_root(base, FOLDER, NAME, LAYOUT)
    try:
        return OxfordIIITPet(root, split=_LISTS[split], target_types="category", download=False)
    except ValueError:  # a line that is not four fields, or a class id that is not a number
        raise DatasetError(
            f"dataset {NAME!r}: annotations/{_LISTS[split]}.txt has a line that is not "
            f"'<image> <class id> <species> <breed id>' (expected layout: {LAYOUT})"
        ) from None


def _class_names(read: dict[str, OxfordIIITPet]) -> list[str]:
    """Breed names by class id, from the image names of every listed split (as torchvision titles them)."""
    breeds: dict[int, set[str]] = {}
    for tv in read.values():
        for image, label in zip(tv._images, tv._labels):
            breeds.setdefault(label, set()).add(Path(image).stem.rsplit("_", 1)[0])
    clash = [f"{k + 1}: {sorted(v)}" for k, v in sorted(breeds.items()) if len(v) > 1]
    if clash:
        raise DatasetError(f"dataset {NAME!r}: class ids shared by several breeds: {listing_text(clash)}")
    gaps = [k + 1 for k in range(max(breeds, default=-1) + 1) if k not in breeds]
    if gaps or min(breeds, default=0) < 0:
        raise DatasetError(
            f"dataset {NAME!r}: class ids must run 1..K without gaps; missing {listing_text(gaps)} "
            f"(expected layout: {LAYOUT})"
        )
    return [" ".join(part.title() for part in next(iter(breeds[k])).split("_")) for k in sorted(breeds)]


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``. Class names come from both list files, so read both."""
    base = locate(root, FOLDER, ("images", "annotations"), NAME, LAYOUT)
    require_paths(base, [f"annotations/{_LISTS[s]}.txt" for s in SPLITS], dataset=NAME, layout=LAYOUT)
    read = {s: _read(base, s) for s in SPLITS}
    listed = [
        SplitListing(s, list(tv._labels), files=[Path(p) for p in tv._images], expected_count=COUNTS[s])
        for s, tv in read.items()
        if splits is None or s in splits
    ]
    return DatasetListing(NAME, base, LAYOUT, _class_names(read), NUM_CLASSES, listed, source="Parkhi et al. 2012")


# docs/protocols.md (validation splits): AugSelf random_split 2940/740 seed 49; Ericsson 20 % of train, seed 0.
_VAL = {"augself": augself_split(2940, 740, 49), "ericsson": ericsson_split(COUNTS["train"])}
register_listed(NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, metric="mean_per_class", val_splits=_VAL)
