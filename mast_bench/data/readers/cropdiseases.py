"""CropDiseases: PlantVillage leaf photographs in 38 crop-disease classes, as CD-FSL reads them.

Mohanty et al. 2016 ("Using deep learning for image-based plant disease detection") collected the
images; CD-FSL (Guo et al. 2020, ``datasets/CropDisease_few_shot.py``) reads the ``train`` folder of
the Kaggle "New Plant Diseases Dataset (Augmented)" copy as an ``ImageFolder``
(``<root>/dataset/train/<class>/``), and so does this reader; ``<root>/train/<class>/`` is accepted
too. No count is checked (the copies in circulation differ); the 38 class folders are. One split
``all``: every image of that folder. Classes in sorted folder order; images in sorted path order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.class_tree import class_tree_split, find_base
from mast_bench.data.readers.official_files import register_pool
from mast_bench.data.verify.listing import DatasetListing

NAME = "cropdiseases"
TITLE = "CropDiseases (CD-FSL's PlantVillage copy; one pooled split 'all' for few-shot episodes)"
NUM_CLASSES = 38  # Mohanty et al. 2016: 14 crops, 26 diseases plus healthy leaves
LAYOUT = (
    "<root>/dataset/train/<class>/<image> (CD-FSL's layout of the Kaggle 'New Plant Diseases Dataset "
    "(Augmented)'; <root>/train/<class>/ also works): 38 class folders such as Apple___Apple_scab"
)


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: one split ``all`` with every image of the train folder."""
    base = find_base(root, ("dataset", ""), ("train",), dataset=NAME, layout=LAYOUT)
    classes, split = class_tree_split(base / "train", "all", dataset=NAME, layout=LAYOUT)
    return DatasetListing(NAME, base, LAYOUT, classes, NUM_CLASSES, [split], source="Mohanty et al. 2016; CD-FSL")


register_pool(NAME, TITLE, NUM_CLASSES, LAYOUT, listing)
