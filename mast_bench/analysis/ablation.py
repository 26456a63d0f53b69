"""MAST ablation on the synthetic invariance suite: which parts of MAST help which task.

Variants (all from one recipe, so backbone, data, optimiser and schedule are identical):
``vicreg`` (method vicreg), ``masks`` (MAST masks and regularisers only), ``masks+uncertainty``,
``masks+uncertainty+aware`` (plus the augmentation-awareness head), and the ``random-init`` floor
(the recipe's backbone, seeded, not trained). Each is pretrained once per seed, then every synthetic
task is scored by the ``synthetic-linear`` probe
(:func:`mast_bench.downstream.evaluate_linear`: C selected on val, refit on train+val, test once).
Runs and records that already exist are reused, so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from mast_bench import code_version
from mast_bench.config import Recipe, load_recipe, to_dict
from mast_bench.convert import LoadedBackbone, load_backbone
from mast_bench.data.synthetic.suite import SYNTHETIC_TASKS, make_synthetic
from mast_bench.downstream import evaluate_linear
from mast_bench.fileio import atomic_write_text
from mast_bench.models.backbones import build_backbone, spec_from_model_config
from mast_bench.pretrain.checkpoint import load_checkpoint
from mast_bench.pretrain.resume import FINAL
from mast_bench.pretrain.run import pretrain

RECIPES_DIR = Path(__file__).resolve().parents[2] / "pretrain"
DEFAULT_RECIPE = RECIPES_DIR / "mast_tiny_quick.yaml"
PROTOCOL = "synthetic-linear"
RANDOM_INIT = "random-init"
#: Variant → recipe overrides on top of the base (MAST) recipe (``random-init`` is never trained).
VARIANTS: dict[str, tuple[str, ...]] = {
    RANDOM_INIT: (),
    "vicreg": ("method.name=vicreg",),
    "masks": ("method.name=mast", "method.mast.masks=true", "method.mast.uncertainty=false", "method.mast.aware=false"),
    "masks+uncertainty": (
        "method.name=mast",
        "method.mast.masks=true",
        "method.mast.uncertainty=true",
        "method.mast.aware=false",
    ),
    "masks+uncertainty+aware": (
        "method.name=mast",
        "method.mast.masks=true",
        "method.mast.uncertainty=true",
        "method.mast.aware=true",
    ),
}
TABLE = "ablation_synthetic"


@dataclass
class AblationResult:
    """Where the ablation put its table, and the per-run scores behind it."""

    scores: pd.DataFrame
    summary: pd.DataFrame
    markdown: str
    table_md: Path
    table_csv: Path
    timings: dict[str, float] = field(default_factory=dict)


def variant_recipe(base: str | Path, variant: str, seed: int, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe of one run: base recipe, the user's overrides, the variant's switches, the seed."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ablation variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return load_recipe(base, [*overrides, *VARIANTS[variant], f"run.seed={seed}", f"name={variant}-s{seed}"])


def _pretrain_once(recipe: Recipe, run_dir: Path, suite: Path, progress: bool) -> Path:
    """Pretrain into ``run_dir`` unless it already holds a finished run of exactly this recipe and suite."""
    final = run_dir / FINAL
    wanted = to_dict(dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, root=str(suite))))
    if final.is_file():
        meta = load_checkpoint(final)["meta"]
        if meta["complete"] and meta["recipe"] == wanted:
            return final
    return Path(pretrain(recipe, run_dir, data_root=suite, overwrite=True, progress=progress))


def _random_init(recipe: Recipe, name: str) -> LoadedBackbone:
    spec = spec_from_model_config(recipe.model, recipe.augment.mean, recipe.augment.std)
    torch.manual_seed(recipe.run.seed)
    module, _ = build_backbone(spec)
    return LoadedBackbone.from_module(module, spec, name)


def _score(
    backbone: LoadedBackbone, model_name: str, suite: Path, records: Path, cache: Path, progress: bool
) -> dict[str, float]:
    out = {}
    for task in SYNTHETIC_TASKS:
        [record] = evaluate_linear(
            backbone, task, suite, PROTOCOL, records, model_name, cache_dir=cache / "features", progress=progress
        )
        out[task] = record.value
    return out


def summarise(scores: pd.DataFrame, variants: Sequence[str], tasks: Sequence[str]) -> pd.DataFrame:
    """Mean and sample std over seeds of each task's accuracy and of the per-run mean over tasks.

    Args:
        scores: one row per (variant, seed, task) with column ``value``.
    Returns:
        one row per variant: ``<task>_mean``, ``<task>_std`` for every task and for ``mean`` (over tasks),
        and ``seeds``.
    """
    wide = scores.pivot_table(index=["variant", "seed"], columns="task", values="value")[list(tasks)]
    wide["mean"] = wide.mean(axis=1)
    rows = []
    for variant in variants:
        part = wide.loc[variant]
        row: dict[str, object] = {"variant": variant, "seeds": len(part)}
        for col in [*tasks, "mean"]:
            row[f"{col}_mean"] = float(part[col].mean())
            row[f"{col}_std"] = float(part[col].std(ddof=1)) if len(part) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def render_markdown(summary: pd.DataFrame, tasks: Sequence[str], settings: str) -> str:
    """The table as Markdown: one row per variant, ``mean ± std`` cells, the best mean per column in bold."""
    short = {t: t.removeprefix("synthetic-") for t in tasks}
    cols = [*tasks, "mean"]
    best = {c: summary[f"{c}_mean"].max() for c in cols}
    lines = [
        "| variant | " + " | ".join(short.get(c, "mean over tasks") for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for _, row in summary.iterrows():
        cells = []
        for c in cols:
            m, s = row[f"{c}_mean"], row[f"{c}_std"]
            text = f"{m:.1f} ± {s:.1f}" if pd.notna(s) else f"{m:.1f}"
            cells.append(f"**{text}**" if m == best[c] else text)
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + settings + "\n"


def run_ablation(
    out: str | Path,
    suite: str | Path | None = None,
    suite_size: str = "quick",
    seeds: Sequence[int] = (0, 1, 2),
    overrides: Sequence[str] = (),
    variants: Sequence[str] = tuple(VARIANTS),
    base_recipe: str | Path = DEFAULT_RECIPE,
    table_dir: str | Path | None = None,
    progress: bool = True,
) -> AblationResult:
    """Pretrain every (variant, seed), probe every synthetic task, and write the table.

    Args:
        out: folder for ``suite/`` (when generated), ``runs/``, ``records/``, ``cache/``, the table
            ``ablation_synthetic.md`` / ``.csv`` (one row per variant) and ``ablation_synthetic_runs.csv``
            (one row per run and task). Re-runs reuse finished runs and records.
        suite: an existing synthetic suite; ``None`` generates one of ``suite_size`` (seed 0) under ``out``.
        seeds: pretraining seeds (the probe itself is deterministic).
        overrides: ``--set`` overrides applied to every variant (e.g. ``run.epochs=4``).
        variants: subset of :data:`VARIANTS`.
        base_recipe: the MAST recipe the variants are derived from.
        table_dir: where the three table files go (default: ``out``), e.g. the repository's ``results/``.
    Raises:
        ValueError: an unknown variant or no seeds; ConfigError for a bad override (before any work).
    """
    out = Path(out)
    if not seeds:
        raise ValueError("need at least one seed")
    plan = [(v, s, variant_recipe(base_recipe, v, s, overrides)) for v in variants for s in seeds]  # validate first
    timings: dict[str, float] = {}
    if suite is None:
        suite = out / "suite"
        if not (suite / "manifest.json").is_file():
            t0 = time.perf_counter()
            make_synthetic(suite, seed=0, size=suite_size, overwrite=True, progress=progress)
            timings["suite"] = time.perf_counter() - t0
    suite = Path(suite)
    rows = []
    for variant, seed, recipe in tqdm(plan, desc="ablation runs", disable=not progress, unit="run"):
        name = f"{variant}-s{seed}"
        t0 = time.perf_counter()
        if variant == RANDOM_INIT:
            backbone = _random_init(recipe, name)
        else:
            final = _pretrain_once(recipe, out / "runs" / name, suite, progress=False)
            backbone = load_backbone(final, cache_dir=out / "cache" / "weights")
        t1 = time.perf_counter()
        for task, value in _score(backbone, name, suite, out / "records", out / "cache", progress=False).items():
            rows.append({"variant": variant, "seed": seed, "task": task, "value": value})
        timings[f"{name} pretrain"] = t1 - t0
        timings[f"{name} probe"] = time.perf_counter() - t1
    scores = pd.DataFrame(rows)
    summary = summarise(scores, variants, SYNTHETIC_TASKS)
    r = plan[0][2]
    settings = (
        f"Synthetic suite `{suite_size if suite == out / 'suite' else suite}`; base recipe `{Path(base_recipe).name}`"
        f"{' with ' + ', '.join(f'`{o}`' for o in overrides) if overrides else ''}: {r.model.backbone} "
        f"(widths {list(r.model.widths)}, {r.model.stem} stem), projector {list(r.model.projector)}, "
        f"{r.run.epochs} epoch{'s' if r.run.epochs != 1 else ''} at batch {r.run.batch_size}, "
        f"{r.optim.name} base lr {r.optim.base_lr}, "
        f"{r.augment.size} px, families {', '.join(r.augment.families)}. Seeds {', '.join(map(str, seeds))}; "
        f"test top-1 (%) of the `{PROTOCOL}` linear probe (C selected on val, refit on train+val), mean ± sample "
        f"std over seeds; 'mean over tasks' is averaged per run first. Code {code_version()}."
    )
    markdown = render_markdown(summary, SYNTHETIC_TASKS, settings)
    tables = Path(table_dir) if table_dir is not None else out
    table_md = atomic_write_text(tables / f"{TABLE}.md", markdown)
    table_csv = atomic_write_text(tables / f"{TABLE}.csv", summary.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(tables / f"{TABLE}_runs.csv", scores.to_csv(index=False, float_format="%.4f"))
    return AblationResult(scores, summary, markdown, table_md, table_csv, timings)
