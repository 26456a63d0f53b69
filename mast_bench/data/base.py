"""The dataset contract shared by the synthetic suite and the real-data loaders.

A dataset is registered in :data:`mast_bench.registry.DATASETS` under a stable name as a
:class:`DatasetInfo`. ``info.build(root, split, transform, verify=True)`` returns a
``torch.utils.data.Dataset`` of ``(image, target)`` pairs read from the official on-disk
files under ``root`` (never downloaded). A missing or malformed folder raises
:class:`mast_bench.errors.DatasetError` whose message names the expected layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

Metric = Literal["top1", "mean_per_class", "voc07_map", "none"]


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset plus the function that loads one split of it.

    Attributes:
        name: registry name (``cifar10``, ``synthetic-shape``, …).
        num_classes: number of classes (0 for unlabeled pools).
        splits: the split names the loader accepts (e.g. ``("train", "val", "test")``).
        metric: the protocol metric reported on this dataset.
        val_source: where the validation split comes from: ``"official"`` (shipped with the
            data), ``"seeded"`` (a committed seeded split of train, see ``downstream/splits``),
            or ``"none"`` (no validation split: protocols that need one must refuse).
        layout: a short human description of the expected on-disk layout, quoted in errors.
        loader: ``loader(root, split, transform, verify) -> Dataset``.
        multilabel: targets are multi-hot vectors (VOC07 classification) instead of ints.
        description: one line for ``mast-bench datasets list``.
    """

    name: str
    num_classes: int
    splits: tuple[str, ...]
    metric: Metric
    val_source: Literal["official", "seeded", "none"]
    layout: str
    loader: Callable[[Path, str, Callable[[Any], Any] | None, bool], Dataset[Any]]
    multilabel: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def build(
        self, root: str | Path, split: str, transform: Callable[[Any], Any] | None = None, verify: bool = True
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
