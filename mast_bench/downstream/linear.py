"""Frozen-feature linear evaluation: pick the regularisation on val, refit on train+val, test once.

Selection hygiene (Ericsson et al. 2021; AugSelf, Lee et al. 2021): the grid is scored on the
validation split only; the test split is touched exactly once, by the classifier refitted on
train+val at the selected value.
Ties on val go to the first grid value in the reference order (smallest weight decay), as in
both reference implementations (a strict ``>`` while walking the grid upwards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mast_bench.downstream import metrics
from mast_bench.downstream.augself import AugSelfProbe
from mast_bench.downstream.contract import Cell, EvalRequest, Evaluator, Omitted, execute, records_of
from mast_bench.downstream.features import Features, concat, request_features
from mast_bench.downstream.probe import LogisticProbe, ProbeFit
from mast_bench.downstream.protocols import Protocol, get_protocol
from mast_bench.downstream.testset_ci import add_test_ci, check_bootstrap
from mast_bench.downstream.valsplit import copy_num_classes, plan_splits, rows
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS, EVALUATORS
from mast_bench.results.records import ResultRecord

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: Seed of the AugSelf probe's random initial weights (the ericsson probe starts from zeros).
PROBE_SEED = 0


@dataclass
class LinearResult:
    """Outcome of :func:`select_and_refit`.

    Attributes:
        value: test metric (percent).
        selected: the chosen weight decay.
        val_scores: val metric per grid value, in the protocol's grid order.
        n_iter, converged: optimiser iterations and convergence per grid value (grid order).
        refit_iter, refit_converged: the same for the train+val refit.
        per_class: :func:`mast_bench.downstream.metrics.per_class` of the test scores.
        test_scores: ``(N_test, K)`` the refit classifier's test scores (what a bootstrap interval resamples).
    """

    value: float
    selected: float
    val_scores: list[float]
    n_iter: list[int] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)
    refit_iter: int = 0
    refit_converged: bool = True
    per_class: dict[str, Any] = field(default_factory=dict)
    test_scores: Any = None


def check_applicable(protocol: Protocol, info: Any) -> None:
    """Refuse a dataset the protocol cannot evaluate honestly (before any work is done).

    Raises:
        ProtocolError: an unlabeled dataset, no validation split (``val_source == "none"``), no train/test split,
            or a multi-label dataset for a protocol without a multi-label classifier.
    """
    if info.metric == "none":
        raise ProtocolError(f"dataset {info.name!r} has no labels to evaluate with protocol {protocol.name!r}")
    if info.val_source == "none":
        raise ProtocolError(
            f"protocol {protocol.name!r} selects its regularisation on a validation split, but dataset "
            f"{info.name!r} has none (val_source 'none'); nothing may be selected on the test split"
        )
    if "train" not in info.splits or "test" not in info.splits:
        raise ProtocolError(
            f"protocol {protocol.name!r} needs train and test splits; {info.name!r} has {list(info.splits)}"
        )
    if info.multilabel and protocol.classifier != "sklearn":
        raise ProtocolError(
            f"protocol {protocol.name!r} defines no multi-label classifier for {info.name!r}; use 'ericsson' "
            "(one binary classifier per class)"
        )


def select_and_refit(
    protocol: Protocol,
    train: Features,
    val: Features,
    test: Features,
    *,
    num_classes: int,
    metric: str,
    multilabel: bool = False,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> LinearResult:
    """Fit the grid on train, select on val, refit on train+val, score test once.

    Args:
        protocol: a linear :class:`Protocol`.
        train, val, test: features ``(N, D)`` with their targets.
        num_classes: K; metric: ``top1`` | ``mean_per_class`` | ``voc07_map``.
        multilabel: targets are ``(N, K)`` multi-hot (one binary classifier per class).
        device, dtype: where and in what precision to fit.
        progress: show a bar over the grid.
    """
    grid = list(protocol.grid)
    opts: dict[str, Any] = {"num_classes": num_classes, "dtype": dtype, "device": device}
    if protocol.classifier == "sklearn":
        probe: Any = LogisticProbe(train.x, train.y, multilabel=multilabel, **opts)
        # Strongest regularisation first: each solution is a good start for the next, weaker one.
        order = sorted(range(len(grid)), key=lambda i: -grid[i])

        def fit(p: Any, wd: float) -> ProbeFit:
            return p.fit(1.0 / wd, rtol=protocol.rtol, max_iter=protocol.max_iter)
    elif protocol.classifier == "augself":
        probe = AugSelfProbe(train.x, train.y, seed=PROBE_SEED, **opts)
        order = list(range(len(grid)))  # AugSelf walks the grid upwards, warm-starting each value from the last

        def fit(p: Any, wd: float) -> ProbeFit:
            return p.fit(wd, max_iter=protocol.augself_max_iter, tolerance_grad=protocol.augself_tolerance_grad)
    else:
        raise ProtocolError(f"protocol {protocol.name!r} is not a linear-probe protocol")

    scores: dict[int, float] = {}
    iters: dict[int, int] = {}
    conv: dict[int, bool] = {}
    best: tuple[float, int, ProbeFit] | None = None
    for i in tqdm(order, desc=f"{protocol.name} grid", disable=not progress, leave=False):
        result = fit(probe, grid[i])
        scores[i] = metrics.compute(metric, result.decision_function(val.x), val.y)
        iters[i], conv[i] = result.n_iter, result.converged
        if best is None or scores[i] > best[0] or (scores[i] == best[0] and i < best[1]):
            best = (scores[i], i, result)
    if best is None:
        raise ProtocolError(f"protocol {protocol.name!r} has an empty grid")
    _, best_i, best_fit = best

    trainval = concat([train, val], "train+val")
    if protocol.classifier == "sklearn":
        refit = LogisticProbe(trainval.x, trainval.y, multilabel=multilabel, **opts)
    else:
        refit = AugSelfProbe(trainval.x, trainval.y, seed=PROBE_SEED, **opts)
    refit.warm_start(best_fit)
    final = fit(refit, grid[best_i])
    test_scores = final.decision_function(test.x)
    value = metrics.compute(metric, test_scores, test.y)
    n = len(grid)
    return LinearResult(
        value=value,
        selected=grid[best_i],
        val_scores=[scores[i] for i in range(n)],
        n_iter=[iters[i] for i in range(n)],
        converged=[conv[i] for i in range(n)],
        refit_iter=final.n_iter,
        refit_converged=final.converged,
        per_class=metrics.per_class(metric, test_scores, test.y),
        test_scores=test_scores,
    )


@dataclass(frozen=True)
class LinearOptions:
    """Options of the linear evaluator.

    Attributes:
        precision: ``float32`` or ``float64`` for the classifier (float64: only for tolerances below the protocol's).
        batch_size: images per forward pass when extracting features.
        bootstrap: resamples of a seeded percentile-bootstrap 95 % interval of the cell's metric over the test
            examples, stored as ``ci95`` (:mod:`mast_bench.downstream.testset_ci`); 0: none.
        bootstrap_seed: seed of those resamples (recorded in ``extra["bootstrap"]``).
    """

    precision: str = "float32"
    batch_size: int = 256
    bootstrap: int = 0
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in DTYPES:
            raise ValueError(f"precision must be one of {list(DTYPES)}, got {self.precision!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_bootstrap(self.bootstrap, self.bootstrap_seed)


class LinearEvaluator(Evaluator[LinearOptions]):
    """Frozen-feature linear probe: one cell (the test metric) per (weights, dataset, protocol)."""

    name = "linear"
    options_type = LinearOptions

    def plan(self, request: EvalRequest[LinearOptions]) -> list[Cell]:
        proto = get_protocol(request.protocol, task="linear")
        info = DATASETS.get(request.dataset)
        check_applicable(proto, info)
        return [request.cell(task="linear", protocol=proto.name, protocol_version=proto.version, metric=info.metric)]

    def run(self, request: EvalRequest[LinearOptions], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        [cell] = cells
        opts, root = request.options, request.data_root
        proto = get_protocol(request.protocol, task="linear")
        info = DATASETS.get(request.dataset)
        if root is None:
            raise DatasetError(f"dataset {info.name!r} needs --data-root (expected layout: {info.layout})")
        pre = proto.preprocessing(request.weights.spec)
        num_classes = copy_num_classes(info, root, request.verify)
        cache: dict[str, Features] = {}

        def feats(split: str) -> Features:
            if split not in cache:
                cache[split] = request_features(request, pre, split, opts.batch_size)
            return cache[split]

        plan = plan_splits(proto, info, root, request.records_dir(), request.verify,
                           n_train=lambda: len(feats("train")), say=request.say)
        train = rows(feats(plan.train_split), plan.train_indices, "train")
        val = rows(feats(plan.val_split), plan.val_indices, "val")
        test = feats("test")
        result = select_and_refit(
            proto, train, val, test, num_classes=num_classes, metric=info.metric,
            multilabel=info.multilabel, device=request.device, dtype=DTYPES[opts.precision], progress=request.progress,
        )
        selected = 1.0 / result.selected if proto.selected_name == "C" else result.selected
        record = cell.fill(
            result.value,
            seeds=(PROBE_SEED,),
            selected={proto.selected_name: selected},
            selected_on="val",
            extra={
                "grid_wd": list(proto.grid),
                "val_scores": result.val_scores,
                "selected_wd": result.selected,
                "n_iter": result.n_iter,
                "converged": result.converged,
                "refit_iter": result.refit_iter,
                "refit_converged": result.refit_converged,
                "n_train": len(train), "n_val": len(val), "n_test": len(test),
                "num_classes": num_classes,
                "val_split": plan.describe,
                "data_verified": request.verify,
                "feature_dim": int(train.x.shape[1]),
                "features_cached": all(f.cached for f in cache.values()),
                "preprocessing": pre.to_dict(),
                "precision": opts.precision,
                "classifier": proto.classifier,
                "per_class": result.per_class,
            },
        )
        # after the single scoring of the test split; it selects nothing
        return [add_test_ci(record, info.metric, result.test_scores, test.y,
                            resamples=opts.bootstrap, seed=opts.bootstrap_seed)]


def evaluate_linear(
    weights: Any,
    dataset: str,
    data_root: str | Path,
    protocol: str,
    out_dir: str | Path,
    model_name: str,
    verify: bool = True,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    redo: bool = False,
    *,
    precision: str = "float32",
    batch_size: int = 256,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> list[ResultRecord]:
    """Evaluate one (weights, dataset, protocol) cell through :func:`~mast_bench.downstream.contract.execute`.

    Args:
        weights: :class:`~mast_bench.downstream.weights.EvalWeights` (or a ``LoadedBackbone``).
        dataset: registry name; data_root: its folder.
        protocol: ``ericsson`` | ``augself`` | ``synthetic-linear``.
        out_dir: records folder; model_name: the record's model name.
        verify: verify the dataset copy when it is read (off: a partial copy gets a split drawn from it).
        device: ``cpu`` / ``cuda``.
        cache_dir: feature cache folder (default: ``features.default_cache_dir()``).
        redo: recompute the cell (and its features) even if its record exists.
        precision: ``float32`` or ``float64`` for the classifier.
        bootstrap: resamples of a bootstrap 95 % CI over the test examples (0: none); bootstrap_seed: their seed.
        echo: where to print per-cell lines (``None``: silent).

    Returns:
        ``[record]`` as on disk (the existing one when skipped).

    Raises:
        ProtocolError: the protocol cannot be applied to the dataset (e.g. no validation split).
    """
    request = EvalRequest(
        weights, model_name, dataset, Path(data_root), protocol,
        LinearOptions(precision, batch_size, bootstrap, bootstrap_seed),
        device=device, verify=verify, redo=redo, progress=progress,
        cache_dir=Path(cache_dir) if cache_dir is not None else None, workers=workers,
    )
    return records_of(execute(LinearEvaluator(), request, out_dir, echo=echo))


EVALUATORS.add("linear", LinearEvaluator())
