"""Tiny in-memory datasets and backbones for the downstream-evaluation tests.

``register_fake(name, ...)`` adds a :class:`DatasetInfo` whose loader draws small coloured images
(class = colour) deterministically per (split, index); a random-init ``resnet_tiny`` separates them
well enough for a probe to beat chance by a wide margin.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fixtures.threads import one_thread  # noqa: F401  (re-exported for the downstream tests)
from PIL import Image
from torch.utils.data import Dataset

from mast_bench.convert import LoadedBackbone
from mast_bench.data.base import DatasetInfo
from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.registry import DATASETS

COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220], [200, 200, 40]], dtype=np.float64)


class Blobs(Dataset):  # type: ignore[type-arg]
    """``n`` 16x16 images; class ``i % k`` has its own colour plus pixel noise; multi-label: two colour halves."""

    def __init__(self, split: str, n: int, k: int, transform: Any, multilabel: bool = False) -> None:
        rng = np.random.default_rng(zlib.crc32(split.encode()))
        self.labels = [i % k for i in range(n)]
        self.transform, self.multilabel, self.k = transform, multilabel, k
        self.images = []
        self.targets: list[Any] = []
        for i, c in enumerate(self.labels):
            img = np.empty((16, 16, 3))
            if multilabel:
                other = (c + 1 + i % (k - 1)) % k if i % 3 else c
                img[:, :8] = COLOURS[c]
                img[:, 8:] = COLOURS[other]
                target = torch.zeros(k)
                target[[c, other]] = 1.0
            else:
                img[:] = COLOURS[c]
                target = c
            img = np.clip(img + rng.normal(0, 60, img.shape), 0, 255).astype(np.uint8)
            self.images.append(Image.fromarray(img))
            self.targets.append(target)
        self.samples = [(f"/fake/{split}/img_{i:04d}.png", self.labels[i]) for i in range(n)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        img = self.images[i]
        return (self.transform(img) if self.transform else img), self.targets[i]


def register_fake(
    name: str,
    sizes: dict[str, int] | None = None,
    k: int = 3,
    val_source: str = "official",
    metric: str = "top1",
    multilabel: bool = False,
) -> DatasetInfo:
    """Register (once) a fake dataset; its loader counts builds in ``info.loader.builds``."""
    if name in DATASETS:
        return DATASETS.get(name)
    sizes = sizes or {"train": 60, "val": 30, "test": 30}
    builds: list[str] = []

    def loader(root: Path, split: str, transform: Any, verify: bool) -> Dataset:  # type: ignore[type-arg]
        builds.append(split)
        return Blobs(split, sizes[split], k, transform, multilabel)

    loader.builds = builds  # type: ignore[attr-defined]

    info = DatasetInfo(
        name=name, num_classes=k, splits=tuple(sizes), metric=metric, val_source=val_source,  # type: ignore[arg-type]
        layout="<root>/ (in memory)", loader=loader, multilabel=multilabel,
    )
    DATASETS.add(name, info)
    return info


def tiny_backbone(sha: str = "ab" * 32, seed: int = 0) -> LoadedBackbone:
    """A random-init small-stem resnet_tiny wrapped as a LoadedBackbone with a (fake) file sha256."""
    torch.manual_seed(seed)
    spec = BackboneSpec("resnet_tiny", stem="small", widths=(8, 16, 32, 64), mean=(0.5,) * 3, std=(0.25,) * 3)
    module, _ = build_backbone(spec)
    loaded = LoadedBackbone.from_module(module.eval(), spec, "tiny")
    return dataclasses.replace(loaded, source_sha256=sha, source_format="test")


@contextmanager
def count_forwards(model: torch.nn.Module) -> Iterator[list[int]]:
    """Count calls of ``model.forward`` (images passed through the backbone) inside the block."""
    calls = [0]

    def hook(*_: Any) -> None:
        calls[0] += 1

    handle = model.register_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def tree(path: Path) -> list[str]:
    """Every file under ``path`` (relative, sorted), including hidden temporaries."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def evaluate_args(task: str, dataset: str, protocol: str, tmp_path: Path) -> list[str]:
    """``mast-bench evaluate TASK`` arguments: weights ``tmp_path/w.pt``, records to ``tmp_path/rec``, features
    cached in ``tmp_path/c``, on the CPU without progress bars (the caller adds ``--data-root``)."""
    return [
        "evaluate", task, "--weights", str(tmp_path / "w.pt"), "--dataset", dataset, "--protocol", protocol,
        "--out", str(tmp_path / "rec"), "--cache-dir", str(tmp_path / "c"), "--no-progress", "--device", "cpu",
    ]  # fmt: skip
