"""On-the-fly conversion cache for evaluators, keyed by the source file's sha256.

Entries live under ``$MAST_BENCH_CACHE/weights`` (default ``~/.cache/mast-bench/weights``):
``<sha256>.<from-format>[.<arch>].pth`` plus its JSON sidecar, both written by the torchvision
writer. An entry whose weights no longer match the sha256 in its sidecar is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from mast_bench.checkpoints import read_weights
from mast_bench.errors import CheckpointError

ENV_VAR = "MAST_BENCH_CACHE"


def default_cache_dir() -> Path:
    """``$MAST_BENCH_CACHE/weights`` if the variable is set, else ``~/.cache/mast-bench/weights``."""
    root = os.environ.get(ENV_VAR)
    return (Path(root) if root else Path.home() / ".cache" / "mast-bench") / "weights"


def entry_path(cache_dir: Path, source_sha256: str, from_format: str, arch: str | None) -> Path:
    """Path of the cached ``.pth`` for one source file read one way."""
    how = from_format + (f".{arch}" if arch else "")
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", how)
    if slug != how:  # keep distinct options distinct after sanitising (e.g. lightning prefixes)
        slug += "-" + hashlib.sha256(how.encode()).hexdigest()[:8]
    return cache_dir / f"{source_sha256}.{slug}.pth"


def read_entry(weights: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The cached state dict and sidecar, or ``None`` when absent or not intact."""
    side = weights.with_suffix(".json")
    if not (weights.is_file() and side.is_file()):
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
        data = weights.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
        return None
    try:
        state = read_weights(weights)
    except (CheckpointError, OSError):  # an entry that cannot be read is rebuilt, never trusted
        return None
    if not isinstance(state, dict):
        return None
    return state, meta
