"""``mast-bench evaluate``: linear probes, kNN, suites of them, ImageNet linear and semi-supervised."""

from __future__ import annotations

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
        click.option("--no-verify", is_flag=True,
                     help="Skip the dataset copy's file-count and checksum checks; a partial copy then gets a seeded "
                          "validation split drawn from it (recorded as data_verified: false)."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--redo", is_flag=True, help="Recompute cells whose records already exist, and their features."),
        click.option("--no-progress", is_flag=True, help="No progress bars (e.g. in logs)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _cache_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the commands that extract frozen features: the feature cache and the extraction precision."""
    f = click.option("--feature-precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
                     help="Frozen-feature extraction precision: the protocols' fp32, or bf16 autocast on a GPU "
                          "(faster; recorded in each record; a separate feature-cache entry).")(f)
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Feature cache (default $MAST_BENCH_CACHE/features or ~/.cache/mast-bench/features).")(f)


def _bootstrap_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the evaluators scored once on a test split: an opt-in test-set bootstrap interval."""
    f = click.option("--bootstrap-seed", type=int, default=0, show_default=True,
                     help="Seed of the --bootstrap resamples (recorded with the interval).")(f)
    return click.option("--bootstrap", type=int, default=0, show_default=True, metavar="N",
                        help="After the test split is scored, a seeded percentile-bootstrap 95 % interval of each "
                             "cell's metric over N resamples of the test examples (e.g. 1000), recorded as ci95; "
                             "0: none. Selects nothing; does not change which record a cell is.")(f)


def _bootstrap(kw: dict[str, Any]) -> dict[str, int]:
    """``--bootstrap`` / ``--bootstrap-seed`` as option fields; a bad value is a one-line error before any work."""
    from mast_bench.config import ConfigError
    from mast_bench.downstream.testset_ci import check_bootstrap

    settings = {"bootstrap": kw.pop("bootstrap"), "bootstrap_seed": kw.pop("bootstrap_seed")}
    try:
        check_bootstrap(settings["bootstrap"], settings["bootstrap_seed"])
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from None
    return settings


def _load_backbone(weights: Path, from_format: str, arch: str | None) -> Any:
    from mast_bench.downstream.weights import EvalWeights

    return EvalWeights.load(weights, from_format=from_format, arch=arch)


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


def _settings(kw: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Shared option handling: check the records folder first, then load the weights.

    Returns:
        (records folder, the ``EvalRequest`` fields every evaluation shares).
    """
    out = prepare_out_dir(kw["out"], overwrite=True)  # before any work: records accumulate, so only usability
    device = _device(kw["device"])
    weights = _load_backbone(kw["weights"], kw["from_format"], kw["arch"])
    return out, {
        "weights": weights, "model_name": _model_name(kw["weights"], kw["model_name"]), "device": device,
        "verify": not kw["no_verify"], "redo": kw["redo"], "progress": not kw["no_progress"],
        "cache_dir": kw.get("cache_dir"), "workers": kw.get("workers", 0),
        "feature_precision": kw.get("feature_precision", "fp32"),
    }


def _request(kw: dict[str, Any], dataset: str, data_root: Path, protocol: str, options: Any) -> tuple[Any, Path]:
    """(the evaluation request of one command, the records folder)."""
    from mast_bench.downstream.contract import EvalRequest

    out, common = _settings(kw)
    return EvalRequest(dataset=dataset, data_root=data_root, protocol=protocol, options=options, **common), out


def _execute(evaluator: Any, request: Any, out: Path) -> None:
    from mast_bench.downstream.contract import execute, summarise

    click.echo(summarise(execute(evaluator, request, out, echo=click.echo)))


@evaluate.command("linear")
@_weights_options
@_cache_option
@click.option("--dataset", required=True, help="Dataset registry name (`mast-bench datasets list`).")
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="The dataset's folder.")
@click.option("--protocol", type=click.Choice(LINEAR_PROTOCOLS), default="ericsson", show_default=True)
@click.option("--precision", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Classifier precision; float64 is slower and only needed for tolerances below the protocol's.")
@_bootstrap_option
def linear_cmd(dataset: str, data_root: Path, protocol: str, precision: str, **kw: Any) -> None:
    """Linear probe: regularisation chosen on val, refit on train+val, test reported once."""
    from mast_bench.downstream.linear import LinearEvaluator, LinearOptions

    options = LinearOptions(precision=precision, **_bootstrap(kw))
    request, out = _request(kw, dataset, data_root, protocol, options)
    _execute(LinearEvaluator(), request, out)


@evaluate.command("knn")
@_weights_options
@_cache_option
@click.option("--dataset", required=True, help="Dataset registry name.")
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="The dataset's folder.")
@click.option("--protocol", type=click.Choice(KNN_PROTOCOLS), default="knn", show_default=True)
@_bootstrap_option
def knn_cmd(dataset: str, data_root: Path, protocol: str, **kw: Any) -> None:
    """Weighted kNN (k = 10, 20, 100, 200; T = 0.07) on L2-normalised features; one record per k."""
    from mast_bench.downstream.knn import KnnEvaluator, KnnOptions

    request, out = _request(kw, dataset, data_root, protocol, KnnOptions(**_bootstrap(kw)))
    _execute(KnnEvaluator(), request, out)


@evaluate.command("suite")
@_weights_options
@_cache_option
@click.option("--suite", "suite_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Suite file, e.g. downstream/transfer_ericsson.yaml.")
@click.option("--data-root", required=True, type=click.Path(path_type=Path),
              help="Parent folder of the datasets (one sub-folder per dataset unless the suite says otherwise).")
@click.option("--shard", default=None, metavar="I/N",
              help="Run only shard I of N (0 <= I < N) of the suite's cells; N jobs with I = 0 .. N-1 cover the "
                   "suite exactly once (e.g. a Slurm job array, docs/cluster.md).")
@_bootstrap_option
def suite_cmd(suite_file: Path, data_root: Path, shard: str | None, **kw: Any) -> None:
    """Run every cell of a suite; existing cells are skipped unless --redo; failures are summarised."""
    from mast_bench.downstream.contract import summarise
    from mast_bench.downstream.shard import parse_shard
    from mast_bench.downstream.suite import cells, load_suite, run_suite

    part = parse_shard(shard)  # a bad value fails before anything is read or written
    resampling = _bootstrap(kw)
    suite = load_suite(suite_file)
    out, common = _settings(kw)
    weights, model_name = common.pop("weights"), common.pop("model_name")
    if part.count > 1:
        click.echo(f"shard {part}: {len(part.select(cells(suite)))} of {len(cells(suite))} cells")
    outcomes = run_suite(suite, weights, data_root, out, model_name, echo=click.echo, shard=part, **resampling,
                         **common)
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
def imagenet_linear_cmd(
    data_root: Path, dataset: str, epochs: int | None, batch_size: int | None, **kw: Any
) -> None:
    """ImageNet linear evaluation (VICReg recipe: SGD, 100 epochs, cosine); top-1/top-5 of the final epoch."""
    from mast_bench.downstream.imagenet import LINEAR_RECIPE, FinetuneOptions, ImagenetLinearEvaluator

    options = FinetuneOptions(recipe=_recipe(LINEAR_RECIPE, epochs, batch_size))
    request, out = _request(kw, dataset, data_root, LINEAR_RECIPE.name, options)
    _execute(ImagenetLinearEvaluator(), request, out)


@evaluate.command("semisup")
@_weights_options
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="ImageNet folder.")
@click.option("--subset", "subset_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Label subset list (SimCLR format: one train image file name per line); default: the dataset's "
                   "own train-<percent>pct split (ImageNet: <data-root>/1percent.txt or 10percent.txt).")
@click.option("--percent", type=click.Choice(["1", "10"]), required=True, help="Which published recipe to use.")
@_recipe_overrides
def semisup_cmd(
    data_root: Path, subset_file: Path | None, percent: str, dataset: str, epochs: int | None,
    batch_size: int | None, **kw: Any,
) -> None:
    """Semi-supervised fine-tuning on 1 % or 10 % of the labels (VICReg recipe); final-epoch top-1/top-5."""
    from mast_bench.downstream.imagenet import SEMISUP_RECIPES, FinetuneOptions, SemisupEvaluator

    default = SEMISUP_RECIPES[int(percent)]
    options = FinetuneOptions(_recipe(default, epochs, batch_size), percent=int(percent), subset_file=subset_file)
    request, out = _request(kw, dataset, data_root, default.name, options)
    _execute(SemisupEvaluator(), request, out)
