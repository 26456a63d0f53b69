"""The dataset description shared by the synthetic suite and the real-data readers.

A dataset is registered in :data:`mast_bench.registry.DATASETS` under a stable name as a
:class:`DatasetInfo` (always through :func:`mast_bench.data.register.register_reader`).
``info.build(root, split, transform, verify=True)`` returns a ``torch.utils.data.Dataset`` of
``(image, target)`` pairs read from the official on-disk files under ``root`` (never downloaded).
A missing or malformed folder raises :class:`mast_bench.errors.DatasetError` whose message names
the expected layout; an unreadable image raises it when the item is read
(:func:`mast_bench.data.images.open_image`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from mast_bench.data.splits.seeded import ValRule
from mast_bench.data.verify.listing import ListingFn

Metric = Literal["top1", "mean_per_class", "voc07_map", "none"]
ValSource = Literal["official", "seeded", "none"]
Transform = Callable[[Any], Any]
#: ``loader(root, split, transform, verify) -> Dataset``: opens one split of a copy.
Loader = Callable[[Path, str, "Transform | None", bool], Dataset[Any]]


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset plus the function that loads one split of it.

    Attributes:
        name: registry name (``cifar10``, ``synthetic-shape``, …).
        num_classes: number of classes (0 for unlabeled pools and generic folders).
        splits: the split names the loader accepts (e.g. ``("train", "val", "test")``).
        metric: the protocol metric reported on this dataset.
        val_source: where the validation split comes from: ``"official"`` (shipped with the
            data), ``"seeded"`` (a committed seeded split of train, see ``val_splits``),
            or ``"none"`` (no validation split: protocols that need one must refuse).
        layout: a short human description of the expected on-disk layout, quoted in errors.
        loader: ``loader(root, split, transform, verify) -> Dataset``.
        multilabel: targets are multi-hot vectors (VOC07 classification) instead of ints.
        description: one line for ``mast-bench datasets list``.
        listing: ``listing(root, splits) -> DatasetListing``: what a copy holds, for checks and
            verification; None = listed from what ``loader`` builds (the synthetic suite).
        val_splits: protocol → :data:`~mast_bench.data.splits.seeded.ValRule` (a seeded split of train,
            ``"official"``, ``"generated"``, or a function of the data root returning one of those).
            Empty: every protocol uses the ``val`` split if there is one.
        report_split: the split results are reported on.
        also_report: metrics reported besides ``metric`` (ImageNet: ``top5``).
    """

    name: str
    num_classes: int
    splits: tuple[str, ...]
    metric: Metric
    val_source: ValSource
    layout: str
    loader: Loader
    multilabel: bool = False
    description: str = ""
    listing: ListingFn | None = None
    val_splits: Mapping[str, ValRule] = field(default_factory=dict)
    report_split: str = "test"
    also_report: tuple[str, ...] = ()

    def build(
        self, root: str | Path, split: str, transform: Transform | None = None, verify: bool = True
    ) -> Dataset[Any]:
        from mast_bench.errors import DatasetError

        if split not in self.splits:
            raise DatasetError(f"dataset {self.name!r} has no split {split!r}; its splits are {list(self.splits)}")
        if root is None:
            raise DatasetError(f"dataset {self.name!r} needs --data-root (expected layout: {self.layout})")
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(
                f"data root {str(root)!r} for dataset {self.name!r} does not exist (expected layout: {self.layout})"
            )
        return self.loader(root, split, transform, verify)
