"""Backbones keep torchvision's key layout and numerics; the tiny ResNet honours its spec."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import resnet50 as tv_resnet50

from mast_bench.models import BackboneSpec, build_backbone, build_projector


@pytest.mark.parametrize(("name", "factory", "dim"), [("resnet18", tv_resnet18, 512), ("resnet50", tv_resnet50, 2048)])
def test_torchvision_backbones_equal_torchvision_minus_fc(name: str, factory, dim: int) -> None:
    ours, d = build_backbone(name)
    assert d == dim
    ref = factory(weights=None)
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    ours.load_state_dict(sd, strict=True)
    ref.fc = torch.nn.Identity()
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_tiny_widths_and_small_stem() -> None:
    model, dim = build_backbone(BackboneSpec(name="resnet_tiny", stem="small", widths=(4, 8, 8, 12)))
    assert dim == 12
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    maps = model.forward_maps(torch.randn(1, 3, 32, 32))
    assert maps["layer4"].shape == (1, 12, 4, 4)  # small stem: only layers 2–4 downsample


def test_bad_specs() -> None:
    with pytest.raises(ValueError, match=r"resnet_tiny needs 4 positive stage widths, got \[4, 8\]"):
        build_backbone(BackboneSpec(name="resnet_tiny", widths=(4, 8)))
    with pytest.raises(ValueError, match="unknown stem 'big'; valid stems: imagenet, small"):
        build_backbone(BackboneSpec(name="resnet18", stem="big"))


def test_spec_round_trip() -> None:
    spec = BackboneSpec(name="resnet_tiny", stem="small", widths=(4, 8, 8, 12), mean=(0.5, 0.5, 0.5))
    assert BackboneSpec.from_dict(spec.to_dict()) == spec


def test_projector_matches_vicreg_layout() -> None:
    proj = build_projector(16, (32, 32, 8))
    kinds = [type(m).__name__ for m in proj]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert proj[-1].bias is None
    assert proj(torch.randn(4, 16)).shape == (4, 8)
    with pytest.raises(ValueError, match="projector sizes must be a non-empty list"):
        build_projector(16, ())


@pytest.mark.parametrize(("backbone", "blocks", "last_bn"), [("resnet50", 16, "bn3"), ("resnet18", 8, "bn2"),
                                                             ("resnet_tiny", 4, "bn2")])
def test_pretraining_backbones_start_with_zero_residual_branches(backbone: str, blocks: int, last_bn: str) -> None:
    """As VICReg's main_vicreg.py (torchvision's zero_init_residual=True): the last BN of every block is 0."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    from mast_bench.config import load_recipe
    from mast_bench.methods.vicreg import VICReg

    recipe = load_recipe({"model": {"backbone": backbone, "projector": [8, 8]}, "method": {"name": "vicreg"}})
    torch.manual_seed(0)
    method = VICReg(recipe)
    found = [m for m in method.backbone.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert len(found) == blocks
    for block in found:
        assert torch.equal(getattr(block, last_bn).weight, torch.zeros_like(getattr(block, last_bn).weight))
        assert torch.equal(getattr(block, last_bn).bias, torch.zeros_like(getattr(block, last_bn).bias))
    # Every other BN weight keeps its usual start at 1, and nothing else differs from a plain seeded build.
    torch.manual_seed(0)
    plain, _ = build_backbone(method.spec)
    zeroed = {f"{n}.weight" for n, m in method.backbone.named_modules() if n.endswith(last_bn) and "layer" in n}
    assert len(zeroed) == blocks
    for key, value in plain.state_dict().items():
        if key in zeroed:
            assert torch.equal(value, torch.ones_like(value)), key  # the evaluation build is untouched
        else:
            assert torch.equal(method.backbone.state_dict()[key], value), key
    # A zero-initialised block is the identity (BasicBlock/Bottleneck without downsampling): x -> relu(x).
    method.backbone.eval()
    block = method.backbone.layer1[0] if backbone != "resnet50" else method.backbone.layer1[1]
    x = torch.randn(2, block.conv1.in_channels, 8, 8).relu()
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
