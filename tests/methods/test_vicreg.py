"""VICReg's loss matches an independent float64 reference of the official code's formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mast_bench.config import load_recipe
from mast_bench.distributed import gather_with_grad
from mast_bench.errors import CheckpointError
from mast_bench.methods.base import PretrainMethod
from mast_bench.methods.vicreg import VICReg, covariance_term, invariance_term, variance_term, vicreg_loss
from mast_bench.registry import METHODS


def reference_vicreg(z1: np.ndarray, z2: np.ndarray, sim: float = 25.0, std: float = 25.0, cov: float = 1.0):
    """Element-by-element float64 version of main_vicreg.py's VICReg.forward (no torch)."""
    n, d = z1.shape
    inv = sum((z1[i, j] - z2[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)  # F.mse_loss: N·D mean

    def var_branch(z):
        total = 0.0
        for j in range(d):
            m = sum(z[i, j] for i in range(n)) / n
            var = sum((z[i, j] - m) ** 2 for i in range(n)) / (n - 1)  # unbiased
            total += max(0.0, 1.0 - np.sqrt(var + 1e-4))
        return total / d

    def cov_branch(z):
        m = z.mean(axis=0)
        c = np.einsum("ij,ik->jk", z - m, z - m) / (n - 1)
        return sum(c[j, k] ** 2 for j in range(d) for k in range(d) if j != k) / d

    var = var_branch(z1) / 2 + var_branch(z2) / 2  # the ½ per branch of the official code
    cv = cov_branch(z1) + cov_branch(z2)
    return {"loss": sim * inv + std * var + cov * cv, "invariance": inv, "variance": var, "covariance": cv}


@pytest.mark.parametrize(("n", "d", "scale"), [(8, 5, 0.5), (16, 12, 2.0), (5, 3, 0.05)])
def test_loss_matches_float64_reference(n: int, d: int, scale: float) -> None:
    g = torch.Generator().manual_seed(n * d)
    z1 = torch.randn(n, d, generator=g) * scale * torch.linspace(0.1, 1.5, d)  # some dims under std 1, some over
    z2 = z1 + 0.3 * torch.randn(n, d, generator=g)
    got = vicreg_loss(z1, z2)
    ref = reference_vicreg(z1.double().numpy(), z2.double().numpy())
    for key, value in ref.items():
        assert got[key].item() == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert ref["variance"] > 0  # the hinge is active (at least partly) in every case above


def test_known_values_by_hand() -> None:
    z1 = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    z2 = torch.zeros(2, 2)
    # invariance: (0 + 0 + 4 + 4) / (N·D = 4) = 2
    # variance: z1 has var 2 per dim → std > 1 → 0; z2 has var 0 → 1 − sqrt(1e-4) = 0.99; (0 + 0.99) / 2
    # covariance: z1 centred [[-1,-1],[1,1]] → cov [[2,2],[2,2]] → off-diagonal 2² + 2² = 8, / D = 4; z2: 0
    out = vicreg_loss(z1, z2)
    assert out["invariance"].item() == pytest.approx(2.0)
    assert out["variance"].item() == pytest.approx(0.495)
    assert out["covariance"].item() == pytest.approx(4.0)
    assert out["loss"].item() == pytest.approx(25 * 2.0 + 25 * 0.495 + 4.0)  # 66.375
    assert vicreg_loss(z1, z2, 1.0, 2.0, 3.0)["loss"].item() == pytest.approx(2.0 + 2 * 0.495 + 3 * 4.0)


def test_terms_are_exposed_as_pure_functions() -> None:
    z = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    assert invariance_term(z, torch.zeros(2, 2)).item() == pytest.approx(2.0)
    assert variance_term(torch.zeros(3, 4)).item() == pytest.approx(0.99)
    assert covariance_term(z).item() == pytest.approx(4.0)


def test_gradient_is_correct_and_flows() -> None:
    g = torch.Generator().manual_seed(1)
    z1 = (0.3 * torch.randn(6, 4, generator=g, dtype=torch.float64)).requires_grad_()
    z2 = (0.3 * torch.randn(6, 4, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: vicreg_loss(a, b)["loss"], (z1, z2))
    vicreg_loss(z1, z2)["loss"].backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_gathered_batch_feeds_variance_and_covariance_only() -> None:
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    out = vicreg_loss(z1[:4], z2[:4], gathered=(z1, z2))
    full = reference_vicreg(z1.double().numpy(), z2.double().numpy())
    local = reference_vicreg(z1[:4].double().numpy(), z2[:4].double().numpy())
    assert out["invariance"].item() == pytest.approx(local["invariance"], rel=1e-5)
    assert out["variance"].item() == pytest.approx(full["variance"], rel=1e-5)
    assert out["covariance"].item() == pytest.approx(full["covariance"], rel=1e-5)


@pytest.mark.parametrize(("a", "b", "match"), [
    (torch.zeros(4, 3), torch.zeros(4, 2), "equal shape"),
    (torch.zeros(1, 3), torch.zeros(1, 3), "at least 2"),
])
def test_bad_shapes_are_refused(a: torch.Tensor, b: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        vicreg_loss(a, b)


def _tiny_recipe(**method):
    return load_recipe({
        "model": {"backbone": "resnet_tiny", "stem": "small", "widths": [4, 8, 8, 8], "projector": [16, 16]},
        "method": {"name": "vicreg", **method}, "augment": {"size": 16},
    })


def test_vicreg_module_trains_backbone_and_has_no_extra_state() -> None:
    assert METHODS.get("vicreg") is VICReg
    m = VICReg(_tiny_recipe(sim_coeff=10.0))
    x1, x2 = torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)
    p = torch.zeros(6, 16)
    out = m((x1, x2), (p, p))
    z1, z2 = m.embed((x1, x2))
    ref = vicreg_loss(z1, z2, 10.0, 25.0, 1.0)
    assert out["loss"].item() == pytest.approx(ref["loss"].item(), rel=1e-5)
    assert set(out) == {"loss", "invariance", "variance", "covariance"}
    out["loss"].backward()
    assert m.backbone.conv1.weight.grad.abs().sum() > 0
    assert m.method_state_dict() == {} and m.aux_parameters() == []
    assert m.spec.name == "resnet_tiny" and m.feat_dim == 8 and m.embed_dim == 16


class _WithExtra(PretrainMethod):
    """A method with its own parameter, as MAST's mask logits."""

    def __init__(self, recipe) -> None:
        super().__init__(recipe)
        self.logits = nn.Parameter(torch.zeros(3, self.embed_dim))

    def compute_loss(self, z1, z2, p1, p2):
        loss = ((z1 - z2) ** 2 * torch.sigmoid(self.logits[0])).mean()
        return {"loss": loss}


def test_base_class_keeps_extra_state_strict() -> None:
    m = _WithExtra(_tiny_recipe())
    assert list(m.method_state_dict()) == ["logits"]
    assert [id(p) for p in m.aux_parameters()] == [id(m.logits)]
    state = {"logits": torch.ones(3, 16)}
    m.load_method_state_dict(state)
    assert torch.equal(m.logits.detach(), torch.ones(3, 16))
    with pytest.raises(CheckpointError) as exc:
        m.load_method_state_dict({"logits": torch.ones(2, 16), "head.weight": torch.ones(1)})
    assert str(exc.value) == (
        "method state does not match _WithExtra: unexpected keys: head.weight; "
        "shape mismatch: logits (2, 16) vs (3, 16)"
    )
    with pytest.raises(CheckpointError, match="missing keys: logits"):
        m.load_method_state_dict({})


def test_gather_is_identity_in_one_process() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x
