"""Per-seed and mean detection records: the mean carries a std only over two or more seeds, and a report over
one run shows each detection table once (the mean), while the leaderboard keeps every record.

Detectron2's training is replaced by fixed results per seed (the real run is covered by the slow tests); the
plan, weight conversion, config materialisation, record writing, leaderboard and report are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("detectron2")

import torch

from mast_bench.downstream.detection import train as d2train
from mast_bench.downstream.detection.api import evaluate_detection
from mast_bench.downstream.weights import EvalWeights
from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.results.leaderboard import build_leaderboard
from mast_bench.results.records import aggregate_protocol, iter_records, seed_protocol
from mast_bench.results.report import comparison_layouts, render_report

pytestmark = pytest.mark.detectron2
SPEC = BackboneSpec("resnet_tiny", "small", (16, 32, 64, 128))
METRICS = ("box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75")


def _tiny() -> EvalWeights:
    torch.manual_seed(0)
    return EvalWeights.from_module(build_backbone(SPEC)[0], SPEC, "tiny", method="vicreg", sha256="ab" * 32)


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Detectron2 results that depend on the seed in the materialised config (``SEED: k``)."""
    calls: list[str] = []

    def run_seed(task: str, config: Path, *args: object) -> dict[str, dict[str, float]]:
        seed = next(
            int(line.split(":")[1]) for line in Path(config).read_text().splitlines() if line.startswith("SEED:")
        )
        calls.append(f"{task}:{seed}")
        base = 10.0 + 3.0 * seed
        return {g: {"AP": base, "AP50": base + 20, "AP75": base + 5} for g in ("bbox", "segm")}

    monkeypatch.setattr(d2train, "run_seed", run_seed)
    return calls


def _run(root: Path, out: Path, seeds: tuple[int, ...]) -> dict[str, dict[str, object]]:
    outcomes = evaluate_detection(_tiny(), "synthetic", root, out, "tiny", seeds=seeds)
    assert {o.status for o in outcomes} == {"done"}, [(o.name, o.status, o.error) for o in outcomes]
    table: dict[str, dict[str, object]] = {}
    for _, r in iter_records(out):
        table.setdefault(r.protocol, {})[r.metric] = r
    return table


def test_one_seed_mean_has_no_std_two_seeds_have_the_sample_std(
    synthetic_root: Path, tmp_path: Path, fake_training: list[str]
) -> None:
    one = _run(synthetic_root, tmp_path / "one", (0,))
    assert fake_training == ["synthetic:0"]
    assert sorted(one) == ["synthetic", "synthetic.seed0"]
    for metric in METRICS:
        mean, seed0 = one["synthetic"][metric], one["synthetic.seed0"][metric]
        assert mean.value == seed0.value and mean.seeds == (0,)
        assert mean.std is None and seed0.std is None  # one seed: no spread over seeds, not 0.0
    two = _run(synthetic_root, tmp_path / "two", (0, 1))
    for metric in METRICS:
        mean = two["synthetic"][metric]
        # Seeds 0 and 1 give values 3 apart: sample std (n - 1) = 3 / sqrt(2).
        assert mean.seeds == (0, 1) and mean.std == pytest.approx(3.0 / 2**0.5)


def test_seed_protocol_names_round_trip() -> None:
    assert seed_protocol("voc0712-c4", 3) == "voc0712-c4.seed3"
    assert aggregate_protocol("voc0712-c4.seed3") == ("voc0712-c4", 3)
    assert aggregate_protocol("voc0712-c4") is None and aggregate_protocol("augself-logreg-5way1shot") is None


def test_report_over_one_detection_run_shows_each_table_once(
    synthetic_root: Path, tmp_path: Path, fake_training: list[str]
) -> None:
    _run(synthetic_root, tmp_path / "records", (0,))
    board = build_leaderboard(tmp_path / "records", tmp_path / "lb.csv")
    assert sorted(set(board["protocol"])) == ["synthetic", "synthetic.seed0"]  # the leaderboard keeps both
    names = [layout.name for layout in comparison_layouts(board)]
    assert names == [f"{task}__synthetic__{m}__val" for task, m in
                     [("detection", m) for m in METRICS[:3]] + [("segmentation", m) for m in METRICS[3:]]]  # fmt: skip
    out = render_report(tmp_path / "lb.csv", tmp_path / "report", layouts=["synthetic"])
    text = out.index.read_text()
    assert "synthetic.seed0" not in text
    assert text.count("detection · synthetic · box_AP (val)") == 1
    tables = sorted(p.name for p in out.tables if p.suffix == ".csv")
    assert not [t for t in tables if "seed0" in t] and len([t for t in tables if "__synthetic__" in t]) == 6


def test_a_seed_whose_mean_is_missing_keeps_its_table(
    synthetic_root: Path, tmp_path: Path, fake_training: list[str]
) -> None:
    records = tmp_path / "records"
    _run(synthetic_root, records, (0,))
    for path, record in iter_records(records):
        if record.protocol == "synthetic":
            path.unlink()  # e.g. the mean waits for a failed seed
    board = build_leaderboard(records, None)
    names = [layout.name for layout in comparison_layouts(board)]
    assert len(names) == 6 and all("__synthetic.seed0__" in n for n in names)
