"""``mast-bench evaluate``: linear probes, kNN, suites of them, ImageNet linear and semi-supervised."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mast_bench.cli import main
from mast_bench.fileio import prepare_out_dir

LINEAR_PROTOCOLS = ("ericsson", "augself", "synthetic-linear")
KNN_PROTOCOLS = ("knn", "synthetic-knn")


@main.group("evaluate")
def evaluate() -> None:
    """Evaluate a checkpoint: one result record (JSON) per cell under --out."""


def _weights_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--weights", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Checkpoint or backbone weights file (any format `mast-bench convert` reads)."),
        click.option("--from", "from_format", default="auto", show_default=True,
                     help="Format of --weights (auto-detected by default)."),
        click.option("--arch", default=None, help="Backbone architecture when the file does not record it."),
        click.option("--model-name", default=None,
                     help="Name in the records (default: the file name, or its folder for final.pt/checkpoint.pt)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results/runs"),
                     show_default=True, help="Records folder (one JSON file per cell; shared by many runs)."),
        click.option("--no-verify", is_flag=True, help="Skip the dataset copy's file-count and checksum checks."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--redo", is_flag=True, help="Recompute cells whose records already exist."),
        click.option("--no-progress", is_flag=True, help="No progress bars (e.g. in logs)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _cache_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Feature cache (default $MAST_BENCH_CACHE/features or ~/.cache/mast-bench/features).")(f)


def _load_backbone(weights: Path, from_format: str, arch: str | None) -> Any:
    from mast_bench.convert import load_backbone

    return load_backbone(weights, from_format=from_format, arch=arch)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise click.BadParameter(f"{name!r} requested but no CUDA device is available", param_hint="--device")
    return name


def _model_name(weights: Path, given: str | None) -> str:
    if given:
        return given
    return weights.parent.name if weights.stem in ("final", "checkpoint") and weights.parent.name else weights.stem


def _prepare(kw: dict[str, Any]) -> dict[str, Any]:
    """Shared option handling: load the weights, resolve the device, check the records folder."""
    backbone = _load_backbone(kw.pop("weights"), kw.pop("from_format"), kw.pop("arch"))
    kw["device"] = _device(kw["device"])
    kw["verify"] = not kw.pop("no_verify")
    kw["progress"] = not kw.pop("no_progress")
    kw["out_dir"] = prepare_out_dir(kw.pop("out"), overwrite=True)  # records accumulate; only check writability
    kw["backbone"] = backbone
    return kw


def _with_backbone(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def wrapper(**kw: Any) -> Any:
        kw["model_name"] = _model_name(kw["weights"], kw["model_name"])
        return f(**_prepare(kw))

    return wrapper


def _report(records: list[Any], out_dir: Path) -> None:
    from mast_bench.results.records import record_path

    for r in records:
        chosen = ", ".join(f"{k}={v:.4g}" for k, v in r.selected.items())
        how = f" ({chosen} selected on {r.selected_on})" if chosen else ""
        click.echo(f"{r.dataset} {r.protocol} {r.metric} = {r.value:.2f}{how} -> {record_path(out_dir, r)}")


@evaluate.command("linear")
@_weights_options
@_cache_option
@click.option("--dataset", required=True, help="Dataset registry name (`mast-bench datasets list`).")
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="The dataset's folder.")
@click.option("--protocol", type=click.Choice(LINEAR_PROTOCOLS), default="ericsson", show_default=True)
@click.option("--precision", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Classifier precision; float64 is slower and only needed for tolerances below the protocol's.")
@_with_backbone
def linear_cmd(**kw: Any) -> None:
    """Linear probe: regularisation chosen on val, refit on train+val, test reported once."""
    from mast_bench.downstream.linear import evaluate_linear

    records = evaluate_linear(**kw)
    _report(records, kw["out_dir"])


@evaluate.command("knn")
@_weights_options
@_cache_option
@click.option("--dataset", required=True, help="Dataset registry name.")
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="The dataset's folder.")
@click.option("--protocol", type=click.Choice(KNN_PROTOCOLS), default="knn", show_default=True)
@_with_backbone
def knn_cmd(**kw: Any) -> None:
    """Weighted kNN (k = 10, 20, 100, 200; T = 0.07) on L2-normalised features; one record per k."""
    from mast_bench.downstream.knn import evaluate_knn

    _report(evaluate_knn(**kw), kw["out_dir"])


@evaluate.command("suite")
@_weights_options
@_cache_option
@click.option("--suite", "suite_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Suite file, e.g. downstream/transfer_ericsson.yaml.")
@click.option("--data-root", required=True, type=click.Path(path_type=Path),
              help="Parent folder of the datasets (one sub-folder per dataset unless the suite says otherwise).")
@_with_backbone
def suite_cmd(suite_file: Path, backbone: Any, data_root: Path, out_dir: Path, **kw: Any) -> None:
    """Run every cell of a suite; existing cells are skipped unless --redo; failures are summarised."""
    from mast_bench.downstream.suite import load_suite, run_suite, summarise

    suite = load_suite(suite_file)
    outcomes = run_suite(suite, backbone, data_root, out_dir, **kw)
    for o in outcomes:
        if o.status != "failed":
            _report(o.records, out_dir)
    click.echo(summarise(outcomes))
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)


def _recipe_overrides(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--epochs", type=click.IntRange(min=1), default=None,
                     help="Override the recipe's epochs (records the protocol as '<name>-custom').")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=None,
                     help="Override the recipe's batch size (records the protocol as '<name>-custom').")(f)
    f = click.option("--workers", type=click.IntRange(min=0), default=4, show_default=True,
                     help="Data-loading processes.")(f)
    return click.option("--dataset", default="imagenet", show_default=True, help="Dataset registry name.")(f)


def _recipe(default: Any, epochs: int | None, batch_size: int | None) -> Any:
    import dataclasses

    changes = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    return dataclasses.replace(default, **changes)


@evaluate.command("imagenet-linear")
@_weights_options
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="ImageNet folder.")
@_recipe_overrides
@_with_backbone
def imagenet_linear_cmd(epochs: int | None, batch_size: int | None, **kw: Any) -> None:
    """ImageNet linear evaluation (VICReg recipe: SGD, 100 epochs, cosine); top-1/top-5 of the final epoch."""
    from mast_bench.downstream.imagenet import LINEAR_RECIPE, evaluate_imagenet_linear

    _report(evaluate_imagenet_linear(recipe=_recipe(LINEAR_RECIPE, epochs, batch_size), **kw), kw["out_dir"])


@evaluate.command("semisup")
@_weights_options
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="ImageNet folder.")
@click.option("--subset", "subset_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Label subset list (SimCLR format: one train image file name per line); default: the dataset's "
                   "own train-<percent>pct split (ImageNet: <data-root>/1percent.txt or 10percent.txt).")
@click.option("--percent", type=click.Choice(["1", "10"]), required=True, help="Which published recipe to use.")
@_recipe_overrides
@_with_backbone
def semisup_cmd(percent: str, epochs: int | None, batch_size: int | None, **kw: Any) -> None:
    """Semi-supervised fine-tuning on 1 % or 10 % of the labels (VICReg recipe); final-epoch top-1/top-5."""
    from mast_bench.downstream.imagenet import SEMISUP_RECIPES, evaluate_semisup

    recipe = _recipe(SEMISUP_RECIPES[int(percent)], epochs, batch_size)
    _report(evaluate_semisup(percent=int(percent), recipe=recipe, **kw), kw["out_dir"])
