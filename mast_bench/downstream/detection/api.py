"""Entry points: write a task's complete config without running it, run the evaluation, and the demo's rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mast_bench.downstream.contract import CellOutcome, EvalRequest, execute, records_of
from mast_bench.downstream.detection.evaluator import DetectionEvaluator, DetectionOptions, work_dir
from mast_bench.downstream.detection.materialize import Materialized, materialize
from mast_bench.downstream.detection.requirement import require_detectron2
from mast_bench.downstream.detection.schedule import Hardware
from mast_bench.downstream.detection.tasks import get_task
from mast_bench.downstream.weights import EvalWeights
from mast_bench.fileio import prepare_out_dir
from mast_bench.results.records import ResultRecord

Echo = Callable[[str], None]


def dry_run(
    weights: EvalWeights,
    task_name: str,
    out_dir: str | Path,
    model_name: str,
    hardware: Hardware,
    seed: int = 0,
    overrides: tuple[str, ...] = (),
) -> Materialized:
    """Convert the weights and write the complete config for ``hardware``; no training, no dataset files.

    The files go where a real run of the same command would put them: ``<out>/detectron2/<model>-<sha>/<task>/``.

    Raises:
        Detectron2Missing, UnknownNameError, CheckpointError (weights of another depth), OutputDirError.
    """
    require_detectron2()
    task = get_task(task_name)
    out = prepare_out_dir(out_dir, overwrite=True)  # a records folder: shared, only checked for use
    folder = work_dir(out, model_name, weights.sha256, task.name)
    return materialize(task, weights, hardware, folder, seed=seed, overrides=overrides)


def evaluate_detection(
    weights: EvalWeights,
    task_name: str,
    data_root: str | Path,
    out_dir: str | Path,
    model_name: str,
    *,
    seeds: tuple[int, ...] | None = None,
    hardware: Hardware | None = None,
    machine_rank: int = 0,
    dist_url: str = "auto",
    redo: bool = False,
    overrides: tuple[str, ...] = (),
    echo: Echo | None = None,
) -> list[CellOutcome]:
    """Fine-tune and evaluate ``weights`` on a task, one record per seed and metric plus the mean ± std.

    Args:
        seeds: default ``range(task.seeds)`` (5 for MoCo's VOC protocol).
        hardware: default one CPU process.

    Returns:
        The contract's outcomes, one per cell.
    """
    task = get_task(task_name)
    hw = hardware or Hardware()
    options = DetectionOptions(
        seeds=tuple(seeds) if seeds is not None else tuple(range(task.seeds)), hardware=hw,
        machine_rank=machine_rank, dist_url=dist_url, overrides=tuple(overrides),
    )  # fmt: skip
    if machine_rank != 0:
        # Other machines only take part in Detectron2's process group; machine 0 plans, skips and records.
        _join_as_follower(weights, task_name, data_root, out_dir, model_name, options, echo)
        return []
    request = EvalRequest(
        weights=weights, model_name=model_name, dataset=task.dataset, data_root=Path(data_root),
        protocol=task.name, options=options, device=hw.device, redo=redo,
    )  # fmt: skip
    return execute(DetectionEvaluator(), request, out_dir, echo=echo)


def _join_as_follower(
    weights: EvalWeights,
    task_name: str,
    data_root: str | Path,
    out_dir: str | Path,
    model_name: str,
    options: DetectionOptions,
    echo: Echo | None,
) -> None:
    from mast_bench.downstream.detection.train import run_seed

    task = get_task(task_name)
    folder = work_dir(prepare_out_dir(out_dir, overwrite=True), model_name, weights.sha256, task.name)
    for seed in options.seeds:
        if echo is not None:
            echo(
                f"{task.name} seed {seed}: joining as machine {options.machine_rank} of {options.hardware.num_machines}"
            )
        mat = materialize(task, weights, options.hardware, folder, seed=seed, overrides=options.overrides)
        run_seed(task.name, mat.config_path, Path(data_root), options.hardware.num_gpus,
                 options.hardware.num_machines, options.machine_rank, options.dist_url)  # fmt: skip


#: The demo's task: the trunk frozen, so that the rows compare the pretrained features. Fully fine-tuned
#: (``synthetic``), a random initialisation catches up on these easy scenes: measured 28.9 box AP for the
#: floor against 28.7 for a VICReg checkpoint of the demo recipe; frozen, 7.7 against 14.5.
DEMO_TASK = "synthetic-frozen"


def demo_detection_rows(
    models: dict[str, EvalWeights],
    suite: str | Path,
    records_dir: str | Path,
    echo: Echo | None = None,
    overrides: tuple[str, ...] = (),
) -> list[ResultRecord]:
    """The demo's detection rows: each model's detector trained once (seed 0) on the synthetic scenes, on CPU.

    Args:
        models: record name → weights (the random-init floor, VICReg, MAST).
        suite: the synthetic suite's folder.
        records_dir: where the records (and the Detectron2 files, under ``detectron2/``) go.

    Returns:
        The aggregate records (``box_AP`` ... ``mask_AP75`` per model; one seed, so std 0).
    """
    rows: list[ResultRecord] = []
    for name, weights in models.items():
        outcomes = evaluate_detection(
            weights, DEMO_TASK, suite, records_dir, name, seeds=(0,), redo=True, overrides=overrides
        )
        records = [r for r in records_of(outcomes) if r.protocol == DEMO_TASK]
        rows += records
        if echo is not None:
            echo("    " + ", ".join(f"{name} {r.metric} {r.value:.1f}" for r in records if r.metric.endswith("_AP")))
    return rows


def detection_table(records: list[ResultRecord], models: list[str]) -> str:
    """A Markdown table of box and mask AP / AP50 / AP75, one row per model (in ``models`` order)."""
    metrics = ["box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"]
    value = {(r.model, r.metric): r.value for r in records}
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for model in models:
        cells = [f"{value[(model, m)]:.1f}" if (model, m) in value else "–" for m in metrics]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Schedule per suite size: the pinned 300 iterations (6 epochs of the demo's 400 scenes, ~45 s of CPU per
#: model), a third of it for the quick suite (100 scenes), and a smoke run for the test suite.
DEMO_SCHEDULES: dict[str, tuple[str, ...]] = {
    "demo": (),
    "quick": ("SOLVER.MAX_ITER=100", "SOLVER.STEPS=[80]", "SOLVER.WARMUP_ITERS=10"),
    "test": ("SOLVER.MAX_ITER=2", "SOLVER.IMS_PER_BATCH=2", "SOLVER.STEPS=[1]", "SOLVER.WARMUP_ITERS=1"),
}


def demo_detection(
    models: dict[str, EvalWeights],
    suite: str | Path,
    folder: str | Path,
    suite_size: str = "demo",
    echo: Echo | None = None,
) -> tuple[list[ResultRecord], Path]:
    """The demo's detection stage: every model on the synthetic scenes, records and a table under ``folder``.

    ``folder`` is the demo's own (not its linear-probe records folder, whose tables expect probe records
    only); a previous run's records there are removed first, as the demo does for its probe records.

    Args:
        models: record name → weights (the random-init floor, VICReg, MAST), in table order.
        suite: the synthetic suite's folder.
        folder: where the records, ``table.md`` and the Detectron2 files (``detectron2/``) go.
        suite_size: the suite's size name; picks the schedule (:data:`DEMO_SCHEDULES`).

    Returns:
        ``(records, the table's path)``.
    """
    from mast_bench.fileio import atomic_write_text
    from mast_bench.results.records import RECORD_SUFFIX

    folder = Path(folder)
    if folder.is_dir():
        for old in folder.glob(f"*{RECORD_SUFFIX}"):
            old.unlink()
    rows = demo_detection_rows(models, suite, folder, echo=echo, overrides=DEMO_SCHEDULES.get(suite_size, ()))
    text = (
        f"Box and mask AP (%) on the synthetic scenes' val split, task `{DEMO_TASK}` (Mask R-CNN, trunk frozen, "
        f"FPN and heads trained; one seed; docs/protocols.md, Detection).\n\n{detection_table(rows, list(models))}"
    )
    return rows, atomic_write_text(folder / "table.md", text)
