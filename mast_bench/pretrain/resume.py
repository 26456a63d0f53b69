"""What a pretraining output folder holds, and whether its checkpoint can be resumed with a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mast_bench.config import Recipe, to_dict
from mast_bench.errors import CheckpointError

CHECKPOINT = "checkpoint.pt"
FINAL = "final.pt"
LOG = "log.jsonl"
RECIPE = "recipe.yaml"
OWN_FILES = (CHECKPOINT, FINAL, LOG, RECIPE)

#: Recipe keys that may change between a run and its resumption (they do not change what is learnt
#: up to the checkpoint). ``run.epochs`` may grow: the cosine schedule is stretched from that step on.
RESUME_MUTABLE = frozenset({
    "name", "run.epochs", "run.log_every", "run.checkpoint_every", "run.checkpoint_every_steps",
    "run.device", "run.threads", "data.root", "data.workers",
    # Speed switches: where and how the same computation runs (float rounding at most, like run.device).
    "augment.where", "run.channels_last", "run.compile", "run.tensorboard", "data.pin_memory",
    "data.persistent_workers",
})


def own_files(out: Path) -> tuple[str, ...]:
    """Names a resumed run may find in its folder: its outputs and leftover temporary files of them."""
    leftovers = tuple(p.name for p in out.iterdir() if p.name.startswith(tuple(f".{n}." for n in OWN_FILES))
                      and p.name.endswith(".tmp")) if out.is_dir() else ()
    return OWN_FILES + leftovers


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tuple(tree) if isinstance(tree, list) else tree}


def recipe_differences(saved: dict[str, Any], recipe: Recipe) -> list[str]:
    """``key: saved → new`` for every recipe key that differs and may not change on resume."""
    a, b = _flatten(saved), _flatten(to_dict(recipe))
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in RESUME_MUTABLE and a.get(k) != b.get(k)]


def check_resumable(ckpt: dict[str, Any], recipe: Recipe, steps_per_epoch: int, path: Path) -> None:
    """Refuse a checkpoint that cannot continue under ``recipe``.

    Raises:
        CheckpointError: not a training checkpoint (no optimizer state), written with a different
            recipe (naming each changed key), different steps per epoch (data or batch size
            changed), or more epochs done than the recipe asks for.
    """
    if "optimizer" not in ckpt or "resume" not in ckpt:
        raise CheckpointError(f"{str(path)!r} has no optimizer state; only {CHECKPOINT} of a run can be resumed")
    diffs = recipe_differences(ckpt["meta"]["recipe"], recipe)
    if diffs:
        raise CheckpointError(
            f"cannot resume {str(path)!r} with a different recipe ({'; '.join(diffs)}); "
            "use the recipe the run started with (only run.epochs, logging, checkpoint frequency, device, "
            "data.root, data loading and speed switches may change)"
        )
    saved_spe = int(ckpt["resume"]["steps_per_epoch"])
    if saved_spe != steps_per_epoch:
        raise CheckpointError(
            f"cannot resume {str(path)!r}: it ran {saved_spe} steps per epoch but the data now gives "
            f"{steps_per_epoch} (the dataset or run.batch_size changed)"
        )
    if int(ckpt["meta"]["epoch"]) > recipe.run.epochs:
        raise CheckpointError(
            f"{str(path)!r} has already trained {ckpt['meta']['epoch']} epochs, more than run.epochs="
            f"{recipe.run.epochs}"
        )
