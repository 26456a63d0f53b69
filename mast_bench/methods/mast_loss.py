"""MAST's loss as pure functions of tensors (docs/method.md gives the design and its reasons).

Notation: ``N`` pairs, embedding dimension ``D``, ``K`` augmentation families (one subspace each),
mask logits ``θ`` of shape ``(K, D)``, soft masks (memberships) ``m = sigmoid(θ)`` and each dimension's
**shares** ``w_kj = m_kj / Σ_k' m_k'j`` (``Σ_k w_kj = 1``).

* invariance: ``mean_i Σ_k a_k(i) · Σ_j w_kj (z_ij − z'_ij)² / D``. Without uncertainty (``a = 1``) this
  is VICReg's mean squared error for *any* masks: each dimension keeps VICReg's weight and the masks only
  decide how it is shared out between the subspaces, so moving the masks alone cannot lower the term;
* uncertainty with a predicted log-variance ``s``: by default (form ``"normalised"``) the pair weights
  ``a_k(i) = N·softmax_i(−s_k(i))`` (detached) average 1 over the batch in each subspace, so they only
  redistribute each dimension's weight between pairs, and the head learns ``s`` from the Gaussian
  likelihood ``d_k(i)·exp(−s_k(i)) + s_k(i)`` on detached per-subspace distances
  ``d_k(i) = Σ_j w_kj (z_ij − z'_ij)² / Σ_j w_kj``; form ``"nll"`` puts the plain likelihood into the loss;
* regularisers on the masks: sparsity ``mean(m)``, coverage (every dimension in some subspace), a floor on
  each subspace's share of the dimensions;
* optional augmentation-awareness: a normalised regression error (computed by the module's head);
* VICReg's variance and covariance terms on the full embedding (:mod:`mast_bench.methods.vicreg`).

With no masks the loss is :func:`~mast_bench.methods.vicreg.vicreg_loss`, bit for bit.

Numerics: every log term is computed from the logits in log space, and every ``torch.where`` gets inputs
that are finite in *both* branches (the unused branch's gradient is multiplied by zero, and 0·∞ is NaN),
so values and gradients stay finite in float32 at any logit; half-precision inputs are computed in float32.
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
#: Below this logit ``log softplus(θ) = θ − e^θ/2`` to within e^{2θ}/24 < 1e-10 (relative), with no
#: underflow; above it ``log(softplus(θ))`` is computed directly (softplus(−10) = 4.5e-5 is a normal float).
_SOFTPLUS_SERIES_BELOW = -10.0
#: Below this soft union size S, ``log(1 − e^{−S}) = log S − S/2`` to within S²/24 < 1e-8.
_LOG1MEXP_SERIES_BELOW = 1e-3


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


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def log_shares(logits: torch.Tensor) -> torch.Tensor:
    """``log w_kj = log m_kj − log Σ_k' m_k'j`` with ``m = sigmoid(θ)``, finite for any finite logits.

    Args:
        logits: ``(K, D)``.
    Returns:
        ``(K, D)``; ``exp`` of it sums to 1 over K at every dimension.
    """
    return torch.log_softmax(F.logsigmoid(_at_least_float32(logits)), dim=0)


def mask_shares(logits: torch.Tensor) -> torch.Tensor:
    """Each dimension's invariance weight shared out between the subspaces: ``w_kj = m_kj / Σ_k' m_k'j``.

    Args:
        logits: ``(K, D)``.
    Returns:
        ``(K, D)`` in ``[0, 1]``, summing to 1 over K at every dimension (a softmax over K of ``log m``).
    """
    return torch.softmax(F.logsigmoid(_at_least_float32(logits)), dim=0)


def shared_invariance(
    z1: torch.Tensor, z2: torch.Tensor, shares: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each pair's squared error split between the subspaces, and each subspace's mean distance.

    Args:
        z1, z2: embeddings ``(N, D)``.
        shares: ``(K, D)`` non-negative, summing to 1 over K (:func:`mask_shares`).
    Returns:
        ``(part, d, size)``: ``part[i, k] = Σ_j w_kj (z1_ij − z2_ij)² / D`` ``(N, K)``, so that
        ``part.sum(1)`` is pair i's mean squared error whatever the shares; ``d[i, k] = Σ_j w_kj
        (z1_ij − z2_ij)² / Σ_j w_kj`` ``(N, K)``, the shares-weighted mean over subspace k; and
        ``size[k] = Σ_j w_kj / D`` ``(K,)``, the subspace's fraction of the dimensions (``part = size·d``).
    """
    sq = (z1 - z2).pow(2)
    width = z1.shape[1]
    part = (sq @ shares.T) / width  # one (N, D) @ (D, K) product covers all subspaces
    size = shares.sum(dim=1) / width
    # A subspace whose shares all underflow has part = 0 too; the floor keeps 0/0 out of d.
    return part, part / size.clamp_min(torch.finfo(shares.dtype).tiny), size


def subspace_invariance(z1: torch.Tensor, z2: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mask-weighted mean squared difference of each pair in each subspace.

    Args:
        z1, z2: embeddings ``(N, D)``.
        masks: non-negative weights ``(K, D)`` with positive row sums.
    Returns:
        ``d`` of shape ``(N, K)``: ``d[i, k] = Σ_j m_kj (z1_ij − z2_ij)² / Σ_j m_kj``.
    """
    sq = (z1 - z2).pow(2)
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


def pair_weights(log_var: torch.Tensor) -> torch.Tensor:
    """The ``"normalised"`` form's pair weights ``a_k(i) = N·softmax_i(−s_k(i))``, detached.

    Args:
        log_var: ``(N, K)``.
    Returns:
        ``(N, K)`` positive, averaging exactly 1 over the batch in each subspace.
    """
    return torch.softmax(-log_var.detach(), dim=0) * log_var.shape[0]


def uncertainty_reweighted(d: torch.Tensor, log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``"normalised"`` form on per-subspace distances: a reweighted mean and the head's likelihood term.

    Args:
        d: distances ``(N, K)``.
        log_var: log-variances ``(N, K)``.
    Returns:
        ``(invariance, head_nll)``: ``mean(a·d)`` with :func:`pair_weights` ``a`` and the mean of
        :func:`uncertainty_weighted` on detached ``d``; gradients of the first reach ``d`` only, of the
        second ``s`` only.
    """
    return (pair_weights(log_var) * d).mean(), uncertainty_weighted(d.detach(), log_var).mean()


def sparsity_term(masks: torch.Tensor) -> torch.Tensor:
    """Mean mask value. Args: masks ``(K, D)``. Returns: scalar."""
    return masks.mean()


def _log_softplus(logits: torch.Tensor) -> torch.Tensor:
    """``log(softplus(θ)) = log log(1 + e^θ)``, finite with a finite gradient for any finite θ."""
    low = logits < _SOFTPLUS_SERIES_BELOW
    direct = torch.where(low, torch.zeros_like(logits), logits)  # only ever ≥ −10 here
    series = torch.where(low, logits, torch.full_like(logits, _SOFTPLUS_SERIES_BELOW))
    return torch.where(low, series - torch.exp(series) / 2, torch.log(F.softplus(direct)))


def coverage_term(logits: torch.Tensor) -> torch.Tensor:
    """Penalty for dimensions that belong to no subspace: ``mean_j −log(1 − Π_k (1 − m_kj))``.

    ``1 − Π_k(1 − m_kj)`` is the soft union of the masks at dimension j; ``Π_k(1 − m_kj) = exp(−S_j)``
    with ``S_j = Σ_k softplus(θ_kj)``. The log keeps the gradient alive when every mask is near zero
    there (``≈ −m_kj / Σ_k m_kj`` per logit), where a plain ``Π_k(1 − m_kj)`` would vanish with the
    sigmoid's slope. For small ``S_j`` (every logit very negative) ``log(1 − e^{−S}) = log S − S/2``
    with ``log S`` a log-sum-exp of ``log softplus(θ)``, so neither the value nor the gradient
    under- or overflows.

    Args:
        logits: mask logits ``(K, D)``.
    Returns:
        scalar ≥ 0.
    """
    logits = _at_least_float32(logits)
    s = F.softplus(logits).sum(dim=0)
    small = s < _LOG1MEXP_SERIES_BELOW
    log_s = torch.logsumexp(_log_softplus(logits), dim=0)
    s_large = torch.where(small, torch.ones_like(s), s)  # the direct branch never sees S near 0
    s_small = torch.where(small, s, torch.zeros_like(s))
    log_union = torch.where(small, log_s - s_small / 2, torch.log(-torch.expm1(-s_large)))
    return -log_union.mean()


def mass_floor_term(logits: torch.Tensor, floor: float) -> torch.Tensor:
    """Hinge on each subspace's share of the dimensions below ``floor``, in log space.

    ``mean_k relu(log floor − log mean_j w_kj)`` with the shares ``w`` of :func:`mask_shares`: the push back
    grows as a subspace empties instead of fading with the sigmoid's slope.

    Args:
        logits: mask logits ``(K, D)``.
        floor: minimum mean share in ``(0, 1/K)`` (the shares average ``1/K``).
    Returns:
        scalar ≥ 0 (zero while every subspace keeps at least ``floor`` of the dimensions on average).
    """
    if not 0.0 < floor < 1.0:
        raise ValueError(f"mass floor must be in (0, 1), got {floor}")
    log_mass = torch.logsumexp(log_shares(logits), dim=1) - math.log(logits.shape[1])
    return F.relu(math.log(floor) - log_mass).mean()


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


def _invariance(
    part: torch.Tensor, d: torch.Tensor, size: torch.Tensor, log_var: torch.Tensor | None, form: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The invariance term, and the head's likelihood in the normalised form, from :func:`shared_invariance`."""
    if log_var is None:
        return part.sum(dim=1).mean(), None
    if log_var.shape != d.shape:
        raise ValueError(f"log-variances must be (N, K)={tuple(d.shape)}, got {tuple(log_var.shape)}")
    if form == "normalised":
        return (pair_weights(log_var) * part).sum(dim=1).mean(), uncertainty_weighted(d.detach(), log_var).mean()
    if form == "nll":
        # Each subspace's likelihood counts in proportion to its share of the dimensions. The weights e^{−s}
        # are not normalised here, so this form does not keep VICReg's total invariance weight.
        return (uncertainty_weighted(d, log_var) * size).sum(dim=1).mean(), None
    raise ValueError(f"uncertainty form must be one of {list(UNCERTAINTY_FORMS)}, got {form!r}")


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
        ``covariance`` and, with masks, ``sparsity``, ``coverage``, ``mass_floor``, ``mask_mass`` (the smallest
        subspace's mean share), ``distance`` (mean squared error before any reweighting), and ``logvar``,
        ``uncertainty_nll`` (normalised form) and ``aware`` when those parts are on.
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
    mask_logits = _at_least_float32(mask_logits)
    masks = torch.sigmoid(mask_logits)
    shares = mask_shares(mask_logits).to(z1.dtype)
    part, d, size = shared_invariance(z1, z2, shares)
    inv, head = _invariance(part, d, size, log_var, c.uncertainty_form)
    var = variance_term(a) / 2 + variance_term(b) / 2
    cov = covariance_term(a) + covariance_term(b)
    sparsity = sparsity_term(masks)
    coverage = coverage_term(mask_logits)
    floor = mass_floor_term(mask_logits, c.mass_floor)
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
        "mask_mass": size.detach().min(),
        "distance": part.detach().sum(dim=1).mean(),
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
