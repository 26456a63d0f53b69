"""Frozen-feature extraction with an on-disk cache shared by the linear, kNN and few-shot evaluators.

A cache entry is keyed by the checkpoint's sha256, the layer, the preprocessing, the dataset (name
and resolved root) and the split; a second evaluation of the same checkpoint therefore runs no
forward pass. Entries are written atomically and carry their key, which is checked on load; an
entry that cannot be read or does not match is ignored (with a warning) and recomputed. Models
held only in memory (``source_sha256 == ""``, e.g. the random-init floor) are never cached: the
hash is what makes a cache entry trustworthy.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mast_bench.downstream.protocols import Preprocessing
from mast_bench.errors import DatasetError
from mast_bench.fileio import atomic_torch_save
from mast_bench.registry import DATASETS

CACHE_FORMAT = "mast-bench-features"
#: Bump when the extraction itself changes (e.g. a different pooling), invalidating old entries.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Features:
    """Features of one split.

    Attributes:
        x: ``(N, D)`` float32 features (CPU).
        y: ``(N,)`` int64 labels, or ``(N, K)`` float32 multi-hot targets.
        dataset, split: where they came from.
        cached: loaded from the cache (no forward pass).
    """

    x: torch.Tensor
    y: torch.Tensor
    dataset: str = ""
    split: str = ""
    cached: bool = False

    def __post_init__(self) -> None:
        if self.x.ndim != 2:
            raise DatasetError(f"features of {self.dataset}/{self.split} must be (N, D), got {tuple(self.x.shape)}")
        if len(self.x) != len(self.y):
            raise DatasetError(
                f"features of {self.dataset}/{self.split} disagree with its labels: "
                f"{len(self.x)} feature rows but {len(self.y)} labels"
            )

    def __len__(self) -> int:
        return len(self.x)


def concat(parts: list[Features], split: str) -> Features:
    """Stack the rows of several splits of one dataset (e.g. train + val for the final refit)."""
    return Features(
        torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]), parts[0].dataset, split,
        all(p.cached for p in parts),
    )


def default_cache_dir() -> Path:
    """``$MAST_BENCH_CACHE/features``, else ``~/.cache/mast-bench/features``."""
    root = os.environ.get("MAST_BENCH_CACHE") or Path.home() / ".cache" / "mast-bench"
    return Path(root) / "features"


def cache_key(
    sha256: str, spec: Any, layer: str, preprocessing: Preprocessing, dataset: str, data_root: str | Path, split: str
) -> dict[str, Any]:
    """Everything the features depend on, as a JSON-safe mapping."""
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    return {
        "format_version": CACHE_VERSION,
        "checkpoint_sha256": sha256,
        "backbone": spec_dict,
        "layer": layer,
        "preprocessing": preprocessing.to_dict(),
        "dataset": dataset,
        "data_root": str(Path(data_root).resolve()),
        "split": split,
    }


def cache_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return Path(cache_dir) / f"{key['dataset']}__{key['split']}__{digest}.pt"


def _load_cached(path: Path, key: dict[str, Any], dataset: str, split: str) -> Features | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != CACHE_FORMAT or blob.get("key") != key:
            raise ValueError("its key does not match this request")
        return Features(blob["x"], blob["y"], dataset, split, cached=True)
    except Exception as exc:  # any unreadable or inconsistent entry is recomputed, never trusted
        warnings.warn(f"ignoring feature cache {str(path)!r} ({exc}); recomputing", stacklevel=3)
        return None


def _pool(model: torch.nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
    if layer == "pool":
        return model(images)
    maps = model.forward_maps(images)
    if layer not in maps:
        raise ValueError(f"unknown layer {layer!r}; valid layers: pool, {', '.join(maps)}")
    return maps[layer].mean(dim=(2, 3))


@torch.inference_mode()
def _forward_all(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, layer: str, desc: str, progress: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for images, targets in tqdm(loader, desc=desc, disable=not progress, leave=False):
        xs.append(_pool(model, images.to(device, non_blocking=True), layer).float().cpu())
        ys.append(torch.as_tensor(targets))
    if not xs:
        raise DatasetError(f"{desc}: the split is empty")
    y = torch.cat(ys)
    return torch.cat(xs), (y.float() if y.ndim == 2 else y.long())


def extract_features(
    backbone: Any,
    dataset: str,
    split: str,
    data_root: str | Path,
    preprocessing: Preprocessing,
    *,
    verify: bool = True,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    cache_dir: str | Path | None = None,
    layer: str = "pool",
    progress: bool = True,
) -> Features:
    """Features of one split, from the cache when possible.

    Args:
        backbone: a ``LoadedBackbone`` (fields ``model``, ``spec``, ``source_sha256``).
        dataset: registry name; split: one of its splits.
        data_root: the dataset folder.
        preprocessing: the protocol's transform.
        verify: let the loader verify the copy (file counts, checksums) before reading it.
        device: where to run the backbone.
        batch_size, workers: data loading.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        layer: ``pool`` (the backbone's pooled output) or a stage of ``forward_maps`` (global-average-pooled).
        progress: show a tqdm bar.

    Returns:
        :class:`Features` with ``x (N, D)`` float32 and the split's targets.
    """
    info = DATASETS.get(dataset)
    sha = getattr(backbone, "source_sha256", "") or ""
    path = None
    if sha:
        key = cache_key(sha, backbone.spec, layer, preprocessing, dataset, data_root, split)
        path = cache_path(cache_dir if cache_dir is not None else default_cache_dir(), key)
        if path.is_file() and (hit := _load_cached(path, key, dataset, split)) is not None:
            return hit
    data = info.build(data_root, split, preprocessing.transform(), verify)
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=torch.device(device).type == "cuda"
    )
    model = backbone.model.to(device).eval()
    x, y = _forward_all(model, loader, torch.device(device), layer, f"features {dataset}/{split}", progress)
    feats = Features(x, y, dataset, split)
    if path is not None:
        atomic_torch_save(path, {"format": CACHE_FORMAT, "key": key, "x": x, "y": y})
    return feats
