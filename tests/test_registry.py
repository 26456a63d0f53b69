"""Registries: lookup, unknown names, and that every registered backbone builds."""

from __future__ import annotations

import pytest
import torch

from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.registry import BACKBONES, DATASETS, METHODS, Registry, UnknownNameError


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as exc:
        BACKBONES.get("resnet5O")
    msg = str(exc.value)
    assert msg.startswith("unknown backbone 'resnet5O'. Did you mean 'resnet50'?")
    assert "Valid backbone names: resnet18, resnet50, resnet_tiny" in msg


def test_duplicate_registration_is_an_error() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("a")(object)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.register("a")(int)


def test_registries_are_filled() -> None:
    assert {"resnet18", "resnet50", "resnet_tiny"} <= set(BACKBONES.names())
    assert "vicreg" in METHODS
    assert "synthetic-shape" in DATASETS


@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("stem", ["imagenet", "small"])
def test_every_backbone_builds_and_reports_its_dim(name: str, stem: str) -> None:
    model, dim = build_backbone(BackboneSpec(name=name, stem=stem, widths=(8, 8, 16, 16)))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, dim)
    keys = list(model.state_dict())
    assert keys[0] == "conv1.weight" and any(k.startswith("layer4.") for k in keys)
    assert not any(k.startswith("fc.") for k in keys)
