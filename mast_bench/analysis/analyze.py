"""``analyze(checkpoint, out)``: every MAST analysis of one checkpoint, as PNG figures plus their CSVs.

Everything that can be wrong with the inputs (checkpoint, method, recipe, data folder) is checked
before the output folder is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mast_bench import code_version
from mast_bench.analysis.masks import checkpoint_masks, write_heatmap, write_overlap
from mast_bench.analysis.uncertainty import draw_pairs, uncertainty_table, write_uncertainty
from mast_bench.config import ConfigError, load_recipe
from mast_bench.errors import CheckpointError
from mast_bench.fileio import atomic_write_json, prepare_out_dir, sha256_file
from mast_bench.methods.mast import MAST
from mast_bench.pretrain.checkpoint import load_checkpoint, restore_method

SUMMARY = "analysis.json"


@dataclass
class AnalysisResult:
    """What :func:`analyze` wrote. ``notes`` says what was skipped and why."""

    out: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _model(ckpt: dict[str, Any], source: str) -> MAST:
    try:
        recipe = load_recipe(ckpt["meta"]["recipe"])
    except ConfigError as exc:
        raise CheckpointError(f"{source}: its recorded recipe no longer loads ({exc})") from None
    model = MAST(recipe)
    restore_method(model, ckpt)
    return model.eval()


def analyze(
    checkpoint: str | Path,
    out: str | Path,
    data_root: str | Path | None = None,
    overwrite: bool = False,
    pairs: int = 512,
    seed: int = 0,
    progress: bool = True,
) -> AnalysisResult:
    """Mask heat-map, mask overlap, and uncertainty against augmentation strength for a MAST checkpoint.

    Args:
        checkpoint: a mast-bench checkpoint (``final.pt`` or ``checkpoint.pt``) of method ``mast``.
        out: output folder (refused if it holds other files unless ``overwrite``).
        data_root: the pretraining data folder; defaults to the ``data.root`` recorded in the checkpoint.
        pairs: freshly augmented pairs for the uncertainty analysis; seed: their RNG seed.
    Raises:
        CheckpointError: unreadable checkpoint, or one without masks (e.g. VICReg).
        DatasetError: the pretraining data cannot be read (needed only with an uncertainty head).
        OutputDirError: ``out`` cannot be used.
    """
    if pairs < 2:
        raise ValueError(f"pairs must be at least 2, got {pairs}")
    source = str(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    families, masks = checkpoint_masks(ckpt, source)
    model = _model(ckpt, source)
    drawn = None
    notes = []
    if model.uncertainty_head is not None:
        root = data_root if data_root is not None else model.recipe.data.root
        drawn = draw_pairs(model.recipe, root, pairs, seed, progress=progress)
    else:
        notes.append("uncertainty vs strength skipped: trained with method.mast.uncertainty: false")
    result = AnalysisResult(out=prepare_out_dir(out, overwrite=overwrite), notes=notes)
    result.files += write_heatmap(masks, families, result.out)
    result.files += write_overlap(masks, families, result.out)
    if drawn is not None:
        table = uncertainty_table(model, *drawn)
        result.files += write_uncertainty(table, families, result.out)
    summary = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "checkpoint_sha256": sha256_file(checkpoint),
        "families": list(families),
        "embed_dim": int(masks.shape[1]),
        "pairs": 0 if drawn is None else int(drawn[0].shape[0]),
        "seed": seed,
        "files": [p.name for p in result.files],
        "notes": notes,
        "code_version": code_version(),
    }
    result.files.append(atomic_write_json(result.out / SUMMARY, summary))
    return result


def mask_overlap_figure(checkpoint: str | Path, out_dir: str | Path) -> list[Path]:
    """Just the K×K mask-overlap figure and its CSV (for the demo); returns ``[png, csv]``.

    Raises:
        CheckpointError: unreadable checkpoint, or one without masks.
    """
    families, masks = checkpoint_masks(load_checkpoint(checkpoint), str(checkpoint))
    return list(write_overlap(masks, families, out_dir))
