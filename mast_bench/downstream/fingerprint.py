"""A fingerprint of the files one split of a dataset copy is read from, for the feature-cache key.

Features may only be reused for the images they were computed from, so the cache key holds a digest
of what the built split reads, in its sample order:

* file-backed splits (every reader exposing ``samples`` of ``(path, target)``, and subsets of them):
  each item's path relative to the data root, its size, its modification time (ns) and its target.
  Changing, adding, removing, renaming or relabelling an image changes the digest; an index file
  that relabels images changes the targets and so the digest too.
* array-backed splits (CIFAR's pickled batches, STL-10's ``.bin`` files: ``data`` is an array): a
  blake2b hash of the pixel bytes and targets actually loaded, which is cheap next to a forward pass.

A split offering neither is fingerprinted by its length alone and reported as ``weak`` (the cache
key then cannot see changes inside it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Subset


def _unwrap(ds: Any) -> tuple[Any, Sequence[int] | None]:
    """The innermost dataset under ``Subset`` wrappers and the indices into it (None: all of it)."""
    indices: Sequence[int] | None = None
    while isinstance(ds, Subset):
        inner = list(ds.indices)
        indices = inner if indices is None else [inner[i] for i in indices]
        ds = ds.dataset
    return ds, indices


def _targets(ds: Any) -> Any:
    for name in ("targets", "labels", "_labels"):
        value = getattr(ds, name, None)
        if value is not None:
            return value
    return None


def _file_items(samples: Sequence[tuple[Any, Any]], root: Path, h: Any) -> None:
    for path, target in samples:
        try:
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:  # an item the reader resolves itself (tests' in-memory data): identified by name only
            size = mtime = -1
        rel = os.path.relpath(path, root)
        t = np.asarray(target).tolist() if not isinstance(target, (int, str)) else target
        h.update(f"{rel}\t{size}\t{mtime}\t{t}\n".encode())


def split_fingerprint(ds: Any, root: str | os.PathLike[str]) -> dict[str, Any]:
    """Fingerprint of a built split.

    Args:
        ds: the dataset the features are computed from (``info.build(root, split, ...)``).
        root: the data root (paths are taken relative to it, so a moved copy keeps its fingerprint).

    Returns:
        ``{"kind": "files" | "arrays" | "weak", "n": items, "digest": sha256 hex}``.
    """
    inner, indices = _unwrap(ds)
    h = hashlib.sha256()
    samples = getattr(inner, "samples", None) or getattr(inner, "imgs", None)
    data = getattr(inner, "data", None)
    if samples is not None:
        chosen = samples if indices is None else [samples[i] for i in indices]
        _file_items(chosen, Path(os.path.abspath(root)), h)
        kind = "files"
    elif isinstance(data, np.ndarray):
        targets = _targets(inner)
        rows = data if indices is None else data[np.asarray(indices, dtype=np.int64)]
        h.update(np.ascontiguousarray(rows).tobytes())
        if targets is not None:
            t = np.asarray(targets)
            h.update(np.ascontiguousarray(t if indices is None else t[np.asarray(indices, dtype=np.int64)]).tobytes())
        kind = "arrays"
    else:
        kind = "weak"
    h.update(f"n={len(ds)}".encode())
    return {"kind": kind, "n": len(ds), "digest": h.hexdigest()}
