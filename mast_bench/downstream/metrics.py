"""Classification metrics of the transfer protocols, all returned in percent.

* ``top1`` — accuracy of the arg-max prediction.
* ``mean_per_class`` — per-class recall averaged over the classes present in the targets
  (Aircraft, Caltech-101, Flowers, Pets in Ericsson et al. 2021).
* ``voc07_map`` — PASCAL VOC2007 classification: per-class 11-point interpolated average precision
  (precision taken as its maximum at recall ≥ t for t = 0, 0.1, …, 1), averaged over classes.
  Targets are multi-hot; "difficult" images count as negatives, which the dataset loader encodes.
"""

from __future__ import annotations

import numpy as np
import torch

METRICS = ("top1", "mean_per_class", "voc07_map")


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


def voc07_ap(scores: np.ndarray, positive: np.ndarray) -> float:
    """11-point interpolated AP of one class (fraction in [0, 1]).

    Args:
        scores: ``(N,)`` classifier scores.
        positive: ``(N,)`` booleans; must contain at least one positive.

    Equal scores form one threshold (the result does not depend on the order of ties), and the
    recall levels are exact tenths.
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive).astype(bool)
    n_pos = int(positive.sum())
    if n_pos == 0:
        raise ValueError("average precision is undefined for a class without positives")
    order = np.argsort(-scores, kind="stable")
    s, hit = scores[order], positive[order]
    tp, fp = np.cumsum(hit), np.cumsum(~hit)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # evaluate only where the threshold passes a whole tie group
    tp, fp = tp[last_of_tie], fp[last_of_tie]
    precision = tp / (tp + fp)
    ap = 0.0
    for k in range(11):  # recall >= k/10, compared exactly in integers (0.1 * 3 != 0.3 in floating point)
        above = precision[10 * tp >= k * n_pos]
        ap += (above.max() if above.size else 0.0) / 11.0
    return float(ap)


def voc07_map(scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Mean 11-point AP over the classes with at least one positive (percent).

    Args:
        scores: ``(N, K)`` per-class scores (e.g. logits of K binary classifiers).
        target: ``(N, K)`` multi-hot in {0, 1}.
    """
    s, t = _as_numpy(scores), _as_numpy(target)
    if s.shape != t.shape or s.ndim != 2:
        raise ValueError(f"scores and multi-hot targets must both be (N, K), got {s.shape} and {t.shape}")
    aps = [voc07_ap(s[:, k], t[:, k] > 0.5) for k in range(t.shape[1]) if (t[:, k] > 0.5).any()]
    if not aps:
        raise ValueError("no class has a positive example; mAP is undefined")
    return 100.0 * float(np.mean(aps))


def compute(metric: str, scores: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Dispatch on a dataset's metric name; ``scores`` are ``(N, K)`` logits (or ``(N,)`` labels for accuracies)."""
    if metric == "top1":
        return top1(scores, target)
    if metric == "mean_per_class":
        return mean_per_class(scores, target)
    if metric == "voc07_map":
        return voc07_map(scores, target)
    raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
