"""A test-set bootstrap 95 % interval for a cell scored once, given on request (``--bootstrap N``).

A linear probe or a kNN vote is one deterministic run: its only sampling noise is the finite test split.
After the test split has been scored, :func:`add_test_ci` resamples the test rows with replacement
(Efron's percentile bootstrap, seeded: :func:`mast_bench.results.bootstrap.bootstrap_ci`), recomputes the
cell's own metric on each resample with :func:`mast_bench.downstream.metrics.compute` (top-1, mean
per-class accuracy or VOC07 mAP alike), and stores the interval's half-width as the record's ``ci95`` with
the settings under ``extra["bootstrap"]``. Nothing is selected with it: the validation choice is made before,
on the validation split, and the reported value is the test score as computed once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mast_bench.downstream import metrics
from mast_bench.results.bootstrap import BootstrapCI, bootstrap_ci, with_bootstrap_ci
from mast_bench.results.records import ResultRecord


def check_bootstrap(resamples: int, seed: int) -> None:
    """Refuse option values the bootstrap cannot honour (one-line ``ValueError``).

    Args:
        resamples: 0 (no interval) or the number of resamples (at least 2).
        seed: seed of the resampling (``numpy.random.default_rng`` takes non-negative seeds only).
    """
    if resamples != 0 and resamples < 2:
        raise ValueError(f"bootstrap must be 0 (none) or at least 2 resamples, got {resamples}")
    if seed < 0:
        raise ValueError(f"bootstrap-seed must be >= 0, got {seed}")


def _numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def metric_ci(metric: str, scores: Any, target: Any, *, resamples: int, seed: int) -> BootstrapCI:
    """Percentile bootstrap 95 % interval of ``metric`` over the test rows.

    Args:
        metric: a :data:`mast_bench.downstream.metrics.METRICS` name.
        scores: ``(N, K)`` class scores of the N test examples; target: ``(N,)`` labels or ``(N, K)`` multi-hot.
        resamples: number of resamples B; seed: seed of the index draw.

    Returns:
        The interval; each resample is one row of ``rng.integers(0, N, (B, N))`` (the draw of
        :func:`~mast_bench.results.bootstrap.bootstrap_ci`), and its statistic is
        ``metrics.compute(metric, scores[rows], target[rows])``.
    """
    s, t = _numpy(scores), _numpy(target)
    if len(s) != len(t):
        raise ValueError(f"scores and targets disagree: {len(s)} and {len(t)} test rows")

    def statistic(batch: np.ndarray) -> np.ndarray:  # (B, N) resampled row indices, as floats (exact below 2**53)
        return np.array([metrics.compute(metric, s[i], t[i]) for i in (row.astype(np.int64) for row in batch)])

    return bootstrap_ci(np.arange(len(t), dtype=np.float64), statistic, resamples=resamples, seed=seed)


def add_test_ci(
    record: ResultRecord, metric: str, scores: Any, target: Any, *, resamples: int, seed: int
) -> ResultRecord:
    """``record`` with its test-set bootstrap interval (unchanged when ``resamples`` is 0).

    Args:
        record: the cell's finished record (its value is the metric of ``scores`` against ``target``).
        metric, scores, target, resamples, seed: as :func:`metric_ci`.

    Returns:
        The record with ``ci95`` = half-width and ``extra["bootstrap"]`` =
        ``{"n": resamples, "seed": seed, "method": "percentile", "low": ..., "high": ...}``.
    """
    if not resamples:
        return record
    return with_bootstrap_ci(record, metric_ci(metric, scores, target, resamples=resamples, seed=seed))
