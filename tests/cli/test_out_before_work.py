"""pretrain, analyze, convert, make-synthetic check --out before any work; pretrain --no-verify reads partial data."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from data_fixtures import make_dtd

from mast_bench.cli import main

TINY = {
    "name": "tiny-dtd",
    "model": {"backbone": "resnet_tiny", "stem": "small", "widths": [4, 8, 8, 8], "projector": [16, 16]},
    "augment": {"size": 16},
    "data": {"dataset": "dtd", "split": "train"},
    "optim": {"warmup_epochs": 1.0},
    "run": {"epochs": 1, "batch_size": 4, "log_every": 1, "device": "cpu", "seed": 0},
}


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _no_work(*_a, **_k):
    raise AssertionError("work started before --out was checked")


def _busy(tmp_path: Path) -> Path:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    return out


def _refused(result, out: Path) -> None:
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"Error: output folder {str(out)!r} already exists and holds other files (keep.txt); choose another --out or "
        "pass --overwrite\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_pretrain_checks_out_before_reading_the_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("mast_bench.pretrain.run.build_pretrain_data", _no_work)
    out = _busy(tmp_path)
    result = CliRunner().invoke(main, ["pretrain", str(_recipe(tmp_path)), "--data-root", "/nonexistent", "--out",
                                       str(out)])  # fmt: skip
    _refused(result, out)


def test_analyze_checks_out_before_loading_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(importlib.import_module("mast_bench.analysis.analyze"), "load_checkpoint", _no_work)
    out = _busy(tmp_path)
    _refused(CliRunner().invoke(main, ["analyze", str(tmp_path / "final.pt"), "--out", str(out)]), out)


def test_make_synthetic_checks_out_before_drawing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("mast_bench.data.synthetic.suite.render_batch", _no_work)
    out = _busy(tmp_path)
    _refused(CliRunner().invoke(main, ["datasets", "make-synthetic", "--out", str(out), "--size", "test"]), out)


def test_convert_checks_out_before_reading_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("mast_bench.convert.api.safe_load", _no_work)
    (tmp_path / "w.json").write_text("{}")
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "c.pt"), "--to", "torchvision", "-o",
                                       str(tmp_path / "w.pth")])  # fmt: skip
    assert result.exit_code == 2
    assert result.output == (
        f"Error: output already exists: {tmp_path / 'w.json'}; pass --overwrite to replace it (nothing was written)\n"
    )


def test_pretrain_reads_a_partial_copy_only_with_no_verify(tmp_path: Path) -> None:
    root = make_dtd(tmp_path / "data")
    recipe = _recipe(tmp_path)
    refused = CliRunner().invoke(main, ["pretrain", str(recipe), "--data-root", str(root), "--out",
                                        str(tmp_path / "a"), "--no-progress"])  # fmt: skip
    assert refused.exit_code == 2, refused.output
    assert refused.output.startswith("Error: dataset 'dtd' at ") and "Pass --no-verify" in refused.output
    assert len(refused.output.splitlines()) == 1 and not (tmp_path / "a").exists()
    done = CliRunner().invoke(main, ["pretrain", str(recipe), "--data-root", str(root), "--out", str(tmp_path / "b"),
                                     "--no-progress", "--no-verify"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (tmp_path / "b" / "final.pt").is_file()


@pytest.mark.parametrize("flag", ["--no-verify"])
def test_pretrain_help_offers_what_its_errors_suggest(flag: str) -> None:
    assert flag in CliRunner().invoke(main, ["pretrain", "--help"]).output
