"""A conversion that would leave weights random is refused unless asked for, and then says so on the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.convert_sources import save, trunk

from mast_bench.cli import main


def _convert(src: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["convert", str(src), "--to", "detectron2", "-o", str(out), *extra])


def test_small_stem_to_detectron2_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    src = save(trunk("resnet18", stem="small", seed=3), tmp_path / "cifar.pth")
    out = tmp_path / "out"
    out.mkdir()
    result = _convert(src, out / "w.pkl")
    assert result.exit_code == 2, result.output
    assert result.output == (
        "Error: refusing to convert to Detectron2: resnet18 (stem small, widths 64-128-256-512) has a 'small' stem "
        "(3x3 stride-1 conv1, no max-pool); a stock Detectron2 ResNet (7x7 stride-2 BasicStem) cannot load "
        "stem.conv1.weight (64, 3, 3, 3), so its stem would stay random. Nothing was written. Use --to torchvision, "
        "or pass --allow-partial to write the weights anyway (with a backbone whose stem matches, registered "
        "yourself)\n"
    )
    assert list(out.iterdir()) == []


def test_allow_partial_writes_and_warns_on_the_terminal(tmp_path: Path) -> None:
    src = save(trunk("resnet18", stem="small", seed=3), tmp_path / "cifar.pth")
    result = _convert(src, tmp_path / "w.pkl", "--allow-partial")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar.pth", "w.json", "w.pkl", "w.yaml"]
    warning = [ln for ln in result.output.splitlines() if ln.startswith("warning: ")]
    assert warning == [
        "warning: resnet18 (stem small, widths 64-128-256-512) has a 'small' stem (3x3 stride-1 conv1, no max-pool); "
        "a stock Detectron2 ResNet (7x7 stride-2 BasicStem) cannot load stem.conv1.weight (64, 3, 3, 3), so its "
        "stem would stay random; written anyway (--allow-partial)"
    ]


@pytest.mark.parametrize("flag", [(), ("--allow-partial",)])
def test_standard_stem_converts_without_a_warning(tmp_path: Path, flag: tuple[str, ...]) -> None:
    src = save(trunk("resnet18", stem="imagenet", seed=4), tmp_path / "r18.pth")
    result = _convert(src, tmp_path / "w.pkl", *flag)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and (tmp_path / "w.pkl").is_file()


def test_output_under_a_file_is_refused_before_the_checkpoint_is_read(tmp_path: Path, monkeypatch) -> None:
    def no_reading(*_a, **_k):
        raise AssertionError("the checkpoint was read")

    monkeypatch.setattr("mast_bench.convert.api.safe_load", no_reading)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _convert(tmp_path / "any.pth", blocker / "w.pkl")
    assert result.exit_code == 2, result.output
    assert result.output == f"Error: cannot write '{blocker / 'w.pkl'}': '{blocker}' is a file, not a folder\n"
