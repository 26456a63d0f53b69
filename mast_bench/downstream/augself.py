"""AugSelf's linear probe (Lee et al. 2021; the STL-10 protocol MAST follows; docs/protocols.md).

A linear layer fitted full-batch by ``torch.optim.LBFGS`` (strong-Wolfe line search, lr 1, up to 5000
iterations, gradient tolerance 1e-10, no change tolerance) on summed cross-entropy + ``wd·(‖W‖² + ‖b‖²)``
(the bias inside the penalty), warm-started from one grid value to the next. The optimiser is the
published one, so its stopping behaviour (and cost) is part of the protocol.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mast_bench.downstream.probe import ProbeFit, check_xy
from mast_bench.downstream.threads import num_threads, product_threads


class AugSelfProbe:
    """AugSelf's linear probe: ``torch.optim.LBFGS`` on summed CE + ``wd·‖θ‖²``, warm-started across fits.

    Args:
        x: training features ``(N, D)``.
        y: labels ``(N,)``.
        num_classes: K.
        seed: seeds the ``nn.Linear``-style initial weights ``U(-1/√D, 1/√D)``.
        dtype, device: where and in what precision to fit.
    """

    #: Optimiser settings of AugSelf's ``transfer_linear_eval.py`` (github.com/hankook/AugSelf).
    LBFGS_KWARGS: ClassVar[dict[str, Any]] = {"lr": 1.0, "line_search_fn": "strong_wolfe", "tolerance_change": 0.0}

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        num_classes: int,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        check_xy(x, y, num_classes, multilabel=False)
        self.device = torch.device(device)
        self.x = x.to(self.device, dtype)
        self.labels = y.to(self.device, torch.long)
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(x.shape[1])
        self.weight = ((torch.rand(num_classes, x.shape[1], generator=gen, dtype=torch.float64) * 2 - 1) * bound)
        self.bias = (torch.rand(num_classes, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        self.weight = self.weight.to(self.device, dtype).requires_grad_(True)
        self.bias = self.bias.to(self.device, dtype).requires_grad_(True)

    def warm_start(self, fit: ProbeFit) -> None:
        """Continue from ``fit`` (e.g. the classifier selected on val, before the train+val refit)."""
        with torch.no_grad():
            self.weight.copy_(fit.weight)
            self.bias.copy_(fit.bias)

    def fit(self, wd: float, *, max_iter: int = 5000, tolerance_grad: float = 1e-10) -> ProbeFit:
        """One ``optimizer.step`` of a fresh ``LBFGS`` from the current weights, as AugSelf does per grid value.

        Returns:
            :class:`ProbeFit`; ``objective`` is the summed CE + ``wd·‖θ‖²``.
        """
        if not (wd >= 0 and math.isfinite(wd)):
            raise ValueError(f"weight decay must be a finite number >= 0, got {wd!r}")
        w, b, x = self.weight, self.bias, self.x
        opt = torch.optim.LBFGS([w, b], max_iter=max_iter, tolerance_grad=tolerance_grad, **self.LBFGS_KWARGS)
        rows = torch.arange(len(x), device=self.device)
        mm = product_threads(x.numel() * len(b))

        def closure() -> torch.Tensor:
            with torch.no_grad():  # analytic gradient of the same loss; no autograd graph to build
                with num_threads(mm):
                    logits = torch.addmm(b, x, w.T)
                penalty = wd * (w.square().sum() + b.square().sum())
                loss = F.cross_entropy(logits, self.labels, reduction="sum") + penalty
                g = torch.softmax(logits, 1)
                g[rows, self.labels] -= 1.0
                with num_threads(mm):
                    w.grad = torch.addmm(w, g.T, x, beta=2 * wd)
                b.grad = g.sum(0).add_(b, alpha=2 * wd)
            return loss

        with num_threads(1):
            opt.step(closure)
            final = float(closure())
        grad_max = max(float(w.grad.abs().max()), float(b.grad.abs().max()))
        n_iter = int(opt.state[w].get("n_iter", 0))
        return ProbeFit(w.detach().clone(), b.detach().clone(), n_iter, grad_max <= tolerance_grad, final)
