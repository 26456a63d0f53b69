"""MAST's loss as pure functions of tensors (docs/method.md gives the design and its reasons).

Notation: ``N`` pairs, embedding dimension ``D``, ``K`` augmentation families (one subspace each),
mask logits ``θ`` of shape ``(K, D)`` and soft masks ``m = sigmoid(θ)``.

* per-subspace invariance ``d_k(i) = Σ_j m_kj (z_ij − z'_ij)² / Σ_j m_kj`` (a weighted mean, so an
  all-ones mask gives VICReg's per-sample squared error averaged over dimensions);
* uncertainty reweighting with a predicted log-variance ``s``: the Gaussian negative log-likelihood
  ``d_k(i)·exp(−s_k(i)) + s_k(i)`` (form ``"nll"``), or, by default (form ``"normalised"``), the same
  likelihood trains the head on detached distances while the encoder and masks see ``d`` weighted by
  ``exp(−s)`` normalised to mean 1 over the batch in each subspace; pairs with a large predicted
  variance count less either way, but only the second keeps the invariance term at VICReg's scale;
* regularisers on the masks: sparsity ``mean(m)``, coverage (every dimension in some subspace), a floor on
  each mask's mass;
* optional augmentation-awareness: a normalised regression error (computed by the module's head);
* VICReg's variance and covariance terms on the full embedding (:mod:`mast_bench.methods.vicreg`).

With no masks the loss is :func:`~mast_bench.methods.vicreg.vicreg_loss`, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mast_bench.methods.vicreg import covariance_term, variance_term, vicreg_loss

UNCERTAINTY_FORMS: tuple[str, ...] = ("normalised", "nll")
#: Added to each column's mean squared target in the awareness error: a parameter difference of 0.1 (a tenth
#: of a unit flag, 10 % of the image in a crop coordinate) is the smallest spread normalised away.
AWARE_SCALE_FLOOR = 0.01


@dataclass(frozen=True)
class MastCoefficients:
    """Weights of the loss terms (``method`` and ``method.mast`` sections of a recipe) and the uncertainty form."""

    sim_coeff: float = 25.0
    std_coeff: float = 25.0
    cov_coeff: float = 1.0
    invariance_coeff: float = 25.0
    sparsity_coeff: float = 0.1
    coverage_coeff: float = 1.0
    mass_floor: float = 0.05
    mass_floor_coeff: float = 1.0
    aware_coeff: float = 1.0
    uncertainty_coeff: float = 1.0
    uncertainty_form: str = "normalised"


def subspace_invariance(z1: torch.Tensor, z2: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mask-weighted mean squared difference of each pair in each subspace.

    Args:
        z1, z2: embeddings ``(N, D)``.
        masks: soft masks ``(K, D)`` in ``[0, 1]`` with positive row sums.
    Returns:
        ``d`` of shape ``(N, K)``: ``d[i, k] = Σ_j m_kj (z1_ij − z2_ij)² / Σ_j m_kj``.
    """
    sq = (z1 - z2).pow(2)
    # One (N, D) @ (D, K) product covers all subspaces at once.
    return (sq @ masks.T) / masks.sum(dim=1)


def uncertainty_weighted(d: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of the subspace distances (up to constants).

    Args:
        d: distances ``(N, K)`` (non-negative).
        log_var: predicted log-variances ``s`` ``(N, K)``.
    Returns:
        ``d·exp(−s) + s`` of shape ``(N, K)``; for fixed ``d > 0`` it is minimised at ``s = log d``.
    """
    return d * torch.exp(-log_var) + log_var


def uncertainty_reweighted(d: torch.Tensor, log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``"normalised"`` uncertainty form: a reweighted invariance and the head's likelihood term.

    Per subspace the weights ``w_k(i) = N·softmax_i(−s_k(i))`` (detached) average 1, so the encoder's
    invariance keeps VICReg's scale relative to the variance and covariance terms, while the head learns
    ``s ≈ log E[d | inputs]`` from :func:`uncertainty_weighted` on detached distances.

    Args:
        d: distances ``(N, K)``.
        log_var: log-variances ``(N, K)``.
    Returns:
        ``(invariance, head_nll)``: scalars; gradients of the first reach ``d`` only, of the second ``s`` only.
    """
    w = torch.softmax(-log_var.detach(), dim=0) * d.shape[0]
    return (w * d).mean(), uncertainty_weighted(d.detach(), log_var).mean()


def sparsity_term(masks: torch.Tensor) -> torch.Tensor:
    """Mean mask value. Args: masks ``(K, D)``. Returns: scalar."""
    return masks.mean()


def coverage_term(logits: torch.Tensor) -> torch.Tensor:
    """Penalty for dimensions that belong to no subspace: ``mean_j −log(1 − Π_k (1 − m_kj))``.

    ``1 − Π_k(1 − m_kj)`` is the soft union of the masks at dimension j. The log keeps the gradient
    alive when every mask is near zero there (``≈ −1/Σ_k m_kj``), where a plain ``Π_k(1 − m_kj)``
    would vanish with the sigmoid's slope. Computed from the logits for stability:
    ``Π_k(1 − m_kj) = exp(−S_j)`` with ``S_j = Σ_k softplus(θ_kj)``.

    Args:
        logits: mask logits ``(K, D)``.
    Returns:
        scalar ≥ 0.
    """
    s = F.softplus(logits).sum(dim=0)
    return -_log1mexp(s).mean()


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 − exp(−x))`` for ``x > 0``, accurate at both ends (Mächler 2012)."""
    x = x.clamp_min(torch.finfo(x.dtype).tiny)
    return torch.where(x > math.log(2.0), torch.log1p(-torch.exp(-x)), torch.log(-torch.expm1(-x)))


def mass_floor_term(masks: torch.Tensor, floor: float) -> torch.Tensor:
    """Hinge on each mask's mean value below ``floor``, in log space: ``mean_k relu(log floor − log mass_k)``.

    The log makes the push back grow as a mask empties instead of fading with the sigmoid's slope.

    Args:
        masks: ``(K, D)``.
        floor: minimum mean mask value in ``(0, 1)``.
    Returns:
        scalar ≥ 0 (zero while every mask keeps at least ``floor`` of its dimensions on average).
    """
    if not 0.0 < floor < 1.0:
        raise ValueError(f"mass floor must be in (0, 1), got {floor}")
    mass = masks.mean(dim=1)
    return F.relu(math.log(floor) - torch.log(mass)).mean()


def awareness_term(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Squared error of predicted parameter differences in standardised units, averaged over families.

    Each target column is divided by ``sqrt(E[target²] + 0.01)`` over the batch (detached) and the head
    predicts that standardised value. So families whose parameters have different scales (crop fractions,
    blur σ) weigh alike, predicting "no change" scores just under 1, a column that happens to be constant in
    a batch (no pair differs in flip) adds a bounded term, and the loss's curvature in the head's output is
    1 whatever the parameter's scale (dividing the error instead would multiply the head's effective step
    size by 1/scale² and make momentum SGD diverge on small-scale parameters).

    Args:
        pred: predictions ``(N, K, P)`` in standardised units (family k's columns padded to the widest, P).
        target: parameter differences ``(N, K, P)`` in the parameters' own units.
        valid: ``(K, P)`` boolean, true for the columns that exist for family k.
    Returns:
        scalar: mean over families of the mean over that family's columns and samples.
    """
    scale = (target.detach().pow(2).mean(dim=0) + AWARE_SCALE_FLOOR).sqrt()
    err = (pred - target / scale).pow(2).mean(dim=0)  # (K, P)
    v = valid.to(err.dtype)
    return ((err * v).sum(dim=1) / v.sum(dim=1)).mean()


def mast_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    mask_logits: torch.Tensor | None,
    log_var: torch.Tensor | None = None,
    aware: torch.Tensor | None = None,
    coeffs: MastCoefficients = MastCoefficients(),
    gathered: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """MAST's training loss.

    Args:
        z1, z2: local embeddings ``(N, D)`` of the two views.
        mask_logits: ``(K, D)``, or ``None`` for no masks: the result is then exactly
            ``vicreg_loss(z1, z2, sim_coeff, std_coeff, cov_coeff, gathered)``.
        log_var: predicted log-variances ``(N, K)`` or ``None`` (no uncertainty reweighting).
        aware: the augmentation-awareness error (a scalar from the module's head) or ``None``.
        coeffs: term weights; ``invariance_coeff`` weights the masked invariance (``sim_coeff`` is used
            only without masks); ``uncertainty_coeff`` the head's likelihood in the normalised form.
        gathered: embeddings from every rank ``(N_total, D)`` each, for variance and covariance.
    Returns:
        ``{"loss": scalar with grad, ...}`` plus the detached terms: ``invariance``, ``variance``,
        ``covariance`` and, with masks, ``sparsity``, ``coverage``, ``mass_floor``, ``mask_mass``,
        ``distance`` (mean ``d`` before reweighting), and ``logvar``, ``uncertainty_nll`` (normalised form) and
        ``aware`` when those parts are on.
    """
    c = coeffs
    if mask_logits is None:
        if log_var is not None or aware is not None:
            raise ValueError("uncertainty and augmentation-awareness act per subspace and need mask logits")
        return vicreg_loss(z1, z2, c.sim_coeff, c.std_coeff, c.cov_coeff, gathered=gathered)
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (N, D) embeddings of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if mask_logits.ndim != 2 or mask_logits.shape[1] != z1.shape[1]:
        raise ValueError(f"mask logits must be (K, D={z1.shape[1]}), got {tuple(mask_logits.shape)}")
    a, b = gathered if gathered is not None else (z1, z2)
    if a.shape[0] < 2:
        raise ValueError(f"the variance and covariance terms need a batch of at least 2, got {a.shape[0]}")
    masks = torch.sigmoid(mask_logits)
    d = subspace_invariance(z1, z2, masks)
    head = None
    if log_var is not None:
        if log_var.shape != d.shape:
            raise ValueError(f"log-variances must be (N, K)={tuple(d.shape)}, got {tuple(log_var.shape)}")
        if c.uncertainty_form == "normalised":
            inv, head = uncertainty_reweighted(d, log_var)
        elif c.uncertainty_form == "nll":
            inv = uncertainty_weighted(d, log_var).mean()
        else:
            raise ValueError(f"uncertainty form must be one of {list(UNCERTAINTY_FORMS)}, got {c.uncertainty_form!r}")
    else:
        inv = d.mean()
    var = variance_term(a) / 2 + variance_term(b) / 2
    cov = covariance_term(a) + covariance_term(b)
    sparsity = sparsity_term(masks)
    coverage = coverage_term(mask_logits)
    floor = mass_floor_term(masks, c.mass_floor)
    loss = (
        c.invariance_coeff * inv
        + c.std_coeff * var
        + c.cov_coeff * cov
        + c.sparsity_coeff * sparsity
        + c.coverage_coeff * coverage
        + c.mass_floor_coeff * floor
    )
    out = {
        "invariance": inv.detach(),
        "variance": var.detach(),
        "covariance": cov.detach(),
        "sparsity": sparsity.detach(),
        "coverage": coverage.detach(),
        "mass_floor": floor.detach(),
        "mask_mass": masks.detach().mean(dim=1).min(),
        "distance": d.detach().mean(),
    }
    if head is not None:
        loss = loss + c.uncertainty_coeff * head
        out["uncertainty_nll"] = head.detach()
    if log_var is not None:
        out["logvar"] = log_var.detach().mean()
    if aware is not None:
        loss = loss + c.aware_coeff * aware
        out["aware"] = aware.detach()
    return {"loss": loss, **out}
