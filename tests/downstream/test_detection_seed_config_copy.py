"""Each seed's records point to the config that seed trained with, kept in its own folder: the task folder's
``config.yaml`` is rewritten by the next seed and by a later ``--dry-run`` for other hardware.

Detectron2's training is replaced by a stub that reads the seed from the config it is given (the real run is
covered by the slow tests); planning, conversion, materialisation and records are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("detectron2")

import torch

from mast_bench.downstream.detection import train as d2train
from mast_bench.downstream.detection.api import dry_run, evaluate_detection
from mast_bench.downstream.detection.schedule import Hardware
from mast_bench.downstream.weights import EvalWeights
from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.results.records import iter_records

pytestmark = pytest.mark.detectron2
SPEC = BackboneSpec("resnet_tiny", "small", (16, 32, 64, 128))


def _seed_of(config: Path) -> int:
    return next(int(line.split(":")[1]) for line in config.read_text().splitlines() if line.startswith("SEED:"))


def test_each_seed_record_names_a_config_that_later_runs_leave_alone(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_seed(task: str, config: Path, *args: object) -> dict[str, dict[str, float]]:
        base = 10.0 + _seed_of(Path(config))
        return {g: {"AP": base, "AP50": base + 20, "AP75": base + 5} for g in ("bbox", "segm")}

    monkeypatch.setattr(d2train, "run_seed", run_seed)
    torch.manual_seed(0)
    weights = EvalWeights.from_module(build_backbone(SPEC)[0], SPEC, "tiny", method="vicreg", sha256="ab" * 32)
    out = tmp_path / "recs"
    outcomes = evaluate_detection(weights, "synthetic", synthetic_root, out, "tiny", seeds=(0, 1))
    assert {o.status for o in outcomes} == {"done"}
    mat = dry_run(weights, "synthetic", out, "tiny", Hardware(num_gpus=3))  # rewrites the task's config.yaml
    assert "IMS_PER_BATCH: 6" in mat.config_path.read_text()
    configs = {r.protocol: Path(r.extra["config"]) for _, r in iter_records(out) if r.metric == "box_AP"}
    assert configs["synthetic.seed0"] == mat.folder / "seed0" / "config.yaml"
    assert configs["synthetic.seed1"] == mat.folder / "seed1" / "config.yaml"
    for seed in (0, 1):
        text = configs[f"synthetic.seed{seed}"].read_text()
        assert _seed_of(configs[f"synthetic.seed{seed}"]) == seed
        assert "IMS_PER_BATCH: 8" in text and "device: cpu" in text.lower()
