"""Linear probes on frozen features: L2-regularised logistic regression fitted full-batch by L-BFGS.

Two objectives, one per published protocol (``docs/protocols.md``):

* :class:`LogisticProbe` — scikit-learn's ``LogisticRegression(solver="lbfgs")`` objective
  (Ericsson et al. 2021). Multinomial: ``sum_i CE(W x_i + b, y_i) + ‖W‖² / (2C)``; the bias is not
  penalised. With ``multilabel=True`` it is one binary logistic regression per class with the
  same C (what scikit-learn fits per VOC07 class); the classes share nothing, so fitting them
  jointly reaches the same optimum. Divided by N, this is exactly the function scikit-learn
  minimises; we solve it to a relative accuracy (see :meth:`LogisticProbe.fit`) rather than
  scikit-learn's absolute gradient tolerance, so the answer is the optimum, not a point on the
  optimiser's path.
* :class:`mast_bench.downstream.augself.AugSelfProbe` — AugSelf's probe (Lee et al. 2021): a linear layer fitted by
  ``torch.optim.LBFGS`` (strong-Wolfe, lr 1, up to 5000 iterations, gradient tolerance 1e-10,
  no change tolerance) on summed cross-entropy + ``wd·(‖W‖² + ‖b‖²)``, the bias inside the penalty.

Speed (``LogisticProbe``): the features are centred and rotated once into the eigenbasis of
their covariance (exact: the bias absorbs the mean, the rotation preserves ‖W‖); the optimiser
then runs on ``W = diag(d) V`` with ``d = (α·eigenvalue + 1/(C·N))^(-1/2)``, a diagonal
approximation of the inverse Hessian's square root, so L-BFGS sees a well-conditioned problem at
every C of the grid. Directions with no variance are dropped (the optimum has no weight there),
which also shrinks the problem to rank ≤ N−1 when there are fewer samples than dimensions.
Each call to :meth:`LogisticProbe.fit` warm-starts from the previous solution and from the L-BFGS
curvature pairs of the data term, which do not depend on C (the penalty's part is added back
exactly), so a grid point near the last one often needs no more than a step or two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mast_bench.downstream.lbfgs import LBFGSResult, minimize_lbfgs
from mast_bench.downstream.threads import num_threads, product_threads


@dataclass
class ProbeFit:
    """A fitted linear classifier in the coordinates of the input features.

    Attributes:
        weight: ``(K, D)`` (scikit-learn's ``coef_`` layout).
        bias: ``(K,)``.
        n_iter: optimiser iterations.
        converged: the optimiser's stopping rule was met before its iteration limit.
        objective: final objective value (per-protocol scaling).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    n_iter: int
    converged: bool
    objective: float

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(N, D)``. Returns logits ``(N, K)``."""
        x = x.to(device=self.weight.device, dtype=self.weight.dtype)
        return x @ self.weight.T + self.bias


def check_xy(x: torch.Tensor, y: torch.Tensor, num_classes: int, multilabel: bool) -> None:
    """Validate a feature matrix against its targets; raises ValueError with the offending sizes."""
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D (N, D) tensor, got shape {tuple(x.shape)}")
    if len(x) != len(y):
        raise ValueError(f"features and labels disagree: {len(x)} feature rows but {len(y)} labels")
    if len(x) == 0:
        raise ValueError("no samples to fit on")
    if not torch.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    if multilabel:
        if y.ndim != 2 or y.shape[1] != num_classes:
            raise ValueError(f"multi-label targets must be (N, {num_classes}), got shape {tuple(y.shape)}")
        if not ((y == 0) | (y == 1)).all():
            raise ValueError("multi-label targets must be 0 or 1")
    else:
        if y.ndim != 1:
            raise ValueError(f"labels must be a 1-D (N,) tensor, got shape {tuple(y.shape)}")
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got range [{int(y.min())}, {int(y.max())}]")


class LogisticProbe:
    """scikit-learn-equivalent L2 logistic regression, warm-started across calls to :meth:`fit`.

    Args:
        x: training features ``(N, D)``.
        y: labels ``(N,)`` (ints) or, with ``multilabel``, ``(N, K)`` in {0, 1}.
        num_classes: K.
        multilabel: one binary classifier per class instead of one multinomial classifier.
        dtype: compute precision of the matrix products (float32 reaches ``rtol`` 1e-4; float64 for tighter).
        device: where to fit.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        num_classes: int,
        multilabel: bool = False,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        check_xy(x, y, num_classes, multilabel)
        self.num_classes, self.multilabel, self.dtype = num_classes, multilabel, dtype
        self.device = torch.device(device)
        x64 = x.to(self.device, torch.float64)
        self.n, self.dim = x64.shape
        mean = x64.mean(0)
        xc = x64 - mean
        evals, evecs = torch.linalg.eigh(xc.T @ xc / self.n)
        keep = evals > evals.max().clamp_min(0) * 1e-10 if evals.numel() else evals > 0
        self.evals = evals[keep]  # (r,) float64, as all small state below
        self.basis = evecs[:, keep]  # (D, r)
        self.mean = mean
        self._z = {dtype: xc.to(dtype) @ self.basis.to(dtype)}  # (N, r) centred features in the eigenbasis
        self.rank = self.basis.shape[1]
        if multilabel:
            self.targets = y.to(self.device, dtype)
            self.alpha = 0.25  # curvature of the binary log-loss at p = 1/2
        else:
            self.labels = y.to(self.device, torch.long)
            self.alpha = 1.0 / num_classes  # curvature of softmax cross-entropy at uniform p
        # Current solution in the rotated, centred coordinates (warm start of the next fit).
        self._w = torch.zeros(self.rank, num_classes, dtype=torch.float64, device=self.device)
        self._b = torch.zeros(num_classes, dtype=torch.float64, device=self.device)
        # (loss, loss-gradient w.r.t. w, w.r.t. b) at the current solution, if known: reused when only C changes.
        self._memo: tuple[float, torch.Tensor, torch.Tensor] | None = None
        # L-BFGS correction pairs of the loss alone, in (w, b) coordinates: the curvature of the data term does
        # not depend on C, so the next fit of the grid starts with it (the penalty's part is added exactly).
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _features(self, dtype: torch.dtype) -> torch.Tensor:
        if dtype not in self._z:
            self._z[dtype] = next(iter(self._z.values())).to(dtype)
        return self._z[dtype]

    def _loss_and_grad_logits(self, logits: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Mean loss and its gradient w.r.t. the logits ``(N, K)``, in the logits' precision.

        Written without cancellation so that float32 keeps its relative precision when the loss is
        tiny (confident, correct predictions): the softmax loss is ``log1p((1 - p_y) / p_y)`` with
        ``1 - p_y`` summed from the other classes' probabilities, and the binary loss is
        ``softplus((1 - 2t)·l)``; the per-sample losses are summed in float64.
        """
        if self.multilabel:
            sign = 1.0 - 2.0 * self.targets  # +1 for negatives, -1 for positives
            z = logits * sign
            loss = F.softplus(z).sum(1, dtype=torch.float64).mean()
            g = torch.sigmoid(z).mul_(sign)
            return float(loss), g.div_(self.n)
        y = self.labels[:, None]
        p = torch.softmax(logits, 1)
        p_y = p.gather(1, y)
        g = p.scatter_(1, y, 0.0)  # softmax without the true class (in place: p is not needed again)
        rest = g.sum(1, keepdim=True)  # 1 - p_y, summed from small terms instead of subtracted
        loss = torch.log1p(rest / p_y).sum(dtype=torch.float64) / self.n  # -log p_y = log((p_y + rest) / p_y)
        g.scatter_(1, y, -rest)  # p - onehot(y), with p_y - 1 = -rest exactly
        return float(loss), g.div_(self.n)

    def warm_start(self, fit: ProbeFit) -> None:
        """Start the next :meth:`fit` from ``fit`` (a solution in input coordinates, e.g. from another split)."""
        w = fit.weight.to(self.device, torch.float64).T  # (D, K)
        self._memo = None
        self._pairs = []
        self._w = self.basis.T @ w
        self._b = fit.bias.to(self.device, torch.float64) + self.mean @ w

    def _solve(self, c: float, rtol: float, max_iter: int, dtype: torch.dtype, mm_threads: int) -> LBFGSResult:
        """Run L-BFGS in precision ``dtype`` from the current solution (products on ``mm_threads``); updates it."""
        k, r = self.num_classes, self.rank
        z = self._features(dtype)
        lam = 1.0 / (c * self.n)
        d = (self.alpha * self.evals + lam).rsqrt()[:, None].to(dtype)  # (r, 1) preconditioner
        sb = 1.0 / math.sqrt(self.alpha)
        last: list[Any] = [None]

        def split(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return theta[: r * k].view(r, k), theta[r * k :]

        def assemble(w: torch.Tensor, loss: float, gl: torch.Tensor, gb: torch.Tensor) -> tuple[float, torch.Tensor]:
            value = loss + 0.5 * lam * float(torch.sum(w * w, dtype=torch.float64))
            return value, torch.cat([(d * (gl + lam * w)).reshape(-1), sb * gb])

        def fun(theta: torch.Tensor) -> tuple[float, torch.Tensor]:
            v, vb = split(theta)
            w, b = d * v, sb * vb
            with num_threads(mm_threads):
                logits = torch.addmm(b, z, w)
            loss, g = self._loss_and_grad_logits(logits)
            with num_threads(mm_threads):
                gl = z.T @ g
            gb = g.sum(0)
            last[0] = (theta, w, b, (loss, gl, gb))
            return assemble(w, loss, gl, gb)

        def done(theta: torch.Tensor, value: float, grad: torch.Tensor, decrement: float) -> bool:
            return decrement <= rtol * abs(value)

        w0, b0 = self._w.to(dtype), self._b.to(dtype)
        theta0 = torch.cat([(w0 / d).reshape(-1), b0 / sb])
        initial = None
        if self._memo is not None and self._memo[1].dtype == dtype:  # a float32 value would mislead a float64 search
            loss_m, gl_m, gb_m = self._memo
            initial = assemble(w0, loss_m, gl_m, gb_m)
        # theta = x_natural / u; the penalty's gradient is lam * x_natural on the weights (mask), 0 on the bias.
        u = torch.cat([d.expand(r, k).reshape(-1), torch.full((k,), sb, dtype=dtype, device=self.device)])
        mask = (torch.arange(r * k + k, device=self.device) < r * k).to(dtype)
        pairs = [(s_n.to(dtype) / u, u * (y_n.to(dtype) + lam * mask * s_n.to(dtype))) for s_n, y_n in self._pairs]
        res = minimize_lbfgs(
            fun, theta0, done=done, max_iter=max(1, max_iter), initial=initial, min_iter=0 if pairs else 1, pairs=pairs
        )
        self._pairs = [(u * s_v, y_v / u - lam * mask * (u * s_v)) for s_v, y_v in res.pairs]
        if last[0] is not None and last[0][0] is res.x:
            _, w, b, self._memo = last[0]
        else:
            v, vb = split(res.x)
            w, b, self._memo = d * v, sb * vb, None
        self._w, self._b = w.double(), b.double()
        return res

    def fit(self, c: float, *, rtol: float = 1e-4, max_iter: int = 1000) -> ProbeFit:
        """Minimise ``sum_i loss_i + ‖W‖² / (2c)`` from the previous solution.

        Args:
            c: inverse regularisation strength (scikit-learn's ``C``), > 0.
            rtol: stop when the estimated distance to the optimum, ``gᵀHg / 2`` with H the L-BFGS
                inverse-Hessian approximation, is at most ``rtol`` times the objective. Unlike
                scikit-learn's absolute gradient tolerance (1e-4 by default), this does not depend on
                the scale of the features or the number of classes; at 100 classes scikit-learn's default
                stops several accuracy points away from the optimum (benchmarks/README.md).
            max_iter: most L-BFGS iterations (at least one is taken when there is no curvature memory yet).

        Returns:
            :class:`ProbeFit` with weight ``(K, D)`` and bias ``(K,)``; ``objective`` is scikit-learn's.
            When float32 runs out of resolution before ``rtol`` is met (weak regularisation, tiny
            training loss), the fit continues in float64 from where float32 stopped.
        """
        if not (c > 0 and math.isfinite(c)):
            raise ValueError(f"C must be a positive finite number, got {c!r}")
        mm = product_threads(self.n * self.rank * self.num_classes)
        with num_threads(1):
            res = self._solve(c, rtol, max_iter, self.dtype, mm)
            n_iter = res.n_iter
            if self.dtype != torch.float64 and res.reason in ("ftol", "line_search") and n_iter < max_iter:
                res = self._solve(c, rtol, max_iter - n_iter, torch.float64, mm)
                n_iter += res.n_iter
        # In float64 a stall (relative decrease below 64 eps) is machine-precision convergence, as in scipy.
        converged = res.reason == "converged" or (res.reason == "ftol" and res.x.dtype == torch.float64)
        w_orig = self.basis @ self._w  # (D, K)
        bias = self._b - self.mean @ w_orig
        return ProbeFit(w_orig.T.to(self.dtype).contiguous(), bias.to(self.dtype), n_iter, converged, res.value)
