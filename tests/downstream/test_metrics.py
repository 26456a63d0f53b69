"""Metrics against independent computations: scikit-learn for accuracies, a brute-force 11-point AP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from mast_bench.downstream import metrics


def brute_force_voc07_ap(scores: np.ndarray, positive: np.ndarray) -> float:
    """11-point AP by definition: precision/recall counted directly at every distinct threshold."""
    n_pos = positive.sum()
    points = []
    for thr in np.unique(scores):
        predicted = scores >= thr
        tp = np.sum(predicted & positive)
        points.append((tp / n_pos, tp / predicted.sum()))
    total = 0.0
    for t in [i / 10 for i in range(11)]:
        eligible = [p for r, p in points if r >= t - 1e-12]  # exact tenths
        total += max(eligible) if eligible else 0.0
    return total / 11


def test_top1_and_mean_per_class_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 500)
    y[:7] = np.arange(7)  # every class present
    scores = rng.normal(size=(500, 7))
    scores[np.arange(500), y] += rng.normal(1.0, 1.0, 500) * (y + 1) / 4  # class-dependent accuracy
    pred = scores.argmax(1)
    assert metrics.top1(torch.tensor(scores), torch.tensor(y)) == pytest.approx(100 * accuracy_score(y, pred))
    assert metrics.mean_per_class(scores, y) == pytest.approx(100 * balanced_accuracy_score(y, pred))
    # The two differ on unbalanced, class-dependent errors (so each is really computed).
    assert abs(metrics.top1(pred, y) - metrics.mean_per_class(pred, y)) > 0.1


def test_mean_per_class_ignores_classes_absent_from_targets() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])  # class 2 only predicted: not a class of this split
    assert metrics.mean_per_class(pred, y) == pytest.approx(75.0)


def test_topk_counts_target_among_best_k() -> None:
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.3, 0.2, 0.4]])
    y = np.array([2, 2, 0])
    assert metrics.topk(scores, y, 1) == pytest.approx(0.0)
    assert metrics.topk(scores, y, 2) == pytest.approx(100 * 2 / 3)
    assert metrics.topk(scores, y, 5) == pytest.approx(100.0)


def test_voc07_ap_hand_example() -> None:
    # Ranked: +, -, +, -, - with 2 positives: recall 0.5 at precision 1, recall 1 at precision 2/3.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    positive = np.array([1, 0, 1, 0, 0], dtype=bool)
    expected = (6 * 1.0 + 5 * (2 / 3)) / 11  # t = 0..0.5 → 1, t = 0.6..1 → 2/3
    assert metrics.voc07_ap(scores, positive) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_voc07_ap_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positive = rng.random(60) < 0.3
    positive[0] = True
    scores = np.round(rng.normal(size=60) + positive, 1)  # rounding creates tied scores
    assert metrics.voc07_ap(scores, positive) == pytest.approx(brute_force_voc07_ap(scores, positive), abs=1e-12)
    # Tie order does not matter.
    perm = rng.permutation(60)
    assert metrics.voc07_ap(scores[perm], positive[perm]) == pytest.approx(metrics.voc07_ap(scores, positive))


def test_voc07_map_averages_classes_with_positives() -> None:
    rng = np.random.default_rng(1)
    target = (rng.random((40, 4)) < 0.4).astype(np.float32)
    target[:, 3] = 0  # no positive: excluded, not counted as 0
    scores = rng.normal(size=(40, 4)) + target
    expected = np.mean([brute_force_voc07_ap(scores[:, k], target[:, k] > 0) for k in range(3)])
    assert metrics.voc07_map(scores, target) == pytest.approx(100 * expected)
    with pytest.raises(ValueError, match="no class has a positive"):
        metrics.voc07_map(scores, np.zeros_like(target))
    with pytest.raises(ValueError, match="without positives"):
        metrics.voc07_ap(scores[:, 0], np.zeros(40, dtype=bool))


def test_compute_rejects_unknown_metric_and_size_mismatch() -> None:
    with pytest.raises(ValueError, match="unknown metric 'top5'"):
        metrics.compute("top5", np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="got 3 and 2"):
        metrics.top1(np.zeros(3), np.zeros(2))
