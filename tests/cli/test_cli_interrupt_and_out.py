"""Every command: Ctrl-C exits 130 with one line; evaluate commands check --out before loading anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from downstream_fixtures import register_fake, tiny_backbone, tree

from mast_bench.cli import INTERRUPTED, evaluate_cmd, main

BLOBS = "test-cli-blobs"


@pytest.fixture(scope="module", autouse=True)
def _fake() -> None:
    register_fake(BLOBS, {"train": 30, "val": 15, "test": 15})


def _interrupt(*_a, **_kw):
    raise KeyboardInterrupt


def _evaluate_args(tmp_path: Path, command: str, out: Path) -> list[str]:
    common = ["--weights", str(tmp_path / "w.pt"), "--out", str(out), "--device", "cpu", "--no-progress"]
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"groups:\n  - evaluator: knn\n    protocol: synthetic-knn\n    folder: '.'\n    datasets: [{BLOBS}]\n"
    )
    return {
        "linear": [
            "evaluate",
            "linear",
            "--dataset",
            BLOBS,
            "--data-root",
            str(tmp_path),
            "--protocol",
            "synthetic-linear",
            *common,
        ],
        "knn": [
            "evaluate",
            "knn",
            "--dataset",
            BLOBS,
            "--data-root",
            str(tmp_path),
            "--protocol",
            "synthetic-knn",
            *common,
        ],
        "suite": ["evaluate", "suite", "--suite", str(suite), "--data-root", str(tmp_path), *common],
        "imagenet-linear": ["evaluate", "imagenet-linear", "--dataset", BLOBS, "--data-root", str(tmp_path), *common],
        "semisup": ["evaluate", "semisup", "--percent", "1", "--dataset", BLOBS, "--data-root", str(tmp_path), *common],
    }[command]


@pytest.mark.parametrize("command", ["linear", "knn", "suite", "imagenet-linear", "semisup"])
def test_evaluate_checks_out_before_loading_the_weights(tmp_path, monkeypatch, command: str) -> None:
    loaded: list[object] = []
    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: loaded.append(a) or tiny_backbone())
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(main, _evaluate_args(tmp_path, command, tmp_path / "file" / "rec"))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: cannot create output folder {str(tmp_path / 'file' / 'rec')!r}")
    assert len(result.output.splitlines()) == 1 and loaded == []


@pytest.mark.parametrize("command", ["linear", "knn", "suite"])
def test_ctrl_c_during_an_evaluation_exits_130_and_leaves_no_partial_file(tmp_path, monkeypatch, command) -> None:
    from mast_bench.downstream import features

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    monkeypatch.setattr(features, "_forward_all", _interrupt)
    result = CliRunner().invoke(main, _evaluate_args(tmp_path, command, tmp_path / "rec"))
    assert result.exit_code == 130
    assert result.output.splitlines()[-1] == INTERRUPTED
    assert "Aborted!" not in result.output and "Traceback" not in result.output
    assert tree(tmp_path / "rec") == []


@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["leaderboard", "--records", "."], "mast_bench.results.leaderboard.build_leaderboard"),
        (["datasets", "list"], "mast_bench.registry.DATASETS.items"),
        (
            ["evaluate", "knn", "--weights", "w.pt", "--dataset", BLOBS, "--data-root", "."],
            "mast_bench.cli.evaluate_cmd._load_backbone",
        ),
    ],
)
def test_ctrl_c_in_any_command_prints_one_line_and_exits_130(tmp_path, monkeypatch, args, target) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(target, _interrupt)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    assert result.output == f"\n{INTERRUPTED}\n"
