"""EuroSAT (RGB): 27 000 Sentinel-2 patches of 64 × 64 px in 10 land-use classes, one folder per class.

Helber et al. 2019, "EuroSAT: A Novel Dataset and Deep Learning Benchmark for Land Use and Land Cover
Classification"; one of the four CD-FSL datasets (Guo et al. 2020), read by its benchmark
(``datasets/EuroSAT_few_shot.py``) as an ``ImageFolder`` over the extracted RGB archive, whose
folder is ``2750/`` in the original ``EuroSAT.zip`` and ``EuroSAT_RGB/`` in later releases. No
official split: the one split ``all`` holds every image (few-shot episodes are drawn from it).
Classes in sorted folder order; images in sorted path order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.class_tree import class_tree_split, find_base
from mast_bench.data.readers.official_files import register_pool
from mast_bench.data.verify.listing import DatasetListing

NAME = "eurosat"
TITLE = "EuroSAT RGB (CD-FSL; one pooled split 'all' for few-shot episodes)"
#: The ten classes (folder names) and their image counts in the RGB release (Helber et al. 2019, Table 1).
COUNTS = {
    "AnnualCrop": 3000, "Forest": 3000, "HerbaceousVegetation": 3000, "Highway": 2500, "Industrial": 2500,
    "Pasture": 2000, "PermanentCrop": 2500, "Residential": 3000, "River": 2500, "SeaLake": 3000,
}  # fmt: skip
CLASSES = tuple(sorted(COUNTS))
_FOLDERS = ("2750", "EuroSAT_RGB", "EuroSAT/2750", "")
LAYOUT = (
    "<root>/2750/<class>/<class>_<n>.jpg (the extracted EuroSAT.zip; EuroSAT_RGB/ of the newer archive also "
    f"works, or <root> may be that folder itself) with the classes {', '.join(CLASSES)}"
)


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: one split ``all`` with every image."""
    base = find_base(root, _FOLDERS, CLASSES, dataset=NAME, layout=LAYOUT)
    classes, split = class_tree_split(
        base, "all", dataset=NAME, layout=LAYOUT, classes=CLASSES, expected_count=sum(COUNTS.values())
    )
    return DatasetListing(NAME, base, LAYOUT, classes, len(CLASSES), [split], source="Helber et al. 2019")


register_pool(NAME, TITLE, len(CLASSES), LAYOUT, listing)
