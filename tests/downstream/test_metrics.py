"""Metrics against independent computations: scikit-learn for accuracies, a brute-force devkit 11-point AP,
and a transcription of Ericsson et al.'s ``voc_eval_cls`` (ssl-transfer ``linear.py``) for the ``voc07_map``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_recall_curve

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
    assert metrics.voc07_map_devkit(scores, target) == pytest.approx(100 * expected)
    assert metrics.compute("voc07_map_devkit", scores, target) == pytest.approx(100 * expected)
    ericsson = np.mean([ericsson_voc_eval_cls(target[:, k], scores[:, k]) for k in range(3)])
    assert metrics.voc07_map(scores, target) == pytest.approx(100 * ericsson, abs=1e-9)
    assert metrics.compute("voc07_map", scores, target) == pytest.approx(100 * ericsson, abs=1e-9)
    for fn in (metrics.voc07_map, metrics.voc07_map_devkit):
        with pytest.raises(ValueError, match="no class has a positive"):
            fn(scores, np.zeros_like(target))
    for ap in (metrics.voc07_ap, metrics.voc07_ap_ericsson):
        with pytest.raises(ValueError, match="without positives"):
            ap(scores[:, 0], np.zeros(40, dtype=bool))


# --------------------------------------------------------------------------- Ericsson et al.'s VOC07 AP


def ericsson_voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """Transcribed from ssl-transfer's linear.py (Ericsson, Gouk, Hospedales, CVPR 2021), ``voc_ap``."""
    ap = 0.0
    for t in np.linspace(0, 1, 11):
        if np.sum(rec >= t) == 0:
            p = 0
        else:
            p = np.max(prec[rec >= t])
        ap += p / 11.0
    return ap


def ericsson_voc_eval_cls(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Transcribed from ssl-transfer's linear.py, ``voc_eval_cls``."""
    prec, rec, _ = precision_recall_curve(y_true, y_pred)
    return ericsson_voc_ap(rec, prec)


def _random_classes(n_classes: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random scores and labels of every kind: weak to strong classifiers, rare to common positives, ties."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_classes):
        n = int(rng.integers(5, 300))
        y = rng.random(n) < rng.uniform(0.02, 0.6)
        y[rng.integers(n)] = True
        scores = rng.normal(size=n) + rng.uniform(0.0, 3.0) * y  # signal from none to strong
        if c % 3 == 0:
            scores = np.round(scores, 1)  # many tied scores
        out.append((scores, y))
    return out


def test_ericsson_ap_matches_the_transcription_of_voc_eval_cls_on_random_classes() -> None:
    diffs_devkit = []
    for scores, y in _random_classes(400, seed=0):
        ref = ericsson_voc_eval_cls(y.astype(int), scores)
        assert abs(metrics.voc07_ap_ericsson(scores, y) - ref) <= 1e-9
        diffs_devkit.append(metrics.voc07_ap(scores, y) - ref)
    # The devkit formula is a different number on many of these classes (why both are kept under their names).
    diffs = np.abs(diffs_devkit)
    assert (diffs > 1e-6).mean() > 0.1 and diffs.max() > 0.02


def test_ericsson_ap_hand_example_differs_from_the_devkit() -> None:
    # Ranked: -, +, -, +, - with 2 positives: recall 0.5 at precision 1/2, recall 1 at precision 1/2.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    positive = np.array([0, 1, 0, 1, 0], dtype=bool)
    # scikit-learn appends (recall 0, precision 1): the t = 0 term is 1; t = 0.1..1 → 1/2.
    assert metrics.voc07_ap_ericsson(scores, positive) == pytest.approx((1 + 10 * 0.5) / 11)
    assert metrics.voc07_ap(scores, positive) == pytest.approx(0.5)  # the devkit: 1/2 at every level
    # Recall exactly 3/10 fails np.linspace's 0.30000000000000004 in Ericsson's loop but meets the devkit's 0.3.
    # 10 positives in all: 3 ranked first (recall 0.3 at precision 1), then 3 negatives, then the other 7.
    scores = np.r_[np.linspace(1, 0.9, 3), np.linspace(0.5, 0.1, 3), np.linspace(0.05, 0.0, 7)]
    positive = np.r_[np.ones(3, bool), np.zeros(3, bool), np.ones(7, bool)]
    ref = ericsson_voc_eval_cls(positive.astype(int), scores)
    assert metrics.voc07_ap_ericsson(scores, positive) == pytest.approx(ref, abs=1e-12)
    assert metrics.voc07_ap(scores, positive) > metrics.voc07_ap_ericsson(scores, positive)


def test_compute_rejects_unknown_metric_and_size_mismatch() -> None:
    with pytest.raises(ValueError, match="unknown metric 'top5'"):
        metrics.compute("top5", np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="got 3 and 2"):
        metrics.top1(np.zeros(3), np.zeros(2))


def test_per_class_recall_and_ap_match_scikit_learn_and_the_ap_definition() -> None:
    from sklearn.metrics import recall_score

    from mast_bench.downstream.metrics import per_class, voc07_ap_ericsson, voc07_map

    rng = np.random.default_rng(3)
    scores, target = rng.normal(size=(200, 5)), rng.integers(0, 4, 200)  # class 4 never occurs
    per = per_class("mean_per_class", scores, target)
    expected = recall_score(target, scores.argmax(1), labels=[0, 1, 2, 3], average=None) * 100
    assert np.allclose(per["values"][:4], expected) and per["values"][4] is None
    assert per["support"] == np.bincount(target, minlength=5).tolist()
    multi = (rng.random((50, 3)) < 0.3).astype(float)
    multi[:, 2] = 0
    per = per_class("voc07_map", scores[:50, :3], multi)
    assert per["values"][:2] == [100 * voc07_ap_ericsson(scores[:50, k], multi[:, k] > 0) for k in range(2)]
    assert np.mean(per["values"][:2]) == pytest.approx(voc07_map(scores[:50, :3], multi))
    assert per["values"][2] is None and per["score"] == "ap11"
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        per_class("f1", scores, target)
