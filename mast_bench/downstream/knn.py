"""Weighted k-nearest-neighbour evaluation on frozen features (Wu et al. 2018; DINO's ``eval_knn.py``).

Features are L2-normalised; each query's k most cosine-similar bank samples vote for their class
with weight ``exp(similarity / T)`` (Wu et al. 2018, as used by DINO), k ∈ {10, 20, 100, 200},
T = 0.07. Nothing is selected: every k is reported as its own record (protocol ``<name>-k<k>``).
The bank is the train split plus the copy's own validation split where it has one (no selection is
made, so the validation images are just more labelled data); queries are the test split. No
validation split is needed. A k larger than the bank would be a vote of the whole bank, not a
k-NN result: such a cell is omitted with a warning, and the other records list it
(``extra["omitted_k"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mast_bench.downstream import metrics
from mast_bench.downstream.contract import Cell, EvalRequest, Evaluator, Omitted, execute, records_of
from mast_bench.downstream.features import concat, request_features
from mast_bench.downstream.protocols import get_protocol
from mast_bench.downstream.testset_ci import add_test_ci, check_bootstrap
from mast_bench.downstream.valsplit import copy_num_classes, has_official_val
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS, EVALUATORS
from mast_bench.results.records import ResultRecord


def knn_scores(
    bank_x: torch.Tensor,
    bank_y: torch.Tensor,
    query_x: torch.Tensor,
    num_classes: int,
    ks: tuple[int, ...] = (10, 20, 100, 200),
    temperature: float = 0.07,
    chunk: int = 512,
) -> dict[int, torch.Tensor]:
    """Class scores of a weighted kNN vote for several k at once.

    Args:
        bank_x: ``(M, D)`` labelled features; bank_y: ``(M,)`` labels.
        query_x: ``(N, D)`` features to classify.
        num_classes: K.
        ks: neighbour counts (each capped at M).
        temperature: T in ``exp(sim / T)``.
        chunk: queries per similarity block (bounds memory at ``chunk × M``).

    Returns:
        ``{k: (N, K) summed vote weights}``; the prediction is the arg-max.
    """
    if len(bank_x) != len(bank_y):
        raise ValueError(f"kNN bank features and labels disagree: {len(bank_x)} rows but {len(bank_y)} labels")
    bank = F.normalize(bank_x.float(), dim=1)
    queries = F.normalize(query_x.float(), dim=1)
    kmax = min(max(ks), len(bank))
    out = {k: torch.zeros(len(queries), num_classes) for k in ks}
    for start in range(0, len(queries), chunk):
        sim = queries[start : start + chunk] @ bank.T
        top_sim, top_idx = sim.topk(kmax, dim=1)  # sorted, most similar first
        weights = (top_sim / temperature).exp()
        labels = bank_y[top_idx]
        for k in ks:
            kk = min(k, kmax)
            block = torch.zeros(len(sim), num_classes).scatter_add_(1, labels[:, :kk], weights[:, :kk])
            out[k][start : start + chunk] = block
    return out


@dataclass(frozen=True)
class KnnOptions:
    """Options of the kNN evaluator.

    Attributes:
        batch_size: images per forward pass when extracting features.
        bootstrap: resamples of a seeded percentile-bootstrap 95 % interval over the test examples, stored as each
            record's ``ci95`` (:mod:`mast_bench.downstream.testset_ci`); 0: none.
        bootstrap_seed: seed of those resamples (recorded in ``extra["bootstrap"]``).
    """

    batch_size: int = 256
    bootstrap: int = 0
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_bootstrap(self.bootstrap, self.bootstrap_seed)


class KnnEvaluator(Evaluator[KnnOptions]):
    """Weighted kNN: one cell per k of the protocol (``<protocol>-k<k>``), all from one pass over the data."""

    name = "knn"
    options_type = KnnOptions

    def plan(self, request: EvalRequest[KnnOptions]) -> list[Cell]:
        proto = get_protocol(request.protocol, task="knn")
        info = DATASETS.get(request.dataset)
        if info.multilabel or info.metric not in ("top1", "mean_per_class"):
            raise ProtocolError(
                f"kNN votes for one class; dataset {info.name!r} (metric {info.metric!r}) cannot use it"
            )
        if "train" not in info.splits or "test" not in info.splits:
            raise ProtocolError(f"kNN needs train and test splits; {info.name!r} has {list(info.splits)}")
        return [
            request.cell(task="knn", protocol=f"{proto.name}-k{k}", protocol_version=proto.version, metric=info.metric)
            for k in proto.ks
        ]

    def run(self, request: EvalRequest[KnnOptions], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        proto = get_protocol(request.protocol, task="knn")
        info = DATASETS.get(request.dataset)
        root = request.data_root
        if root is None:
            raise DatasetError(f"dataset {info.name!r} needs --data-root (expected layout: {info.layout})")
        ks = {f"{proto.name}-k{k}": k for k in proto.ks}
        pre = proto.preprocessing(request.weights.spec)
        num_classes = copy_num_classes(info, root, request.verify)
        bank_splits = ["train", "val"] if has_official_val(info, root) else ["train"]
        bank = concat([request_features(request, pre, s, request.options.batch_size) for s in bank_splits],
                      "+".join(bank_splits))
        test = request_features(request, pre, "test", request.options.batch_size)
        wanted = [ks[c.skeleton.protocol] for c in cells]
        usable = [k for k in wanted if k <= len(bank)]
        omitted_k = [k for k in proto.ks if k > len(bank)]
        if omitted_k:
            request.say(
                f"warning: the {info.name!r} kNN bank has {len(bank)} images; "
                f"{', '.join(f'k={k}' for k in omitted_k)} would exceed it: omitted"
            )
        scores = knn_scores(bank.x, bank.y, test.x, num_classes, tuple(usable), proto.temperature) if usable else {}
        results: list[ResultRecord | Omitted] = []
        for cell in cells:
            k = ks[cell.skeleton.protocol]
            if k > len(bank):
                results.append(Omitted(cell, f"k={k} exceeds the {len(bank)}-image bank"))
                continue
            record = cell.fill(
                metrics.compute(info.metric, scores[k], test.y),
                selected_on="none",
                extra={
                    "k": k, "temperature": proto.temperature, "bank": bank.split, "n_bank": len(bank),
                    "n_test": len(test), "num_classes": num_classes, "omitted_k": omitted_k,
                    "preprocessing": pre.to_dict(), "features_cached": bank.cached and test.cached,
                    "data_verified": request.verify,
                    "per_class": metrics.per_class(info.metric, scores[k], test.y),
                },
            )
            opts = request.options  # after the single scoring of the test split; selects nothing
            results.append(add_test_ci(record, info.metric, scores[k], test.y,
                                       resamples=opts.bootstrap, seed=opts.bootstrap_seed))
        return results


def evaluate_knn(
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
    batch_size: int = 256,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> list[ResultRecord]:
    """Evaluate one (weights, dataset) cell group with weighted kNN; one record per k (omitted k: none).

    Args: as :func:`mast_bench.downstream.linear.evaluate_linear`; ``protocol`` is ``knn`` (224 px)
        or ``synthetic-knn`` (native size); ``bootstrap``, ``bootstrap_seed``: as :class:`KnnOptions`.

    Raises:
        ProtocolError: a multi-label or unlabeled dataset, or one without train/test splits.
    """
    request = EvalRequest(
        weights, model_name, dataset, Path(data_root), protocol, KnnOptions(batch_size, bootstrap, bootstrap_seed),
        device=device, verify=verify, redo=redo, progress=progress,
        cache_dir=Path(cache_dir) if cache_dir is not None else None, workers=workers,
    )
    return records_of(execute(KnnEvaluator(), request, out_dir, echo=echo))


EVALUATORS.add("knn", KnnEvaluator())
