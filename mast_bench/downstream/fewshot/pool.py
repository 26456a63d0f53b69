"""The labelled pool a few-shot evaluation draws episodes from: features, identifiers, fingerprint.

Which splits are pooled (both protocols draw episodes from a dataset's splits pooled, with no
base/novel split):

* every split the dataset ships (``train``, ``val``, ``test``; never the seeded ``train@P``/``val@P``
  subsets, which would repeat images, nor unlabeled splits);
* ``imagefolder``: the split folders the copy has (``val/`` is optional there);
* FC100: its ``test`` split only (AugSelf evaluates on the 20 test classes; the train and val classes
  are FC100's meta-training classes, and pooling them would change the task);
* an explicit list where the caller gives one (a suite cell, ``splits=``).

Features come from the content-keyed feature cache split by split; identifiers are each image's path
relative to the data root, or ``<split>/<index>`` for array-backed splits (CIFAR, STL-10) and the
reader's own ``ids`` where it has them (FC100: ``train/<index>`` in the CIFAR file). The pool's
fingerprint covers the identifiers, labels, splits and each split's :func:`content_digest` (file sizes,
or the pixel bytes of array data), so a manifest does not replay on a copy whose images changed, and
does replay on a faithful copy on another machine.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mast_bench.data.base import DatasetInfo
from mast_bench.downstream.features import Features, request_features
from mast_bench.downstream.fewshot.episodes import Pool, make_pool
from mast_bench.downstream.fingerprint import split_fingerprint
from mast_bench.downstream.protocols import Preprocessing
from mast_bench.errors import DatasetError, ProtocolError

#: Datasets whose few-shot pool is not every split they ship (see the module docstring).
POOL_SPLITS: dict[str, tuple[str, ...]] = {"fc100": ("test",)}


def pool_splits(info: DatasetInfo, root: Path | None) -> tuple[str, ...]:
    """The splits pooled for few-shot episodes on ``info`` (see the module docstring).

    Raises:
        ProtocolError: the dataset is multi-label or unlabelled (episodes need one class per image).
    """
    if info.multilabel or (info.num_classes == 0 and info.name != "imagefolder") or info.metric == "none":
        raise ProtocolError(
            f"few-shot episodes need one class per image; dataset {info.name!r} "
            f"({'multi-label' if info.multilabel else 'unlabelled'}) has none"
        )
    if info.name in POOL_SPLITS:
        return POOL_SPLITS[info.name]
    splits = [s for s in info.splits if "@" not in s and "unlabeled" not in s]
    if info.name == "imagefolder" and root is not None:  # val/ (and test/) are optional there
        splits = [s for s in splits if (root / s).is_dir()] or ["train"]
    return tuple(splits)


def listed_pool(info: DatasetInfo, root: Path, splits: tuple[str, ...]) -> Pool | None:
    """The pool's labels from the splits' listings alone (no image decoded, no feature), for planning.

    Its identifiers are placeholders and its fingerprint means nothing: it only carries the class sizes, so
    that a plan applies the same class rule as the run (:func:`~mast_bench.downstream.fewshot.episodes.
    eligible_classes`). Classes without images are removed, as :func:`build_pool` does.

    Returns:
        None where the copy cannot be opened (the run reports why) or the reader lists no labels.
    """
    from mast_bench.errors import USER_ERRORS

    labels: list[np.ndarray] = []
    classes: list[str] = []
    for split in splits:
        try:
            ds = info.build(root, split, None, False)
        except USER_ERRORS:
            return None
        samples = getattr(ds, "samples", None)
        listed = [t for _, t in samples] if samples is not None else getattr(ds, "targets", None)
        if listed is None:
            return None
        y = np.asarray(listed)
        if y.ndim != 1 or len(y) != len(ds) or (len(y) and not np.issubdtype(y.dtype, np.integer)):
            return None
        labels.append(y.astype(np.int64))
        classes = classes or [str(c) for c in getattr(ds, "classes", [])]
    y = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    names = classes or [str(c) for c in range(int(y.max()) + 1 if len(y) else 0)]
    if len(y) and y.max() >= len(names):
        return None
    present = np.unique(y)
    ids = [str(i) for i in range(len(y))]
    return make_pool(info.name, splits, ids, np.searchsorted(present, y), [names[c] for c in present])


def content_digest(ds: Any, root: Path) -> str:
    """A digest of a built split's images that survives copying the dataset to another machine.

    File-backed splits: every file's path relative to ``root``, its size and its label (the feature cache
    also keys on modification times, which a copy does not keep, so a manifest would never replay
    elsewhere); array-backed splits (CIFAR, STL-10, FC100): the pixel bytes, as the feature cache does.
    """
    samples = getattr(ds, "samples", None)
    if samples is None:
        return split_fingerprint(ds, root)["digest"]
    h = hashlib.sha256()
    for path, target in samples:
        try:
            size = os.stat(path).st_size
        except OSError:  # an item the reader resolves itself: identified by its name
            size = -1
        h.update(f"{Path(os.path.relpath(path, root)).as_posix()}\t{size}\t{target}\n".encode())
    return h.hexdigest()


def _identifiers(ds: Any, root: Path, split: str) -> list[str]:
    ids = getattr(ds, "ids", None)
    if ids is not None:
        return [str(i) for i in ids]
    samples = getattr(ds, "samples", None)
    if samples is not None:
        return [Path(os.path.relpath(p, root)).as_posix() for p, _ in samples]
    return [f"{split}/{i}" for i in range(len(ds))]


@dataclass(frozen=True)
class PooledFeatures:
    """A :class:`Pool` with its features.

    Attributes:
        pool: identifiers, labels (compacted to the classes with images), classes, fingerprint.
        x: ``(P, D)`` float32 features, row i = ``pool.ids[i]``.
        cached: every split's features came from the cache.
        empty_classes: classes of the dataset without an image in the pooled splits (removed).
    """

    pool: Pool
    x: torch.Tensor
    cached: bool
    empty_classes: tuple[str, ...]


def build_pool(request: Any, info: DatasetInfo, splits: tuple[str, ...], pre: Preprocessing,
               batch_size: int = 256) -> PooledFeatures:  # fmt: skip
    """Features and identifiers of ``splits`` of the request's copy, pooled.

    Args:
        request: the :class:`~mast_bench.downstream.contract.EvalRequest` (weights, root, cache, ``redo``).
        info: the dataset; splits: the splits to pool; pre: the protocol's preprocessing.
        batch_size: images per forward pass.

    Raises:
        DatasetError: no data root, or features whose labels disagree with the split's listing.
    """
    root = request.data_root
    if root is None:
        raise DatasetError(f"dataset {info.name!r} needs --data-root (expected layout: {info.layout})")
    parts: list[Features] = []
    ids: list[str] = []
    digests: list[str] = []
    classes: list[str] = []
    for split in splits:
        feats = request_features(request, pre, split, batch_size)
        ds = info.build(root, split, None, False)  # the same listing, for identifiers and the content digest
        split_ids = _identifiers(ds, Path(root), split)
        if len(split_ids) != len(feats) or feats.y.ndim != 1:
            raise DatasetError(f"dataset {info.name!r} {split}: {len(feats)} features but {len(split_ids)} images")
        parts.append(feats)
        ids += split_ids
        digests.append(f"{split}:{content_digest(ds, Path(root))}")
        classes = classes or [str(c) for c in getattr(ds, "classes", [])]
    y = torch.cat([p.y for p in parts]).numpy().astype(np.int64)
    names = classes or [str(c) for c in range(int(y.max()) + 1 if len(y) else 0)]
    present = np.unique(y)
    compact = np.searchsorted(present, y)
    have = set(present.tolist())
    empty = tuple(n for c, n in enumerate(names) if c not in have)
    pool = make_pool(info.name, splits, ids, compact, [names[c] for c in present], content="|".join(digests))
    return PooledFeatures(pool, torch.cat([p.x for p in parts]), all(p.cached for p in parts), empty)
