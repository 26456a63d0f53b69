"""Detectron2 output: exact renaming, a loadable .pkl, a correct config fragment, and equal features.

Numerical proof: the converted weights load into Detectron2's own ResNet
(``build_resnet_backbone`` configured from the written YAML fragment) with zero missing, unexpected
or mis-shaped keys, and its res2..res5 outputs equal torchvision's layer1..layer4 outputs on the
same random input in eval mode (FrozenBN and BN). Tolerance: |Δ| ≤ 1e-5 · max|reference| + 1e-5;
the measured difference on CPU is 0.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.convert_sources import r50_files, r50_trunk, save, trunk

from mast_bench.convert import convert_checkpoint, convert_source
from mast_bench.convert.detectron2_writer import (
    config_fragment,
    detectron2_to_torchvision,
    torchvision_to_detectron2,
)
from mast_bench.convert.layout import build_target
from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import BackboneSpec

pytestmark = pytest.mark.detectron2
RTOL = 1e-5


def _read_pkl(path: Path) -> dict:
    with open(path, "rb") as fh:  # our own output, written by the test just above
        return pickle.load(fh)


@pytest.mark.parametrize(("arch", "stem"), [("resnet18", "imagenet"), ("resnet_tiny", "small")])
def test_round_trip_torchvision_detectron2_torchvision_is_exact(arch: str, stem: str) -> None:
    sd = trunk(arch, stem=stem, seed=31)
    d2, left_out = torchvision_to_detectron2(sd)
    back = detectron2_to_torchvision(d2)
    assert sorted(left_out) == sorted(k for k in sd if k.endswith("num_batches_tracked"))
    assert set(back) == set(sd) - set(left_out)
    for k, v in back.items():
        assert v.dtype == sd[k].dtype and torch.equal(v, sd[k]), k
    assert "stem.conv1.norm.running_var" in d2 and "res2.0.conv2.weight" in d2
    assert "res3.0.shortcut.norm.weight" in d2 and "res2.0.shortcut.weight" not in d2


def _write(tmp_path: Path, sd: dict, name: str = "w") -> list[Path]:
    src = save(sd, tmp_path / f"{name}-src.pth")
    return convert_checkpoint(src, "detectron2", tmp_path / f"{name}.pkl").files


def test_pkl_layout_and_round_trip_through_files(tmp_path: Path) -> None:
    sd = trunk("resnet18", seed=32)
    pkl, fragment, sidecar = _write(tmp_path, sd)
    assert (fragment.suffix, sidecar.suffix) == (".yaml", ".json")
    data = _read_pkl(pkl)
    assert set(data) == {"model", "__author__", "matching_heuristics"}
    assert data["__author__"] == "mast-bench" and data["matching_heuristics"] is True
    assert all(isinstance(v, np.ndarray) for v in data["model"].values())
    back = detectron2_to_torchvision(data["model"])
    assert all(torch.equal(back[k], sd[k]) for k in back)
    assert len(back) == len(sd) - sum(k.endswith("num_batches_tracked") for k in sd)


def _d2_backbone(fragment: Path, norm: str, out_features=("res2", "res3", "res4", "res5")):
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone

    cfg = get_cfg()
    cfg.merge_from_file(str(fragment))
    cfg.MODEL.RESNETS.NORM = norm
    cfg.MODEL.RESNETS.OUT_FEATURES = list(out_features)
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    return cfg, build_resnet_backbone(cfg, ShapeSpec(channels=3))


def _load_with_checkpointer(model, pkl: Path) -> None:
    """Detectron2's own loader (name-matching heuristics included) must leave nothing out."""
    from detectron2.checkpoint import DetectionCheckpointer

    ckpt = DetectionCheckpointer(model)
    incompatible = ckpt._load_model(ckpt._load_file(str(pkl)))
    assert incompatible.missing_keys == []
    assert incompatible.unexpected_keys == []
    assert incompatible.incorrect_shapes == []


def _torchvision(arch: str, state: dict) -> torch.nn.Module:
    with torch.device("meta"):
        tv = build_target(BackboneSpec(name=arch))
    tv.load_state_dict(state, strict=True, assign=True)
    return tv.eval()


def _compare(d2_model, tv: torch.nn.Module, x: torch.Tensor) -> None:
    """res2..res5 of Detectron2 against layer1..layer4 of torchvision, both in eval mode."""
    with torch.no_grad():
        ours, ref = d2_model.eval()(x), tv.forward_maps(x)
    for i in (1, 2, 3, 4):
        a, b = ours[f"res{i + 1}"], ref[f"layer{i}"]
        torch.testing.assert_close(a, b, rtol=0, atol=RTOL * float(b.abs().max()) + 1e-5)


@pytest.mark.slow
def test_detectron2_resnet18_equals_torchvision(tmp_path: Path) -> None:
    sd = trunk("resnet18", seed=33)
    pkl, fragment, _ = _write(tmp_path, sd)
    tv = _torchvision("resnet18", sd)
    x = torch.randn(2, 3, 64, 64)
    for norm in ("FrozenBN", "BN"):  # Detectron2's default, and the BN/SyncBN of MoCo's detection protocol
        cfg, model = _d2_backbone(fragment, norm)
        assert (cfg.INPUT.FORMAT, cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS) == ("RGB", 18, 64)
        assert cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False
        np.testing.assert_allclose(cfg.MODEL.PIXEL_MEAN, [0.485 * 255, 0.456 * 255, 0.406 * 255], rtol=1e-9)
        np.testing.assert_allclose(cfg.MODEL.PIXEL_STD, [0.229 * 255, 0.224 * 255, 0.225 * 255], rtol=1e-9)
        _load_with_checkpointer(model, pkl)
        _compare(model, tv, x)
    # Also strictly by name: every Detectron2 backbone key is supplied and no extra key exists.
    data = _read_pkl(pkl)["model"]
    model.load_state_dict({k: torch.as_tensor(v) for k, v in data.items()}, strict=True)
    _compare(model, tv, x)


@pytest.mark.slow
def test_detectron2_resnet50_equals_torchvision_and_needs_stride_in_3x3(tmp_path: Path) -> None:
    pkl, fragment, _ = convert_checkpoint(
        r50_files()["bare"], "detectron2", tmp_path / "dino.pkl", "dino-resnet50"
    ).files
    cfg, model = _d2_backbone(fragment, "FrozenBN", ("res5",))
    assert (cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS) == (50, 256)
    _load_with_checkpointer(model, pkl)
    x = torch.randn(1, 3, 64, 64)
    tv = _torchvision("resnet50", r50_trunk())
    with torch.no_grad():
        ref = tv.forward_maps(x)["layer4"]
        torch.testing.assert_close(model.eval()(x)["res5"], ref, rtol=0, atol=RTOL * float(ref.abs().max()) + 1e-5)
        # Detectron2's default (MSRA weights) strides the 1x1 conv: the same weights then give other features,
        # which is why the fragment must carry STRIDE_IN_1X1 False.
        cfg.MODEL.RESNETS.STRIDE_IN_1X1 = True
        from detectron2.layers import ShapeSpec
        from detectron2.modeling.backbone.resnet import build_resnet_backbone

        wrong = build_resnet_backbone(cfg, ShapeSpec(channels=3))
        _load_with_checkpointer(wrong, pkl)
        assert not torch.allclose(wrong.eval()(x)["res5"], ref, atol=1e-3)


def test_resnet_tiny_has_no_detectron2_depth(tmp_path: Path) -> None:
    src = save(trunk(seed=34), tmp_path / "tiny.pth")
    with pytest.raises(
        CheckpointError,
        match=r"covers depths 18, 34, 50, 101 and 152; resnet_tiny \(stem imagenet, "
        r"widths 8-16-16-24\) has no Detectron2 equivalent. Convert with --to torchvision instead.",
    ):
        convert_checkpoint(src, "detectron2", tmp_path / "tiny.pkl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pth"]


def test_small_stem_is_called_out_in_the_fragment(tmp_path: Path) -> None:
    conv = convert_source(save(trunk("resnet18", stem="small", seed=35), tmp_path / "small.pth"))
    text = config_fragment(conv, tmp_path / "small.pkl")
    assert "NON-STANDARD STEM 'small'" in text and "(shape (64, 3, 3, 3))" in text
    assert "# Backbone: resnet18 (stem small, widths 64-128-256-512)." in text
