"""MAST's pure loss functions: reference computations, VICReg parity, gradients, and toy mask learning."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from mast_bench.methods.mast_heads import UncertaintyHead
from mast_bench.methods.mast_loss import (
    MastCoefficients,
    awareness_term,
    coverage_term,
    mass_floor_term,
    mast_loss,
    subspace_invariance,
    uncertainty_reweighted,
    uncertainty_weighted,
)
from mast_bench.methods.vicreg import vicreg_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread avoids thrashing on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def test_mass_floor_is_zero_above_floor_and_log_ratio_below() -> None:
    masks = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.02, 0.02, 0.02, 0.02]])
    value = mass_floor_term(masks, floor=0.05)
    torch.testing.assert_close(value, torch.tensor(math.log(0.05 / 0.02) / 2))
    assert mass_floor_term(masks[:1], floor=0.05) == 0
    with pytest.raises(ValueError, match=r"mass floor must be in \(0, 1\), got 1.5"):
        mass_floor_term(masks, floor=1.5)


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


# --------------------------------------------------------------------------- toy problem: learn the masks directly

K, D, N, BLOCK = 3, 32, 256, slice(0, 8)


def _toy_batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs whose dimensions 0..7 differ in proportion to augmentation 0's strength, and no others do."""
    t = torch.rand(N, K, generator=g)  # each family's strength per pair
    z1 = torch.randn(N, D, generator=g)
    z2 = z1 + 0.3 * torch.randn(N, D, generator=g)
    z2[:, BLOCK] += 2.0 * t[:, :1] * torch.randn(N, 8, generator=g)
    return z1, z2, t


def _learn_masks(coeffs: MastCoefficients, inputs: str | None, steps: int = 300, seed: int = 0) -> torch.Tensor:
    """Optimise mask logits (and the uncertainty head, if ``inputs``) on toy pairs; return the masks."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    logits = torch.zeros(K, D, requires_grad=True)
    head = UncertaintyHead([slice(k, k + 1) for k in range(K)], hidden=16, inputs=inputs) if inputs else None
    params = [logits, *(head.parameters() if head else [])]
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(steps):
        z1, z2, t = _toy_batch(g)
        log_var = head(t, torch.zeros_like(t)) if head else None
        loss = mast_loss(z1, z2, logits, log_var, coeffs=coeffs)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.sigmoid(logits.detach())


@pytest.mark.parametrize("inputs", [None, "others"])
def test_toy_mask_for_the_augmentation_moves_away_from_its_block(inputs: str | None) -> None:
    m = _learn_masks(MastCoefficients(), inputs)
    assert m[0, BLOCK].mean() < 0.1, m[0, BLOCK]
    assert m[0, 8:].mean() > 0.5, m[0, 8:]
    assert (m.mean(dim=1) >= 0.05).all()


@pytest.mark.slow
def test_toy_block_goes_to_another_subspace_when_coverage_insists() -> None:
    """With uncertainty from the other families, the block's variation is explainable in subspaces 1 and 2
    (their heads see augmentation 0's strength) but not in subspace 0, so under strong coverage the block
    joins subspace 1 or 2 and stays out of subspace 0."""
    coeffs = MastCoefficients(coverage_coeff=25.0)
    for seed in (0, 1):
        m = _learn_masks(coeffs, "others", seed=seed)
        assert m[0, BLOCK].mean() < 0.05, (seed, m[:, BLOCK].mean(dim=1))
        assert m[1:, BLOCK].mean(dim=1).max() > 0.5, (seed, m[:, BLOCK].mean(dim=1))


@pytest.mark.slow
def test_toy_masks_collapse_without_the_mass_floor_and_not_with_it() -> None:
    strong = MastCoefficients(sparsity_coeff=20.0, coverage_coeff=0.0, mass_floor=0.05, mass_floor_coeff=0.0)
    collapsed = _learn_masks(strong, None, steps=400)
    assert collapsed.mean(dim=1).max() < 0.04, collapsed.mean(dim=1)
    kept = _learn_masks(dataclasses.replace(strong, mass_floor_coeff=1.0), None, steps=400)
    assert kept.mean(dim=1).min() > 0.045, kept.mean(dim=1)
