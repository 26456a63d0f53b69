"""Pure seeded validation splits: the rules the linear-probe protocols draw them with (no files, no registry).

Protocol facts (``docs/protocols.md``, "Validation splits"): pick the weight decay on a validation split,
refit on train+val, test once. Where a dataset ships a validation split it is used (:data:`OFFICIAL`).
Otherwise each protocol draws one from the official train split with a fixed seed:

* ``augself`` (Lee et al. 2021): ``torch.utils.data.random_split(train, [n_train, n_val],
  generator=torch.Generator().manual_seed(seed))`` with per-dataset sizes and seeds
  (CIFAR-10 45000/5000 seed 43, CIFAR-100 45000/5000 seed 44, Food-101 68175/7575 seed 42,
  STL-10 4500/500 seed 50, MIT-67 4690/670 seed 51, Pets 2940/740 seed 49);
* ``ericsson`` (Ericsson et al. 2021): ``np.random.seed(0); np.random.shuffle(indices)`` over
  ``range(n)``, the first ``floor(0.2 n)`` shuffled indices are validation.

A dataset declares what each protocol uses in ``DatasetInfo.val_splits``: protocol → :data:`ValRule`,
i.e. a :class:`SeededSplit`, :data:`OFFICIAL`, :data:`GENERATED` (drawn from the user's copy on first use,
for folders whose size only the copy knows), or a function of the data root returning one of those.
Committed split files live in :mod:`mast_bench.data.splits.files`; resolving a protocol's split on a
copy is :mod:`mast_bench.data.splits.resolve`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

PROTOCOLS: tuple[str, ...] = ("ericsson", "augself")
OFFICIAL = "official"
GENERATED = "generated"
_SOURCE_AUGSELF = "AugSelf (Lee et al. 2021, transfer_linear_eval.py), docs/protocols.md"
_SOURCE_ERICSSON = "Ericsson et al. 2021 (ssl-transfer linear.py), docs/protocols.md"


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


#: What a dataset declares per protocol: a seeded split, "official", "generated", or a function of the data root.
ValRule = SeededSplit | str | Callable[[Path], str]
ValSplits = Mapping[str, ValRule]


def augself_split(n_train: int, n_val: int, seed: int) -> SeededSplit:
    """The AugSelf split: ``random_split(train, [n_train, n_val], torch.Generator().manual_seed(seed))``."""
    return SeededSplit("random_split", n_train + n_val, n_val, seed, _SOURCE_AUGSELF)


def ericsson_split(n_total: int, seed: int = 0, fraction: float = 0.2) -> SeededSplit:
    """The Ericsson split: a seeded random ``fraction`` of train (``floor(fraction·n_total)`` items)."""
    return SeededSplit("ericsson", n_total, math.floor(fraction * n_total), seed, _SOURCE_ERICSSON)


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


def protocol_split_names(val_splits: ValSplits) -> tuple[str, ...]:
    """The ``train@P``/``val@P`` split names a dataset with seeded splits accepts."""
    return tuple(
        f"{part}@{p}" for p, spec in val_splits.items() if isinstance(spec, SeededSplit) for part in ("train", "val")
    )
