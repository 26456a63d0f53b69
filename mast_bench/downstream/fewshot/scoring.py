"""Run a head on a manifest's episodes over pooled features, and summarise the accuracies.

Episodes are gathered from the pool's feature matrix a chunk at a time (2000 episodes of 80 queries
of 512-d float32 features would otherwise take 330 MB at once; 128 episodes take 21 MB), solved by the
head as one batch per chunk, and scored. The summary is the protocols' own: mean accuracy ± 1.96 · std / √episodes, with
NumPy's population std (``np.std``, as AugSelf computes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mast_bench.downstream.fewshot.heads import Head, episode_accuracy

#: Episodes solved per batch: bounds the gathered features at chunk · N · (K + Q) · D floats.
DEFAULT_CHUNK = 128


def episode_accuracies(
    features: torch.Tensor, support: np.ndarray, query: np.ndarray, head: Head, chunk: int = DEFAULT_CHUNK
) -> np.ndarray:
    """Accuracy of ``head`` on every episode.

    Args:
        features: ``(P, D)`` pooled features (row i = pool image i).
        support: ``(E, N, K)`` pool indices; query: ``(E, N, Q)`` pool indices (way n's queries have label n).
        head: the head to run.
        chunk: episodes per batch.

    Returns:
        ``(E,)`` float64 accuracies in percent.
    """
    e, n_way, q = query.shape
    k, d = support.shape[2], features.shape[1]
    labels = torch.arange(n_way, device=features.device).repeat_interleave(q)
    # One buffer per side, refilled chunk by chunk: index_select into it costs a fifth of the CPU time of
    # advanced indexing into fresh tensors (measured 0.06 s vs 0.31 s for 2000 episodes of 80 queries).
    sup_buf = features.new_empty(min(chunk, e) * n_way * k, d)
    qry_buf = features.new_empty(min(chunk, e) * n_way * q, d)
    out = []
    for start in range(0, e, chunk):
        s = torch.as_tensor(support[start : start + chunk], device=features.device)
        qi = torch.as_tensor(query[start : start + chunk], device=features.device)
        b = len(s)
        sup = torch.index_select(features, 0, s.reshape(-1), out=sup_buf[: b * n_way * k])
        qry = torch.index_select(features, 0, qi.reshape(-1), out=qry_buf[: b * n_way * q])
        scores = head.scores(sup.view(b, n_way, k, d), qry.view(b, n_way * q, d))
        out.append(episode_accuracy(scores, labels).cpu())
    return torch.cat(out).numpy()


@dataclass(frozen=True)
class Summary:
    """Mean accuracy (percent) with the protocols' 95 % interval half-width and the population std."""

    mean: float
    ci95: float
    std: float
    episodes: int


def summarise(accuracies: np.ndarray) -> Summary:
    """Mean ± 1.96 · std / √E of per-episode accuracies (Ericsson et al. 2021 and AugSelf both report this)."""
    acc = np.asarray(accuracies, dtype=np.float64)
    std = float(np.std(acc))
    return Summary(float(acc.mean()), 1.96 * std / float(np.sqrt(len(acc))), std, len(acc))
