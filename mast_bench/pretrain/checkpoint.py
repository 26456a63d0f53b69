"""Pretraining checkpoints: tensors plus plain metadata, written atomically, loaded with weights_only=True.

Layout (see the project's interface notes)::

    {"format": "mast-bench-checkpoint", "format_version": 1,
     "backbone": {torchvision-style keys}, "projector": {...}, "method_state": {...},
     "optimizer": {...},            # resumable checkpoints only
     "resume": {"rng": ..., "scaler": ..., "steps_per_epoch": int, "world_size": int},  # resumable only
     "meta": {"method", "backbone": BackboneSpec.to_dict(), "recipe", "epoch" (completed epochs), "step",
              "complete", "code_version", "created"}}
"""

from __future__ import annotations

import datetime as _dt
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mast_bench import code_version
from mast_bench.config import Recipe, to_dict
from mast_bench.errors import CheckpointError
from mast_bench.fileio import atomic_torch_save

FORMAT = "mast-bench-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("backbone", "projector", "method_state", "meta")
_REQUIRED_META = ("method", "backbone", "recipe", "epoch", "step", "complete")


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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a mast-bench checkpoint on the CPU with ``weights_only=True``.

    Raises:
        CheckpointError: missing file, truncated or non-torch file, objects that are not tensors or
            plain values, a foreign format, a newer format version, or missing entries.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {str(p)!r} holds objects other than tensors and plain values; refusing to unpickle it "
            f"({first})"
        ) from None
    except Exception as exc:  # any parse failure of a corrupt file (EOFError, KeyError from a stray opcode, ...)
        detail = f"{type(exc).__name__}: {exc}".strip()
        raise CheckpointError(f"checkpoint {str(p)!r} is truncated or not a torch file ({detail})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(p)!r} is not a mast-bench checkpoint (no 'format': {FORMAT!r} entry); "
            "for weights from other code use `mast-bench convert`"
        )
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(p)!r} has format_version {version!r}; this code reads up to {FORMAT_VERSION}"
        )
    missing = [k for k in _REQUIRED if not isinstance(ckpt.get(k), dict)]
    missing += [f"meta.{k}" for k in _REQUIRED_META if isinstance(ckpt.get("meta"), dict) and k not in ckpt["meta"]]
    if missing:
        raise CheckpointError(f"checkpoint {str(p)!r} lacks {', '.join(missing)}")
    return ckpt


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` requiring the same keys and shapes; name every leftover key.

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped keys of ``what``.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state)
                    if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = [f"{label}: {', '.join(keys)}" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes)) if keys]
        raise CheckpointError(f"{what} weights do not match the model: " + "; ".join(parts))
    module.load_state_dict(dict(state), strict=True)


def restore_method(method: Any, ckpt: Mapping[str, Any]) -> None:
    """Load a checkpoint's backbone, projector and method state into ``method`` (all strict)."""
    load_strict(method.backbone, ckpt["backbone"], "backbone")
    load_strict(method.projector, ckpt["projector"], "projector")
    method.load_method_state_dict(ckpt["method_state"])
