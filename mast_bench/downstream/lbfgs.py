"""A small full-batch L-BFGS minimiser for smooth convex objectives on flat torch tensors.

Used by :mod:`mast_bench.downstream.probe` for the scikit-learn-equivalent logistic regression.
It differs from ``torch.optim.LBFGS`` in what the probe needs: the objective returns its value
and gradient in one call (no autograd), the caller decides convergence from the gradient (so
the stopping rule can be stated in scikit-learn's coordinates), and the line search is a plain
Armijo backtracking from the unit step, which for a well-preconditioned convex problem accepts
the first trial almost always and so costs one function evaluation per iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

#: Sufficient-decrease constant of the Armijo condition (Nocedal & Wright, Numerical Optimization, §3.1).
ARMIJO_C1 = 1e-4
#: Most step halvings before the search gives up (the objective can no longer be decreased in this precision).
MAX_BACKTRACKS = 30


@dataclass
class LBFGSResult:
    """Outcome of :func:`minimize_lbfgs`.

    Attributes:
        x: the final iterate (same shape as ``x0``).
        value: objective at ``x``.
        n_iter: iterations taken (accepted steps).
        n_eval: objective evaluations.
        converged: the caller's stopping test passed, or the relative decrease fell below ``ftol``.
        reason: ``"converged"``, ``"ftol"``, ``"max_iter"`` or ``"line_search"``.
        pairs: the final correction pairs ``(s, y)`` (oldest first), to seed a related problem.
    """

    x: torch.Tensor
    value: float
    n_iter: int
    n_eval: int
    converged: bool
    reason: str
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


def _two_loop(
    grad: torch.Tensor, s_hist: list[torch.Tensor], y_hist: list[torch.Tensor], rho: list[float]
) -> torch.Tensor:
    """Apply the L-BFGS inverse-Hessian approximation to ``grad`` (Nocedal & Wright, Algorithm 7.4)."""
    q = grad.clone()
    alphas = []
    for s, y, r in zip(reversed(s_hist), reversed(y_hist), reversed(rho)):
        a = r * float(torch.dot(s, q))
        alphas.append(a)
        q.add_(y, alpha=-a)
    if s_hist:
        s, y = s_hist[-1], y_hist[-1]
        q.mul_(float(torch.dot(s, y)) / float(torch.dot(y, y)))
    for s, y, r, a in zip(s_hist, y_hist, rho, reversed(alphas)):
        b = r * float(torch.dot(y, q))
        q.add_(s, alpha=a - b)
    return q


def minimize_lbfgs(
    fun: Callable[[torch.Tensor], tuple[float, torch.Tensor]],
    x0: torch.Tensor,
    *,
    done: Callable[[torch.Tensor, float, torch.Tensor, float], bool],
    max_iter: int,
    history: int = 10,
    ftol: float | None = None,
    initial: tuple[float, torch.Tensor] | None = None,
    min_iter: int = 0,
    pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> LBFGSResult:
    """Minimise ``fun`` from ``x0``.

    Args:
        fun: ``fun(x) -> (value, gradient)`` with ``x`` and the gradient 1-D tensors of equal shape.
        x0: starting point ``(P,)``; not modified.
        done: ``done(x, value, gradient, decrement) -> bool``, the convergence test, checked before every
            step; ``decrement`` = ``gᵀHg / 2`` with H the current inverse-Hessian approximation, an estimate
            of the distance ``f(x) - min f``.
        max_iter: most accepted steps.
        history: number of correction pairs kept (scikit-learn / scipy use 10).
        ftol: stop when ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`` (scipy's L-BFGS-B rule).
            Default: 64 machine epsilons for float64 (scikit-learn's setting); one epsilon for lower
            precision, whose round-off in the objective is already of that order.
        initial: ``fun(x0)`` when the caller already knows it (saves one evaluation).
        min_iter: steps taken before ``done`` is consulted (its decrement needs curvature pairs to be trusted).
        pairs: correction pairs ``(s, y)`` to start from instead of an empty memory, e.g. the curvature of a
            neighbouring problem mapped into this one's coordinates; pairs with ``sᵀy <= 0`` are ignored.

    Returns:
        An :class:`LBFGSResult`.
    """
    if ftol is None:
        eps = torch.finfo(x0.dtype).eps
        ftol = 64 * eps if x0.dtype == torch.float64 else eps
    x = x0.clone()
    f, g = initial if initial is not None else fun(x)
    n_eval = 0 if initial is not None else 1
    s_hist: list[torch.Tensor] = []
    y_hist: list[torch.Tensor] = []
    rho: list[float] = []
    for s0, y0 in (pairs or [])[-history:]:
        sy0 = float(torch.dot(s0, y0))
        if sy0 > 1e-10 * float(torch.dot(y0, y0)):
            s_hist.append(s0), y_hist.append(y0), rho.append(1.0 / sy0)

    def result(reason: str, converged: bool, n_iter: int) -> LBFGSResult:
        return LBFGSResult(x, f, n_iter, n_eval, converged, reason, list(zip(s_hist, y_hist)))

    for it in range(max_iter):
        d = _two_loop(g, s_hist, y_hist, rho).neg_()
        gtd = float(torch.dot(g, d))
        if not gtd < 0:  # lost descent through round-off: restart from the (preconditioned) gradient
            s_hist.clear(), y_hist.clear(), rho.clear()
            d = -g
            gtd = -float(torch.dot(g, g))
        # -gᵀd / 2 = gᵀHg / 2 estimates f - f* (the Newton decrement with the L-BFGS inverse Hessian H).
        if it >= min_iter and done(x, f, g, -0.5 * gtd):
            return result("converged", True, it)
        t = 1.0
        for _ in range(MAX_BACKTRACKS):
            x_new = x + t * d
            f_new, g_new = fun(x_new)
            n_eval += 1
            if f_new <= f + ARMIJO_C1 * t * gtd:
                break
            t *= 0.5
        else:
            return result("line_search", False, it)
        s = x_new - x
        y = g_new - g
        sy = float(torch.dot(s, y))
        if sy > 1e-10 * float(torch.dot(y, y)):
            s_hist.append(s), y_hist.append(y), rho.append(1.0 / sy)
            if len(s_hist) > history:
                s_hist.pop(0), y_hist.pop(0), rho.pop(0)
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        x, f, g = x_new, f_new, g_new
        if decrease <= ftol:
            return result("ftol", True, it + 1)
    return result("max_iter", False, max_iter)
