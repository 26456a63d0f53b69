"""Bad input to ``mast-bench convert``: a clear error, no code run from the file, nothing half-written."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fixtures.convert_sources import SMALL_CASES, mlp, prefixed, save, trunk
from PIL import Image

from mast_bench.cli import main
from mast_bench.convert import convert_checkpoint, convert_source
from mast_bench.errors import CheckpointError
from mast_bench.fileio import OutputDirError
from mast_bench.registry import UnknownNameError


class MakeMarker:
    """A planted payload: unpickling it calls ``os.mkdir(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def _cli(src: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["convert", str(src), "--to", "torchvision", "-o", str(out), *extra])


def _assert_refused(tmp_path: Path, src: Path, fragment: str) -> None:
    """The CLI exits 2 with ``Error: ...fragment...`` and the output folder stays empty (no temp files)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    result = _cli(src, out_dir / "w.pth")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert list(out_dir.iterdir()) == []


def test_truncated_checkpoint(tmp_path: Path) -> None:
    good = save(SMALL_CASES["vicreg-full"]().ckpt, tmp_path / "good.pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _assert_refused(tmp_path, cut, f"checkpoint '{cut}' is truncated or corrupt and cannot be read")


def test_truncated_legacy_checkpoint(tmp_path: Path) -> None:
    good = tmp_path / "legacy.pth"
    torch.save(trunk(seed=1), good, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="is truncated or corrupt and cannot be read"):
        convert_source(cut)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("png", "it looks like a PNG image"),
        ("text", "it looks like a text file"),
        ("empty", "is empty (0 bytes)"),
        ("zip", "is a zip archive but not a PyTorch checkpoint (no data.pkl)"),
    ],
)
def test_not_a_checkpoint(kind: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / f"model.{kind}.pth"
    if kind == "png":
        Image.new("RGB", (4, 4), (255, 0, 0)).save(path, format="PNG")
    elif kind == "text":
        path.write_text("epoch: 100\nlr: 0.1\n")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("images/a.txt", "not weights")
    _assert_refused(tmp_path, path, expected)


def test_missing_file(tmp_path: Path) -> None:
    _assert_refused(tmp_path, tmp_path / "nope.pth", "checkpoint not found")


def test_python_objects_are_refused_with_the_reason_and_the_fix(tmp_path: Path) -> None:
    # DINO's full checkpoint stores its argparse arguments next to the weights.
    ckpt = {"teacher": prefixed(trunk(seed=1), "module.backbone."), "args": argparse.Namespace(arch="resnet50")}
    path = save(ckpt, tmp_path / "dino.pth")
    with pytest.raises(CheckpointError) as err:
        convert_source(path)
    msg = str(err.value)
    assert "it contains Python objects (argparse.Namespace)" in msg
    assert "unpickling can run code from the file" in msg and "torch.load(weights_only=True)" in msg
    assert "Re-save the weights as tensors only" in msg and "if you trust the file" in msg


@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
def test_planted_payload_never_runs(container: str, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    obj = {"state_dict": {"conv1.weight": torch.zeros(1)}, "extra": MakeMarker(marker)}
    if container == "torch.save":
        torch.save(obj, path)
    else:
        import pickle

        path.write_bytes(pickle.dumps(obj, protocol=2))
    # Control: an unrestricted load does run the payload, so the file is a live threat (torch then rejects a raw
    # pickle's missing magic number, but only after unpickling it).
    with contextlib.suppress(RuntimeError):
        torch.load(path, weights_only=False)
    assert marker.is_dir()
    marker.rmdir()
    _assert_refused(tmp_path, path, "refusing to load checkpoint")
    with pytest.raises(CheckpointError, match="only arbitrary unpickling can restore"):
        convert_source(path)
    with pytest.raises(CheckpointError):
        __import__("mast_bench.convert", fromlist=["load_backbone"]).load_backbone(path, cache_dir=tmp_path / "c")
    assert not marker.exists()
    assert not (tmp_path / "c").exists()


def _vit(prefix: str = "") -> dict[str, torch.Tensor]:
    sd = {
        "cls_token": torch.zeros(1, 1, 16),
        "pos_embed": torch.zeros(1, 5, 16),
        "patch_embed.proj.weight": torch.zeros(16, 3, 4, 4),
        "blocks.0.attn.qkv.weight": torch.zeros(48, 16),
        "head.weight": torch.zeros(10, 16),
    }
    return prefixed(sd, prefix)


@pytest.mark.parametrize(("fmt", "arch"), [("auto", None), ("torchvision", "resnet50"), ("moco", None)])
def test_vit_given_as_resnet(fmt: str, arch: str | None, tmp_path: Path) -> None:
    ckpt = _vit() if fmt == "torchvision" else {"arch": "vit_small", "state_dict": _vit("module.base_encoder.")}
    path = save(ckpt, tmp_path / "vit.pth")
    with pytest.raises(
        CheckpointError,
        match=r"this checkpoint holds a Vision Transformer \(keys such as .*cls_token"
        r".*; mast-bench converts ResNet backbones only \(resnet18, resnet34, resnet50",
    ):
        convert_source(path, fmt, arch)
    _assert_refused(tmp_path, path, "holds a Vision Transformer")


def test_two_candidate_prefixes_in_a_lightning_file(tmp_path: Path) -> None:
    state = {
        **prefixed(trunk(seed=1), "model.encoder."),
        **prefixed(trunk(seed=2), "model.momentum_encoder."),
        **mlp("model.head.", (24, 8)),
    }
    path = save({"pytorch-lightning_version": "2.1.0", "state_dict": state}, tmp_path / "l.ckpt")
    expected = (
        "candidate prefixes: 'model.encoder.', 'model.momentum_encoder.'; name the one to convert with "
        "--from lightning:PREFIX"
    )
    for fmt in ("auto", "lightning"):
        with pytest.raises(CheckpointError, match=expected):
            convert_source(path, fmt)
    _assert_refused(tmp_path, path, "'model.encoder.', 'model.momentum_encoder.'")
    conv = convert_source(path, "lightning:model.encoder.")
    assert torch.equal(conv.state_dict["conv1.weight"], trunk(seed=1)["conv1.weight"])
    assert conv.report.dropped["state_dict/model.momentum_encoder.conv1.weight"].startswith("other LightningModule")


def test_two_candidate_prefixes_in_a_moco_file(tmp_path: Path) -> None:
    state = {**prefixed(trunk(seed=1), "module.encoder_q."), **prefixed(trunk(seed=2), "module.base_encoder.")}
    path = save({"state_dict": state}, tmp_path / "m.pth")
    with pytest.raises(
        CheckpointError,
        match=re.escape(
            "'state_dict' holds backbone weights under two candidate prefixes: "
            "'module.encoder_q.' and 'module.base_encoder.'"
        ),
    ):
        convert_source(path)


def test_two_candidate_prefixes_in_an_unknown_layout(tmp_path: Path) -> None:
    model = {**prefixed(trunk(seed=1), "online."), **prefixed(trunk(seed=2), "target.")}
    path = save({"model": model}, tmp_path / "byol.pth")
    with pytest.raises(
        CheckpointError,
        match=r"ResNet weights under 2 candidate prefixes \('model' under 'online.'; "
        r"'model' under 'target.'\)",
    ):
        convert_source(path)


def test_existing_output_is_refused_and_left_untouched(tmp_path: Path) -> None:
    src = save(trunk(seed=1), tmp_path / "src.pth")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "w.pth"
    out.write_bytes(b"old weights")
    before = out.stat().st_mtime_ns
    result = _cli(src, out)
    assert result.exit_code == 2
    assert f"Error: output already exists: {out}; pass --overwrite to replace it (nothing was written)" in result.output
    assert out.read_bytes() == b"old weights" and out.stat().st_mtime_ns == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["w.pth"]  # no sidecar, no temp files
    # A leftover sidecar alone also blocks.
    out.unlink()
    (out_dir / "w.json").write_text("{}")
    with pytest.raises(OutputDirError, match=r"output already exists: .*w\.json"):
        convert_checkpoint(src, "torchvision", out)
    result = _cli(src, out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert torch.load(out, weights_only=True)["conv1.weight"].shape == (8, 3, 7, 7)
    assert sorted(p.name for p in out_dir.iterdir()) == ["w.json", "w.pth"]


def test_failed_conversion_leaves_existing_outputs_alone_even_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "w.pth"
    out.write_bytes(b"old")
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError):
        convert_checkpoint(bad, "torchvision", out, overwrite=True)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth", "w.pth"]


def test_bad_names_and_suffixes(tmp_path: Path) -> None:
    src = save(trunk(seed=1), tmp_path / "src.pth")
    with pytest.raises(UnknownNameError, match="unknown source format 'simclr'; valid formats: auto, mast-bench"):
        convert_source(src, "simclr")
    with pytest.raises(UnknownNameError, match="format 'moco' takes no ':' option; only lightning:PREFIX does"):
        convert_source(src, "moco:module.")
    with pytest.raises(OutputDirError, match=r"output '.*w.bin' must end in .pth or .pt"):
        convert_checkpoint(src, "torchvision", tmp_path / "w.bin")
    with pytest.raises(OutputDirError, match=r"must end in .pkl"):
        convert_checkpoint(src, "detectron2", tmp_path / "w.pth")


def test_non_finite_weights_are_an_error(tmp_path: Path) -> None:
    sd = trunk(seed=1)
    sd["layer1.0.conv2.weight"] = sd["layer1.0.conv2.weight"].clone()
    sd["layer1.0.conv2.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=re.escape("tensors with NaN or Inf values: layer1.0.conv2.weight")):
        convert_source(save(sd, tmp_path / "nan.pth"))
