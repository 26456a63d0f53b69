"""``mast-bench evaluate detection``: Detectron2 fine-tuning on a pinned task, or its config with ``--dry-run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mast_bench.cli import LazyChoice
from mast_bench.cli.evaluate_cmd import _model_name, evaluate
from mast_bench.fileio import prepare_out_dir


def _task_names() -> list[str]:
    from mast_bench.downstream.detection.tasks import DETECTION_TASKS

    return DETECTION_TASKS.names()


def _gpus_present() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@evaluate.command("detection")
@click.option(
    "--weights",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint or backbone weights file (any format `mast-bench convert` reads).",
)
@click.option("--from", "from_format", default="auto", help="Format of --weights (auto-detected by default).")
@click.option("--arch", default=None, help="Backbone architecture when the file does not record it.")
@click.option(
    "--model-name",
    default=None,
    help="Name in the records (default: the file name, or its folder for final.pt/checkpoint.pt).",
)
@click.option(
    "--task",
    type=LazyChoice(_task_names),
    required=True,
    help="Pinned Detectron2 config (downstream/detectron2/<task>.yaml); R50 tasks need resnet50 weights.",
)
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder holding VOC2007/ + VOC2012/ or coco/ (Detectron2's datasets folder), or the synthetic "
    "suite; not needed with --dry-run.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/runs"),
    help="Records folder; the config, converted weights and Detectron2 outputs go under "
    "<out>/detectron2/<model>-<sha>/<task>/.",
)
@click.option("--dry-run", is_flag=True, help="Write the converted weights and the complete config; do not train.")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Number of seeds (0..N-1); default: the task's (5 for voc0712-c4, MoCo's mean of 5 runs).",
)
@click.option(
    "--num-gpus",
    type=click.IntRange(min=0),
    default=None,
    help="GPUs per machine (default: all present; 0 runs one CPU process).",
)
@click.option("--num-machines", type=click.IntRange(min=1), default=1, help="Machines (Detectron2's launch).")
@click.option(
    "--machine-rank", type=click.IntRange(min=0), default=0, help="This machine's rank (Detectron2's launch)."
)
@click.option("--dist-url", default="auto", help="Rendezvous URL for multi-machine runs, e.g. tcp://HOST:PORT.")
@click.option(
    "--ims-per-gpu",
    type=click.IntRange(min=1),
    default=None,
    help="Images per GPU instead of the task's total batch (lr and schedule then scale linearly).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a Detectron2 config key (e.g. SOLVER.MAX_ITER=100); listed among the config's changes.",
)
@click.option("--redo", is_flag=True, help="Recompute seeds whose records already exist.")
def detection_cmd(**kw: Any) -> None:
    """Fine-tune a detector on a pinned Detectron2 task: one record per seed and metric, plus mean ± std."""
    from mast_bench.downstream.detection.requirement import require_detectron2
    from mast_bench.downstream.detection.schedule import Hardware

    require_detectron2()
    if kw["machine_rank"] >= kw["num_machines"]:
        raise click.BadParameter(f"must be below --num-machines ({kw['num_machines']})", param_hint="--machine-rank")
    if kw["num_machines"] > 1 and kw["dist_url"] == "auto" and not kw["dry_run"]:
        raise click.BadParameter(
            "must name machine 0, e.g. tcp://HOST:PORT, with --num-machines > 1", param_hint="--dist-url"
        )
    gpus = kw["num_gpus"] if kw["num_gpus"] is not None else _gpus_present()
    try:
        hw = Hardware(num_gpus=gpus, num_machines=kw["num_machines"], ims_per_gpu=kw["ims_per_gpu"])
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not kw["dry_run"] and kw["data_root"] is None:
        raise click.BadParameter("is required unless --dry-run is given", param_hint="--data-root")
    out = prepare_out_dir(kw["out"], overwrite=True)  # records accumulate: only check that it is usable
    from mast_bench.downstream.weights import EvalWeights

    weights = EvalWeights.load(kw["weights"], from_format=kw["from_format"], arch=kw["arch"])
    name = _model_name(kw["weights"], kw["model_name"])  # the same name as the other evaluators' records
    if kw["dry_run"]:
        from mast_bench.downstream.detection.api import dry_run

        mat = dry_run(weights, kw["task"], out, name, hw, overrides=kw["overrides"])
        click.echo(f"{kw['task']}: total batch {mat.batch}, base lr {mat.lr:g} on {hw.world_size} process(es)")
        for change in mat.changes:
            click.echo(f"  {change.line()}")
        click.echo(f"config: {mat.config_path}\nweights: {mat.weights_path}")
        return
    from mast_bench.downstream.contract import summarise
    from mast_bench.downstream.detection.api import evaluate_detection

    outcomes = evaluate_detection(
        weights, kw["task"], kw["data_root"], out, name,
        seeds=tuple(range(kw["seeds"])) if kw["seeds"] else None, hardware=hw,
        machine_rank=kw["machine_rank"], dist_url=kw["dist_url"], redo=kw["redo"], overrides=kw["overrides"],
        echo=click.echo,
    )  # fmt: skip
    click.echo(summarise(outcomes))
