"""FGVC-Aircraft 2013b at the variant level (100 classes), read by torchvision's ``FGVCAircraft``.

Splits are the official ``data/images_variant_{train,val,test}.txt`` lists (Maji et al. 2013,
"Fine-Grained Visual Classification of Aircraft"): 3334 / 3333 / 3333 images. Every protocol
selects on the official val split. Metric: mean per-class accuracy (docs/protocols.md, datasets and metrics).
Sample order: the order of the lines of each list file. Images keep the 20-pixel copyright
banner at the bottom, as torchvision reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torchvision.datasets import FGVCAircraft

from mast_bench.data.readers.official_files import OFFICIAL_VAL, locate, register_listed, torchvision_root
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_paths
from mast_bench.errors import DatasetError

NAME = "aircraft"
TITLE = "FGVC-Aircraft 2013b, variant level (official train/val/test lists)"
FOLDER = "fgvc-aircraft-2013b"
SPLITS = ("train", "val", "test")
#: Official split sizes (Maji et al. 2013; the images_variant_*.txt files of fgvc-aircraft-2013b).
COUNTS = {"train": 3334, "val": 3333, "test": 3333}
NUM_CLASSES = 100
LAYOUT = (
    f"<root>/{FOLDER}/data/{{variants.txt, images_variant_train.txt, images_variant_val.txt, "
    "images_variant_test.txt, images/<id>.jpg}: the extracted fgvc-aircraft-2013b.tar.gz, list lines "
    f"'<id> <variant name>' (<root> may also be the {FOLDER} folder itself)"
)


def _read(base: Path, split: str) -> FGVCAircraft:
    """Parse one split with torchvision (which takes the folder's parent as its root)."""
    root = torchvision_root(base, FOLDER, NAME, LAYOUT)
    try:
        return FGVCAircraft(root, split=split, annotation_level="variant", download=False)
    except KeyError as exc:  # a variant that variants.txt does not list
        raise DatasetError(
            f"dataset {NAME!r}: data/images_variant_{split}.txt names variant {exc.args[0]!r}, which is not in "
            f"data/variants.txt (expected layout: {LAYOUT})"
        ) from None
    except ValueError:  # a line without '<id> <variant>'
        raise DatasetError(
            f"dataset {NAME!r}: data/images_variant_{split}.txt has a line that is not '<id> <variant name>' "
            f"(expected layout: {LAYOUT})"
        ) from None


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: the variant lists of ``splits`` (default all)."""
    base = locate(root, FOLDER, ("data/variants.txt", "data/images"), NAME, LAYOUT)
    wanted = [s for s in SPLITS if splits is None or s in splits]
    require_paths(base, [f"data/images_variant_{s}.txt" for s in wanted], dataset=NAME, layout=LAYOUT)
    listed, classes = [], []
    for split in wanted:
        tv = _read(base, split)
        classes = tv.classes
        listed.append(
            SplitListing(
                split, list(tv._labels), files=[Path(p) for p in tv._image_files], expected_count=COUNTS[split]
            )
        )
    if not wanted:
        classes = _read(base, "train").classes
    return DatasetListing(
        NAME, base, LAYOUT, classes, NUM_CLASSES, listed, source="Maji et al. 2013 (fgvc-aircraft-2013b)"
    )


register_listed(NAME, TITLE, NUM_CLASSES, LAYOUT, listing, SPLITS, metric="mean_per_class", val_splits=OFFICIAL_VAL)
