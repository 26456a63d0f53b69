"""Materialise a task for given weights and hardware: the converted ``.pkl`` and the complete config.

What :func:`materialize` writes under its folder (atomically; nothing when it fails):

* ``weights.pkl``: the backbone under Detectron2 names (``{"model": ..., "__author__": "mast-bench",
  "matching_heuristics": True}``, the layout ``DetectionCheckpointer`` reads);
* ``config.yaml``: the complete Detectron2 config (every key, Detectron2's defaults included), headed by the
  list of every value that differs from the pinned file and why; diff it against a paper's config;
* ``plan.json``: the same changes, the effective batch and lr, the hardware and the weights' provenance.

Changes come from three places: the weights (pixel mean/std from the backbone spec, the trunk's shape), the
hardware (:mod:`mast_bench.downstream.detection.schedule`) and the run itself (device, weights path,
output folder, seed).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mast_bench.config import ConfigError
from mast_bench.convert.detectron2_writer import AUTHOR, DEPTHS, torchvision_to_detectron2
from mast_bench.convert.layout import describe
from mast_bench.convert.outputs import atomic_files
from mast_bench.downstream.detection.d2config import get_key, load_config, set_key
from mast_bench.downstream.detection.schedule import SCALED_KEYS, Change, Hardware, scale_solver
from mast_bench.downstream.detection.tasks import DetectionTask
from mast_bench.downstream.weights import EvalWeights
from mast_bench.errors import CheckpointError

#: Blocks per stage of the BasicBlock trunks the synthetic task's backbone builds.
BASIC_BLOCKS = {"resnet_tiny": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
#: log2 of res2's stride per stem (ImageNet: 4; small: 1); res<k> is then level k - 2 + this, and FPN
#: names each output p<level>.
_RES2_LEVEL = {"imagenet": 2, "small": 0}


@dataclass(frozen=True)
class Materialized:
    """A task made concrete for one set of weights, hardware and seed.

    Attributes:
        cfg: the frozen Detectron2 ``CfgNode``.
        changes: every value that differs from the pinned config, with the reason.
        folder: where ``weights.pkl``, ``config.yaml`` and ``plan.json`` were written.
        batch, lr: the effective total batch and base learning rate.
    """

    cfg: Any
    changes: list[Change]
    folder: Path
    batch: int
    lr: float

    @property
    def config_path(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def weights_path(self) -> Path:
        return self.folder / "weights.pkl"


def check_architecture(task: DetectionTask, weights: EvalWeights) -> None:
    """Refuse weights the task's config cannot hold.

    Raises:
        CheckpointError: another architecture (e.g. resnet18 weights for an R50 task), or a small-image stem
            where the config uses Detectron2's ImageNet stem.
    """
    spec = weights.spec
    if spec.name not in task.architectures:
        raise CheckpointError(
            f"task {task.name!r} is written for {' or '.join(task.architectures)}, but the weights are "
            f"{describe(spec)}; pick a task for this depth (`mast-bench evaluate detection --help` lists them)"
        )
    if spec.name in DEPTHS and spec.name not in BASIC_BLOCKS and spec.stem != "imagenet":
        raise CheckpointError(
            f"task {task.name!r} uses Detectron2's 7x7 stride-2 stem, but the weights are {describe(spec)}"
        )


def _fpn_levels(cfg: Any, stem: str) -> dict[str, Any]:
    """RPN and ROI-head feature names for the FPN over ``MODEL.FPN.IN_FEATURES`` of a trunk with ``stem``."""
    levels = [int(name[len("res") :]) - 2 + _RES2_LEVEL[stem] for name in cfg.MODEL.FPN.IN_FEATURES]
    names = [f"p{level}" for level in levels]
    # The RPN also sees the extra max-pooled level above the last one; the box and mask heads do not.
    return {"MODEL.RPN.IN_FEATURES": (*names, f"p{levels[-1] + 1}"), "MODEL.ROI_HEADS.IN_FEATURES": tuple(names)}


def _weights_values(cfg: Any, weights: EvalWeights) -> dict[str, Any]:
    """The config values the weights dictate (what ``mast-bench convert --to detectron2`` puts in its fragment)."""
    spec = weights.spec
    values: dict[str, Any] = {
        "INPUT.FORMAT": "RGB",
        # Detectron2 normalises raw 0-255 pixels, so the spec's [0, 1] mean/std are scaled by 255.
        "MODEL.PIXEL_MEAN": tuple(round(m * 255.0, 6) for m in spec.mean),
        "MODEL.PIXEL_STD": tuple(round(s * 255.0, 6) for s in spec.std),
    }
    if spec.name in BASIC_BLOCKS:
        values.update({
            "MODEL.MAST_BENCH_RESNET.BLOCKS": tuple(BASIC_BLOCKS[spec.name]),
            "MODEL.MAST_BENCH_RESNET.WIDTHS": tuple(int(w) for w in spec.widths),
            "MODEL.MAST_BENCH_RESNET.STEM": spec.stem,
            **_fpn_levels(cfg, spec.stem),
        })  # fmt: skip
    else:
        values.update({
            "MODEL.RESNETS.DEPTH": DEPTHS[spec.name],
            "MODEL.RESNETS.STRIDE_IN_1X1": False,  # torchvision puts a Bottleneck's stride in the 3x3 conv
            "MODEL.RESNETS.STEM_OUT_CHANNELS": int(spec.widths[0]),
            "MODEL.RESNETS.RES2_OUT_CHANNELS": int(spec.widths[0]) * 4,
        })  # fmt: skip
    return values


def _apply(cfg: Any, values: dict[str, Any], why: str) -> list[Change]:
    changes = []
    for key, value in values.items():
        old = get_key(cfg, key)
        old_cmp = tuple(old) if isinstance(old, list) else old
        if old_cmp != value:
            set_key(cfg, key, list(value) if isinstance(value, tuple) and isinstance(old, list) else value)
            changes.append(Change(key, old_cmp, value, why))
    return changes


def _parse_override(item: str) -> tuple[str, Any]:
    import yaml

    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. SOLVER.MAX_ITER=100")
    return key.strip(), yaml.safe_load(text)


def build_config(
    task: DetectionTask,
    weights: EvalWeights,
    hw: Hardware,
    folder: Path,
    seed: int,
    overrides: tuple[str, ...] = (),
) -> tuple[Any, list[Change]]:
    """The complete config (frozen) and its changes, without writing anything.

    Args:
        overrides: ``KEY=VALUE`` items (YAML values) applied last, e.g. ``SOLVER.MAX_ITER=100``; each is
            listed as a change (an unknown key is an error).
    """
    check_architecture(task, weights)
    cfg = load_config(task.config)
    changes = _apply(cfg, _weights_values(cfg, weights), f"required by the weights ({describe(weights.spec)})")
    pinned = {key: get_key(cfg, key) for key in SCALED_KEYS}
    _, hw_changes = scale_solver(pinned, hw)
    for change in hw_changes:
        set_key(cfg, change.key, change.new)
    changes += hw_changes
    run = {
        "MODEL.DEVICE": hw.device,
        "MODEL.WEIGHTS": str(folder / "weights.pkl"),
        "OUTPUT_DIR": str(folder / f"seed{seed}"),
        "SEED": int(seed),
        # Our own scaling replaces DefaultTrainer.auto_scale_workers; 0 keeps it off.
        "SOLVER.REFERENCE_WORLD_SIZE": 0,
    }
    changes += _apply(cfg, run, f"this run ({hw.world_size} process(es) on {hw.device}, seed {seed})")
    for item in overrides:
        key, value = _parse_override(item)
        try:
            get_key(cfg, key)
        except AttributeError:
            raise ConfigError(f"--set {item!r}: Detectron2 has no config key {key!r}") from None
        value = tuple(value) if isinstance(value, list) else value
        changes += _apply(cfg, {key: value}, "--set")
    cfg.freeze()
    return cfg, changes


def materialize(
    task: DetectionTask,
    weights: EvalWeights,
    hw: Hardware,
    folder: str | Path,
    seed: int = 0,
    overrides: tuple[str, ...] = (),
) -> Materialized:
    """Convert the weights and write ``weights.pkl``, ``config.yaml`` and ``plan.json`` under ``folder``.

    Needs no dataset files and no GPU: the config is what ``hw`` would run.

    Raises:
        CheckpointError: weights the task cannot hold (:func:`check_architecture`).
        ConfigError: the pinned config does not load, or an override names an unknown key.
    """
    folder = Path(folder).resolve()
    cfg, changes = build_config(task, weights, hw, folder, seed, overrides)
    model, left_out = torchvision_to_detectron2(weights.model.state_dict())
    data = pickle.dumps({"model": model, "__author__": AUTHOR, "matching_heuristics": True}, protocol=4)
    header = [
        f"# Complete Detectron2 config of task {task.name!r} ({task.source}),",
        f"# for weights {weights.name or '(in memory)'} ({describe(weights.spec)}, method {weights.method or '?'},",
        f"# sha256 {weights.sha256 or '(in memory)'}) on {hw.world_size} process(es) ({hw.device}).",
        f"# Pinned file: {task.config.name}. Values that differ from it ({len(changes)}):",
        *[f"#   {c.line()}" for c in changes],
    ]
    plan = {
        "task": task.name,
        "pinned_config": str(task.config),
        "changes": [{"key": c.key, "old": c.old, "new": c.new, "why": c.why} for c in changes],
        "ims_per_batch": int(cfg.SOLVER.IMS_PER_BATCH),
        "base_lr": float(cfg.SOLVER.BASE_LR),
        "hardware": {"num_gpus": hw.num_gpus, "num_machines": hw.num_machines, "world_size": hw.world_size},
        "weights": {
            "name": weights.name, "sha256": weights.sha256, "method": weights.method,
            "source_format": weights.source_format, "backbone": weights.spec.to_dict(),
            "pkl_sha256": hashlib.sha256(data).hexdigest(), "left_out": left_out,
        },
    }  # fmt: skip
    paths = [folder / "weights.pkl", folder / "config.yaml", folder / "plan.json"]
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_files(paths, ["wb", "w", "w"]) as (fw, fc, fp):
        fp.write(json.dumps(plan, indent=2, default=list) + "\n")
        fc.write("\n".join(header) + "\n" + cfg.dump())
        fw.write(data)
    return Materialized(cfg, changes, folder, int(cfg.SOLVER.IMS_PER_BATCH), float(cfg.SOLVER.BASE_LR))
