"""Every source format converts exactly, accounts for every key, and is found by ``--from auto``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from fixtures.convert_sources import (
    SMALL_CASES,
    TINY_SPEC,
    accounted,
    mast_bench_case,
    r50_files,
    r50_trunk,
    save,
    tensor_labels,
    trunk,
)

from mast_bench.convert import SOURCE_FORMATS, convert_source
from mast_bench.convert.layout import infer_spec
from mast_bench.errors import CheckpointError
from mast_bench.registry import CONVERTERS


def _check(conv, case_ckpt, expected: dict[str, torch.Tensor]) -> None:
    assert list(conv.state_dict) == list(expected)  # the target's key order, nothing more or less
    for k, v in expected.items():
        assert torch.equal(conv.state_dict[k], v), k
    report = conv.report
    assert not set(report.mapped) & set(report.dropped)
    assert sorted(report.mapped.values()) == sorted(expected)
    keys = set(report.mapped) | set(report.dropped)
    missing = [lab for lab in tensor_labels(case_ckpt) if not accounted(lab, keys)]
    assert missing == []


def test_every_registered_format_is_a_source_format() -> None:
    assert set(CONVERTERS.names()) == set(SOURCE_FORMATS) - {"auto"}


@pytest.mark.parametrize("name", sorted(SMALL_CASES))
def test_format_converts_exactly_and_accounts_for_every_key(name: str, tmp_path: Path) -> None:
    case = SMALL_CASES[name]()
    path = save(case.ckpt, tmp_path / "ckpt.pth")
    for how in (case.fmt, "auto"):
        conv = convert_source(path, how)
        _check(conv, case.ckpt, case.expected)
        assert conv.report.source_format == case.detected
        assert conv.spec.name == case.arch
        assert case.reasons <= set(conv.report.dropped.values())
    assert conv.report.detection.startswith("auto-detected: ")


@pytest.mark.parametrize("fmt", ["vicreg", "barlowtwins", "torchvision"])
def test_backbone_only_releases(fmt: str, tmp_path: Path) -> None:
    sd = trunk(seed=21)
    path = save(sd, tmp_path / "resnet.pth")
    conv = convert_source(path, fmt)
    _check(conv, sd, sd)
    assert conv.report.dropped == {}
    auto = convert_source(path)
    assert auto.report.source_format == "torchvision"
    assert "bare torchvision-layout state dict" in auto.report.detection


def test_mast_bench_spec_comes_from_metadata(tmp_path: Path) -> None:
    conv = convert_source(save(mast_bench_case().ckpt, tmp_path / "final.pt"))
    assert conv.spec == TINY_SPEC  # stem, widths and the recipe's own mean/std
    assert conv.input_size == 32
    assert not any("normalisation" in n for n in conv.report.notes)


def test_mast_bench_metadata_must_match_weights(tmp_path: Path) -> None:
    case = mast_bench_case()
    case.ckpt["meta"]["backbone"]["widths"] = [8, 16, 32, 64]
    with pytest.raises(
        CheckpointError,
        match=r"metadata describes resnet_tiny \(stem small, widths 8-16-32-64\), "
        r"but the weights describe resnet_tiny \(stem small, widths 8-16-16-24\)",
    ):
        convert_source(save(case.ckpt, tmp_path / "bad.pt"))


def test_missing_num_batches_tracked_is_filled_and_reported(tmp_path: Path) -> None:
    full = trunk(seed=3)
    counters = [k for k in full if k.endswith("num_batches_tracked")]
    sd = {k: v for k, v in full.items() if k not in counters}
    conv = convert_source(save(sd, tmp_path / "old.pth"), "torchvision")
    assert conv.report.filled == counters and len(counters) == 12  # stem + 2 per block (4) + 3 shortcuts
    assert all(int(conv.state_dict[k]) == 0 for k in conv.report.filled)


def test_unmapped_and_missing_keys_are_errors_naming_them(tmp_path: Path) -> None:
    sd = trunk(seed=3)
    sd["layer2.0.extra.weight"] = torch.zeros(1)
    del sd["layer4.0.bn2.running_var"]
    with pytest.raises(CheckpointError) as err:
        convert_source(save(sd, tmp_path / "x.pth"), "torchvision")
    msg = str(err.value)
    assert "backbone keys with no place in resnet_tiny: layer2.0.extra.weight" in msg
    assert "target keys of resnet_tiny missing from the checkpoint: layer4.0.bn2.running_var" in msg


def test_shape_mismatch_is_an_error(tmp_path: Path) -> None:
    sd = trunk(seed=3)
    sd["layer3.0.bn1.weight"] = torch.ones(7)
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatches \(source vs target\): layer3.0.bn1.weight \(7,\) vs "
        r"layer3.0.bn1.weight \(16,\)",
    ):
        convert_source(save(sd, tmp_path / "x.pth"), "torchvision")


def test_unknown_keys_in_a_fixed_layout_are_errors(tmp_path: Path) -> None:
    case = SMALL_CASES["moco-v2"]()
    case.ckpt["state_dict"]["module.mystery.weight"] = torch.zeros(2)
    with pytest.raises(
        CheckpointError,
        match=re.escape("keys in 'state_dict' that this format does not account for: module.mystery.weight"),
    ):
        convert_source(save(case.ckpt, tmp_path / "x.pth"), "moco")


def test_arch_is_checked_against_the_weights(tmp_path: Path) -> None:
    path = save(SMALL_CASES["moco-v2"]().ckpt, tmp_path / "m.pth")
    assert convert_source(path, arch="resnet_tiny").spec.name == "resnet_tiny"
    with pytest.raises(
        CheckpointError, match=r"--arch says resnet50, but the weights describe resnet_tiny \(stem imagenet"
    ):
        convert_source(path, arch="resnet50")
    case = SMALL_CASES["moco-v2"]()
    case.ckpt["arch"] = "resnet50"
    with pytest.raises(CheckpointError, match="the checkpoint's 'arch' entry says resnet50, but the weights describe"):
        convert_source(save(case.ckpt, tmp_path / "m2.pth"))


@pytest.mark.parametrize(("arch", "counts"), [("resnet34", (3, 4, 6, 3)), ("resnet101", (3, 4, 23, 3))])
def test_depth_is_read_from_block_counts(arch: str, counts: tuple[int, ...]) -> None:
    from torchvision.models import resnet

    with torch.device("meta"):
        sd = getattr(resnet, arch)(weights=None).state_dict()
    spec = infer_spec(sd, "test")
    assert spec.name == arch and spec.stem == "imagenet"


def test_lightning_prefix_inferred_when_unique(tmp_path: Path) -> None:
    case = SMALL_CASES["lightning"]()
    conv = convert_source(save(case.ckpt, tmp_path / "l.ckpt"), "lightning")
    assert conv.report.location == "'state_dict' → 'model.encoder.' (the only ResNet trunk prefix, 'model.encoder.')"
    _check(conv, case.ckpt, case.expected)


@pytest.mark.slow
def test_dino_resnet50_release_and_full_checkpoint() -> None:
    files = r50_files()
    expected = r50_trunk()
    bare = convert_source(files["bare"], "dino-resnet50")
    assert bare.spec.name == "resnet50"
    assert all(torch.equal(bare.state_dict[k], v) for k, v in expected.items())
    full = convert_source(files["full"])  # auto
    assert full.report.source_format == "dino-resnet50"
    assert torch.equal(full.state_dict["conv1.weight"], expected["conv1.weight"])  # the teacher, not the student
    reasons = set(full.report.dropped.values())
    assert {"student network (DINO evaluates the teacher)", "DINO head (projection MLP and prototypes)"} <= reasons
    assert "DINO loss centre (teacher output mean)" in reasons


def test_dino_format_requires_resnet50(tmp_path: Path) -> None:
    path = save(trunk("resnet18", seed=3), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="this format says resnet50, but the weights describe resnet18"):
        convert_source(path, "dino-resnet50")


def test_wrong_format_named_explains_the_layout(tmp_path: Path) -> None:
    path = save(SMALL_CASES["moco-v2"]().ckpt, tmp_path / "m.pth")
    with pytest.raises(
        CheckpointError,
        match=r"not in the vissl layout: expected 'classy_state_dict/base_model/model/"
        r"trunk' holding _feature_blocks.\*; found top-level keys \['epoch', 'arch', 'state_dict'",
    ):
        convert_source(path, "vissl")


@pytest.mark.parametrize("method", ["vicreg", "mast"])
def test_checkpoints_written_by_the_pretraining_code(method: str, tmp_path: Path) -> None:
    from mast_bench.config import load_recipe
    from mast_bench.pretrain.checkpoint import make_checkpoint, save_checkpoint
    from mast_bench.pretrain.rng import capture_rng_state
    from mast_bench.registry import METHODS

    recipe = load_recipe({"method": {"name": method}, "model": {"backbone": "resnet_tiny", "widths": [4, 8, 8, 12]}})
    model = METHODS.get(method)(recipe)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    resume = {"rng": capture_rng_state(), "scaler": {}, "steps_per_epoch": 5, "world_size": 1}
    ckpt = make_checkpoint(model, recipe, 1, 5, False, optimizer=opt, resume=resume)
    path = save_checkpoint(tmp_path / "checkpoint.pt", ckpt)
    conv = convert_source(path)
    assert conv.report.source_format == "mast-bench" and conv.spec == model.spec
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(conv.state_dict[k], v), k
    reasons = set(conv.report.dropped.values())
    assert {"projector", "optimizer state", "resume state (RNG states, loss scaler)"} <= reasons
    if method == "mast":
        assert any(r.startswith("mast method state") for r in reasons)
    assert "training checkpoint not marked complete (epoch 1)" in conv.report.notes
