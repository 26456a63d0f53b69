"""The pretraining DataLoader: two augmented views per image, deterministic per (seed, epoch, index).

Determinism does not depend on the number of workers, on the number of ranks or on where a run
was resumed:

* :class:`EpochBatchSampler` draws one permutation per epoch from ``seed + epoch``, cuts it into
  global batches of ``run.batch_size`` (dropping the remainder, as the covariance term is
  normalised by the batch size) and gives rank r the r-th slice of every global batch, so the
  union over ranks of step s is the same batch a single process would see. It can start an epoch
  at any step (resume) without loading the skipped batches.
* :class:`TwoViewDataset` augments item ``i`` of epoch ``e`` with the global torch RNG forked and
  seeded from ``(seed, e, i)``, so the views are the same whichever worker draws them, and the
  training process's own RNG is left untouched.

The loader yields ``((x1, x2), (p1, p2))`` with ``x: (B, 3, size, size)``, ``p: (B, PARAM_DIM)``,
where ``B = run.batch_size / world_size``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mast_bench.augment import build_multiview
from mast_bench.config import ConfigError, Recipe
from mast_bench.pretrain.distributed import DistEnv
from mast_bench.registry import DATASETS


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 64-bit seed for one item's augmentation (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0])


class TwoViewDataset(Dataset):
    """Wraps a dataset whose transform is a :class:`~mast_bench.augment.MultiViewAugment`.

    Keys are ``(epoch, index)`` pairs; items are ``(views, params)`` (the target is dropped).
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, Any]:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, epoch, index))
            sample, _target = self.base[index]
        views, params = sample
        return views, params


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Per-epoch shuffled global batches, sliced per rank; yields lists of ``(epoch, index)`` keys.

    Args:
        n: dataset length.
        global_batch: images per optimiser step over all ranks.
        seed: run seed (the permutation of epoch e comes from ``seed + e``).
        env: rank layout; ``global_batch`` must divide by ``env.world_size``.
        max_steps: cap on steps per epoch (0 = no cap).
    """

    def __init__(self, n: int, global_batch: int, seed: int, env: DistEnv, max_steps: int = 0) -> None:
        if global_batch % env.world_size:
            raise ConfigError(f"run.batch_size ({global_batch}) must divide by the number of processes "
                              f"({env.world_size})")
        self.n, self.global_batch, self.seed, self.env = n, global_batch, seed, env
        self.local_batch = global_batch // env.world_size
        full = n // global_batch
        self.steps_per_epoch = min(full, max_steps) if max_steps > 0 else full
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch's permutation and the step to start from (``> 0`` when resuming mid-epoch)."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} outside [0, {self.steps_per_epoch}]")
        self.epoch, self.start_step = epoch, start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        for s in range(self.start_step, self.steps_per_epoch):
            lo = s * self.global_batch + self.env.rank * self.local_batch
            yield [(self.epoch, i) for i in perm[lo: lo + self.local_batch]]

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step


@dataclass
class PretrainData:
    """What the engine needs from the data side."""

    loader: DataLoader
    sampler: EpochBatchSampler
    num_images: int
    root: Path | None


def build_pretrain_data(recipe: Recipe, data_root: str | Path | None, env: DistEnv, pin_memory: bool = False
                        ) -> PretrainData:
    """Build the recipe's pretraining loader: ``DATASETS.get(name).build(root, split, transform=MultiViewAugment)``.

    Args:
        recipe: the recipe (``data`` and ``augment`` sections, ``run.batch_size``, ``run.seed``).
        data_root: ``--data-root``; falls back to ``recipe.data.root``.
        env: rank layout.
    Raises:
        UnknownNameError: unknown dataset name (lists the valid ones).
        DatasetError: missing root or a folder laid out differently from what the dataset expects.
        ConfigError: invalid augmentation settings, or fewer images than one batch.
    """
    info = DATASETS.get(recipe.data.dataset)
    augment = build_multiview(recipe.augment)
    root = data_root if data_root is not None else recipe.data.root
    base = info.build(root, recipe.data.split, transform=augment)
    n = len(base)
    if recipe.run.batch_size < 2:
        raise ConfigError(f"run.batch_size must be at least 2 (batch statistics), got {recipe.run.batch_size}")
    if n < recipe.run.batch_size:
        raise ConfigError(
            f"run.batch_size ({recipe.run.batch_size}) is larger than dataset {recipe.data.dataset!r} "
            f"split {recipe.data.split!r} ({n} images); lower run.batch_size"
        )
    sampler = EpochBatchSampler(n, recipe.run.batch_size, recipe.run.seed, env, recipe.run.max_steps_per_epoch)
    workers = recipe.data.workers
    if workers < 0:
        raise ConfigError(f"data.workers must be non-negative, got {workers}")
    loader = DataLoader(
        TwoViewDataset(base, recipe.run.seed),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )
    return PretrainData(loader=loader, sampler=sampler, num_images=n, root=Path(root) if root is not None else None)
