"""Bootstrap 95 % confidence interval over a test set, for protocols that report a single run.

A linear probe or an ImageNet evaluation is one deterministic run: its only sampling noise is the
finite test set. Resampling the test examples with replacement (Efron's percentile bootstrap) gives an
interval for that noise. The resampling is seeded and every setting goes into the record
(``extra["bootstrap"]``), so the interval can be recomputed exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mast_bench.results.records import ResultRecord

#: Resamples drawn unless asked otherwise (percentile intervals are stable to ~0.1 point at this count).
DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class BootstrapCI:
    """A percentile bootstrap interval.

    Attributes:
        low, high: interval ends (same unit as the statistic).
        half_width: ``(high - low) / 2``: what a record stores as ``ci95``.
        resamples, seed, level, n: how it was drawn (``n`` test examples).
    """

    low: float
    high: float
    resamples: int
    seed: int
    level: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "percentile bootstrap over test examples",
            "low": self.low,
            "high": self.high,
            "resamples": self.resamples,
            "seed": self.seed,
            "level": self.level,
            "n": self.n,
        }


def bootstrap_ci(
    per_example: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap interval of a statistic of the test examples.

    Args:
        per_example: ``(N,)`` per-example scores, e.g. 100 × (prediction == label) for top-1 in percent.
        statistic: maps a ``(B, N)`` batch of resampled scores to ``(B,)`` statistics (default: the mean
            over examples, i.e. accuracy for 0/100 scores).
        resamples: number of resamples B; seed: seed of the index draw (``numpy.random.default_rng``).
        level: coverage of the interval.

    Returns:
        The ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles (linear interpolation) of the statistic
        over the resamples. The draw is one ``rng.integers(0, N, (B, N))`` call, the same as
        ``scipy.stats.bootstrap(..., method="percentile", vectorized=True)`` with that generator.

    Raises:
        ValueError: fewer than 2 examples, ``resamples < 2``, or ``level`` outside (0, 1).
    """
    scores = np.asarray(per_example, dtype=np.float64)
    if scores.ndim != 1 or scores.size < 2:
        raise ValueError(f"need a 1-d array of at least 2 per-example scores, got shape {scores.shape}")
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    stat = statistic if statistic is not None else (lambda batch: batch.mean(axis=-1))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, scores.size, (resamples, scores.size))
    values = np.asarray(stat(scores[idx]), dtype=np.float64)
    alpha = (1.0 - level) / 2
    low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return BootstrapCI(float(low), float(high), resamples, seed, level, int(scores.size))


def with_bootstrap_ci(record: ResultRecord, ci: BootstrapCI) -> ResultRecord:
    """``record`` with ``ci95`` set to the interval's half-width and the settings under ``extra["bootstrap"]``.

    ``extra["bootstrap"]`` is ``{"n": resamples, "seed": seed, "method": "percentile", "low": ..., "high": ...}``.

    Raises:
        ValueError: ``ci`` is not a 95 % interval (``ci95`` holds only those).
    """
    if ci.level != 0.95:
        raise ValueError(f"a record's ci95 is a 95 % interval, got level {ci.level}")
    how = {"n": ci.resamples, "seed": ci.seed, "method": "percentile", "low": ci.low, "high": ci.high}
    return dataclasses.replace(record, ci95=ci.half_width, extra={**record.extra, "bootstrap": how})
