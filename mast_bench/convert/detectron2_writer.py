"""Write converted weights for Detectron2: a ``.pkl`` model, a YAML config fragment and a JSON sidecar.

Key renaming from a torchvision ResNet (docs/protocols.md, checkpoint conversion to Detectron2; the rule of Detectron2's
``tools/convert-torchvision-to-d2.py``): ``conv1``/``bn1`` → ``stem.conv1``/``stem.conv1.norm``;
``layerN`` → ``res{N+1}``; ``bnK`` → ``convK.norm``; ``downsample.0``/``.1`` → ``shortcut``/
``shortcut.norm``. BatchNorm step counters are left out: Detectron2's FrozenBN has none and
its BN fills them. The fragment records what these weights require of a Detectron2 config:
RGB input, the normalisation in 0–255 pixel units, the depth, ``STRIDE_IN_1X1 False``
(torchvision puts a Bottleneck's stride in the 3x3 conv) and the res2 width.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mast_bench.convert.layout import describe
from mast_bench.convert.outputs import atomic_files, check_output, sidecar
from mast_bench.convert.report import Converted
from mast_bench.errors import CheckpointError

DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101, "resnet152": 152}
AUTHOR = "mast-bench"
_COUNTER = "num_batches_tracked"
_TV_RULES = (
    (re.compile(r"^conv1\.weight$"), lambda m: "stem.conv1.weight"),
    (re.compile(r"^bn1\.(\w+)$"), lambda m: f"stem.conv1.norm.{m[1]}"),
    (
        re.compile(r"^layer([1-4])\.(\d+)\.conv([1-3])\.weight$"),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.weight",
    ),
    (
        re.compile(r"^layer([1-4])\.(\d+)\.bn([1-3])\.(\w+)$"),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.norm.{m[4]}",
    ),
    (
        re.compile(r"^layer([1-4])\.(\d+)\.downsample\.0\.weight$"),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.shortcut.weight",
    ),
    (
        re.compile(r"^layer([1-4])\.(\d+)\.downsample\.1\.(\w+)$"),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.shortcut.norm.{m[3]}",
    ),
)
_D2_RULES = (
    (re.compile(r"^stem\.conv1\.weight$"), lambda m: "conv1.weight"),
    (re.compile(r"^stem\.conv1\.norm\.(\w+)$"), lambda m: f"bn1.{m[1]}"),
    (
        re.compile(r"^res([2-5])\.(\d+)\.conv([1-3])\.weight$"),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.weight",
    ),
    (
        re.compile(r"^res([2-5])\.(\d+)\.conv([1-3])\.norm\.(\w+)$"),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.bn{m[3]}.{m[4]}",
    ),
    (
        re.compile(r"^res([2-5])\.(\d+)\.shortcut\.weight$"),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.downsample.0.weight",
    ),
    (
        re.compile(r"^res([2-5])\.(\d+)\.shortcut\.norm\.(\w+)$"),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.downsample.1.{m[3]}",
    ),
)


def _rename(key: str, rules: tuple[Any, ...], kind: str) -> str:
    for pattern, fn in rules:
        if m := pattern.match(key):
            return fn(m)
    raise CheckpointError(f"key {key!r} is not part of a {kind} ResNet")


def torchvision_to_detectron2(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Rename a torchvision ResNet state dict to Detectron2 names.

    Returns:
        ``(model, left_out)``: numpy arrays under Detectron2 names, and the BN step counters left out.
    """
    model: dict[str, np.ndarray] = {}
    left_out: list[str] = []
    for k, v in state_dict.items():
        if k.endswith(_COUNTER):
            left_out.append(k)
            continue
        model[_rename(k, _TV_RULES, "torchvision")] = v.detach().cpu().numpy().copy()
    return model, left_out


def detectron2_to_torchvision(model: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`torchvision_to_detectron2` (BN step counters are not restored)."""
    return {_rename(k, _D2_RULES, "Detectron2"): torch.as_tensor(np.asarray(v)) for k, v in model.items()}


def config_fragment(conv: Converted, weights: Path) -> str:
    """YAML with the Detectron2 settings the weights require (mergeable with ``cfg.merge_from_file``)."""
    spec = conv.spec
    depth = DEPTHS[spec.name]
    bottleneck = depth >= 50
    cfg = {
        "VERSION": 2,  # Detectron2's config version; merge_from_file warns without it
        "INPUT": {"FORMAT": "RGB"},
        "MODEL": {
            # Detectron2 normalises raw 0-255 pixels: mean/std scaled by 255.
            "PIXEL_MEAN": [round(m * 255.0, 6) for m in spec.mean],
            "PIXEL_STD": [round(s * 255.0, 6) for s in spec.std],
            "RESNETS": {
                "DEPTH": depth,
                "STRIDE_IN_1X1": False,
                "RES2_OUT_CHANNELS": spec.widths[0] * (4 if bottleneck else 1),
                "STEM_OUT_CHANNELS": spec.widths[0],
            },
        },
    }
    lines = [
        f"# Detectron2 settings required by {weights.name} (written by mast-bench convert).",
        f"# Source: {conv.report.source_format} checkpoint, sha256 {conv.report.source_sha256}.",
        f"# Backbone: {describe(spec)}. Set MODEL.WEIGHTS to the .pkl and merge this file into your config.",
    ]
    if spec.stem != "imagenet":
        lines += [
            f"# NON-STANDARD STEM '{spec.stem}': 3x3 stride-1 conv1 and no max-pool. Detectron2's BasicStem is a",
            "# 7x7 stride-2 conv plus max-pool, so a stock Detectron2 ResNet cannot load stem.conv1.weight",
            f"# (shape {tuple(conv.state_dict['conv1.weight'].shape)}); register a backbone with a matching stem.",
        ]
    return "\n".join(lines) + "\n" + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def partial_load_warning(conv: Converted) -> str | None:
    """Why a stock Detectron2 ResNet would leave part of these weights random, or None when it loads them all.

    Detectron2's ``BasicStem`` is a 7x7 stride-2 conv plus max-pool; a small (CIFAR/STL-style) stem's
    3x3 ``conv1`` has another shape, so ``DetectionCheckpointer`` skips it and the stem stays randomly
    initialised.
    """
    if conv.spec.stem == "imagenet":
        return None
    shape = tuple(conv.state_dict["conv1.weight"].shape)
    return (
        f"{describe(conv.spec)} has a '{conv.spec.stem}' stem (3x3 stride-1 conv1, no max-pool); a stock Detectron2 "
        f"ResNet (7x7 stride-2 BasicStem) cannot load stem.conv1.weight {shape}, so its stem would stay random"
    )


def write_detectron2(
    out: str | Path, conv: Converted, overwrite: bool = False, allow_partial: bool = False
) -> list[Path]:
    """Write ``out`` (.pkl), its ``.yaml`` config fragment and ``.json`` sidecar atomically.

    The pickle holds ``{"model": {name: np.ndarray}, "__author__": "mast-bench", "matching_heuristics": True}``,
    the layout Detectron2's ``DetectionCheckpointer`` reads from ``.pkl`` files.

    Args:
        allow_partial: write weights that a stock Detectron2 model would load only in part
            (:func:`partial_load_warning`); refused otherwise.

    Raises:
        CheckpointError: the architecture has no Detectron2 ``RESNETS.DEPTH`` (``resnet_tiny``), or part of
            the weights would stay random and ``allow_partial`` is not set (nothing is written).
    """
    if conv.spec.name not in DEPTHS:
        raise CheckpointError(
            f"Detectron2's ResNet config (MODEL.RESNETS.DEPTH) covers depths 18, 34, 50, 101 and 152; "
            f"{describe(conv.spec)} has no Detectron2 equivalent. Convert with --to torchvision instead."
        )
    partial = partial_load_warning(conv)
    if partial and not allow_partial:
        raise CheckpointError(
            f"refusing to convert to Detectron2: {partial}. Nothing was written. Use --to torchvision, or pass "
            "--allow-partial to write the weights anyway (with a backbone whose stem matches, registered yourself)"
        )
    paths = check_output(out, (".pkl",), (".yaml", ".json"), overwrite)
    model, left_out = torchvision_to_detectron2(conv.state_dict)
    data = pickle.dumps({"model": model, "__author__": AUTHOR, "matching_heuristics": True}, protocol=4)
    extra = {
        "detectron2": {
            "config_fragment": paths[1].name,
            "left_out": {k: "BatchNorm step counter (Detectron2's FrozenBN has none)" for k in left_out},
        }
    }
    meta = sidecar(conv, "detectron2", paths[0], hashlib.sha256(data).hexdigest(), extra)
    with atomic_files(paths, ["wb", "w", "w"]) as (fw, fy, fj):
        fj.write(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
        fy.write(config_fragment(conv, paths[0]))
        fw.write(data)
    return paths
