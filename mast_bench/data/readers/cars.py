"""Stanford Cars (196 classes) from the devkit ``.mat`` annotations, read by torchvision's ``StanfordCars``.

Train: ``devkit/cars_train_annos.mat`` over ``cars_train/`` (8144 images); test:
``cars_test_annos_withlabels.mat`` over ``cars_test/`` (8041 images) (Krause et al. 2013, "3D
Object Representations for Fine-Grained Categorization"). Class names: ``devkit/cars_meta.mat``.
No official validation split: the Ericsson protocol draws 20 % of train with seed 0
(:mod:`mast_bench.data.splits.seeded`). Metric: top-1 (docs/protocols.md, datasets and metrics).
Sample order: the order of the ``annotations`` struct array in each ``.mat`` file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torchvision.datasets import StanfordCars

from mast_bench.data.readers.official_files import locate, mat_errors, register_listed, torchvision_root
from mast_bench.data.splits.seeded import ericsson_split
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_paths

NAME = "cars"
TITLE = "Stanford Cars (devkit train / labelled test annotations; seeded validation split)"
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

_DEVKIT_FIELDS = "the devkit's 'annotations' struct array (fields fname, class, bbox_*) and 'class_names'"


def _read(base: Path, split: str) -> StanfordCars:
    root = torchvision_root(base, FOLDER, NAME, LAYOUT)
    files = f"{_FILES[split][0]} or devkit/cars_meta.mat"
    with mat_errors(NAME, files, _DEVKIT_FIELDS, LAYOUT):
        return StanfordCars(root, split=split, download=False)


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


# docs/protocols.md (validation splits): no official val, so Ericsson et al. draw a seeded 20 % of train.
register_listed(
    NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, val_splits={"ericsson": ericsson_split(COUNTS["train"])}
)
