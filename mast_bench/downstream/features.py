"""Frozen-feature extraction with an on-disk cache shared by the linear, kNN and few-shot evaluators.

A cache entry is keyed by the checkpoint's sha256, the backbone spec, the layer, the preprocessing,
the dataset name, the split and a fingerprint of the copy's content for that split
(:mod:`mast_bench.downstream.fingerprint`: every file read, with its size and modification time, or a
hash of the loaded arrays). Editing, adding, removing or relabelling an image therefore misses the
cache, while a second evaluation of the same checkpoint on an untouched copy runs no forward pass.
``refresh`` (``--redo``) recomputes and rewrites the entry. Entries are written atomically and carry
their key, which is checked on load; an entry that cannot be read or does not match is ignored (with a
warning) and recomputed. Models held only in memory (``sha256 == ""``, e.g. the random-init floor) are
never cached: the hash is what makes a cache entry trustworthy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mast_bench.checkpoints import read_weights
from mast_bench.downstream.fingerprint import split_fingerprint
from mast_bench.downstream.protocols import Preprocessing
from mast_bench.downstream.weights import as_weights
from mast_bench.errors import DatasetError
from mast_bench.fileio import atomic_torch_save
from mast_bench.registry import DATASETS

CACHE_FORMAT = "mast-bench-features"
#: Bump when the extraction itself changes (e.g. a different pooling), invalidating old entries.
CACHE_VERSION = 2


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
    sha256: str,
    spec: Any,
    layer: str,
    preprocessing: Preprocessing,
    dataset: str,
    fingerprint: dict[str, Any],
    split: str,
) -> dict[str, Any]:
    """Everything the features depend on, as a JSON-safe mapping.

    Args:
        fingerprint: :func:`mast_bench.downstream.fingerprint.split_fingerprint` of the built split.
    """
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    return {
        "format_version": CACHE_VERSION,
        "checkpoint_sha256": sha256,
        "backbone": spec_dict,
        "layer": layer,
        "preprocessing": preprocessing.to_dict(),
        "dataset": dataset,
        "content": dict(fingerprint),
        "split": split,
    }


def cache_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return Path(cache_dir) / f"{key['dataset']}__{key['split']}__{digest}.pt"


def _load_cached(path: Path, key: dict[str, Any], dataset: str, split: str) -> Features | None:
    try:
        blob = read_weights(path)
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


#: ``precision`` of :func:`extract_features`: the protocols' fp32 (default), or bf16 autocast (opt-in, GPU).
FEATURE_PRECISIONS = ("fp32", "bf16")


def _autocast(device: torch.device, precision: str) -> Any:
    # ``precision`` was validated once by extract_features, before any batch
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def _forward_all(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, layer: str, desc: str, progress: bool,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    # NHWC convolutions are the fast path of GPU tensor cores; CPU numerics are left exactly as they were.
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    for images, targets in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with _autocast(device, precision):
            feats = _pool(model, images.to(device, non_blocking=True).contiguous(memory_format=fmt), layer)
        xs.append(feats.float().cpu())
        ys.append(torch.as_tensor(targets))
    if not xs:
        raise DatasetError(f"{desc}: the split is empty")
    y = torch.cat(ys)
    return torch.cat(xs), (y.float() if y.ndim == 2 else y.long())


def extract_features(
    weights: Any,
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
    refresh: bool = False,
    note: Callable[[str], None] | None = None,
    precision: str = "fp32",
) -> Features:
    """Features of one split, from the cache when its content is unchanged.

    Args:
        weights: :class:`~mast_bench.downstream.weights.EvalWeights` (or a ``LoadedBackbone``).
        dataset: registry name; split: one of its splits.
        data_root: the dataset folder.
        preprocessing: the protocol's transform.
        verify: let the loader verify the copy (file counts, checksums) before reading it.
        device: where to run the backbone.
        batch_size, workers: data loading.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        layer: ``pool`` (the backbone's pooled output) or a stage of ``forward_maps`` (global-average-pooled).
        progress: show a tqdm bar.
        refresh: ignore an existing entry: recompute the features and rewrite the entry (``--redo``).
        note: receives one line when the features come from the cache.
        precision: ``fp32`` (the protocols' default) or ``bf16`` (autocast; about twice as fast on tensor-core
            GPUs; probe accuracy within 0.2 points on the test fixture). Part of the cache key when not fp32.

    Returns:
        :class:`Features` with ``x (N, D)`` float32 and the split's targets.
    """
    if precision not in FEATURE_PRECISIONS:
        raise ValueError(f"feature precision must be one of {', '.join(FEATURE_PRECISIONS)}, got {precision!r}")
    w = as_weights(weights)
    info = DATASETS.get(dataset)
    data = info.build(data_root, split, preprocessing.transform(), verify)
    path = None
    if w.sha256:
        key = cache_key(w.sha256, w.spec, layer, preprocessing, dataset, split_fingerprint(data, data_root), split)
        if precision != "fp32":  # fp32 keys stay as they were, so existing entries remain valid
            key["precision"] = precision
        path = cache_path(cache_dir if cache_dir is not None else default_cache_dir(), key)
        if not refresh and path.is_file() and (hit := _load_cached(path, key, dataset, split)) is not None:
            if note is not None:
                note(f"features {dataset}/{split}: {len(hit)} from the cache ({path})")
            return hit
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=torch.device(device).type == "cuda"
    )
    dev = torch.device(device)
    model = w.model.to(dev, memory_format=torch.channels_last if dev.type == "cuda" else torch.preserve_format).eval()
    x, y = _forward_all(model, loader, dev, layer, f"features {dataset}/{split}", progress, precision)
    feats = Features(x, y, dataset, split)
    if path is not None:
        atomic_torch_save(path, {"format": CACHE_FORMAT, "key": key, "x": x, "y": y})
    return feats


def request_features(request: Any, preprocessing: Preprocessing, split: str, batch_size: int = 256) -> Features:
    """:func:`extract_features` with an evaluation request's settings (``--redo`` recomputes the features).

    Args:
        request: a :class:`mast_bench.downstream.contract.EvalRequest`.
        preprocessing: the protocol's transform; split: the split; batch_size: images per forward pass.
    """
    if request.data_root is None:
        raise DatasetError(f"dataset {request.dataset!r} needs --data-root")
    return extract_features(
        request.weights, request.dataset, split, request.data_root, preprocessing, verify=request.verify,
        device=request.device, batch_size=batch_size, workers=request.workers, cache_dir=request.cache_dir,
        progress=request.progress, refresh=request.redo, note=request.say,
        precision=request.feature_precision,
    )
