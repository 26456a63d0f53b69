"""Fine-tune and evaluate through Detectron2 on the synthetic scenes (a few iterations, CPU): records per seed
and their mean, equal to COCOeval on the predictions written; skips, failures and strict weight loading."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

pytest.importorskip("detectron2")

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mast_bench.downstream.detection import train as d2train
from mast_bench.downstream.detection.api import evaluate_detection
from mast_bench.downstream.detection.evaluator import work_dir
from mast_bench.downstream.detection.materialize import materialize
from mast_bench.downstream.detection.schedule import Hardware
from mast_bench.downstream.detection.tasks import get_task
from mast_bench.downstream.weights import EvalWeights
from mast_bench.errors import CheckpointError, ProtocolError
from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.results.records import iter_records

pytestmark = [pytest.mark.detectron2, pytest.mark.slow]
FAST = ("SOLVER.MAX_ITER=4", "SOLVER.IMS_PER_BATCH=2", "SOLVER.WARMUP_ITERS=1", "SOLVER.STEPS=[3]",
        "TEST.DETECTIONS_PER_IMAGE=10")  # fmt: skip
SPEC = BackboneSpec("resnet_tiny", "small", (16, 32, 64, 128))


def _tiny() -> EvalWeights:
    torch.manual_seed(0)
    return EvalWeights.from_module(build_backbone(SPEC)[0], SPEC, "tiny", method="vicreg", sha256="ab" * 32)


def _by_protocol(out: Path) -> dict[str, dict[str, object]]:
    table: dict[str, dict[str, object]] = {}
    for _, r in iter_records(out):
        table.setdefault(r.protocol, {})[r.metric] = r
    return table


def test_two_seeds_records_mean_and_cocoeval_parity(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "records"
    lines: list[str] = []
    outcomes = evaluate_detection(_tiny(), "synthetic", synthetic_root, out, "tiny", seeds=(0, 1), overrides=FAST,
                                  echo=lines.append)  # fmt: skip
    assert [o.status for o in outcomes] == ["done"] * 18  # 2 seeds x 6 metrics + the mean of each
    table = _by_protocol(out)
    assert sorted(table) == ["synthetic", "synthetic.seed0", "synthetic.seed1"]
    for metric in ("box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"):
        a, b, mean = table["synthetic.seed0"][metric], table["synthetic.seed1"][metric], table["synthetic"][metric]
        assert mean.value == pytest.approx((a.value + b.value) / 2)
        assert mean.std == pytest.approx(abs(a.value - b.value) / 2**0.5)
        assert mean.seeds == (0, 1) and a.seeds == (0,)
        assert mean.task == ("detection" if metric.startswith("box") else "segmentation")
    record = table["synthetic.seed0"]["box_AP"]
    for key in ("ims_per_batch", "base_lr", "num_gpus", "num_machines", "world_size", "detectron2_version"):
        assert key in record.extra and key in table["synthetic"]["box_AP"].extra
    assert record.extra["ims_per_batch"] == 2 and record.extra["num_gpus"] == 0 and record.extra["seed"] == 0
    assert "seed" not in table["synthetic"]["box_AP"].extra and table["synthetic"]["box_AP"].extra["per_seed"]
    assert record.extra["detectron2_version"] == __import__("detectron2").__version__
    assert record.method == "vicreg" and record.checkpoint_sha256 == "ab" * 32 and record.selected_on == "none"
    assert any("SOLVER.MAX_ITER: 300 -> 4 (--set)" in c for c in record.extra["config_changes"])
    # What we recorded equals pycocotools' COCOeval run directly on the predictions Detectron2 wrote.
    gt = COCO(str(synthetic_root / "scenes" / "annotations" / "instances_val.json"))
    for seed in (0, 1):
        dets = json.loads((work_dir(out, "tiny", "ab" * 32, "synthetic") / f"seed{seed}" /
                           "coco_instances_results.json").read_text())  # fmt: skip
        assert dets, "the model predicted nothing; the parity check would be vacuous"
        for iou_type, prefix in (("bbox", "box"), ("segm", "mask")):
            ev = COCOeval(gt, gt.loadRes(dets), iou_type)
            ev.evaluate(), ev.accumulate(), ev.summarize()
            recorded = [table[f"synthetic.seed{seed}"][f"{prefix}_{k}"].value for k in ("AP", "AP50", "AP75")]
            assert recorded == pytest.approx([100 * max(v, 0.0) for v in ev.stats[:3]], abs=1e-4)
    # A re-run skips every finished cell; asking for a third seed is refused while the 2-seed mean is kept.
    again = evaluate_detection(_tiny(), "synthetic", synthetic_root, out, "tiny", seeds=(0, 1), overrides=FAST)
    assert {o.status for o in again} == {"skipped"}
    with pytest.raises(ProtocolError, match=r"holds the mean over seeds \[0, 1\], not \[0, 1, 2\]"):
        evaluate_detection(_tiny(), "synthetic", synthetic_root, out, "tiny", seeds=(0, 1, 2), overrides=FAST)


def test_a_failed_seed_gets_a_failure_file_the_others_go_on_and_a_rerun_retries_it(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "records"
    real = d2train.run_seed

    def crash_seed_1(task, config_path, *args, **kw):  # type: ignore[no-untyped-def]
        if Path(config_path).parent.joinpath("config.yaml").read_text().find("SEED: 1\n") >= 0:
            raise RuntimeError("worker died")
        return real(task, config_path, *args, **kw)

    monkeypatch.setattr(d2train, "run_seed", crash_seed_1)
    outcomes = evaluate_detection(_tiny(), "synthetic", synthetic_root, out, "tiny", seeds=(0, 1), overrides=FAST)
    status = {o.name: o.status for o in outcomes}
    assert {s for n, s in status.items() if ".seed0 " in n} == {"done"}
    assert {s for n, s in status.items() if ".seed1 " in n} == {"omitted"}
    assert {s for n, s in status.items() if n.startswith("synthetic-scenes synthetic ")} == {"omitted"}
    failure = json.loads((out / "tiny__synthetic.seed1.failure.json").read_text())
    assert failure["status"] == "crashed" and failure["error"] == "RuntimeError: worker died"
    assert sorted(_by_protocol(out)) == ["synthetic.seed0"]  # no mean over fewer seeds than asked
    monkeypatch.setattr(d2train, "run_seed", real)
    rerun = evaluate_detection(_tiny(), "synthetic", synthetic_root, out, "tiny", seeds=(0, 1), overrides=FAST)
    status = {o.name: o.status for o in rerun}
    assert {s for n, s in status.items() if ".seed0 " in n} == {"skipped"}
    assert {s for n, s in status.items() if ".seed1 " in n or n.startswith("synthetic-scenes synthetic ")} == {"done"}
    assert not (out / "tiny__synthetic.seed1.failure.json").exists()
    assert not list(out.glob("*.omitted.json"))


def test_a_diverging_seed_is_recorded_as_diverged(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "records"
    outcomes = evaluate_detection(_tiny(), "synthetic", synthetic_root, out, "tiny", seeds=(0,),
                                  overrides=(*FAST, "SOLVER.BASE_LR=1e12", "SOLVER.WARMUP_ITERS=0"))  # fmt: skip
    assert {o.status for o in outcomes} == {"omitted"}
    assert all("FloatingPointError" in o.error for o in outcomes)
    failure = json.loads((out / "tiny__synthetic.seed0.failure.json").read_text())
    assert failure["status"] == "diverged" and failure["base_lr"] == 1e12
    assert not list(out.glob("*.record.json"))


def test_converted_trunk_loads_with_zero_missing_keys_and_leftovers_are_errors(tmp_path: Path) -> None:
    from detectron2.modeling import build_model

    mat = materialize(get_task("synthetic"), _tiny(), Hardware(), tmp_path / "w")
    model = build_model(mat.cfg)
    d2train.load_trunk_strictly(model, str(mat.weights_path))
    trunk = _tiny().model.state_dict()
    loaded = model.backbone.bottom_up.state_dict()
    assert torch.equal(loaded["stem.conv1.weight"], trunk["conv1.weight"])
    assert torch.equal(loaded["res5.0.conv2.norm.running_var"], trunk["layer4.0.bn2.running_var"])
    data = pickle.loads(mat.weights_path.read_bytes())
    del data["model"]["res3.0.conv1.weight"]
    data["model"]["res9.extra"] = data["model"]["stem.conv1.weight"]
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(data))
    with pytest.raises(CheckpointError, match=r"1 trunk parameter.* not in the file, 1 key.* unused"):
        d2train.load_trunk_strictly(build_model(mat.cfg), str(bad))


def test_r50_c4_has_the_extra_res5_norm_and_loads_every_trunk_key(tmp_path: Path) -> None:
    from detectron2.layers import NaiveSyncBatchNorm
    from detectron2.modeling import build_model

    spec = BackboneSpec("resnet50")
    weights = EvalWeights.from_module(build_backbone(spec)[0], spec, "r50")
    mat = materialize(get_task("voc0712-c4"), weights, Hardware(num_gpus=0), tmp_path / "w")
    model = build_model(mat.cfg)
    assert isinstance(model.roi_heads.res5.norm, NaiveSyncBatchNorm)
    d2train.load_trunk_strictly(model, str(mat.weights_path))
    tv = weights.model.state_dict()
    assert torch.equal(model.roi_heads.res5[2].conv3.weight, tv["layer4.2.conv3.weight"])
    assert torch.equal(model.backbone.res4[5].conv1.weight, tv["layer3.5.conv1.weight"])


def test_demo_stage_rows_for_floor_and_checkpoints(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fixtures.convert_sources import mast_bench_case, save

    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "cache"))
    from mast_bench.downstream.detection.api import demo_detection

    vicreg = EvalWeights.load(save(mast_bench_case().ckpt, tmp_path / "vicreg.pt"))
    floor = EvalWeights.from_module(build_backbone(vicreg.spec)[0], vicreg.spec, "random-init")
    folder = tmp_path / "detection"
    stale = folder / "old__detection__x.record.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    rows, table = demo_detection({"random-init": floor, "vicreg": vicreg}, synthetic_root, folder, "test")
    assert not stale.exists()
    assert sorted({(r.model, r.method) for r in rows}) == [("random-init", "random-init"), ("vicreg", "mast")]
    assert {r.metric for r in rows} == {"box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"}
    assert all(r.protocol == "synthetic-frozen" and r.extra["ims_per_batch"] == 2 for r in rows)  # smoke schedule
    lines = table.read_text().splitlines()
    assert [line.split(" | ")[0] for line in lines[4:]] == ["| random-init", "| vicreg"]


@pytest.mark.parametrize("widths", [(16, 32, 64, 128), (8, 16, 16, 24)])
@pytest.mark.parametrize("stem", ["small", "imagenet"])
def test_detectron2_trunk_computes_what_our_trunk_computes(widths: tuple[int, ...], stem: str, tmp_path: Path) -> None:
    from detectron2.modeling import build_model

    spec = BackboneSpec("resnet_tiny", stem, widths)
    torch.manual_seed(1)
    ours = build_backbone(spec)[0]
    for m in ours.modules():  # non-trivial BN statistics, so that a mis-assigned norm shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.bias.data.uniform_(-0.2, 0.2)
    weights = EvalWeights.from_module(ours, spec, "tiny")
    mat = materialize(get_task("synthetic"), weights, Hardware(), tmp_path / "w")
    model = build_model(mat.cfg).eval()
    d2train.load_trunk_strictly(model, str(mat.weights_path))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got = model.backbone.bottom_up(x)
        want = ours.forward_maps(x)
    for d2_name, tv_name in (("res2", "layer1"), ("res3", "layer2"), ("res4", "layer3"), ("res5", "layer4")):
        torch.testing.assert_close(got[d2_name], want[tv_name], rtol=1e-4, atol=1e-5)


def test_the_frozen_task_trains_only_fpn_and_heads(tmp_path: Path) -> None:
    from detectron2.layers import FrozenBatchNorm2d
    from detectron2.modeling import build_model

    mat = materialize(get_task("synthetic-frozen"), _tiny(), Hardware(), tmp_path / "w")
    model = build_model(mat.cfg)
    trunk = model.backbone.bottom_up
    assert not any(p.requires_grad for p in trunk.parameters())
    assert isinstance(trunk.res5[0].conv1.norm, FrozenBatchNorm2d)
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("backbone.bottom_up."))
