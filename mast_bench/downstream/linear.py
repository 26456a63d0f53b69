"""Frozen-feature linear evaluation: pick the regularisation on val, refit on train+val, test once.

Selection hygiene (PROTOCOLS.md §1): the grid is scored on the validation split only; the test
split is touched exactly once, by the classifier refitted on train+val at the selected value.
Ties on val go to the first grid value in the reference order (smallest weight decay), as in
both reference implementations (a strict ``>`` while walking the grid upwards).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mast_bench.downstream import metrics
from mast_bench.downstream.augself import AugSelfProbe
from mast_bench.downstream.features import Features, concat, extract_features
from mast_bench.downstream.probe import LogisticProbe, ProbeFit
from mast_bench.downstream.protocols import Protocol, get_protocol
from mast_bench.downstream.valsplit import plan_splits, rows
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS, EVALUATORS
from mast_bench.results.records import ResultRecord, read_record, record_path, write_record

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
    """

    value: float
    selected: float
    val_scores: list[float]
    n_iter: list[int] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)
    refit_iter: int = 0
    refit_converged: bool = True


def check_applicable(protocol: Protocol, info: Any) -> None:
    """Refuse a dataset the protocol cannot evaluate honestly (before any work is done).

    Raises:
        ProtocolError: no labels, no validation split (``val_source == "none"``), no train/test split,
            or a multi-label dataset for a protocol without a multi-label classifier.
    """
    if info.metric == "none" or info.num_classes <= 0:
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
    value = metrics.compute(metric, final.decision_function(test.x), test.y)
    n = len(grid)
    return LinearResult(
        value=value,
        selected=grid[best_i],
        val_scores=[scores[i] for i in range(n)],
        n_iter=[iters[i] for i in range(n)],
        converged=[conv[i] for i in range(n)],
        refit_iter=final.n_iter,
        refit_converged=final.converged,
    )


def _skeleton(backbone: Any, info: Any, protocol: Protocol, model_name: str, task: str = "linear") -> ResultRecord:
    """The record a cell will produce, minus its value: enough to know its file name in advance."""
    return ResultRecord(
        model=model_name, checkpoint_sha256=getattr(backbone, "source_sha256", "") or "", task=task,
        dataset=info.name, protocol=protocol.name, protocol_version=protocol.version, metric=info.metric,
        value=0.0, split="test",
    )


def evaluate_linear(
    backbone: Any,
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
    workers: int = 0,
    progress: bool = True,
) -> list[ResultRecord]:
    """Evaluate one (checkpoint, dataset, protocol) cell and write its record under ``out_dir``.

    Args:
        backbone: a ``LoadedBackbone`` (``model``, ``spec``, ``source_sha256``; sha ``""`` = in-memory model).
        dataset: registry name; data_root: its folder.
        protocol: ``ericsson`` | ``augself`` | ``synthetic-linear``.
        out_dir: records folder; model_name: the record's model name.
        verify: verify the dataset copy when it is read.
        device: ``cpu`` / ``cuda``.
        cache_dir: feature cache folder (default: ``features.default_cache_dir()``).
        redo: recompute a cell whose record already exists (otherwise it is returned as is).
        precision: ``float32`` or ``float64`` for the classifier.

    Returns:
        ``[record]`` (one metric per cell).

    Raises:
        ProtocolError: the protocol cannot be applied to the dataset (e.g. no validation split).
    """
    proto = get_protocol(protocol, task="linear")
    info = DATASETS.get(dataset)
    check_applicable(proto, info)
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {list(DTYPES)}, got {precision!r}")
    skeleton = _skeleton(backbone, info, proto, model_name)
    existing = record_path(out_dir, skeleton)
    if existing.is_file() and not redo:
        return [read_record(existing)]

    start = time.perf_counter()
    pre = proto.preprocessing(backbone.spec)
    plan = plan_splits(proto, info, data_root, out_dir, verify)
    cache: dict[str, Features] = {}

    def feats(split: str) -> Features:
        if split not in cache:
            cache[split] = extract_features(
                backbone, dataset, split, data_root, pre, verify=verify, device=device, batch_size=batch_size,
                workers=workers, cache_dir=cache_dir, progress=progress,
            )
        return cache[split]

    if plan.train_indices is not None and plan.val_indices is not None and plan.train_split == plan.val_split:
        n_total, have = len(plan.train_indices) + len(plan.val_indices), len(feats(plan.train_split))
        if have != n_total:
            raise DatasetError(
                f"the {proto.val_rule} validation split of {dataset!r} divides a {n_total}-image "
                f"{plan.train_split!r} split, but this copy has {have} images"
            )
    train = rows(feats(plan.train_split), plan.train_indices, "train")
    val = rows(feats(plan.val_split), plan.val_indices, "val")
    test = feats("test")
    result = select_and_refit(
        proto, train, val, test, num_classes=info.num_classes, metric=info.metric,
        multilabel=info.multilabel, device=device, dtype=DTYPES[precision], progress=progress,
    )
    selected = 1.0 / result.selected if proto.selected_name == "C" else result.selected
    record = dataclasses.replace(
        skeleton,
        value=result.value,
        seeds=(PROBE_SEED,),
        selected={proto.selected_name: selected},
        selected_on="val",
        wall_time_s=round(time.perf_counter() - start, 3),
        device=str(device),
        backbone=getattr(backbone.spec, "name", ""),
        extra={
            "grid_wd": list(proto.grid),
            "val_scores": result.val_scores,
            "selected_wd": result.selected,
            "n_iter": result.n_iter,
            "converged": result.converged,
            "refit_iter": result.refit_iter,
            "refit_converged": result.refit_converged,
            "n_train": len(train), "n_val": len(val), "n_test": len(test),
            "val_split": plan.describe,
            "feature_dim": int(train.x.shape[1]),
            "features_cached": all(f.cached for f in cache.values()),
            "preprocessing": pre.to_dict(),
            "precision": precision,
            "classifier": proto.classifier,
            "source_format": getattr(backbone, "source_format", ""),
        },
    )
    return [read_record(write_record(out_dir, record))]  # as stamped on disk (created, code_version)


EVALUATORS.add("linear", evaluate_linear)
