"""Writing pretraining checkpoints (tensors plus plain metadata, atomically) and restoring a method from one.

The layout, the format and version rules and the loading itself live in :mod:`mast_bench.checkpoints`,
the one reader of checkpoint files; :func:`load_checkpoint` and :func:`load_strict` are re-exported here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mast_bench import code_version
from mast_bench.checkpoints import FORMAT, FORMAT_VERSION, load_checkpoint, load_strict
from mast_bench.config import Recipe, to_dict
from mast_bench.fileio import atomic_torch_save

__all__ = ["load_checkpoint", "load_strict", "make_checkpoint", "restore_method", "save_checkpoint"]


def _cpu(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in sd.items()}


def make_checkpoint(
    method: Any,
    recipe: Recipe,
    epoch: int,
    step: int,
    complete: bool,
    optimizer: torch.optim.Optimizer | None = None,
    resume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a checkpoint dict from an (unwrapped) :class:`PretrainMethod`.

    Args:
        method: the method module (not the DDP wrapper).
        recipe: the recipe it was trained with.
        epoch: completed epochs; step: optimiser steps taken so far.
        complete: training finished (``final.pt``).
        optimizer, resume: included only in resumable checkpoints.
    """
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backbone": _cpu(method.backbone.state_dict()),
        "projector": _cpu(method.projector.state_dict()),
        "method_state": _cpu(method.method_state_dict()),
        "meta": {
            "method": recipe.method.name,
            "backbone": method.spec.to_dict(),
            "recipe": to_dict(recipe),
            "epoch": int(epoch),
            "step": int(step),
            "complete": bool(complete),
            "code_version": code_version(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    }
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    if resume is not None:
        ckpt["resume"] = resume
    return ckpt


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> Path:
    """Write ``ckpt`` to ``path`` atomically (temp file + rename): a crash never leaves half a file."""
    return atomic_torch_save(path, ckpt)


def restore_method(method: Any, ckpt: Mapping[str, Any]) -> None:
    """Load a checkpoint's backbone, projector and method state into ``method`` (all strict)."""
    load_strict(method.backbone, ckpt["backbone"], "backbone")
    load_strict(method.projector, ckpt["projector"], "projector")
    method.load_method_state_dict(ckpt["method_state"])
