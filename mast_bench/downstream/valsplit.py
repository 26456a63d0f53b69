"""Where a linear protocol trains and selects, and what a copy provides (classes, an official val split).

The split files themselves belong to the data layer (:mod:`mast_bench.data.splits`); this module
maps a protocol onto them and cuts cached features accordingly, so the official train split is extracted
once and shared by every protocol's train/val partition of it.

A committed seeded split indexes the complete official train split. A copy whose train split has another
size (a partial copy) cannot use it: with verification on that is an error; with ``--no-verify`` a split
is drawn from the copy itself by the protocol's own rule (Ericsson et al.: a seeded 20 %; AugSelf:
``random_split`` with the committed split's seed and validation ratio), a warning says so, and the record
names the split it used (``source: drawn-from-copy``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mast_bench.downstream.features import Features
from mast_bench.downstream.protocols import Protocol
from mast_bench.errors import DatasetError, ProtocolError

#: ``SplitPlan.describe["source"]`` of a split drawn from a partial, unverified copy.
DRAWN_FROM_COPY = "drawn-from-copy"


@dataclass(frozen=True)
class SplitPlan:
    """Which split (and rows of it) the classifier trains and selects on."""

    train_split: str
    val_split: str
    train_indices: Any = None
    val_indices: Any = None
    describe: dict[str, Any] = field(default_factory=dict)


def _declared(info: Any, rule: str, data_root: str | Path | None) -> Any:
    declared = info.val_splits or {}
    choice = declared.get(rule) if hasattr(declared, "get") else None
    return choice(Path(data_root)) if callable(choice) and data_root is not None else choice


def has_official_val(info: Any, data_root: str | Path | None) -> bool:
    """Whether this copy has a validation split of its own (``val``), e.g. ImageFolder with a ``val/`` folder."""
    from mast_bench.data.splits.seeded import OFFICIAL

    if "val" not in info.splits or info.val_source == "none":
        return False
    declared = info.val_splits
    if not declared:
        return info.val_source == "official"
    return any(_declared(info, rule, data_root) == OFFICIAL for rule in declared)


def copy_num_classes(info: Any, data_root: str | Path, verify: bool) -> int:
    """The number of classes: the registry's, or for generic folders (``num_classes == 0``) the copy's train/."""
    if info.num_classes > 0:
        return int(info.num_classes)
    classes = getattr(info.build(data_root, "train", None, verify), "classes", None)
    if not classes:
        raise ProtocolError(f"dataset {info.name!r} has no classes to evaluate (its train split names none)")
    return len(classes)


def _drawn(protocol: Protocol, spec: Any, n: int, info: Any, say: Callable[[str], None]) -> SplitPlan:
    """The protocol's rule applied to a copy of ``n`` train images (see the module docstring)."""
    from mast_bench.data.splits.seeded import ericsson_val_split, seeded_val_split

    if spec.scheme == "ericsson":
        train_idx, val_idx = ericsson_val_split(n, spec.seed)
        rule = f"a seeded {spec.n_val / spec.n_total:.0%} (seed {spec.seed})"
    else:
        n_val = max(1, round(n * spec.n_val / spec.n_total))
        if n_val >= n:
            raise DatasetError(f"the train split of {info.name!r} has {n} images: too few to hold out a validation set")
        train_idx, val_idx = seeded_val_split(n - n_val, n_val, spec.seed)
        rule = f"random_split {n - n_val}/{n_val} (seed {spec.seed})"
    say(
        f"warning: the {protocol.val_rule} validation split of {info.name!r} indexes the official {spec.n_total}-image "
        f"train split, but this unverified copy has {n}; drawing {rule} from the copy instead"
    )
    describe = {
        "protocol": protocol.val_rule, "source": DRAWN_FROM_COPY, "train_split": "train", "val_split": "train",
        "scheme": spec.scheme, "seed": spec.seed, "file": None, "sha256": None,
        "n_train": len(train_idx), "n_val": len(val_idx), "official_n_total": spec.n_total,
    }
    return SplitPlan("train", "train", train_idx, val_idx, describe)


def plan_splits(
    protocol: Protocol,
    info: Any,
    data_root: str | Path,
    out_dir: str | Path,
    verify: bool,
    n_train: Callable[[], int],
    say: Callable[[str], None] = lambda line: None,
) -> SplitPlan:
    """Resolve the protocol's train/val split on ``info`` (official val, committed, generated or drawn).

    Args:
        protocol, info: the protocol and the dataset's registry entry.
        data_root: the copy; out_dir: the records folder (a generated split is kept there).
        verify: whether the copy was verified (a partial unverified copy gets a split drawn from it).
        n_train: the number of images in the copy's official train split (called only when needed).
        say: where the partial-copy warning goes.

    Raises:
        ProtocolError: the dataset has no validation split for this protocol.
        DatasetError: a verified copy whose train split does not match the committed split.
    """
    from mast_bench.data.splits import GENERATED, SeededSplit, resolve_val_split

    declared = info.val_splits
    if not declared:  # a dataset that only ships an official val split (e.g. the synthetic tasks)
        if "val" not in info.splits:
            raise ProtocolError(f"dataset {info.name!r} has no validation split for protocol {protocol.name!r}")
        return SplitPlan("train", "val", describe={"source": "official", "train_split": "train", "val_split": "val"})
    rule = _declared(info, protocol.val_rule, data_root)
    if isinstance(rule, SeededSplit):
        n = n_train()
        if n != rule.n_total:
            if not verify:
                return _drawn(protocol, rule, n, info, say)
            raise DatasetError(
                f"the {protocol.val_rule} validation split of {info.name!r} indexes the official {rule.n_total}-image "
                f"train split, but this copy has {n} images; evaluate a complete copy, or pass --no-verify to draw "
                "the split from this copy instead"
            )
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
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if len(idx) and int(idx.max()) >= len(feats):
        raise DatasetError(
            f"the {split} rows of {feats.dataset!r} index up to {int(idx.max())}, but its {feats.split!r} split has "
            f"only {len(feats)} images; this copy does not match the committed validation split"
        )
    return Features(feats.x[idx], feats.y[idx], feats.dataset, split, feats.cached)
