"""VICReg (Bardes, Ponce, LeCun, ICLR 2022) exactly as its official ``main_vicreg.py`` computes it.

The loss is a pure function of tensors. The paper's equations differ from the code by constant
factors; we follow the code:

* invariance: ``F.mse_loss(z1, z2)``, the mean over all N·D elements (local batch);
* variance: ``mean_j relu(1 − sqrt(Var_j + 1e-4))`` with the unbiased variance, per branch, and
  the two branches *averaged* (each divided by 2);
* covariance: sum of squared off-diagonal entries of the (N−1)-normalised covariance, divided
  by D, *summed* over the two branches;
* loss = 25·invariance + 25·variance + 1·covariance.

Variance and covariance use the batch gathered from all ranks (gradient flowing through the
gather); the module does the gathering and passes the gathered batch to the pure function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mast_bench.config import Recipe
from mast_bench.distributed import gather_with_grad
from mast_bench.methods.base import PretrainMethod
from mast_bench.registry import METHODS

#: VICReg's ε inside the square root of the variance term.
VARIANCE_EPS = 1e-4


def invariance_term(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all N·D elements.

    Args:
        z1, z2: embeddings ``(N, D)``.
    Returns:
        scalar.
    """
    return F.mse_loss(z1, z2)


def variance_term(z: torch.Tensor, eps: float = VARIANCE_EPS) -> torch.Tensor:
    """Hinge on the per-dimension standard deviation of one branch: ``mean_j relu(1 − sqrt(Var_j + eps))``.

    Args:
        z: embeddings ``(N, D)`` with N ≥ 2 (unbiased variance over the batch).
    Returns:
        scalar (one branch; VICReg averages the two branches).
    """
    std = torch.sqrt(z.var(dim=0) + eps)
    return torch.mean(F.relu(1 - std))


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariance entries of one branch, divided by D.

    Args:
        z: embeddings ``(N, D)`` with N ≥ 2; the covariance is normalised by N − 1.
    Returns:
        scalar (one branch; VICReg sums the two branches).
    """
    n, d = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.T @ zc) / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    gathered: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """VICReg's loss.

    Args:
        z1, z2: local embeddings ``(N, D)`` of the two views (invariance term).
        sim_coeff, std_coeff, cov_coeff: weights λ, μ, ν (25, 25, 1 in VICReg).
        gathered: the embeddings gathered from every rank ``(N_total, D)`` each, for the variance and
            covariance terms; ``None`` uses ``(z1, z2)`` (one process).
    Returns:
        ``{"loss": weighted sum (with grad), "invariance", "variance", "covariance"}`` (the terms detached).
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (N, D) embeddings of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    a, b = gathered if gathered is not None else (z1, z2)
    if a.shape[0] < 2:
        raise ValueError(f"VICReg's variance and covariance need a batch of at least 2, got {a.shape[0]}")
    inv = invariance_term(z1, z2)
    var = variance_term(a) / 2 + variance_term(b) / 2
    cov = covariance_term(a) + covariance_term(b)
    loss = sim_coeff * inv + std_coeff * var + cov_coeff * cov
    return {"loss": loss, "invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()}


@METHODS.register("vicreg")
class VICReg(PretrainMethod):
    """VICReg: backbone + expander trained with :func:`vicreg_loss`; no state beyond them."""

    def __init__(self, recipe: Recipe) -> None:
        super().__init__(recipe)
        m = recipe.method
        self.coeffs = (m.sim_coeff, m.std_coeff, m.cov_coeff)

    def compute_loss(
        self, z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """VICReg loss; ``p1``/``p2`` (augmentation parameters) are unused."""
        # Statistics in float32 even under mixed precision: bf16/fp16 variances and D×D covariances are too coarse.
        with torch.autocast(device_type=z1.device.type, enabled=False):
            z1, z2 = z1.float(), z2.float()
            gathered = (gather_with_grad(z1), gather_with_grad(z2))
            return vicreg_loss(z1, z2, *self.coeffs, gathered=gathered)
