"""Few-shot classifier heads, each solving many episodes at once as batched tensors.

Every head maps a batch of episodes to class scores:

* ``support``: ``(E, N, K, D)`` features, ``support[e, c]`` the K shots of way ``c`` of episode ``e``;
* ``query``: ``(E, M, D)`` features of the episode's query images;
* returns ``(E, M, N)`` scores; the prediction is the arg-max over the N ways.

Heads (registry :data:`HEADS`, keyed by the name records carry):

``protonet``
    Class-mean prototypes, negative squared Euclidean distance (Snell et al. 2017; the head of
    Ericsson et al. 2021, ssl-transfer ``few_shot.py``).
``cosine``
    Prototypes of L2-normalised features, cosine similarity to the normalised prototype.
``logreg``
    What AugSelf (Lee et al. 2021, ``transfer_few_shot.py``) fits per episode with scikit-learn
    ``LogisticRegression(solver="liblinear")`` at its defaults: one binary L2-regularised logistic
    regression per way (one-vs-rest), ``min_w ½‖w‖² + C Σᵢ log(1 + exp(−yᵢ wᵀx̃ᵢ))`` with C = 1 and
    ``x̃ = [x, 1]`` (liblinear's intercept is an extra constant feature, so it is penalised like a
    weight); the prediction is the way with the largest decision value. Solved exactly by Newton's
    method in the span of the support features (the penalty covers every parameter, so the optimum
    is ``w = X̃ᵀa``): each step solves an ``(NK × NK)`` system per way and episode, all at once.
``ridge``
    Closed-form ridge regression on ±1 one-hot targets after whitening with the support statistics and
    appending a constant bias feature of 100, λ = 2¹⁰ (big_vision ``evaluators/fewshot_lsr.py`` and its
    configs' ``l2_reg``); solved in its dual form ``W = X̃ᵀ(X̃X̃ᵀ + λI)⁻¹Y``.

Nothing is selected: each head's constants are fixed in advance, so no split is consulted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

#: scikit-learn's default inverse regularisation strength (``LogisticRegression(C=1.0)``), AugSelf's setting.
LOGREG_C = 1.0
#: big_vision's few-shot ridge constants: bias feature value and L2 strength (``l2_reg = 2.0 ** 10``).
RIDGE_BIAS = 100.0
RIDGE_L2 = 2.0**10
#: Newton iterations at most; a problem is solved once its gradient norm is below NEWTON_RTOL times the initial one.
NEWTON_MAX_ITER = 100
NEWTON_RTOL = 1e-10
_ARMIJO = 1e-4
_STEPS = tuple(0.5**j for j in range(12))  # line-search step sizes tried, largest first


def _check(support: torch.Tensor, query: torch.Tensor) -> None:
    if support.ndim != 4 or query.ndim != 3 or support.shape[0] != query.shape[0] or support.shape[3] != query.shape[2]:
        raise ValueError(
            f"episode tensors must be support (E, N, K, D) and query (E, M, D); got {tuple(support.shape)} "
            f"and {tuple(query.shape)}"
        )


def prototype_scores(support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Negative squared Euclidean distance to the class-mean prototypes.

    Args:
        support: ``(E, N, K, D)``; query: ``(E, M, D)``.

    Returns:
        ``(E, M, N)`` scores ``−‖q − p_c‖²`` (computed in float64: ``‖q‖² − 2q·p + ‖p‖²`` loses digits in float32).
    """
    _check(support, query)
    protos = support.double().mean(dim=2)  # (E, N, D)
    q = query.double()
    d2 = q.pow(2).sum(-1, keepdim=True) - 2 * q @ protos.transpose(1, 2) + protos.pow(2).sum(-1).unsqueeze(1)
    return -d2.clamp_min_(0)


def cosine_scores(support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Cosine similarity to prototypes of L2-normalised support features.

    Returns:
        ``(E, M, N)`` cosine similarities in [−1, 1].
    """
    _check(support, query)
    protos = F.normalize(F.normalize(support.double(), dim=-1).mean(dim=2), dim=-1)
    return F.normalize(query.double(), dim=-1) @ protos.transpose(1, 2)


def ridge_scores(
    support: torch.Tensor, query: torch.Tensor, l2: float = RIDGE_L2, bias: float = RIDGE_BIAS
) -> torch.Tensor:
    """Closed-form ridge regression on whitened features (big_vision's few-shot head).

    Args:
        support: ``(E, N, K, D)``; query: ``(E, M, D)``.
        l2: ridge strength λ; bias: value of the appended constant feature (large, so barely penalised).

    Returns:
        ``(E, M, N)`` regression outputs for the ±1 one-hot targets.
    """
    _check(support, query)
    e, n_way, k, d = support.shape
    x = support.double().reshape(e, n_way * k, d)
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, keepdim=True, unbiased=False) + 1e-5  # numpy/jax std (ddof 0), as big_vision
    like = {"dtype": x.dtype, "device": x.device}
    xs = torch.cat([(x - mean) / std, torch.full((e, n_way * k, 1), bias, **like)], dim=2)
    xq = torch.cat([(query.double() - mean) / std, torch.full((e, query.shape[1], 1), bias, **like)], dim=2)
    y = 2.0 * torch.eye(n_way, **like).repeat_interleave(k, dim=0) - 1.0  # (NK, N)
    gram = xs @ xs.transpose(1, 2) + l2 * torch.eye(n_way * k, **like)
    alpha = torch.linalg.solve(gram, y.expand(e, -1, -1))  # (E, NK, N)
    return xq @ (xs.transpose(1, 2) @ alpha)


def _solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched ``matrix⁻¹ rhs`` for many small systems.

    On the CPU, NumPy's batched LAPACK loop is about three times faster than ``torch.linalg.solve`` for
    10⁴ systems of size 25 (measured 4 µs vs 13 µs each): the cost is per call, not per flop.
    """
    if matrix.device.type == "cpu":
        import numpy as np

        return torch.from_numpy(np.linalg.solve(matrix.numpy(), rhs.numpy()))
    return torch.linalg.solve(matrix, rhs)


def _objective(a: torch.Tensor, f: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """``½aᵀGa + c Σ softplus(−y f)`` with ``f = Ga`` given, per problem (last dimension summed)."""
    return 0.5 * (a * f).sum(-1) + c * F.softplus(-y * f).sum(-1)


def _logreg_dual(gram: torch.Tensor, y: torch.Tensor, c: float) -> tuple[torch.Tensor, int]:
    """Newton's method for ``min_a ½aᵀGa + c Σ softplus(−y ⊙ Ga)`` on a batch of problems.

    With ``w = X̃ᵀa`` and ``G = X̃X̃ᵀ`` this is the primal objective, so its minimiser gives liblinear's
    ``w``. A way's problem is solved once its gradient norm is below :data:`NEWTON_RTOL` times the
    initial one; episodes leave the batch when all their ways are solved. A step of 1 is taken where it
    decreases the objective enough (Armijo), else the step is halved until it does.

    Args:
        gram: ``(B, n, n)`` float64 Gram matrices, shared by the ways of an episode.
        y: ``(N, n)`` ±1 targets, one row per way.
        c: the loss weight C.

    Returns:
        ``(a, iterations)`` with ``a`` of shape ``(B, N, n)``.
    """
    b, n = gram.shape[0], gram.shape[-1]
    y = y.to(gram)
    a = torch.zeros(b, y.shape[0], n, dtype=gram.dtype, device=gram.device)
    active = torch.arange(b, device=gram.device)  # episodes still iterating
    ref = None
    n_iter = 0
    while n_iter < NEWTON_MAX_ITER:
        n_iter += 1
        g, aa = gram[active], a[active]
        f = torch.bmm(aa, g)  # decision values on the support (G is symmetric), (k, N, n)
        s = torch.sigmoid(-y * f)  # −loss'(y f)
        r = aa - c * y * s  # the gradient is G r
        grad2 = (r * torch.bmm(r, g)).sum(-1)  # ‖∇‖² in the primal metric, (k, N)
        ref = grad2.clone() if ref is None else ref
        moving = grad2 > NEWTON_RTOL**2 * ref
        if not bool(moving.all()):
            keep = moving.any(-1)
            if not bool(keep.any()):
                break
            active, ref, g, aa, f, s, r, moving = (t[keep] for t in (active, ref, g, aa, f, s, r, moving))
        # Hessian G + c G H G and gradient G r: the Newton step solves (I + c H G) Δ = r.
        if n_iter == 1:  # at a = 0 every loss'' is 1/4: one system per episode, shared by its N ways
            system = (0.25 * c) * g
            system.diagonal(dim1=-2, dim2=-1).add_(1.0)
            step = _solve(system, r.transpose(1, 2)).transpose(1, 2)
        else:
            system = (c * s * (1 - s)).unsqueeze(-1) * g.unsqueeze(1)
            system.diagonal(dim1=-2, dim2=-1).add_(1.0)
            step = _solve(system, r.unsqueeze(-1)).squeeze(-1)
        g_step = torch.bmm(step, g)
        decrement = (r * g_step).sum(-1)  # ∇ᵀΔ ≥ 0
        obj0 = _objective(aa, f, y, c)
        t = moving.to(g.dtype)  # solved ways stay where they are
        bad = moving & (_objective(aa - step, f - g_step, y, c) > obj0 - _ARMIJO * decrement)
        if bool(bad.any()):  # rare after the first iterations: backtrack only those problems
            steps = torch.tensor(_STEPS[1:], dtype=g.dtype, device=g.device).view(-1, 1, 1)
            yb = y.expand_as(f)[bad]
            obj_t = _objective(aa[bad] - steps * step[bad], f[bad] - steps * g_step[bad], yb, c)
            ok = obj_t <= obj0[bad] - _ARMIJO * steps.view(-1, 1) * decrement[bad]
            t[bad] = steps.view(-1)[torch.where(ok.any(0), ok.to(torch.uint8).argmax(0), len(_STEPS) - 2)]
        a[active] = aa - t.unsqueeze(-1) * step
    return a, n_iter


def _way_targets(n_way: int, k: int) -> torch.Tensor:
    """``(N, NK)`` one-vs-rest targets: +1 for the shots of way c, −1 elsewhere."""
    return 2.0 * torch.eye(n_way, dtype=torch.float64).repeat_interleave(k, dim=1) - 1.0


def _fit_logreg(support: torch.Tensor, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(coef (E, N, D), intercept (E, N))`` of the one-vs-rest classifiers (coef in the features' dtype)."""
    e, n_way, k, d = support.shape
    xs = support.reshape(e, n_way * k, d)
    if not xs.is_floating_point() or xs.dtype == torch.float16 or xs.dtype == torch.bfloat16:
        xs = xs.float()
    gram = (xs @ xs.transpose(1, 2)).double() + 1.0  # x̃ = [x, 1], so X̃X̃ᵀ = XXᵀ + 1
    a, _ = _logreg_dual(gram, _way_targets(n_way, k), c)
    return a.to(xs.dtype) @ xs, a.sum(-1)  # the intercept is Σᵢ aᵢ · 1


def logreg_scores(support: torch.Tensor, query: torch.Tensor, c: float = LOGREG_C) -> torch.Tensor:
    """One-vs-rest L2 logistic regression with a penalised intercept, scikit-learn liblinear's objective.

    Products with the features run in their dtype (float32 features: float32 products, which moved the
    coefficients by at most 4e-7 (K = 5) and 1.2e-6 (K = 50) of the largest one, measured against float64
    inputs on the benchmark's 512-d features: far inside liblinear's own tolerance); the Newton
    iterations always run in float64.

    Args:
        support: ``(E, N, K, D)``; query: ``(E, M, D)``.
        c: inverse regularisation strength (scikit-learn's ``C``).

    Returns:
        ``(E, M, N)`` decision values ``wᵀq + b`` of the N binary classifiers.
    """
    _check(support, query)
    coef, intercept = _fit_logreg(support, c)
    return (query.to(coef.dtype) @ coef.transpose(1, 2)).double() + intercept.unsqueeze(1)


def logreg_coefficients(support: torch.Tensor, c: float = LOGREG_C) -> tuple[torch.Tensor, torch.Tensor]:
    """The fitted one-vs-rest weights and intercepts, scikit-learn's ``coef_``/``intercept_`` per way.

    Args:
        support: ``(E, N, K, D)``.

    Returns:
        ``(coef (E, N, D), intercept (E, N))``.
    """
    return _fit_logreg(support, c)


@dataclass(frozen=True)
class Head:
    """A few-shot head: ``scores(support (E, N, K, D), query (E, M, D)) -> (E, M, N)``.

    Attributes:
        name: registry name, written into records.
        scores: the batched scoring function.
        params: the head's fixed constants, written into records (nothing is tuned).
        description: one line for help texts and docs.
    """

    name: str
    scores: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""


#: Every head, by name. Contract: a head is deterministic, treats episodes independently (a batch of
#: episodes gives the scores each would give alone) and takes nothing but the support and query features.
HEADS: dict[str, Head] = {
    h.name: h
    for h in (
        Head("protonet", prototype_scores, {"distance": "squared_euclidean"},
             "class-mean prototypes, squared Euclidean distance (Ericsson et al. 2021)"),
        Head("cosine", cosine_scores, {"distance": "cosine"}, "prototypes of L2-normalised features, cosine"),
        Head("logreg", logreg_scores, {"C": LOGREG_C, "multi_class": "ovr", "intercept_penalised": True},
             "per-episode L2 logistic regression, scikit-learn liblinear's objective (AugSelf)"),
        Head("ridge", ridge_scores, {"l2": RIDGE_L2, "bias_feature": RIDGE_BIAS, "whiten": True},
             "closed-form ridge regression on whitened features (big_vision)"),
    )
}  # fmt: skip


def episode_accuracy(scores: torch.Tensor, query_labels: torch.Tensor) -> torch.Tensor:
    """Per-episode accuracy in percent.

    Args:
        scores: ``(E, M, N)``; query_labels: ``(M,)`` or ``(E, M)`` way indices.

    Returns:
        ``(E,)`` float64 accuracies in [0, 100].
    """
    return (scores.argmax(-1) == query_labels.to(scores.device)).double().mean(-1) * 100.0
