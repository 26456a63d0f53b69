"""Library calls and the CLI: torchvision output loads strictly, ``load_backbone`` converts once and caches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fixtures.convert_sources import SMALL_CASES, TINY_SPEC, mast_bench_case, save
from torchvision.models import resnet18

from mast_bench.cli import main
from mast_bench.convert import LoadedBackbone, convert_checkpoint, load_backbone
from mast_bench.fileio import sha256_file
from mast_bench.models.backbones import build_backbone


def test_torchvision_output_loads_strictly_into_torchvision_minus_fc(tmp_path: Path) -> None:
    case = SMALL_CASES["torchvision"]()
    src = save(case.ckpt, tmp_path / "sup.pth")
    weights, side = convert_checkpoint(src, "torchvision", tmp_path / "out.pth").files
    with torch.device("meta"):  # skip random init: every tensor is loaded
        ref, full = resnet18(weights=None), resnet18(weights=None)
    ref.fc = torch.nn.Identity()  # "minus fc": no fc parameters to load
    ref.load_state_dict(torch.load(weights, weights_only=True), strict=True, assign=True)
    full.load_state_dict(case.ckpt, strict=True, assign=True)
    full.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ref.eval()(x), full.eval()(x), rtol=0, atol=0)
    meta = json.loads(side.read_text())
    assert meta["source_format"] == "torchvision" and meta["architecture"] == "resnet18"
    assert meta["source_sha256"] == sha256_file(src) and meta["weights_sha256"] == sha256_file(weights)
    assert meta["normalization"]["mean"] == [0.485, 0.456, 0.406] and meta["normalization"]["std"] == [
        0.229,
        0.224,
        0.225,
    ]
    assert meta["input_size"] == 224
    assert meta["load_into"] == "torchvision.models.resnet18 without fc"
    assert meta["report"]["dropped"] == {
        "fc.weight": "supervised classifier (fc)",
        "fc.bias": "supervised classifier (fc)",
    }
    assert len(meta["report"]["mapped"]) == len(case.expected)


def test_tiny_output_loads_into_our_resnet_tiny(tmp_path: Path) -> None:
    src = save(mast_bench_case().ckpt, tmp_path / "final.pt")
    weights, side = convert_checkpoint(src, "torchvision", tmp_path / "tiny.pth").files
    model, _ = build_backbone(TINY_SPEC)
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    meta = json.loads(side.read_text())
    assert meta["backbone"] == TINY_SPEC.to_dict() and meta["input_size"] == 32
    assert meta["normalization"]["mean"] == list(TINY_SPEC.mean)


def test_load_backbone_converts_once_then_hits_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = SMALL_CASES["moco-v3"]()
    src = save(case.ckpt, tmp_path / "moco.pth")
    cache = tmp_path / "cache"
    first = load_backbone(src, cache_dir=cache)
    assert not first.from_cache and first.source_format == "moco" and first.spec.name == "resnet_tiny"
    assert first.source_sha256 == sha256_file(src) and not first.model.training
    assert sorted(p.name for p in cache.iterdir()) == [
        f"{first.source_sha256}.auto.json",
        f"{first.source_sha256}.auto.pth",
    ]

    def no_reading(*_a, **_k):
        raise AssertionError("the source checkpoint was read again")

    monkeypatch.setattr("mast_bench.convert.api.safe_load", no_reading)
    second = load_backbone(src, cache_dir=cache)
    assert second.from_cache and second.report.to_dict() == first.report.to_dict()
    ref, _ = build_backbone(second.spec)
    ref.load_state_dict(case.expected, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref.eval()(x)
        torch.testing.assert_close(first.model(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(second.model(x), expected, rtol=0, atol=0)
    assert expected.shape == (2, 24)


def test_cache_location_from_environment_and_corrupt_entries_rebuilt(tmp_path: Path, monkeypatch) -> None:
    src = save(SMALL_CASES["vicreg-full"]().ckpt, tmp_path / "vicreg.pth")
    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "root"))
    loaded = load_backbone(src, from_format="vicreg")
    entry = tmp_path / "root" / "weights" / f"{loaded.source_sha256}.vicreg.pth"
    assert entry.is_file()
    entry.write_bytes(entry.read_bytes()[:100])  # damaged cache entry: rebuilt, never trusted
    again = load_backbone(src, from_format="vicreg")
    assert not again.from_cache
    assert load_backbone(src, from_format="vicreg").from_cache


def test_from_module_wraps_an_in_memory_model() -> None:
    model, _ = build_backbone(TINY_SPEC)
    lb = LoadedBackbone.from_module(model.train(), TINY_SPEC, "random-init")
    assert (lb.source_sha256, lb.source_format, lb.name) == ("", "in-memory", "random-init")
    assert not lb.model.training and lb.spec == TINY_SPEC and lb.input_size == 32
    assert lb.report.mapped == {} and lb.report.source_format == "in-memory"


def test_cli_prints_the_report_and_the_files(tmp_path: Path) -> None:
    src = save(SMALL_CASES["solo-learn"]().ckpt, tmp_path / "solo.ckpt")
    out = tmp_path / "solo.pth"
    result = CliRunner().invoke(main, ["convert", str(src), "--to", "torchvision", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "format: solo-learn (auto-detected: 'state_dict' holds backbone. (solo-learn))"
    assert lines[1] == "backbone: 'state_dict' → backbone. (solo-learn)"
    assert lines[2] == "architecture: resnet_tiny (stem small, widths 8-16-16-24)"
    assert lines[3].startswith("mapped 72 keys, dropped ")
    assert any("× momentum encoder: state_dict/momentum_backbone.conv1.weight" in ln for ln in lines)
    assert lines[-2:] == [f"wrote {out}", f"wrote {out.with_suffix('.json')}"]
