"""Where a linear protocol trains and selects: the dataset's official val split or a seeded part of train.

The split files themselves belong to the data layer (:mod:`mast_bench.data.splits.seeded`); this module maps a
protocol onto them and cuts cached features accordingly, so the official train split is extracted once and
shared by every protocol's train/val partition of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mast_bench.downstream.features import Features
from mast_bench.downstream.protocols import Protocol
from mast_bench.errors import DatasetError, ProtocolError


@dataclass(frozen=True)
class SplitPlan:
    """Which split (and rows of it) the classifier trains and selects on."""

    train_split: str
    val_split: str
    train_indices: Any = None
    val_indices: Any = None
    describe: dict[str, Any] = field(default_factory=dict)


def plan_splits(protocol: Protocol, info: Any, data_root: str | Path, out_dir: str | Path, verify: bool) -> SplitPlan:
    """Resolve the protocol's train/val split on ``info`` (official val, or a committed / generated seeded one).

    Raises:
        ProtocolError: the dataset has no validation split for this protocol.
    """
    declared = info.extra.get("val_splits")
    if not declared:  # a dataset that only ships an official val split (e.g. the synthetic tasks)
        if "val" not in info.splits:
            raise ProtocolError(f"dataset {info.name!r} has no validation split for protocol {protocol.name!r}")
        return SplitPlan("train", "val", describe={"source": "official", "train_split": "train", "val_split": "val"})
    from mast_bench.data.splits.seeded import GENERATED, resolve_val_split

    rule = declared.get(protocol.val_rule) if hasattr(declared, "get") else None
    if callable(rule):
        rule = rule(Path(data_root))
    train = info.build(data_root, "train", None, verify) if rule == GENERATED else None
    vs = resolve_val_split(info.name, protocol.val_rule, train=train, record_dir=out_dir, root=data_root)
    return SplitPlan(vs.train_split, vs.val_split, vs.train_indices, vs.val_indices, vs.describe())


def rows(feats: Features, indices: Any, split: str) -> Features:
    """The rows ``indices`` of ``feats`` (all of them when None), named ``split``.

    Raises:
        DatasetError: an index beyond the features (the copy does not match the split file).
    """
    if indices is None:
        return feats
    idx = torch.as_tensor(indices, dtype=torch.long)
    if len(idx) and int(idx.max()) >= len(feats):
        raise DatasetError(
            f"the {split} rows of {feats.dataset!r} index up to {int(idx.max())}, but its {feats.split!r} split has "
            f"only {len(feats)} images; this copy does not match the committed validation split"
        )
    return Features(feats.x[idx], feats.y[idx], feats.dataset, split, feats.cached)
