"""Pinned Detectron2 configs and their materialisation: every key known, every base resolved, the protocol
facts key by key, the hardware scaling rule, and the weights' depth checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("detectron2")

from mast_bench.config import ConfigError
from mast_bench.downstream.detection import modeling  # noqa: F401
from mast_bench.downstream.detection.d2config import flatten, load_config
from mast_bench.downstream.detection.materialize import build_config, materialize
from mast_bench.downstream.detection.schedule import Hardware, scale_solver, total_batch
from mast_bench.downstream.detection.tasks import DETECTION_TASKS, get_task
from mast_bench.downstream.weights import EvalWeights
from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import BackboneSpec, build_backbone

pytestmark = pytest.mark.detectron2

TV_PIXELS = {
    "INPUT.FORMAT": "RGB",
    "MODEL.PIXEL_MEAN": (123.675, 116.28, 103.53),
    "MODEL.PIXEL_STD": (58.395, 57.12, 57.375),
    "MODEL.RESNETS.STRIDE_IN_1X1": False,
}
VOC_DATA = {
    "DATASETS.TRAIN": ("voc_2007_trainval", "voc_2012_trainval"),
    "DATASETS.TEST": ("voc_2007_test",),
    "INPUT.MIN_SIZE_TRAIN": tuple(range(480, 801, 32)),
    "INPUT.MIN_SIZE_TEST": 800,
    "MODEL.ROI_HEADS.NUM_CLASSES": 20,
    "MODEL.MASK_ON": False,
}
COCO_DATA = {
    "DATASETS.TRAIN": ("coco_2017_train",),
    "DATASETS.TEST": ("coco_2017_val",),
    "INPUT.MIN_SIZE_TRAIN": tuple(range(640, 801, 32)),
    "INPUT.MIN_SIZE_TEST": 800,
    "MODEL.ROI_HEADS.NUM_CLASSES": 80,
    "MODEL.MASK_ON": True,
}
MOCO_C4 = {
    "MODEL.META_ARCHITECTURE": "GeneralizedRCNN",
    "MODEL.BACKBONE.NAME": "build_resnet_backbone",
    "MODEL.ROI_HEADS.NAME": "Res5ROIHeadsExtraNorm",
    "MODEL.RESNETS.NORM": "naiveSyncBN",
    "MODEL.RESNETS.DEPTH": 50,
    "MODEL.BACKBONE.FREEZE_AT": 0,
    "TEST.PRECISE_BN.ENABLED": True,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 1000,
    "SOLVER.IMS_PER_BATCH": 16,
    "SOLVER.BASE_LR": 0.02,
}
# The protocol facts (docs/protocols.md, "Detection"), at each task's reference hardware.
FACTS = {
    "voc0712-c4": (Hardware(num_gpus=8), {
        **MOCO_C4, **VOC_DATA, **TV_PIXELS,
        "SOLVER.MAX_ITER": 24000, "SOLVER.STEPS": (18000, 22000), "SOLVER.WARMUP_ITERS": 100,
    }),
    "coco-c4-2x": (Hardware(num_gpus=8), {
        **MOCO_C4, **COCO_DATA, **TV_PIXELS, "SOLVER.MAX_ITER": 180000, "SOLVER.STEPS": (120000, 160000),
    }),
    "coco-fpn-1x": (Hardware(num_gpus=8), {
        **COCO_DATA, **TV_PIXELS,
        "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone", "MODEL.ROI_HEADS.NAME": "StandardROIHeads",
        "MODEL.RESNETS.DEPTH": 50, "MODEL.RESNETS.NORM": "SyncBN", "MODEL.FPN.NORM": "SyncBN",
        "MODEL.ROI_BOX_HEAD.NORM": "", "MODEL.ROI_MASK_HEAD.NORM": "",  # SyncBN in backbone and FPN only
        "MODEL.BACKBONE.FREEZE_AT": 0, "SOLVER.IMS_PER_BATCH": 16, "SOLVER.BASE_LR": 0.02,
        "SOLVER.MAX_ITER": 90000, "SOLVER.STEPS": (60000, 80000),
    }),
    "voc0712-fpn-ericsson": (Hardware(num_gpus=1), {
        **VOC_DATA, **TV_PIXELS,
        "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone", "MODEL.RESNETS.NORM": "FrozenBN",
        "MODEL.BACKBONE.FREEZE_AT": 2, "SOLVER.IMS_PER_BATCH": 2, "SOLVER.BASE_LR": 0.0025,
        "SOLVER.MAX_ITER": 144000, "SOLVER.STEPS": (96000, 128000), "SOLVER.WARMUP_ITERS": 100,
    }),
    "voc0712-fpn-ericsson-frozen": (Hardware(num_gpus=1), {
        **VOC_DATA, **TV_PIXELS, "MODEL.RESNETS.NORM": "FrozenBN", "MODEL.BACKBONE.FREEZE_AT": 4,
        "SOLVER.IMS_PER_BATCH": 2, "SOLVER.BASE_LR": 0.0025, "SOLVER.MAX_ITER": 144000,
    }),
    "synthetic": (Hardware(num_gpus=0), {
        "MODEL.BACKBONE.NAME": "build_mast_bench_resnet_fpn_backbone", "MODEL.RESNETS.NORM": "BN",
        "MODEL.MASK_ON": True, "MODEL.ROI_HEADS.NUM_CLASSES": 8, "MODEL.DEVICE": "cpu",
        "MODEL.MAST_BENCH_RESNET.BLOCKS": (1, 1, 1, 1), "MODEL.MAST_BENCH_RESNET.WIDTHS": (16, 32, 64, 128),
        "MODEL.MAST_BENCH_RESNET.STEM": "small", "MODEL.RPN.IN_FEATURES": ("p1", "p2", "p3", "p4"),
        "MODEL.ROI_HEADS.IN_FEATURES": ("p1", "p2", "p3"), "INPUT.FORMAT": "RGB",
    }),
    "synthetic-frozen": (Hardware(num_gpus=0), {
        "MODEL.BACKBONE.NAME": "build_mast_bench_resnet_fpn_backbone", "MODEL.BACKBONE.FREEZE_AT": 5,
        "MODEL.RESNETS.NORM": "BN", "MODEL.MASK_ON": True, "SOLVER.MAX_ITER": 300,
    }),
}  # fmt: skip


def _weights(name: str = "resnet50", stem: str = "imagenet") -> EvalWeights:
    widths = (16, 32, 64, 128) if name == "resnet_tiny" else (64, 128, 256, 512)
    spec = BackboneSpec(name, stem, widths)
    return EvalWeights.from_module(build_backbone(spec)[0], spec, f"{name}-test")


@pytest.fixture(scope="module")
def r50() -> EvalWeights:
    return _weights()


def test_every_task_has_a_fact_table() -> None:
    assert sorted(FACTS) == sorted(DETECTION_TASKS.names())


@pytest.mark.parametrize("name", sorted(DETECTION_TASKS.names()))
def test_pinned_config_loads_with_every_key_known(name: str) -> None:
    cfg = load_config(get_task(name).config)  # merge_from_file raises on an unknown key or a missing base
    assert cfg.MODEL.WEIGHTS == ""  # the weights come from the command, never from the pinned file


def test_unknown_key_and_missing_base_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  RESNETS:\n    DEPTHH: 50\n")
    with pytest.raises(ConfigError, match=r"MODEL\.RESNETS\.DEPTHH"):
        load_config(bad)
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text('_BASE_: "nowhere.yaml"\n')
    with pytest.raises(ConfigError, match=r"nowhere\.yaml"):
        load_config(orphan)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_dry_run_config_matches_the_protocol_facts(name: str, r50: EvalWeights, tmp_path: Path) -> None:
    hw, facts = FACTS[name]
    weights = _weights("resnet_tiny", "small") if name.startswith("synthetic") else r50
    mat = materialize(get_task(name), weights, hw, tmp_path / name)
    written = flatten(load_config(mat.config_path))  # the file on disk, reloaded: what a user would diff
    for key, expected in facts.items():
        got = written[key]
        if isinstance(expected, float):
            assert got == pytest.approx(expected), key
        else:
            assert got == expected, key
    assert written["MODEL.WEIGHTS"] == str(mat.weights_path)
    # At the reference hardware nothing but the run's own settings changes.
    assert {c.key for c in mat.changes} <= {"MODEL.DEVICE", "MODEL.WEIGHTS", "OUTPUT_DIR", "SEED"}
    plan = json.loads((mat.folder / "plan.json").read_text())
    assert plan["ims_per_batch"] == facts.get("SOLVER.IMS_PER_BATCH", written["SOLVER.IMS_PER_BATCH"])


def test_scaling_keeps_epochs_and_lists_every_change(r50: EvalWeights, tmp_path: Path) -> None:
    # 3 GPUs cannot share 16 images evenly: 15, lr x 15/16, iterations x 16/15.
    cfg, changes = build_config(get_task("voc0712-c4"), r50, Hardware(num_gpus=3), tmp_path, seed=0)
    assert cfg.SOLVER.IMS_PER_BATCH == 15
    assert pytest.approx(0.02 * 15 / 16) == cfg.SOLVER.BASE_LR
    assert cfg.SOLVER.MAX_ITER == 25600 and tuple(cfg.SOLVER.STEPS) == (19200, 23467)
    assert cfg.SOLVER.WARMUP_ITERS == 107
    assert cfg.SOLVER.MAX_ITER * cfg.SOLVER.IMS_PER_BATCH == 24000 * 16  # same images seen: same epochs
    keys = {c.key for c in changes}
    assert {"SOLVER.IMS_PER_BATCH", "SOLVER.BASE_LR", "SOLVER.MAX_ITER", "SOLVER.STEPS", "SOLVER.WARMUP_ITERS"} <= keys
    # A per-GPU batch that fits memory: 2 machines x 4 GPUs x 1 image = 8.
    cfg, _ = build_config(get_task("coco-fpn-1x"), r50, Hardware(4, 2, ims_per_gpu=1), tmp_path, seed=0)
    assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.MAX_ITER, tuple(cfg.SOLVER.STEPS)) == (8, 180000, (120000, 160000))
    assert pytest.approx(0.01) == cfg.SOLVER.BASE_LR


def test_total_batch_rule() -> None:
    assert total_batch(16, Hardware(num_gpus=8)) == 16
    assert total_batch(16, Hardware(num_gpus=32)) == 32  # at least one image per process
    assert total_batch(16, Hardware(num_gpus=6)) == 12
    assert total_batch(2, Hardware(num_gpus=0)) == 2
    values = {"SOLVER.IMS_PER_BATCH": 16, "SOLVER.BASE_LR": 0.02, "SOLVER.MAX_ITER": 100, "SOLVER.STEPS": (50,),
              "SOLVER.WARMUP_ITERS": 0, "SOLVER.CHECKPOINT_PERIOD": 10, "TEST.EVAL_PERIOD": 0}  # fmt: skip
    new, _ = scale_solver(values, Hardware(num_gpus=32))
    assert new["SOLVER.WARMUP_ITERS"] == 0 and new["TEST.EVAL_PERIOD"] == 0  # off stays off
    assert (new["SOLVER.MAX_ITER"], new["SOLVER.STEPS"], new["SOLVER.BASE_LR"]) == (50, (25,), 0.04)
    assert scale_solver(values, Hardware(num_gpus=4)) == (values, [])


@pytest.mark.parametrize(
    ("task", "arch", "stem"),
    [
        ("voc0712-c4", "resnet18", "imagenet"),
        ("coco-fpn-1x", "resnet_tiny", "small"),
        ("synthetic", "resnet50", "imagenet"),
    ],
)
def test_weights_of_another_depth_are_refused_before_anything_is_written(
    task: str, arch: str, stem: str, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match=f"task '{task}' is written for .* but the weights are {arch}"):
        materialize(get_task(task), _weights(arch, stem), Hardware(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pinned_configs_are_self_contained(tmp_path: Path) -> None:
    # Copied elsewhere, the folder still resolves: every _BASE_ is a sibling file.
    copy = tmp_path / "configs"
    shutil.copytree(get_task("voc0712-c4").config.parent, copy)
    for name in DETECTION_TASKS.names():
        load_config(copy / f"{name}.yaml")
