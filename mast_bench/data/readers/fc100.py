"""FC100: CIFAR-100 split by superclass into 60 / 20 / 20 few-shot classes, read from the CIFAR files.

Oreshkin et al. 2018 ("TADAM: Task dependent adaptive metric for improved few-shot learning") split the
20 CIFAR-100 superclasses 12 / 4 / 4 so that train, val and test classes share no superclass; each
class keeps all 600 of its images (500 from CIFAR-100's ``train`` file, 100 from ``test``). The
superclass lists below are those of the FC100 split files in torchmeta
(``torchmeta/datasets/assets/cifar100/fc100/{train,test}.json``, the val superclasses being the
remaining four); the fine classes of each superclass are CIFAR-100's own (Krizhevsky 2009, the
dataset page's table). AugSelf evaluates few-shot transfer on the ``test`` split.

Read from the extracted ``cifar-100-python`` folder through the ``cifar100`` reader (its checksum
verification and safe unpickling apply). Sample order: CIFAR's ``train`` file then its ``test`` file,
in file order, keeping the split's classes. Labels index :data:`CLASSES`, all 100 fine classes ordered
train, val, test (each split's sorted by name), so a label means the same class in every split.
Item identifiers: ``train/<index>`` / ``test/<index>`` in the CIFAR file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from mast_bench.data.register import register_reader
from mast_bench.data.verify.check import verify_listing
from mast_bench.data.verify.listing import DatasetListing, SplitListing
from mast_bench.errors import DatasetError
from mast_bench.registry import DATASETS

NAME = "fc100"
#: CIFAR-100's superclasses and their five fine classes (Krizhevsky 2009).
SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
#: FC100's superclass split (Oreshkin et al. 2018, as in torchmeta's FC100 split files).
SPLIT_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "train": (
        "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
        "household_furniture", "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "reptiles", "trees",
        "vehicles_1", "vehicles_2",
    ),
    "val": ("large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates", "small_mammals"),
    "test": ("aquatic_mammals", "insects", "medium_mammals", "people"),
}  # fmt: skip
SPLITS = ("train", "val", "test")
#: Images per class: all of CIFAR-100's (500 train + 100 test).
PER_CLASS = 600
LAYOUT = (
    "<root>/cifar-100-python/{train, test, meta}: the extracted cifar-100-python.tar.gz (the python pickle "
    "batches; FC100 is derived from them by superclass)"
)


def split_classes(split: str) -> list[str]:
    """The fine classes of an FC100 split, sorted by name."""
    return sorted(c for s in SPLIT_SUPERCLASSES[split] for c in SUPERCLASSES[s])


#: Label order: the train classes, then val's, then test's (each sorted by name).
CLASSES: tuple[str, ...] = tuple(c for s in SPLITS for c in split_classes(s))


class FC100Split(Dataset[tuple[Any, int]]):
    """One FC100 split: CIFAR-100 images of the split's classes from both CIFAR files.

    Attributes:
        data: ``(N, 32, 32, 3)`` uint8 images; targets: labels into ``classes``; ids: ``<file>/<index>``.
    """

    def __init__(self, split: str, data: np.ndarray, targets: list[int], ids: list[str], transform: Any) -> None:
        self.split, self.data, self.targets, self.ids = split, data, targets, ids
        self.classes = list(CLASSES)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])
        return (self.transform(image) if self.transform is not None else image), self.targets[index]


def _select(root: Path, split: str, verify: bool, built: dict[str, Any] | None = None) -> FC100Split:
    """The FC100 ``split`` drawn from both CIFAR-100 files; ``built`` keeps the CIFAR parts read so far
    (one listing of all three splits reads each file once)."""
    built = {} if built is None else built
    if split not in SPLITS:
        raise DatasetError(f"dataset {NAME!r} has no split {split!r}; its splits are {list(SPLITS)}")
    names = split_classes(split)
    label = {c: CLASSES.index(c) for c in names}
    cifar = DATASETS.get("cifar100")
    data, targets, ids = [], [], []
    for part in ("train", "test"):
        if part not in built:
            built[part] = cifar.build(root, part, None, verify)
        ds: Any = built[part]
        fine = list(ds.classes)
        missing = sorted(set(names) - set(fine))
        if missing:
            raise DatasetError(
                f"dataset {NAME!r}: the CIFAR-100 meta file has no fine classes {missing[:5]}: not the official "
                f"CIFAR-100 class list (expected layout: {LAYOUT})"
            )
        keep = [i for i, t in enumerate(ds.targets) if fine[t] in label]
        data.append(ds.data[keep])
        targets += [label[fine[ds.targets[i]]] for i in keep]
        ids += [f"{part}/{i}" for i in keep]
    return FC100Split(split, np.concatenate(data), targets, ids, None)


def _class_problems(split: str, targets: Sequence[int]) -> list[str]:
    """The split's classes that do not hold all :data:`PER_CLASS` images (as a check failure, or none).

    The generic per-class count cannot be used: labels index all 100 classes, 80 of which a split never holds.
    """
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=len(CLASSES))
    off = [f"{c}={counts[CLASSES.index(c)]}" for c in split_classes(split) if counts[CLASSES.index(c)] != PER_CLASS]
    if not off:
        return []
    shown = ", ".join(off[:5]) + (", ..." if len(off) > 5 else "")
    return [f"{split}: {len(off)} classes do not have {PER_CLASS} images (500 + 100 in the CIFAR files), e.g. {shown}"]


def _split_listing(split: str, ds: FC100Split) -> SplitListing:
    return SplitListing(split, ds.targets, arrays=ds.data, expected_count=len(split_classes(split)) * PER_CLASS)


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the FC100 splits of the CIFAR-100 copy under ``root``."""
    listed, problems, built = [], [], {}
    for s in SPLITS:
        if splits is None or s in splits:
            ds = _select(root, s, verify=False, built=built)
            listed.append(_split_listing(s, ds))
            problems += _class_problems(s, ds.targets)
    return DatasetListing(NAME, root, LAYOUT, list(CLASSES), len(CLASSES), listed, problems=problems,
                          source="Oreshkin et al. 2018")  # fmt: skip


def _open(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> FC100Split:
    ds = _select(root, split, verify)
    if verify:
        listed = DatasetListing(NAME, root, LAYOUT, ds.classes, len(CLASSES), [_split_listing(split, ds)],
                                problems=_class_problems(split, ds.targets))  # fmt: skip
        verify_listing(listed, [split])
    ds.transform = transform
    return ds


register_reader(
    name=NAME,
    title="FC100 (CIFAR-100 split 60/20/20 by superclass; few-shot episodes on 'test')",
    num_classes=len(CLASSES),
    metric="top1",
    layout=LAYOUT,
    open_split=_open,
    listing=listing,
    splits=SPLITS,
)
