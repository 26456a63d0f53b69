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

* With ``augment.where: device`` the workers only decode, crop, resize and flip (uint8 views) and
  :class:`DeviceBatches` applies the photometric families batched on the training device from the
  recorded parameters (:mod:`mast_bench.augment_batched`); the draw is the same either way.

The loader yields ``((x1, x2), (p1, p2))`` with ``x: (B, 3, size, size)`` float (normalised, on the
training device), ``p: (B, PARAM_DIM)``, where ``B = run.batch_size / world_size``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mast_bench.augment_batched import BatchedPhotometric, build_augment
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


class DeviceBatches:
    """Iterates a two-view DataLoader and hands the batches over on the training device.

    Copies views and parameters to ``device`` (asynchronously from pinned memory), applies the batched
    photometric ``stage`` when the workers left it out, and converts views to ``channels_last`` when asked.

    Args:
        loader: yields ``((x1, x2), (p1, p2))``; ``x`` uint8 when ``stage`` is given, float otherwise.
        device: the training device.
        stage: :class:`~mast_bench.augment_batched.BatchedPhotometric`, or ``None`` (per-image path).
        channels_last: NHWC views for a channels-last model.
    """

    def __init__(self, loader: DataLoader, device: torch.device, stage: BatchedPhotometric | None = None,
                 channels_last: bool = False) -> None:
        self.loader, self.device, self.stage, self.channels_last = loader, device, stage, channels_last

    def __iter__(self) -> Iterator[tuple[list[torch.Tensor], list[torch.Tensor]]]:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for views, params in self.loader:
            views = [v.to(self.device, non_blocking=True) for v in views]
            if self.stage is not None:  # given the host parameters: it reads its control flow there, sync-free
                views = [self.stage(v, p) for v, p in zip(views, params, strict=True)]
            params = [p.to(self.device, non_blocking=True) for p in params]
            yield [v.contiguous(memory_format=fmt) for v in views], params

    def __len__(self) -> int:
        return len(self.loader)


@dataclass
class PretrainData:
    """What the engine needs from the data side (``loader`` yields batches on the training device)."""

    loader: DeviceBatches
    sampler: EpochBatchSampler
    num_images: int
    root: Path | None


def build_pretrain_data(recipe: Recipe, data_root: str | Path | None, env: DistEnv,
                        device: torch.device | str = "cpu", verify: bool = True) -> PretrainData:
    """Build the recipe's pretraining loader: ``DATASETS.get(name).build(root, split, transform=<two views>)``.

    Args:
        recipe: the recipe (``data`` and ``augment`` sections, ``run.batch_size``, ``run.seed``,
            ``run.channels_last``).
        data_root: ``--data-root``; falls back to ``recipe.data.root``.
        env: rank layout.
        device: the training device (where batches are delivered and the batched photometric stage runs);
            ``data.pin_memory`` takes effect only for CUDA.
        verify: check the copy against the dataset's official description (``--no-verify``: read it as it is).
    Raises:
        UnknownNameError: unknown dataset name (lists the valid ones).
        DatasetError: missing root or a folder laid out differently from what the dataset expects.
        ConfigError: invalid augmentation settings, or fewer images than one batch.
    """
    device = torch.device(device)
    info = DATASETS.get(recipe.data.dataset)
    transform, stage = build_augment(recipe.augment)
    root = data_root if data_root is not None else recipe.data.root
    base = info.build(root, recipe.data.split, transform=transform, verify=verify)
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
        pin_memory=recipe.data.pin_memory and device.type == "cuda",
        persistent_workers=recipe.data.persistent_workers and workers > 0,
    )
    batches = DeviceBatches(loader, device, stage, channels_last=recipe.run.channels_last)
    return PretrainData(loader=batches, sampler=sampler, num_images=n, root=Path(root) if root is not None else None)
