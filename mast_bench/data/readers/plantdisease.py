"""Plant Disease (PlantVillage, 38 classes) in the train/test class-folder layout AugSelf evaluates on.

The images are PlantVillage's (Mohanty et al. 2016). AugSelf (Lee et al. 2021,
``datasets.py: load_fewshot_datasets``) reads a copy split into ``train/<class>/`` and ``test/<class>/``
with torchvision's ``ImageFolder`` and pools both for few-shot episodes. Classes are numbered in sorted
order of ``train/``'s folders (``test/`` must have the same folders); no count is checked (copies
differ), the 38 classes are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mast_bench.data.readers.folder import ClassFolder, folder_listing, open_class_split
from mast_bench.data.register import register_reader
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing

NAME = "plantdisease"
NUM_CLASSES = 38  # Mohanty et al. 2016
SPLITS = ("train", "test")
LAYOUT = (
    "<root>/train/<class>/<image> and <root>/test/<class>/<image> with the same 38 PlantVillage class folders "
    "(e.g. Apple___Apple_scab), as AugSelf reads it"
)


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    wanted = [s for s in SPLITS if splits is None or s in splits]
    opened = {s: open_class_split(root, s, None, dataset=NAME, layout=LAYOUT) for s in wanted}
    return folder_listing(NAME, LAYOUT, opened, root, num_classes=NUM_CLASSES)


def _open(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> ClassFolder:
    ds = open_class_split(root, split, transform, dataset=NAME, layout=LAYOUT)
    if verify:
        verify_listing(folder_listing(NAME, LAYOUT, {split: ds}, root, num_classes=NUM_CLASSES), [split])
    return ds


register_reader(
    name=NAME,
    title="Plant Disease / PlantVillage (train/test class folders; pooled for few-shot episodes)",
    num_classes=NUM_CLASSES,
    metric="top1",
    layout=LAYOUT,
    open_split=_open,
    listing=listing,
    splits=SPLITS,
)
