"""Write converted weights as a torchvision state dict plus a JSON sidecar.

``out.pth`` loads with ``strict=True`` into ``torchvision.models.<arch>(weights=None)`` with ``fc``
removed (``resnet_tiny``: into ``mast_bench.models.build_backbone(spec)``); ``out.json`` records the
source format and sha256, the architecture, the normalisation mean/std, the input size and the
full key report.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from mast_bench.convert.outputs import atomic_files, check_output, sidecar
from mast_bench.convert.report import Converted

SUFFIXES = (".pth", ".pt")


def target_model_name(arch: str) -> str:
    """The model the written state dict loads into, as the sidecar names it."""
    if arch == "resnet_tiny":
        return "mast_bench.models.build_backbone(spec) (resnet_tiny)"
    return f"torchvision.models.{arch} without fc"


def serialise(state_dict: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()


def write_torchvision(out: str | Path, conv: Converted, overwrite: bool = False) -> list[Path]:
    """Write ``out`` (.pth/.pt) and ``out``'s ``.json`` sidecar atomically.

    Args:
        out: path of the weights file.
        conv: the conversion to write.
        overwrite: replace existing files (otherwise refuse and write nothing).

    Returns:
        The written paths: weights, sidecar.
    """
    paths = check_output(out, SUFFIXES, (".json",), overwrite)
    data = serialise(conv.state_dict)
    meta: dict[str, Any] = sidecar(
        conv,
        "torchvision",
        paths[0],
        hashlib.sha256(data).hexdigest(),
        {"load_into": target_model_name(conv.spec.name)},
    )
    with atomic_files(paths, ["wb", "w"]) as (fw, fs):
        fs.write(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
        fw.write(data)
    return paths
