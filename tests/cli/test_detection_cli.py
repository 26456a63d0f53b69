"""``mast-bench evaluate detection``: --dry-run writes the complete config and converted weights; bad input
gets one line and exit 2, with nothing half-written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.convert_sources import mast_bench_case, r50_trunk, save, torchvision_case

from mast_bench.cli import main

pytestmark = pytest.mark.detectron2
pytest.importorskip("detectron2")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "cache"))


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["evaluate", "detection", *args])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="module")
def r50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(r50_trunk(), tmp_path_factory.mktemp("w") / "r50.pth")


def test_dry_run_writes_config_and_weights_for_the_asked_hardware(r50: Path, tmp_path: Path) -> None:
    out = tmp_path / "recs"
    result = _run("--weights", str(r50), "--task", "voc0712-c4", "--dry-run", "--num-gpus", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "voc0712-c4: total batch 15, base lr 0.01875 on 3 process(es)" in result.output
    assert "SOLVER.MAX_ITER: 24000 -> 25600 (total batch 16 -> 15 on 3 process(es); linear scaling x0.9375)" in (
        result.output
    )
    folder = next((out / "detectron2").iterdir()) / "voc0712-c4"
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "plan.json", "weights.pkl"]
    text = (folder / "config.yaml").read_text()
    assert "IMS_PER_BATCH: 15" in text and f"WEIGHTS: {folder / 'weights.pkl'}" in text
    assert not list(out.glob("*.record.json"))  # nothing trained, nothing recorded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", "voc0712-c4", "--dry-run"],
            "Error: task 'voc0712-c4' is written for resnet50, but the weights "
            "are resnet18 (stem imagenet, widths 64-128-256-512)",
        ),
        (
            ["--task", "synthetic", "--data-root", "{tmp}/nothing-here", "--num-gpus", "0"],
            "Error: --data-root '{tmp}/nothing-here' is not a folder; expected layout: <root>/scenes/{{train,val}}",
        ),
        (
            ["--task", "synthetic", "--data-root", "{tmp}", "--num-gpus", "64"],
            "Error: --num-gpus 64 asked, but this machine has",
        ),
        (
            ["--task", "synthetic", "--dry-run", "--num-machines", "2", "--machine-rank", "2"],
            "Error: Invalid value for --machine-rank: must be below --num-machines (2)",
        ),
        (
            ["--task", "synthetic", "--dry-run", "--set", "SOLVER.NOPE=1"],
            "Error: --set 'SOLVER.NOPE=1': Detectron2 has no config key 'SOLVER.NOPE'",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args: list[str], message: str, tmp_path: Path) -> None:
    case = torchvision_case() if "voc0712-c4" in args else mast_bench_case()
    weights = save(case.ckpt, tmp_path / "w.pt")
    out = tmp_path / "recs"
    args = [a.format(tmp=tmp_path) for a in args]
    result = _run("--weights", str(weights), "--out", str(out), *args)
    assert result.exit_code == 2, result.output
    assert message.format(tmp=tmp_path) in result.output
    assert "Traceback" not in result.output
    assert _files(out) == []


def test_detectron2_missing_names_make_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "detectron2", None)  # `import detectron2` now raises ImportError
    weights = save(mast_bench_case().ckpt, tmp_path / "w.pt")
    result = _run("--weights", str(weights), "--task", "synthetic", "--dry-run", "--out", str(tmp_path / "recs"))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error: Detectron2 is not installed; run `make setup`")
    assert _files(tmp_path / "recs") == []


def test_final_pt_is_named_after_its_run_folder_like_the_other_evaluators(tmp_path: Path) -> None:
    # `evaluate linear/knn/fewshot` name <run>/final.pt "<run>"; detection must file the same model under the
    # same name, or one checkpoint's rows split in two in the leaderboard.
    (tmp_path / "vicreg_run").mkdir()
    weights = save(mast_bench_case().ckpt, tmp_path / "vicreg_run" / "final.pt")
    out = tmp_path / "recs"
    result = _run("--weights", str(weights), "--task", "synthetic", "--dry-run", "--num-gpus", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    [folder] = (out / "detectron2").iterdir()
    assert folder.name.startswith("vicreg_run-"), folder.name
    named = _run("--weights", str(weights), "--task", "synthetic", "--dry-run", "--num-gpus", "0", "--out", str(out),
                 "--model-name", "mine")  # fmt: skip
    assert named.exit_code == 0, named.output
    assert sorted(p.name.split("-")[0] for p in (out / "detectron2").iterdir()) == ["mine", "vicreg_run"]


def test_a_root_without_the_voc_layout_prints_the_tree_as_one_readable_line(r50: Path, tmp_path: Path) -> None:
    (tmp_path / "data" / "VOC2007").mkdir(parents=True)
    out = tmp_path / "recs"
    result = _run("--weights", str(r50), "--task", "voc0712-c4", "--data-root", str(tmp_path / "data"),
                  "--num-gpus", "0", "--out", str(out))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: VOC2007/Annotations is missing under --data-root '{tmp_path / 'data'}'; expected layout: "
        "<data-root>/VOC2007/ (or VOCdevkit/VOC2007/) holding Annotations/<id>.xml, "
        "ImageSets/Main/{trainval,test}.txt, JPEGImages/<id>.jpg; <data-root>/VOC2012/ (or VOCdevkit/VOC2012/) "
        "holding Annotations/<id>.xml, ImageSets/Main/trainval.txt, JPEGImages/<id>.jpg"
    ]
    assert _files(out) == []
