"""Bootstrap CI over a test set: equal to SciPy's percentile bootstrap on the same draws, seeded, recorded."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from fixtures.records import make_record

from mast_bench.results.bootstrap import bootstrap_ci, with_bootstrap_ci


@pytest.mark.parametrize(("n", "resamples", "seed"), [(200, 500, 0), (57, 1000, 3), (1000, 200, 11)])
def test_matches_scipy_percentile_bootstrap(n, resamples, seed):
    correct = (np.random.default_rng(100 + n).random(n) < 0.7) * 100.0  # top-1 in percent, per example
    ours = bootstrap_ci(correct, resamples=resamples, seed=seed)
    ref = scipy.stats.bootstrap(
        (correct,), np.mean, n_resamples=resamples, method="percentile", vectorized=True,
        random_state=np.random.default_rng(seed),
    ).confidence_interval  # fmt: skip
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert ours.low <= correct.mean() <= ours.high


def test_custom_statistic_and_reproducibility():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=300)
    a = bootstrap_ci(scores, lambda b: np.median(b, axis=-1), resamples=300, seed=5)
    b = bootstrap_ci(scores, lambda b: np.median(b, axis=-1), resamples=300, seed=5)
    c = bootstrap_ci(scores, lambda b: np.median(b, axis=-1), resamples=300, seed=6)
    assert a == b and a != c
    # A wider level gives a wider interval on the same draws.
    wide = bootstrap_ci(scores, resamples=300, seed=5, level=0.99)
    narrow = bootstrap_ci(scores, resamples=300, seed=5, level=0.8)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_record_gets_half_width_and_settings():
    ci = bootstrap_ci(np.array([0.0, 100.0] * 50), resamples=100, seed=1)
    rec = with_bootstrap_ci(make_record(value=50.0), ci)
    assert rec.ci95 == pytest.approx((ci.high - ci.low) / 2)
    assert rec.extra["bootstrap"] == {"n": 100, "seed": 1, "method": "percentile", "low": ci.low, "high": ci.high}
    with pytest.raises(ValueError, match=r"a record's ci95 is a 95 % interval, got level 0\.9$"):
        with_bootstrap_ci(rec, bootstrap_ci(np.array([0.0, 100.0] * 50), resamples=100, level=0.9))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"per_example": np.ones(1)}, "at least 2 per-example scores"),
        ({"per_example": np.ones((2, 2))}, "1-d array"),
        ({"per_example": np.ones(5), "resamples": 1}, "resamples must be at least 2"),
        ({"per_example": np.ones(5), "level": 1.0}, r"level must be in \(0, 1\)"),
    ],
)
def test_bad_input(kw, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(**kw)
