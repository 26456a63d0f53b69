"""Stanford Cars (196 classes) from the devkit ``.mat`` annotations, read by torchvision's ``StanfordCars``.

Train: ``devkit/cars_train_annos.mat`` over ``cars_train/`` (8144 images); test:
``cars_test_annos_withlabels.mat`` over ``cars_test/`` (8041 images) (Krause et al. 2013, "3D
Object Representations for Fine-Grained Categorization"). Class names: ``devkit/cars_meta.mat``.
No official validation split: the Ericsson protocol draws 20 % of train with seed 0
(:mod:`mast_bench.data.splits.seeded`). Metric: top-1 (PROTOCOLS.md §1).
Sample order: the order of the ``annotations`` struct array in each ``.mat`` file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scipy.io.matlab import MatReadError
from torchvision.datasets import StanfordCars

from mast_bench.data.readers.official_files import locate, register_official
from mast_bench.data.splits.seeded import ericsson_split
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_paths
from mast_bench.errors import DatasetError

NAME = "cars"
FOLDER = "stanford_cars"
SPLITS = ("train", "test")
#: Official split sizes (Krause et al. 2013).
COUNTS = {"train": 8144, "test": 8041}
NUM_CLASSES = 196
_FILES = {
    "train": ("devkit/cars_train_annos.mat", "cars_train"),
    "test": ("cars_test_annos_withlabels.mat", "cars_test"),
}
LAYOUT = (
    f"<root>/{FOLDER}/{{devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_train/<nnnnn>.jpg, "
    "cars_test_annos_withlabels.mat, cars_test/<nnnnn>.jpg}: the devkit and image archives plus the labelled "
    f"test annotations, as torchvision.datasets.StanfordCars reads them (<root> may also be the {FOLDER} folder)"
)


def _read(base: Path, split: str) -> StanfordCars:
    if base.name != FOLDER:
        raise DatasetError(f"dataset {NAME!r}: the dataset folder must be named {FOLDER!r} (expected layout: {LAYOUT})")
    try:
        return StanfordCars(base.parent, split=split, download=False)
    # scipy cannot read the file, or a field the devkit defines is missing
    except (MatReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DatasetError(
            f"dataset {NAME!r}: cannot read {_FILES[split][0]} or devkit/cars_meta.mat ({type(exc).__name__}: {exc}); "
            f"expected the devkit's 'annotations' struct array (fields fname, class, bbox_*) and 'class_names' "
            f"(expected layout: {LAYOUT})"
        ) from None


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: the annotated images of ``splits`` (default both)."""
    base = locate(root, FOLDER, ("devkit/cars_meta.mat",), NAME, LAYOUT)
    wanted = [s for s in SPLITS if splits is None or s in splits]
    require_paths(base, [p for s in wanted for p in _FILES[s]], dataset=NAME, layout=LAYOUT)
    listed, classes = [], []
    for split in wanted:
        tv = _read(base, split)
        classes = tv.classes
        files = [Path(p) for p, _ in tv._samples]
        listed.append(SplitListing(split, [int(t) for _, t in tv._samples], files=files, expected_count=COUNTS[split]))
    if not wanted:
        classes = _read(base, "train").classes
    return DatasetListing(NAME, base, LAYOUT, classes, NUM_CLASSES, listed, source="Krause et al. 2013 (devkit)")


register_official(
    name=NAME,
    title="Stanford Cars (devkit train / labelled test annotations; seeded validation split)",
    num_classes=NUM_CLASSES,
    metric="top1",
    layout=LAYOUT,
    listing_fn=listing,
    official_splits=SPLITS,
    # PROTOCOLS.md §1: no official val, so Ericsson et al. take a seeded random 20 % of train (seed 0).
    val_splits={"ericsson": ericsson_split(COUNTS["train"])},
)
