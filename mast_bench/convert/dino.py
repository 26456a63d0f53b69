"""DINO ResNet-50 (Caron et al., ICCV 2021; facebookresearch/dino) checkpoints.

Published ``dino_resnet50_pretrain.pth``: the teacher backbone with torchvision names (``fc`` is
an identity, so absent). Full training ``checkpoint.pth``: ``{"student", "teacher", "optimizer",
"epoch", "args", "dino_loss", "fp16_scaler"}``; each network is a ``MultiCropWrapper``
(``backbone.``, ``head.``), DDP-wrapped (``module.``) for ResNets. DINO evaluates the teacher, so
the teacher backbone is converted. ``args`` is an ``argparse.Namespace`` that safe loading
refuses: re-save the file without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mast_bench.convert.formats import (
    Found,
    SourceFormat,
    drop_entries,
    is_tensor_dict,
    label,
    layout_error,
    split_state,
    tensor_dict,
)
from mast_bench.convert.layout import trunk_prefixes
from mast_bench.convert.torchvision_src import extract_bare, is_bare
from mast_bench.registry import CONVERTERS

PREFIXES = ("module.backbone.", "backbone.")
_HEAD = "DINO head (projection MLP and prototypes)"


def _is_full(ckpt: Any) -> bool:
    return isinstance(ckpt, Mapping) and is_tensor_dict(ckpt.get("teacher")) and is_tensor_dict(ckpt.get("student"))


@CONVERTERS.register("dino-resnet50")
class DinoResnet50Format(SourceFormat):
    name = "dino-resnet50"
    summary = "DINO ResNet-50: dino_resnet50_pretrain.pth, or a full checkpoint (teacher → module.backbone.)"

    def detect(self, ckpt: Any) -> str | None:
        if _is_full(ckpt) and any(p in trunk_prefixes(ckpt["teacher"]) for p in PREFIXES):
            return "'teacher' and 'student' networks (DINO full checkpoint)"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        if is_bare(ckpt):
            return extract_bare(
                ckpt, "a backbone-only DINO file (torchvision names)", fc_reason=None, required_arch="resnet50"
            )
        if not _is_full(ckpt):
            raise layout_error("dino-resnet50", "a torchvision-named state dict or 'teacher' and 'student'", ckpt)
        teacher = tensor_dict(ckpt["teacher"], "teacher")
        drops = {"module.head.": _HEAD, "head.": _HEAD}
        prefix, trunk, labels, dropped = split_state(teacher, "teacher", PREFIXES, drops)
        dropped.update(
            {label("student", str(k)): "student network (DINO evaluates the teacher)" for k in ckpt["student"]}
        )
        dropped.update(
            drop_entries(ckpt, {"teacher", "student"}, known={"dino_loss": "DINO loss centre (teacher output mean)"})
        )
        return Found(
            trunk=trunk,
            labels=labels,
            dropped=dropped,
            evidence=f"'teacher' → {prefix} (DINO full checkpoint)",
            fc_reason="classifier (fc)",
            required_arch="resnet50",
        )
