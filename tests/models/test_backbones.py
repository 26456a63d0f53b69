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
