"""The supervised reference of the synthetic suite: the same backbone trained with the pool's factor labels.

Self-supervised pretraining on the pool sees only pixels; this reference sees the factors that the
labelled tasks are made of, so its probe accuracies show how far a representation of that size and
training length can go on each task (a loose reference, not a ceiling). It is trained on the pool
images as they are (no augmentation), with one linear head per factor and the sum of their
cross-entropies:

========== ====================================================== =========
head       label of a pool image                                  classes
========== ====================================================== =========
shape      the object's shape (all 8, including L and F)           8
colour     nearest hue-bin centre (red, yellow, …; 60° bins)       6
position   vertical third holding the centroid                     3
texture    background texture                                      4
pose       90° pose and mirror of an L or F (others ignored)       8
========== ====================================================== =========

The trained weights are cached under a key of everything that determines them (the pool's files
and factor table by sha256, the suite's generator version, the backbone spec and the training
settings), so a second run with the same suite loads them in a second; a cache entry is loaded
with ``weights_only=True`` and strict key matching.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mast_bench.checkpoints import read_weights
from mast_bench.data.images import open_image
from mast_bench.data.synthetic.factors import HUE_BINS, IMAGE_SIZE, ORIENTATIONS, POSITIONS, SHAPES, TEXTURES
from mast_bench.data.synthetic.manifest import load_manifest, read_factors
from mast_bench.fileio import atomic_open, atomic_torch_save
from mast_bench.models.backbones import BackboneSpec, build_backbone

#: Heads and their class counts; ``pose`` is defined only for the chiral shapes (ignored elsewhere).
HEADS: dict[str, int] = {"shape": len(SHAPES), "colour": len(HUE_BINS), "position": len(POSITIONS),
                         "texture": len(TEXTURES), "pose": len(ORIENTATIONS)}  # fmt: skip
IGNORE = -100  # torch's cross-entropy ignore_index


@dataclass(frozen=True)
class SupervisedSettings:
    """How the reference is trained (Adam, constant lr, no augmentation; Kingma & Ba 2015 defaults otherwise)."""

    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0


def pool_labels(rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """Labels of every head for the given ``factors.csv`` rows: ``{head: int64 (N,)}`` (``IGNORE`` = none)."""
    centres = np.array(list(HUE_BINS.values()))
    out: dict[str, list[int]] = {h: [] for h in HEADS}
    for r in rows:
        shape = r["shape"]
        out["shape"].append(SHAPES.index(shape))
        hue = float(r["hue"])
        out["colour"].append(int(np.argmin(np.abs((hue - centres + 180.0) % 360.0 - 180.0))))
        out["position"].append(min(2, int(float(r["cy"]) * 3 // IMAGE_SIZE)))
        out["texture"].append(TEXTURES.index(r["bg_texture"]))
        if shape in ("L", "F"):
            quarter = int(np.round(float(r["angle"]) / 90.0)) % 4
            out["pose"].append(quarter + 4 * (r["mirror"] == "True"))
        else:
            out["pose"].append(IGNORE)
    return {h: np.asarray(v, dtype=np.int64) for h, v in out.items()}


def _cache_key(root: Path, spec: BackboneSpec, settings: SupervisedSettings) -> str:
    manifest = load_manifest(root)
    files = {k: v for k, v in manifest["files"].items() if k.startswith("pool/") or k == "factors.csv"}
    ident = {"generator_version": manifest["generator_version"], "files": files, "spec": spec.to_dict(),
             "settings": asdict(settings), "torch": torch.__version__.split("+")[0]}  # fmt: skip
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _load_pool(root: Path, spec: BackboneSpec) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    rows = [r for r in read_factors(root) if r["part"] == "pool"]
    images = np.stack([np.asarray(open_image(root / r["path"])) for r in rows])  # (N, H, W, 3)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std, {h: torch.from_numpy(v) for h, v in pool_labels(rows).items()}


def train_reference(
    root: str | Path,
    spec: BackboneSpec,
    settings: SupervisedSettings = SupervisedSettings(),
    echo: Callable[[str], None] = lambda _: None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the backbone with the five factor heads on the suite's pool.

    Returns:
        ``(backbone in eval mode, log)``; the log holds the final epoch's mean loss per head and the time.
    """
    root = Path(root)
    x, labels = _load_pool(root, spec)
    torch.manual_seed(settings.seed)
    backbone, dim = build_backbone(spec)
    heads = nn.ModuleDict({h: nn.Linear(dim, k) for h, k in HEADS.items()})
    opt = torch.optim.Adam([*backbone.parameters(), *heads.parameters()], lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    start, log = time.perf_counter(), {}
    backbone.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(x), generator=gen)
        sums = dict.fromkeys(HEADS, 0.0)
        for i in range(0, len(x), settings.batch_size):
            idx = order[i : i + settings.batch_size]
            feats = backbone(x[idx])
            losses = {h: loss_fn(heads[h](feats), labels[h][idx]) for h in HEADS}
            # A batch without any L or F has no pose label: its loss is NaN and is left out.
            total = sum(v for v in losses.values() if torch.isfinite(v))
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            for h, v in losses.items():
                sums[h] += float(v.detach()) * len(idx) if torch.isfinite(v) else 0.0
        log = {"epoch": epoch + 1, **{h: round(s / len(x), 4) for h, s in sums.items()}}
        echo(f"    supervised reference epoch {epoch + 1}/{settings.epochs}: " + ", ".join(
            f"{h} {v:.3f}" for h, v in log.items() if h != "epoch"))  # fmt: skip
    log["seconds"] = round(time.perf_counter() - start, 1)
    return backbone.eval(), log


def cached_reference(
    root: str | Path,
    spec: BackboneSpec,
    cache_dir: str | Path,
    settings: SupervisedSettings = SupervisedSettings(),
    echo: Callable[[str], None] = lambda _: None,
) -> tuple[nn.Module, Path, bool]:
    """The reference backbone for this suite: loaded from ``cache_dir`` if trained before, else trained and cached.

    Returns:
        ``(backbone in eval mode, weights file, whether it came from the cache)``.
    """
    path = Path(cache_dir) / f"supervised-{_cache_key(Path(root), spec, settings)}.pt"
    backbone, _ = build_backbone(spec)
    if path.is_file():
        backbone.load_state_dict(read_weights(path), strict=True)
        return backbone.eval(), path, True
    backbone, log = train_reference(root, spec, settings, echo)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(path, backbone.state_dict())
    with atomic_open(path.with_suffix(".json"), "w", encoding="utf-8") as fh:
        json.dump({"settings": asdict(settings), "spec": spec.to_dict(), "log": log}, fh, indent=1)
    return backbone, path, False
