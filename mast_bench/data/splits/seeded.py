"""Validation splits that the linear-probe protocols need and the datasets do not ship.

PROTOCOLS.md §1: pick the weight decay on a validation split, refit on train+val, test once.
Where a dataset ships a validation split it is used (``"official"``). Otherwise each protocol
draws one from the official train split with a fixed seed:

* ``augself`` (Lee et al. 2021): ``torch.utils.data.random_split(train, [n_train, n_val],
  generator=torch.Generator().manual_seed(seed))`` with per-dataset sizes and seeds
  (CIFAR-10 45000/5000 seed 43, CIFAR-100 45000/5000 seed 44, Food-101 68175/7575 seed 42,
  STL-10 4500/500 seed 50, MIT-67 4690/670 seed 51, Pets 2940/740 seed 49);
* ``ericsson`` (Ericsson et al. 2021): ``np.random.seed(0); np.random.shuffle(indices)`` over
  ``range(n)``, the first ``floor(0.2 n)`` shuffled indices are validation.

Datasets declare what each protocol uses in ``DatasetInfo.extra["val_splits"]``, a mapping
protocol → :class:`SeededSplit` | ``OFFICIAL`` | ``GENERATED``. Seeded splits are index lists
into the official train split *in the loader's documented sample order*; they are committed as
``downstream/splits/<dataset>/<protocol>-val.json`` and their sha256 in
``downstream/splits/CHECKSUMS`` (``sha256sum -c`` format). ``GENERATED`` splits (a folder whose
size is only known from the user's copy) are drawn on first use with the Ericsson rule and
written next to the evaluation records, with a fingerprint of the file list they index.

Regenerate the committed files with ``python scripts/make_splits.py`` (``--check`` compares).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Subset

from mast_bench.data.splits.files import (  # noqa: F401  (re-exported: the splits API in one place)
    REPO,
    SPLITS_DIR,
    committed_specs,
    generated_split,
    load_committed_split,
    verify_committed_splits,
    write_committed_splits,
)
from mast_bench.errors import DatasetError, ProtocolError

PROTOCOLS: tuple[str, ...] = ("ericsson", "augself")
OFFICIAL = "official"
GENERATED = "generated"


@dataclass(frozen=True)
class SeededSplit:
    """A seeded validation split of a dataset's official train split (``n_total`` items)."""

    scheme: Literal["random_split", "ericsson"]
    n_total: int
    n_val: int
    seed: int
    source: str

    @property
    def n_train(self) -> int:
        return self.n_total - self.n_val


def augself_split(n_train: int, n_val: int, seed: int) -> SeededSplit:
    """The AugSelf split: ``random_split(train, [n_train, n_val], torch.Generator().manual_seed(seed))``."""
    return SeededSplit("random_split", n_train + n_val, n_val, seed, "AugSelf (Lee et al. 2021), PROTOCOLS.md §1")


def ericsson_split(n_total: int, seed: int = 0, fraction: float = 0.2) -> SeededSplit:
    """The Ericsson split: a seeded random ``fraction`` of train (``floor(fraction·n_total)`` items)."""
    return SeededSplit(
        "ericsson", n_total, math.floor(fraction * n_total), seed, "Ericsson et al. 2021, PROTOCOLS.md §1"
    )


def seeded_val_split(n_train: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of AugSelf's ``random_split`` of ``range(n_train + n_val)``.

    Returns:
        (train_idx (n_train,), val_idx (n_val,)), int64, each sorted ascending.
    """
    import torch

    if n_train < 0 or n_val <= 0:
        raise ValueError(f"split sizes must be n_train >= 0 and n_val > 0, got {n_train} and {n_val}")
    perm = torch.randperm(n_train + n_val, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def ericsson_val_split(n_total: int, seed: int = 0, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Indices of Ericsson et al.'s validation split of ``range(n_total)`` (legacy NumPy shuffle).

    Returns:
        (train_idx, val_idx), int64, each sorted ascending; ``len(val_idx) == floor(fraction·n_total)``.
    """
    n_val = math.floor(fraction * n_total)
    if n_val <= 0:
        raise ValueError(f"a {fraction:g} validation fraction of {n_total} items is empty")
    return _shuffle_split(n_total, n_val, seed)


def _shuffle_split(n_total: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    indices = list(range(n_total))
    np.random.RandomState(seed).shuffle(indices)  # == np.random.seed(seed); np.random.shuffle(indices)
    return np.sort(np.asarray(indices[n_val:], dtype=np.int64)), np.sort(np.asarray(indices[:n_val], dtype=np.int64))


def draw(spec: SeededSplit) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) for a declared split."""
    if spec.scheme == "random_split":
        return seeded_val_split(spec.n_train, spec.n_val, spec.seed)
    return _shuffle_split(spec.n_total, spec.n_val, spec.seed)


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


def _declared(dataset: str, protocol: str) -> Any:
    from mast_bench.registry import DATASETS

    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    declared: Mapping[str, Any] = DATASETS.get(dataset).extra.get("val_splits", {})
    if protocol not in declared:
        have = ", ".join(sorted(declared)) or "none"
        raise ProtocolError(
            f"dataset {dataset!r} has no validation split for protocol {protocol!r} (protocols with one: {have}); "
            "selection on the test split is not allowed"
        )
    return declared[protocol]


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
    declared = _declared(dataset, protocol)
    if callable(declared):
        if root is None:
            raise ProtocolError(f"the validation split of {dataset!r} depends on the copy: pass its data root")
        declared = declared(Path(root))
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


def protocol_split_names(val_splits: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``train@P``/``val@P`` split names a dataset with seeded splits accepts."""
    return tuple(
        f"{part}@{p}" for p, spec in val_splits.items() if isinstance(spec, SeededSplit) for part in ("train", "val")
    )


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
