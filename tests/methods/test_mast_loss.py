"""MAST's pure loss functions: reference computations, VICReg parity, gradients, and toy mask learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from fixtures.threads import one_thread

from mast_bench.methods.mast_loss import (
    MastCoefficients,
    awareness_term,
    coverage_term,
    log_shares,
    mask_shares,
    mass_floor_term,
    mast_loss,
    shared_invariance,
    subspace_invariance,
    uncertainty_reweighted,
    uncertainty_weighted,
)
from mast_bench.methods.vicreg import vicreg_loss

_one_thread = pytest.fixture(autouse=True)(one_thread)


def _pair(n: int = 16, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)


def test_subspace_invariance_matches_a_per_pair_per_subspace_loop() -> None:
    z1, z2 = _pair()
    masks = torch.rand(3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    d = subspace_invariance(z1, z2, masks)
    ref = torch.empty(16, 3, dtype=torch.float64)
    for i in range(16):
        for k in range(3):
            ref[i, k] = sum(masks[k, j] * (z1[i, j] - z2[i, j]) ** 2 for j in range(8)) / masks[k].sum()
    torch.testing.assert_close(d, ref)


def test_all_ones_masks_give_vicreg_mean_squared_error() -> None:
    z1, z2 = _pair()
    d = subspace_invariance(z1, z2, torch.ones(4, 8, dtype=torch.float64))
    torch.testing.assert_close(d.mean(), F.mse_loss(z1, z2))
    # ... and a mask that selects dimensions 0..2 averages over exactly those.
    mask = torch.zeros(1, 8, dtype=torch.float64)
    mask[0, :3] = 1
    torch.testing.assert_close(subspace_invariance(z1, z2, mask)[:, 0], (z1 - z2)[:, :3].pow(2).mean(dim=1))


def test_uncertainty_likelihood_values_and_minimum_at_log_distance() -> None:
    d = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    s = torch.tensor([[0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    out = uncertainty_weighted(d, s)
    torch.testing.assert_close(out, torch.tensor([[0.5, 2.0 * math.exp(-1.0) + 1.0]], dtype=torch.float64))
    s_opt = torch.log(d).requires_grad_()
    uncertainty_weighted(d, s_opt).sum().backward()
    torch.testing.assert_close(s_opt.grad, torch.zeros_like(d))


def test_normalised_uncertainty_keeps_scale_and_splits_gradients() -> None:
    d = torch.rand(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    const = torch.full((32, 3), 0.7, dtype=torch.float64, requires_grad=True)
    inv, _ = uncertainty_reweighted(d, const)
    torch.testing.assert_close(inv, d.mean())  # equal log-variances ⇒ weights 1
    s = torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    inv, head = uncertainty_reweighted(d, s)
    w = torch.exp(-s.detach()) / torch.exp(-s.detach()).mean(dim=0)
    torch.testing.assert_close(inv, (w * d).mean())
    inv.backward()
    assert s.grad is None and d.grad is not None  # the encoder term does not train the head
    d.grad = None
    head.backward()
    assert d.grad is None and s.grad is not None  # the head term does not move the embeddings
    # A pair predicted to be ambiguous (large s) gets a smaller weight.
    assert torch.argmin(w[:, 0]) == torch.argmax(s.detach()[:, 0])


def test_coverage_matches_formula_and_keeps_a_gradient_when_masks_are_empty() -> None:
    logits = torch.randn(4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    m = torch.sigmoid(logits)
    ref = -torch.log(1 - torch.prod(1 - m, dim=0)).mean()
    torch.testing.assert_close(coverage_term(logits), ref)
    empty = torch.full((4, 10), -30.0, dtype=torch.float64, requires_grad=True)
    value = coverage_term(empty)
    value.backward()
    assert torch.isfinite(value) and value > 25  # −log(4·e^−30) ≈ 28.6
    # d/dθ ≈ −m_k / (D Σ_k m_k) = −1/(4·10): alive, unlike the sigmoid's slope e^−30.
    torch.testing.assert_close(empty.grad, torch.full_like(empty, -1 / 40), rtol=1e-6, atol=0)


def test_shares_split_each_dimension_between_subspaces() -> None:
    logits = torch.randn(5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 4
    m = torch.sigmoid(logits)
    torch.testing.assert_close(mask_shares(logits), m / m.sum(dim=0), rtol=1e-12, atol=0)
    torch.testing.assert_close(log_shares(logits).exp(), m / m.sum(dim=0), rtol=1e-12, atol=0)


def test_mass_floor_is_zero_above_floor_and_log_ratio_below() -> None:
    # Two subspaces; the second holds 2 % of every dimension's weight: m₂/(m₁ + m₂) = 0.02.
    m1 = torch.full((4,), 0.98, dtype=torch.float64)
    logits = torch.stack([torch.logit(m1), torch.logit(torch.full_like(m1, 0.02))])
    value = mass_floor_term(logits, floor=0.05)
    torch.testing.assert_close(value, torch.tensor(math.log(0.05 / 0.02) / 2, dtype=torch.float64))
    assert mass_floor_term(torch.zeros(2, 4), floor=0.05) == 0  # equal shares 1/2 each
    with pytest.raises(ValueError, match=r"mass floor must be in \(0, 1\), got 1.5"):
        mass_floor_term(logits, floor=1.5)


def test_awareness_term_in_standardised_units() -> None:
    target = torch.randn(64, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    valid = torch.tensor([[True, True, True], [True, False, False]])
    scale = (target.pow(2).mean(dim=0) + 0.01).sqrt()
    assert awareness_term(target / scale, target, valid) == 0  # perfect standardised prediction
    # Predicting "no change" scores E[t²] / (E[t²] + 0.01) per column.
    m2 = target.pow(2).mean(dim=0)
    ratio = m2 / (m2 + 0.01)
    expected = (ratio[0].mean() + ratio[1, 0]) / 2
    torch.testing.assert_close(awareness_term(torch.zeros_like(target), target, valid), expected)
    # Scale-free above the floor: the same standardised error for parameters 100× larger.
    noisy = target / scale + 0.3
    big = target * 100
    big_scale = (big.pow(2).mean(dim=0) + 0.01).sqrt()
    torch.testing.assert_close(awareness_term(noisy, target, valid), torch.tensor(0.09, dtype=torch.float64))
    torch.testing.assert_close(
        awareness_term(big / big_scale + 0.3, big, valid), torch.tensor(0.09, dtype=torch.float64)
    )
    # Padded columns do not count: garbage there changes nothing.
    garbage = (target / scale).clone()
    garbage[:, 1, 1:] = 1e6
    assert awareness_term(garbage, target, valid) == 0
    # A column constant in the batch (no pair differs) gives a bounded error: (0.5 − 0)² = 0.25.
    flat = torch.zeros(64, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(
        awareness_term(flat + 0.5, flat, torch.tensor([[True]])), torch.tensor(0.25, dtype=torch.float64)
    )


def test_no_masks_is_vicreg_bit_for_bit() -> None:
    z1, z2 = (z.float() for z in _pair(32, 16))
    gathered = (torch.cat([z1, z1.flip(0)]), torch.cat([z2, z2.flip(0)]))
    for g in (None, gathered):
        ours = mast_loss(z1, z2, None, gathered=g)
        ref = vicreg_loss(z1, z2, 25.0, 25.0, 1.0, gathered=g)
        assert ours.keys() == ref.keys()
        for key in ref:
            assert torch.equal(ours[key], ref[key]), key
    with pytest.raises(ValueError, match="need mask logits"):
        mast_loss(z1, z2, None, log_var=torch.zeros(32, 2))


def test_all_ones_masks_without_regularisers_approach_vicreg() -> None:
    z1, z2 = _pair(32, 16)
    coeffs = MastCoefficients(sparsity_coeff=0, coverage_coeff=0, mass_floor_coeff=0)
    ours = mast_loss(z1, z2, torch.full((6, 16), 40.0, dtype=torch.float64), coeffs=coeffs)
    ref = vicreg_loss(z1, z2)
    torch.testing.assert_close(ours["loss"], ref["loss"])
    torch.testing.assert_close(ours["invariance"], ref["invariance"])


def test_gradients_reach_mask_logits_and_log_variances() -> None:
    z1, z2 = _pair(32, 16)
    z1.requires_grad_()
    logits = torch.zeros(3, 16, dtype=torch.float64, requires_grad=True)
    for form in ("normalised", "nll"):
        s = torch.zeros(32, 3, dtype=torch.float64, requires_grad=True)
        out = mast_loss(z1, z2, logits, s, coeffs=MastCoefficients(uncertainty_form=form))
        out["loss"].backward()
        assert logits.grad.abs().sum() > 0 and s.grad.abs().sum() > 0 and z1.grad.abs().sum() > 0
        assert {"sparsity", "coverage", "mass_floor", "logvar", "distance"} <= out.keys()
        logits.grad = z1.grad = None


def test_shape_errors_name_the_shapes() -> None:
    z1, z2 = _pair(8, 4)
    with pytest.raises(ValueError, match=r"mask logits must be \(K, D=4\), got \(2, 5\)"):
        mast_loss(z1, z2, torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"log-variances must be \(N, K\)=\(8, 2\), got \(8, 3\)"):
        mast_loss(z1, z2, torch.zeros(2, 4, dtype=torch.float64), torch.zeros(8, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="uncertainty form must be one of"):
        mast_loss(
            z1,
            z2,
            torch.zeros(2, 4, dtype=torch.float64),
            torch.zeros(8, 2, dtype=torch.float64),
            coeffs=MastCoefficients(uncertainty_form="gaussian"),
        )


# --------------------------------------------------------------------------- the shared invariance


def test_shared_invariance_is_the_mean_squared_error_for_any_masks() -> None:
    """Masks only share each dimension's weight out: without uncertainty the term is VICReg's MSE."""
    z1, z2 = _pair(32, 16)
    coeffs = MastCoefficients(sparsity_coeff=0, coverage_coeff=0, mass_floor_coeff=0)
    for scale in (0.0, 1.0, 10.0, 100.0):
        logits = (scale * torch.randn(6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
        logits.requires_grad_()
        out = mast_loss(z1, z2, logits, coeffs=coeffs)
        torch.testing.assert_close(out["invariance"], F.mse_loss(z1, z2), rtol=1e-13, atol=0)
        out["loss"].backward()
        assert logits.grad.abs().max() < 1e-14  # moving the masks alone cannot change it
    part, d, size = shared_invariance(z1, z2, mask_shares(logits.detach()))
    torch.testing.assert_close(part.sum(dim=1), (z1 - z2).pow(2).mean(dim=1))
    torch.testing.assert_close(part, d * size)  # each subspace's mean distance times its fraction of D
    torch.testing.assert_close(d, subspace_invariance(z1, z2, mask_shares(logits.detach())))


def test_uncertainty_moves_weight_between_pairs_and_gives_masks_distinct_gradients() -> None:
    z1, z2 = _pair(32, 16)
    logits = torch.zeros(3, 16, dtype=torch.float64, requires_grad=True)
    s = torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    coeffs = MastCoefficients(sparsity_coeff=0, coverage_coeff=0, mass_floor_coeff=0)
    out = mast_loss(z1, z2, logits, s, coeffs=coeffs)
    a = torch.exp(-s) / torch.exp(-s).mean(dim=0)  # mean 1 per subspace
    sq = (z1 - z2).pow(2)
    w = torch.full((3, 16), 1 / 3, dtype=torch.float64)
    ref = torch.einsum("ik,kj,ij->", a, w, sq) / (32 * 16)
    torch.testing.assert_close(out["invariance"], ref)
    # Each dimension keeps VICReg's total weight over pairs and subspaces: Σ_i Σ_k w_kj a_k(i) = N.
    torch.testing.assert_close(torch.einsum("ik,kj->j", a, w), torch.full((16,), 32.0, dtype=torch.float64))
    out["loss"].backward()
    g = logits.grad
    assert (g[0] - g[1]).abs().max() > 1e-3 and (g[1] - g[2]).abs().max() > 1e-3  # subspaces pulled apart
    # Each logit's gradient says which subspace's pair weighting makes dimension j cheapest.
    c = torch.einsum("ik,ij->kj", a, sq) / (32 * 16)  # cost of dimension j in subspace k
    expected = 25 * (1 / 3) * (1 - 0.5) * (c - c.mean(dim=0))  # m(1 − m)/Σm · (c_k − Σ w c)
    torch.testing.assert_close(g, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("value", [-19.5, -30.0, -100.0, -1e4, 30.0, 1e4])
def test_mask_terms_are_finite_with_finite_gradients_at_extreme_logits(dtype: torch.dtype, value: float) -> None:
    """All masks at a saturated logit (the state fp16 training reached with the old coverage term)."""
    z1, z2 = (z.float() for z in _pair(16, 8))
    logits = torch.full((4, 8), value, dtype=dtype)
    logits[1, :3] = value / 2  # not all equal
    logits.requires_grad_()
    out = mast_loss(z1, z2, logits, torch.zeros(16, 4))
    out["loss"].backward()
    assert all(torch.isfinite(v).all() for v in out.values()), out
    assert torch.isfinite(logits.grad).all()
    # The coverage gradient keeps its push at every saturated logit: −m_k / (D Σ_k m_k) when all are tiny.
    cov = logits.detach().float().clone().requires_grad_()
    coverage_term(cov).backward()
    # Reference in float64 from the closed form d/dθ_k = −m_k e^{−S} / (D (1 − e^{−S})) = −m_k / (D expm1(S)),
    # S = Σ_k softplus(θ_k); at −1e4, where float64 underflows too, its limit −softmax_k(θ) / D.
    ref = logits.detach().double()
    if value > -1000:
        expected = -torch.sigmoid(ref) / torch.expm1(F.softplus(ref).sum(dim=0)) / 8
    else:
        expected = -torch.softmax(ref, dim=0) / 8
    # float32 resolves a logit of magnitude 1e4 only to 1e-3, and the softmax weights inherit that error.
    torch.testing.assert_close(cov.grad.double(), expected, rtol=1e-5 if abs(value) <= 100 else 2e-3, atol=1e-30)


def test_coverage_float32_matches_float64_across_the_branches() -> None:
    logits = torch.linspace(-40, 12, 53).reshape(1, -1).repeat(3, 1) + torch.tensor([[0.0], [-1.0], [2.0]])
    a = logits.clone().requires_grad_()
    b = logits.double().requires_grad_()
    coverage_term(a).backward()
    coverage_term(b).backward()
    torch.testing.assert_close(coverage_term(logits).double(), coverage_term(logits.double()), rtol=1e-6, atol=0)
    torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-5, atol=1e-9)  # gradients are O(1/D) = 0.02
