"""Weighted k-nearest-neighbour evaluation on frozen features (PROTOCOLS.md §6).

Features are L2-normalised; each query's k most cosine-similar bank samples vote for their class
with weight ``exp(similarity / T)`` (Wu et al. 2018, as used by DINO), k ∈ {10, 20, 100, 200},
T = 0.07. Nothing is selected: every k is reported as its own record (protocol ``<name>-k<k>``).
The bank is the train split plus the validation split where one exists (no selection is made,
so the validation images are just more labelled data); queries are the test split.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mast_bench.downstream import metrics
from mast_bench.downstream.features import Features, concat, extract_features
from mast_bench.downstream.protocols import get_protocol
from mast_bench.errors import ProtocolError
from mast_bench.registry import DATASETS, EVALUATORS
from mast_bench.results.records import ResultRecord, read_record, record_path, write_record


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


def evaluate_knn(
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
    batch_size: int = 256,
    workers: int = 0,
    progress: bool = True,
) -> list[ResultRecord]:
    """Evaluate one (checkpoint, dataset) cell with weighted kNN; one record per k.

    Args: as :func:`mast_bench.downstream.linear.evaluate_linear`; ``protocol`` is ``knn`` (224 px)
        or ``synthetic-knn`` (native size).

    Raises:
        ProtocolError: a multi-label or unlabeled dataset, or one without train/test splits.
    """
    proto = get_protocol(protocol, task="knn")
    info = DATASETS.get(dataset)
    if info.multilabel or info.metric not in ("top1", "mean_per_class"):
        raise ProtocolError(f"kNN votes for one class; dataset {dataset!r} (metric {info.metric!r}) cannot use it")
    if "train" not in info.splits or "test" not in info.splits:
        raise ProtocolError(f"kNN needs train and test splits; {dataset!r} has {list(info.splits)}")
    sha = getattr(backbone, "source_sha256", "") or ""
    skeletons = [
        ResultRecord(
            model=model_name, checkpoint_sha256=sha, task="knn", dataset=dataset, protocol=f"{proto.name}-k{k}",
            protocol_version=proto.version, metric=info.metric, value=0.0, split="test",
        )
        for k in proto.ks
    ]
    paths = [record_path(out_dir, s) for s in skeletons]
    if not redo and all(p.is_file() for p in paths):
        return [read_record(p) for p in paths]

    start = time.perf_counter()
    pre = proto.preprocessing(backbone.spec)
    bank_splits = ["train", "val"] if "val" in info.splits and info.val_source != "none" else ["train"]

    def feats(split: str) -> Features:
        return extract_features(
            backbone, dataset, split, data_root, pre, verify=verify, device=device, batch_size=batch_size,
            workers=workers, cache_dir=cache_dir, progress=progress,
        )

    bank = concat([feats(s) for s in bank_splits], "+".join(bank_splits))
    test = feats("test")
    scores = knn_scores(bank.x, bank.y, test.x, info.num_classes, proto.ks, proto.temperature)
    wall = round(time.perf_counter() - start, 3)
    records = []
    for k, skeleton in zip(proto.ks, skeletons):
        record = dataclasses.replace(
            skeleton,
            value=metrics.compute(info.metric, scores[k], test.y),
            selected_on="none",
            wall_time_s=wall,
            device=str(device),
            backbone=getattr(backbone.spec, "name", ""),
            extra={
                "k": k, "temperature": proto.temperature, "bank": bank.split, "n_bank": len(bank), "n_test": len(test),
                "preprocessing": pre.to_dict(), "features_cached": bank.cached and test.cached,
                "source_format": getattr(backbone, "source_format", ""),
            },
        )
        records.append(read_record(write_record(out_dir, record)))  # as stamped on disk
    return records


EVALUATORS.add("knn", evaluate_knn)
