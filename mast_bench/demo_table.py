"""The demo's model × task table: a 95 % bootstrap interval per cell, and bold only where it is not noise.

Each cell of the demo is one linear probe scored once on a task's test split, so its uncertainty is
the sampling noise of that test split. :func:`bootstrap_ci95` estimates it with a seeded percentile
bootstrap over the test images (resampling the per-image correct/incorrect outcomes; for top-1 those
are fully described by the accuracy and the number of test images). The table marks a column's best
model in bold only when its lead over the runner-up exceeds the two intervals combined in quadrature,
``best − second > sqrt(h₁² + h₂²)`` with ``h`` the half-widths; the two models' errors on the same
images are positively correlated, so this is conservative (a real lead may go unmarked, noise is
not marked). Reference rows (e.g. a supervised model) are shown but never compete for bold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mast_bench.results.bootstrap import bootstrap_ci
from mast_bench.results.tables import MEAN, ComparisonTable, short_labels

#: Bootstrap resamples per cell; the half-width's Monte-Carlo error is then ≈ 2 % of its size.
RESAMPLES = 2000
CI_NOTE = (
    "± is the half-width of a 95 % percentile bootstrap interval over the test images ({resamples} resamples, "
    "seed {seed}); bold marks a column's best only where its lead over the runner-up exceeds both intervals "
    "combined (sqrt(h₁² + h₂²)); {reference} not compared"
)


def bootstrap_ci95(accuracy_pct: float, n: int, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile-bootstrap 95 % interval of a top-1 accuracy measured on ``n`` test images.

    Args:
        accuracy_pct: the measured accuracy in percent (``k / n · 100`` for ``k`` correct images).
        n: number of test images.
        seed: seeds the resampling (same inputs and seed ⇒ same interval).
        resamples: bootstrap resamples.

    Returns:
        ``(low, high)`` in percent.
    """
    if n <= 0:
        raise ValueError(f"need at least one test image, got n={n}")
    k = round(accuracy_pct / 100.0 * n)
    if n == 1:  # every resample is the one image
        return 100.0 * k, 100.0 * k
    correct = np.zeros(n, dtype=np.float64)
    correct[:k] = 100.0  # which images are correct does not change the distribution of the resampled mean
    ci = bootstrap_ci(correct, resamples=resamples, seed=seed)  # the same rng.integers(0, n, (resamples, n)) draw
    return ci.low, ci.high


def clear_best(values: dict[str, float], halfwidths: dict[str, float]) -> str | None:
    """The model whose value leads every other by more than their combined half-widths, else None."""
    ranked = sorted(((v, m) for m, v in values.items() if not math.isnan(v)), reverse=True)
    if len(ranked) < 2:
        return None
    (v1, m1), (v2, m2) = ranked[0], ranked[1]
    h1, h2 = halfwidths.get(m1, 0.0), halfwidths.get(m2, 0.0)
    h1, h2 = (0.0 if math.isnan(h) else h for h in (h1, h2))
    return m1 if v1 - v2 > math.hypot(h1, h2) else None


def render_table(table: ComparisonTable, references: Sequence[str] = (), decimals: int = 1) -> str:
    """Markdown of ``table`` (errors = bootstrap half-widths) with the noise-aware bold rule.

    The mean column's half-width is the tasks' half-widths combined as independent errors of a mean,
    ``sqrt(Σ h²) / T``.
    """
    datasets = table.datasets
    labels = short_labels(datasets)
    errors = table.errors.copy()
    errors[MEAN] = np.sqrt((table.errors[datasets] ** 2).sum(axis=1, min_count=len(datasets))) / len(datasets)
    compared = [m for m in table.models if m not in references]
    bold = {}
    for col in [*datasets, MEAN]:
        bold[col] = clear_best(
            {m: float(table.values.at[m, col]) for m in compared}, {m: float(errors.at[m, col]) for m in compared}
        )
    lines = ["| model | " + " | ".join([*(labels[d] for d in datasets), MEAN]) + " |",
             "|:--" + "|--:" * (len(datasets) + 1) + "|"]  # fmt: skip
    for model in table.models:
        cells = []
        for col in [*datasets, MEAN]:
            value, err = float(table.values.at[model, col]), float(errors.at[model, col])
            text = "–" if math.isnan(value) else f"{value:.{decimals}f}"
            if not math.isnan(value) and not math.isnan(err):
                text += f" ± {err:.{decimals}f}"
            cells.append(f"**{text}**" if bold[col] == model else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
