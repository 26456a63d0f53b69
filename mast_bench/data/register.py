"""The one way a reader enters :data:`mast_bench.registry.DATASETS`.

Contract of the ``DATASETS`` registry: each entry is a :class:`~mast_bench.data.base.DatasetInfo`
whose ``build(root, split, transform, verify)`` reads one split of a local copy in its official
layout (never downloading), raising :class:`~mast_bench.errors.DatasetError` with the expected
layout for a wrong folder; whose ``listing`` (where given) describes a copy for
``mast-bench datasets check``; and whose ``val_splits`` say where each linear protocol selects.

:func:`register_reader` builds that entry from a reader's ``open_split`` function, derives the
``train@P`` / ``val@P`` splits from the declared seeded splits, checks the declaration, and adds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from mast_bench.data.base import DatasetInfo, Loader, Metric, Transform, ValSource
from mast_bench.data.splits.resolve import build_protocol_split
from mast_bench.data.splits.seeded import SeededSplit, ValRule, protocol_split_names
from mast_bench.data.verify.listing import ListingFn
from mast_bench.registry import DATASETS

#: ``open_split(root, split, transform, verify) -> Dataset``: the same signature as a registry loader.
OpenSplit = Loader


def register_reader(
    *,
    name: str,
    title: str,
    num_classes: int,
    metric: Metric,
    layout: str,
    open_split: OpenSplit,
    splits: Sequence[str],
    listing: ListingFn | None = None,
    val_splits: Mapping[str, ValRule] | None = None,
    val_source: ValSource | None = None,
    multilabel: bool = False,
    report_split: str = "test",
    also_report: tuple[str, ...] = (),
) -> DatasetInfo:
    """Describe a reader and add it to :data:`~mast_bench.registry.DATASETS`.

    Args:
        name: registry name.
        title: one line for ``mast-bench datasets list``.
        open_split: ``open_split(root, split, transform, verify)`` for every split in ``splits``.
        splits: the splits ``open_split`` reads (official ones, plus e.g. ``train+unlabeled``).
        listing: describes a copy (``None``: listed from what ``open_split`` builds).
        val_splits: protocol → rule; every :class:`SeededSplit` adds ``train@P`` and ``val@P`` splits.
        val_source: default: ``official`` with a ``val`` split, else ``seeded`` when rules are declared,
            else ``none``.

    Raises:
        ValueError: a dataset with an official ``val`` split that declares a seeded split (the official
            one is every protocol's), or a name registered twice.
    """
    rules = dict(val_splits or {})
    if "val" in splits and any(isinstance(r, SeededSplit) for r in rules.values()):
        raise ValueError(f"{name}: a dataset with an official val split uses it for every protocol")
    seeded = protocol_split_names(rules)

    def loader(root: Path, split: str, transform: Transform | None, verify: bool) -> Dataset[Any]:
        if split in seeded:
            return build_protocol_split(name, split, lambda s: open_split(root, s, transform, verify))
        return open_split(root, split, transform, verify)

    derived: ValSource = "official" if "val" in splits else ("seeded" if rules else "none")
    info = DatasetInfo(
        name=name,
        num_classes=num_classes,
        splits=(*splits, *seeded),
        metric=metric,
        val_source=val_source or derived,
        layout=layout,
        loader=loader,
        multilabel=multilabel,
        description=title,
        listing=listing,
        val_splits=rules,
        report_split=report_split,
        also_report=also_report,
    )
    DATASETS.add(name, info)
    return info
