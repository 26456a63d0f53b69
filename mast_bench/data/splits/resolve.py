"""Where a protocol takes its train and validation data from on one copy of a dataset.

Resolution of a dataset's declared :data:`~mast_bench.data.splits.seeded.ValRule` for a protocol:
``official`` → the shipped val split; a :class:`~mast_bench.data.splits.seeded.SeededSplit` → the
committed split file (checked against its sha256 and the copy's size); ``generated`` → drawn from
the copy on first use and kept next to the records (:func:`mast_bench.data.splits.files.generated_split`).
Also builds the ``train@P`` / ``val@P`` splits that readers accept.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Subset

from mast_bench.data.splits.files import REPO, generated_split, load_committed_split
from mast_bench.data.splits.seeded import GENERATED, OFFICIAL, PROTOCOLS, SeededSplit, ValRule
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS


@dataclass(frozen=True)
class ValSplit:
    """Where a protocol's training and validation data come from, for one dataset.

    ``train_indices``/``val_indices`` index the *built* ``train_split``/``val_split`` datasets;
    None means the whole split. Train+val (the refit set) is always the union of the two parts.
    """

    dataset: str
    protocol: str
    source: Literal["official", "committed", "generated"]
    train_split: str
    val_split: str
    train_indices: np.ndarray | None = None
    val_indices: np.ndarray | None = None
    seed: int | None = None
    file: str | None = None
    sha256: str | None = None

    def describe(self) -> dict[str, Any]:
        """What a result record stores about the validation split (no index lists)."""
        return {
            "protocol": self.protocol,
            "source": self.source,
            "train_split": self.train_split,
            "val_split": self.val_split,
            "seed": self.seed,
            "file": self.file,
            "sha256": self.sha256,
            "n_train": None if self.train_indices is None else len(self.train_indices),
            "n_val": None if self.val_indices is None else len(self.val_indices),
        }


def declared_rule(dataset: str, protocol: str, root: str | os.PathLike[str] | None = None) -> ValRule:
    """The rule ``dataset`` declares for ``protocol``; a rule that depends on the copy is evaluated on ``root``.

    Raises:
        ProtocolError: unknown protocol, no split declared for it, or a copy-dependent rule without ``root``.
    """
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    declared = DATASETS.get(dataset).val_splits
    if protocol not in declared:
        have = ", ".join(sorted(declared)) or "none"
        raise ProtocolError(
            f"dataset {dataset!r} has no validation split for protocol {protocol!r} (protocols with one: {have}); "
            "selection on the test split is not allowed"
        )
    rule = declared[protocol]
    if callable(rule):
        if root is None:
            raise ProtocolError(f"the validation split of {dataset!r} depends on the copy: pass its data root")
        rule = rule(Path(root))
    return rule


def resolve_val_split(
    dataset: str,
    protocol: str,
    *,
    train: Any = None,
    record_dir: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    splits_dir: Path | None = None,
) -> ValSplit:
    """Where ``protocol`` takes its train and validation data from on ``dataset``.

    Args:
        dataset: registry name.
        protocol: ``"ericsson"`` or ``"augself"``.
        train: the built official ``train`` split; when given, its length is checked against a committed
            split (a copy of another size cannot use it). Required for ``GENERATED`` splits.
        record_dir: where a ``GENERATED`` split is written on first use (the evaluation's output folder).
        root: the data root; needed by datasets whose choice depends on the copy (``imagefolder``: val/ or not).
        splits_dir: committed split folder (default ``downstream/splits``).

    Raises:
        ProtocolError: the dataset has no validation split for the protocol, or a committed file is
            missing or modified.
        DatasetError: the copy's train split does not have the size the committed split was drawn for.
    """
    declared = declared_rule(dataset, protocol, root)
    if declared == OFFICIAL:
        return ValSplit(dataset, protocol, "official", "train", "val")
    if declared == GENERATED:
        if train is None or record_dir is None:
            raise ProtocolError(
                f"dataset {dataset!r} has no official validation split; protocol {protocol!r} draws one from your "
                "copy on first use, which needs the built train split and a record folder to keep it in"
            )
        train_idx, val_idx, path, digest = generated_split(dataset, protocol, train, record_dir)
        return ValSplit(dataset, protocol, "generated", "train", "train", train_idx, val_idx, 0, str(path), digest)
    if not isinstance(declared, SeededSplit):
        raise ProtocolError(f"dataset {dataset!r} declares an unknown validation split {declared!r}")
    if train is not None and len(train) != declared.n_total:
        raise DatasetError(
            f"the {protocol} validation split of {dataset!r} indexes the official {declared.n_total}-image train "
            f"split, but this copy's train split has {len(train)} images; a partial copy cannot use it"
        )
    train_idx, val_idx, path, digest = load_committed_split(dataset, protocol, declared, splits_dir)
    shown = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
    return ValSplit(dataset, protocol, "committed", "train", "train", train_idx, val_idx, declared.seed, shown, digest)


def build_protocol_split(dataset: str, split: str, build_official: Callable[[str], Any]) -> Any:
    """Build ``train@P`` / ``val@P``: the seeded part of the official train split (a :class:`LabeledSubset`)."""
    part, _, protocol = split.partition("@")
    full = build_official("train")
    vs = resolve_val_split(dataset, protocol, train=full)
    idx = vs.train_indices if part == "train" else vs.val_indices
    return LabeledSubset(full, idx.tolist())  # type: ignore[union-attr]


class LabeledSubset(Subset):  # type: ignore[type-arg]
    """``torch.utils.data.Subset`` that also exposes the parent's ``targets`` (subset) and ``classes``."""

    @property
    def targets(self) -> list[Any]:
        parent = getattr(self.dataset, "targets", None)
        if parent is None:
            parent = self.dataset.labels
        return [parent[i] for i in self.indices]

    @property
    def classes(self) -> list[str]:
        return list(getattr(self.dataset, "classes", []))
