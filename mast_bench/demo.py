"""The end-to-end demo: synthetic suite → VICReg and MAST pretraining → linear probes → tables.

Everything runs on CPU in one process, starting from nothing in its output folder:

1. generate the synthetic invariance suite;
2. pretrain VICReg and MAST with the tiny synthetic recipes;
3. train (or load from the demo's cache) the supervised reference: the same backbone trained with the
   pool's factor labels (:mod:`mast_bench.data.synthetic.supervised`);
4. probe every labelled synthetic task (protocol ``synthetic-linear``) with the two checkpoints, the
   supervised reference and a randomly initialised backbone of the same spec (the floor a pretrained
   model must beat); every record gets a seeded bootstrap 95 % interval over the test images; then the
   same models on few-shot episodes of the synthetic pool, all on one seeded manifest
   (:mod:`mast_bench.downstream.fewshot.synthetic`; records under ``fewshot/``, table ``fewshot.md``);
5. aggregate the records into a leaderboard CSV and a Markdown model × task table
   (:mod:`mast_bench.demo_table`: ± per cell, bold only where a lead exceeds the noise);
6. draw MAST's mask-overlap figure;
7. (full demo) train Mask R-CNN on the suite's scenes for the floor, VICReg and MAST and table their box and
   mask AP (:mod:`mast_bench.downstream.detection`; records under ``detection/``).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mast_bench
from mast_bench.config import ConfigError, Recipe, load_recipe
from mast_bench.data.synthetic.suite import make_synthetic as make_suite
from mast_bench.data.synthetic.supervised import SupervisedSettings
from mast_bench.fileio import atomic_write_json, atomic_write_text, prepare_out_dir
from mast_bench.pretrain.run import pretrain

RANDOM_FLOOR = "random-init"
SUPERVISED = "supervised"
PROBE_PROTOCOL = "synthetic-linear"
RECIPES_DIR = Path(mast_bench.__file__).resolve().parent.parent / "pretrain"


@dataclass(frozen=True)
class DemoPlan:
    """What one demo run does: suite size, the two recipes, any ``--set`` overrides for both, and how the
    supervised reference is trained (None: no reference row)."""

    suite_size: str
    vicreg_recipe: Path
    mast_recipe: Path
    overrides: tuple[str, ...] = ()
    supervised: SupervisedSettings | None = field(default_factory=SupervisedSettings)
    detection: bool = False  # Mask R-CNN on the scenes for the floor, VICReg and MAST (Detectron2; ~100 s CPU)


def demo_plan(quick: bool = False) -> DemoPlan:
    """The full demo (≤ 10 min on 2 CPU cores) or the quick one (≤ 2 min)."""
    if quick:
        return DemoPlan("quick", RECIPES_DIR / "vicreg_tiny_quick.yaml", RECIPES_DIR / "mast_tiny_quick.yaml")
    return DemoPlan(
        "demo", RECIPES_DIR / "vicreg_tiny_synthetic.yaml", RECIPES_DIR / "mast_tiny_synthetic.yaml", detection=True
    )


@dataclass
class DemoResult:
    """Where a demo run put its outputs, and how long each stage took (seconds)."""

    out: Path
    suite: Path
    checkpoints: dict[str, Path]
    records: list[Path]
    leaderboard: Path
    table: Path
    table_text: str
    figures: list[Path]
    summary: Path
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Times named stages (wall clock and CPU) and echoes one line as each starts and ends.

    CPU seconds (this process plus its finished children, e.g. DataLoader workers) are recorded
    beside wall seconds because the demo's budget is stated for an otherwise idle machine: on a
    shared one, wall time alone says little.
    """

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.echo(f"[{len(self.timings) + 1}] {what} ...")
        start, cpu = time.perf_counter(), _cpu_seconds()
        yield
        self.timings[name] = round(time.perf_counter() - start, 2)
        self.cpu[name] = round(_cpu_seconds() - cpu, 2)
        self.echo(f"    {name} done in {self.timings[name]:.1f} s (cpu {self.cpu[name]:.1f} s)")


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    plan: DemoPlan | None = None,
) -> DemoResult:
    """Run the whole chain into ``out``.

    Args:
        out: output folder; must be empty or absent unless ``overwrite``.
        quick: the ≤ 2-minute variant (smaller suite and recipes).
        overwrite: reuse a non-empty folder; files are replaced as the stages write them, and the
            previous run's result records are removed so that the tables show this run only.
        seed: seeds the suite, both pretraining runs and the random-init floor.
        progress: show progress bars.
        echo: where stage messages go.
        plan: a custom plan (tests use a tiny one); default :func:`demo_plan`.

    Returns:
        The output paths, the rendered table and the stage timings.

    Raises:
        OutputDirError: ``out`` holds other files and ``overwrite`` is False (nothing is touched).
        ConfigError: a recipe of the plan is missing.
    """
    plan = plan or demo_plan(quick)
    recipes = _load_recipes(plan, seed)  # a bad recipe or override fails before anything is written
    out = prepare_out_dir(out, overwrite=overwrite)
    stages = _Stages(echo)
    suite = out / "suite"
    with stages.stage("suite", f"generating the synthetic suite ({plan.suite_size}) in {suite}"):
        make_suite(suite, seed=seed, size=plan.suite_size, overwrite=True, progress=progress)
    checkpoints: dict[str, Path] = {}
    for name, recipe in recipes.items():
        run_dir = out / "pretrain" / name
        with stages.stage(f"pretrain_{name}", f"pretraining {name} ({recipe.name}) into {run_dir}"):
            checkpoints[name] = Path(pretrain(recipe, run_dir, data_root=suite, overwrite=True, progress=progress))
    weights = _evaluated_weights(checkpoints, seed, out / "cache")
    reference: Path | None = None
    if plan.supervised is not None:
        with stages.stage("supervised", "supervised reference (trained once per suite, then cached)"):
            weights[SUPERVISED], reference = _supervised(weights[RANDOM_FLOOR].spec, suite, plan.supervised, out, echo)
    records_dir = out / "records"
    _remove_old_records(records_dir)
    with stages.stage("probe", f"linear probes ({PROBE_PROTOCOL}) on every synthetic task into {records_dir}"):
        records = _probe_all(weights, seed, suite, records_dir, out / "cache", progress, echo)
    with stages.stage("fewshot", f"few-shot episodes on the synthetic pool, every model on the same ones -> {out}"):
        fewshot = _fewshot(weights, suite, out, seed, progress, echo)
    with stages.stage("tables", "leaderboard and comparison table"):
        legend = _legend(recipes, checkpoints, seed, plan.supervised, reference)
        leaderboard, table, table_text = _tables(records_dir, out, list(weights), legend, seed)
    with stages.stage("figure", "MAST mask-overlap figure"):
        figures = _mask_figure(checkpoints["mast"], out / "figures")
    if plan.detection:
        with stages.stage("detection", f"Mask R-CNN on the synthetic scenes: box and mask AP -> {out / 'detection'}"):
            _detection({k: weights[k] for k in (RANDOM_FLOOR, *checkpoints)}, suite, out / "detection", plan, echo)
    timings = {**stages.timings, "total": round(sum(stages.timings.values()), 2)}
    cpu = {**stages.cpu, "total": round(sum(stages.cpu.values()), 2)}
    summary = atomic_write_json(
        out / "summary.json",
        {
            "plan": {"suite_size": plan.suite_size, "vicreg_recipe": str(plan.vicreg_recipe),
                     "mast_recipe": str(plan.mast_recipe), "overrides": list(plan.overrides), "seed": seed},
            "timings_s": timings,
            "cpu_s": cpu,
            "checkpoints": {k: str(v) for k, v in checkpoints.items()},
            "records": str(records_dir),
            "leaderboard": str(leaderboard),
            "table": str(table),
            "figures": [str(f) for f in figures],
            "fewshot": str(fewshot),
            "code_version": mast_bench.code_version(),
        },
    )
    return DemoResult(out, suite, checkpoints, records, leaderboard, table, table_text, figures, summary, timings, cpu)


def _load_recipes(plan: DemoPlan, seed: int) -> dict[str, Recipe]:
    recipes = {}
    for name, path in (("vicreg", plan.vicreg_recipe), ("mast", plan.mast_recipe)):
        if not Path(path).is_file():
            raise ConfigError(f"demo recipe {str(path)!r} does not exist (the demo runs from a source checkout)")
        recipes[name] = load_recipe(path, overrides=[*plan.overrides, f"run.seed={seed}"])
    return recipes


def _remove_old_records(records_dir: Path) -> None:
    # Only with --overwrite can a previous run's records be here; a table mixing two runs'
    # checkpoints under one model name would be ambiguous, so they go (record files only).
    from mast_bench.results.records import RECORD_SUFFIX

    if records_dir.is_dir():
        for old in records_dir.glob(f"*{RECORD_SUFFIX}"):
            old.unlink()


def _evaluated_weights(checkpoints: dict[str, Path], seed: int, cache: Path) -> dict[str, Any]:
    """The random-init floor (seeded) and the pretrained checkpoints, as the evaluators' weights."""
    import torch

    from mast_bench.convert import load_backbone
    from mast_bench.downstream.weights import EvalWeights, as_weights
    from mast_bench.models.backbones import build_backbone

    # Caches live in the demo folder: a demo run leaves nothing behind in the user's home.
    loaded = {name: as_weights(load_backbone(path, cache_dir=cache / "weights")) for name, path in checkpoints.items()}
    spec = next(iter(loaded.values())).spec
    torch.manual_seed(seed)
    module, _ = build_backbone(spec)
    return {RANDOM_FLOOR: EvalWeights.from_module(module, spec, RANDOM_FLOOR), **loaded}


def _supervised(spec: Any, suite: Path, settings: SupervisedSettings, out: Path, echo: Callable[[str], None]) -> Any:
    """The supervised reference's weights (trained on the first run, then loaded from ``out/cache``) and file."""
    from mast_bench.data.synthetic.supervised import cached_reference
    from mast_bench.downstream.weights import EvalWeights
    from mast_bench.fileio import sha256_file

    module, path, hit = cached_reference(suite, spec, out / "cache" / "supervised", settings, echo)
    echo(f"    supervised reference {'loaded from' if hit else 'trained and cached in'} {path}")
    weights = EvalWeights.from_module(module, spec, SUPERVISED, method=SUPERVISED, sha256=sha256_file(path))
    return weights, path


def _probe_all(
    weights: dict[str, Any],
    seed: int,
    suite: Path,
    records_dir: Path,
    cache: Path,
    progress: bool,
    echo: Callable[[str], None],
) -> list[Path]:
    """Probe every task with every model; each record is rewritten with its bootstrap interval (``ci95``)."""
    import dataclasses

    from mast_bench.data.synthetic.suite import SYNTHETIC_TASKS
    from mast_bench.demo_table import RESAMPLES, bootstrap_ci95
    from mast_bench.downstream import evaluate_linear
    from mast_bench.results.records import write_record

    written: list[Path] = []
    for name, backbone in weights.items():
        for task in SYNTHETIC_TASKS:
            [rec] = evaluate_linear(
                backbone, task, suite, PROBE_PROTOCOL, records_dir, name,
                cache_dir=cache / "features", redo=True, progress=progress,
            )  # fmt: skip
            low, high = bootstrap_ci95(rec.value, int(rec.extra["n_test"]), seed=seed)
            how = {"ci95": "percentile bootstrap over the test images", "resamples": RESAMPLES, "seed": seed,
                   "low": round(low, 4), "high": round(high, 4)}  # fmt: skip
            rec = dataclasses.replace(rec, ci95=round((high - low) / 2, 4), extra={**rec.extra, "uncertainty": how})
            written.append(write_record(records_dir, rec))
            echo(f"    {name} {task}: {rec.metric} {rec.value:.1f} ± {rec.ci95:.1f}")
    return written


def _fewshot(weights: dict[str, Any], suite: Path, out: Path, seed: int, progress: bool,
             echo: Callable[[str], None]) -> Path:  # fmt: skip
    """A few-shot row per model on the synthetic pool (records under ``out/fewshot``), as ``out/fewshot.md``."""
    from mast_bench.downstream.fewshot.synthetic import fewshot_table, synthetic_fewshot_records

    records = synthetic_fewshot_records(weights, suite, out / "fewshot", cache_dir=out / "cache" / "features",
                                        seed=seed, progress=progress, echo=echo)  # fmt: skip
    return atomic_write_text(out / "fewshot.md", fewshot_table(records))


def _legend(
    recipes: dict[str, Recipe],
    checkpoints: dict[str, Path],
    seed: int,
    supervised: SupervisedSettings | None = None,
    reference: Path | None = None,
) -> str:
    """One line per table row saying what the model is, so a committed table explains itself."""
    from mast_bench.fileio import sha256_file

    m = next(iter(recipes.values())).model
    arch = f"{m.backbone} ({m.stem} stem, widths {'-'.join(map(str, m.widths))})"
    lines = [f"- `{RANDOM_FLOOR}`: {arch}, randomly initialised (seed {seed}), not trained: the floor."]
    for name, recipe in recipes.items():
        steps = f", at most {recipe.run.max_steps_per_epoch} steps each" if recipe.run.max_steps_per_epoch else ""
        lines.append(
            f"- `{name}`: recipe `{recipe.name}`, {recipe.run.epochs} epoch{'s' * (recipe.run.epochs != 1)}{steps} "
            f"of batch {recipe.run.batch_size} "
            f"on `{recipe.data.dataset}`; checkpoint sha256 {sha256_file(checkpoints[name])[:12]}."
        )
    if supervised is not None and reference is not None:
        lines.append(
            f"- `{SUPERVISED}`: the same backbone trained with the pool's factor labels (five heads: shape, hue bin, "
            f"vertical third, texture, pose of L/F), Adam lr {supervised.lr:g}, {supervised.epochs} epochs of batch "
            f"{supervised.batch_size}, no augmentation, seed {supervised.seed}; a reference, not a ceiling; "
            f"weights sha256 {sha256_file(reference)[:12]}."
        )
    return "\n".join(lines) + "\n"


def _tables(records_dir: Path, out: Path, models: list[str], legend: str, seed: int = 0) -> tuple[Path, Path, str]:
    from mast_bench.data.synthetic.manifest import GENERATOR_VERSION
    from mast_bench.data.synthetic.suite import SYNTHETIC_TASKS
    from mast_bench.demo_table import CI_NOTE, RESAMPLES, render_table
    from mast_bench.results.leaderboard import build_leaderboard
    from mast_bench.results.tables import comparison_tables

    leaderboard = out / "leaderboard.csv"
    df = build_leaderboard(records_dir, leaderboard)
    [table] = comparison_tables(df, models=models, datasets=list(SYNTHETIC_TASKS))
    references = [m for m in models if m == SUPERVISED]
    note = CI_NOTE.format(resamples=RESAMPLES, seed=seed, reference=", ".join(f"`{r}`" for r in references) or "none")
    head = (
        f"{table.metric} (%) on {table.split} of the `{PROBE_PROTOCOL}` probe, synthetic suite generator "
        f"version {GENERATOR_VERSION}; mean over the tasks; {note}."
    )
    text = f"{render_table(table, references)}\n{head}\n\n{legend}"
    return leaderboard, atomic_write_text(out / "table.md", text), text


def _detection(weights: dict[str, Any], suite: Path, folder: Path, plan: DemoPlan, echo: Callable[[str], None]) -> None:
    from mast_bench.downstream.detection.requirement import Detectron2Missing

    try:
        from mast_bench.downstream.detection.api import demo_detection

        _, table = demo_detection(weights, suite, folder, plan.suite_size, echo)
    except Detectron2Missing as exc:
        echo(f"    detection skipped: {exc}")
        return
    echo(f"    box and mask AP table: {table}")


def _mask_figure(checkpoint: Path, out_dir: Path) -> list[Path]:
    from mast_bench.analysis import mask_overlap_figure

    return list(mask_overlap_figure(checkpoint, out_dir))
