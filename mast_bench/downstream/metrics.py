"""Classification metrics of the transfer protocols, all returned in percent.

* ``top1`` — accuracy of the arg-max prediction.
* ``mean_per_class`` — per-class recall averaged over the classes present in the targets
  (Aircraft, Caltech-101, Flowers, Pets in Ericsson et al. 2021).
* ``voc07_map`` — PASCAL VOC2007 classification as Ericsson et al. (2021) compute it in ssl-transfer's
  ``linear.py`` (``voc_eval_cls``), so our ``ericsson`` numbers are comparable with theirs: per class,
  scikit-learn's ``precision_recall_curve`` (which appends a point at recall 0, precision 1), then the
  maximum precision at recall ≥ t for t in ``np.linspace(0, 1, 11)`` (floating-point thresholds:
  0.30000000000000004, not 0.3), averaged over the 11 thresholds and then over classes.
* ``voc07_map_devkit`` — the VOC2007 devkit's 11-point AP (``VOCevalcls.m``): the same interpolation
  over the classifier's own operating points only, at exact tenths of recall. On weak classifiers the
  two differ by several AP points per class (the appended point makes the t = 0 term 1).

Targets of both VOC metrics are multi-hot; "difficult" images count as negatives, which the dataset
loader encodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

METRICS = ("top1", "mean_per_class", "voc07_map", "voc07_map_devkit")


def _as_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _labels(pred: torch.Tensor | np.ndarray) -> np.ndarray:
    pred = _as_numpy(pred)
    return pred.argmax(1) if pred.ndim == 2 else pred


def top1(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Args: pred ``(N,)`` labels or ``(N, K)`` scores; target ``(N,)``. Returns accuracy in percent."""
    p, t = _labels(pred), _as_numpy(target)
    if len(p) != len(t) or len(t) == 0:
        raise ValueError(f"need equal, non-zero numbers of predictions and targets, got {len(p)} and {len(t)}")
    return 100.0 * float(np.mean(p == t))


def topk(scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, k: int) -> float:
    """Args: scores ``(N, K)``; target ``(N,)``. Returns the percentage whose target is among the k best scores."""
    s, t = _as_numpy(scores), _as_numpy(target)
    k = min(k, s.shape[1])
    best = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return 100.0 * float(np.mean((best == t[:, None]).any(1)))


def mean_per_class(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Mean over the classes present in ``target`` of the fraction of that class predicted correctly (percent)."""
    p, t = _labels(pred), _as_numpy(target)
    if len(p) != len(t) or len(t) == 0:
        raise ValueError(f"need equal, non-zero numbers of predictions and targets, got {len(p)} and {len(t)}")
    classes = np.unique(t)
    return 100.0 * float(np.mean([np.mean(p[t == c] == c) for c in classes]))


def _operating_points(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """True- and false-positive counts at every distinct score threshold, highest threshold first.

    Equal scores form one threshold, so the result does not depend on the order of ties.
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive).astype(bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must both be (N,), got {scores.shape} and {positive.shape}")
    n_pos = int(positive.sum())
    if n_pos == 0:
        raise ValueError("average precision is undefined for a class without positives")
    order = np.argsort(-scores, kind="stable")
    s, hit = scores[order], positive[order]
    tp, fp = np.cumsum(hit), np.cumsum(~hit)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # evaluate only where the threshold passes a whole tie group
    return tp[last_of_tie], fp[last_of_tie], n_pos


def voc07_ap_ericsson(scores: np.ndarray, positive: np.ndarray) -> float:
    """One class's AP as Ericsson et al.'s ``voc_eval_cls`` computes it (fraction in [0, 1]).

    ``precision_recall_curve`` keeps the thresholds up to the first one reaching full recall and appends
    (recall 0, precision 1); ``voc_ap`` then averages, over ``t`` in ``np.linspace(0, 1, 11)``, the largest
    precision at recall ≥ t (0 where there is none). Points past full recall never change that maximum, so
    all operating points are used here; the appended point makes the t = 0 term exactly 1.

    Args:
        scores: ``(N,)`` classifier scores.
        positive: ``(N,)`` booleans; must contain at least one positive.
    """
    tp, fp, n_pos = _operating_points(scores, positive)
    # Same float64 operations as scikit-learn: recall = tps / tps[-1], precision = tps / (tps + fps).
    precision = np.r_[tp / (tp + fp), 1.0]
    recall = np.r_[tp / float(n_pos), 0.0]
    ap = 0.0
    for t in np.linspace(0, 1, 11):
        above = precision[recall >= t]
        ap += (above.max() if above.size else 0.0) / 11.0
    return float(ap)


def voc07_ap(scores: np.ndarray, positive: np.ndarray) -> float:
    """The VOC2007 devkit's 11-point interpolated AP of one class (fraction in [0, 1]).

    Args:
        scores: ``(N,)`` classifier scores.
        positive: ``(N,)`` booleans; must contain at least one positive.

    Equal scores form one threshold (the result does not depend on the order of ties), and the
    recall levels are exact tenths.
    """
    tp, fp, n_pos = _operating_points(scores, positive)
    precision = tp / (tp + fp)
    ap = 0.0
    for k in range(11):  # recall >= k/10, compared exactly in integers (0.1 * 3 != 0.3 in floating point)
        above = precision[10 * tp >= k * n_pos]
        ap += (above.max() if above.size else 0.0) / 11.0
    return float(ap)


def _mean_ap(ap: Any, scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    s, t = _as_numpy(scores), _as_numpy(target)
    if s.shape != t.shape or s.ndim != 2:
        raise ValueError(f"scores and multi-hot targets must both be (N, K), got {s.shape} and {t.shape}")
    aps = [ap(s[:, k], t[:, k] > 0.5) for k in range(t.shape[1]) if (t[:, k] > 0.5).any()]
    if not aps:
        raise ValueError("no class has a positive example; mAP is undefined")
    return 100.0 * float(np.mean(aps))


def voc07_map(scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Mean over the classes with at least one positive of :func:`voc07_ap_ericsson` (percent).

    Args:
        scores: ``(N, K)`` per-class scores (e.g. logits of K binary classifiers).
        target: ``(N, K)`` multi-hot in {0, 1}.
    """
    return _mean_ap(voc07_ap_ericsson, scores, target)


def voc07_map_devkit(scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Mean over the classes with at least one positive of the devkit's :func:`voc07_ap` (percent).

    Args:
        scores: ``(N, K)`` per-class scores.
        target: ``(N, K)`` multi-hot in {0, 1}.
    """
    return _mean_ap(voc07_ap, scores, target)


def compute(metric: str, scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Dispatch on a dataset's metric name; ``scores`` are ``(N, K)`` logits (or ``(N,)`` labels for accuracies)."""
    if metric == "top1":
        return top1(scores, target)
    if metric == "mean_per_class":
        return mean_per_class(scores, target)
    if metric == "voc07_map":
        return voc07_map(scores, target)
    if metric == "voc07_map_devkit":
        return voc07_map_devkit(scores, target)
    raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")


def per_class(metric: str, scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """Per-class scores behind ``metric``, for a record's ``extra["per_class"]``.

    Args:
        metric: ``top1`` / ``mean_per_class`` (per-class recall: the fraction of each class's samples
            predicted as that class) or ``voc07_map`` / ``voc07_map_devkit`` (each class's 11-point AP, computed
            as the reported mean computes it).
        scores: ``(N, K)`` class scores; target: ``(N,)`` labels or ``(N, K)`` multi-hot.

    Returns:
        ``{"score": "recall" | "ap11", "values": [K percentages, None for a class absent from target],
        "support": [K counts of samples (positives) per class]}``.
    """
    s, t = _as_numpy(scores), _as_numpy(target)
    k = s.shape[1]
    ap_of = {"voc07_map": voc07_ap_ericsson, "voc07_map_devkit": voc07_ap}.get(metric)
    if ap_of is not None:  # the same per-class AP the reported mean is taken over
        pos = t > 0.5
        support = pos.sum(0).astype(int).tolist()
        values = [100.0 * ap_of(s[:, c], pos[:, c]) if support[c] else None for c in range(k)]
        return {"score": "ap11", "values": values, "support": support}
    if metric not in ("top1", "mean_per_class"):
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    p = s.argmax(1)
    support = np.bincount(t.astype(np.int64), minlength=k).tolist()
    values = [100.0 * float(np.mean(p[t == c] == c)) if support[c] else None for c in range(k)]
    return {"score": "recall", "values": values, "support": support}
