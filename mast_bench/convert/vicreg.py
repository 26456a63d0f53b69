"""VICReg (Bardes et al., ICLR 2022; facebookresearch/vicreg) checkpoints.

Two published layouts: the backbone-only ``resnet50.pth`` (torchvision names, no ``fc``) and the
full training checkpoint ``{"epoch", "model": DDP state dict, "optimizer"}`` written by
``main_vicreg.py``, whose model holds ``module.backbone.*`` and ``module.projector.*`` (the expander).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mast_bench.convert.formats import (
    Found,
    SourceFormat,
    drop_entries,
    is_tensor_dict,
    layout_error,
    split_state,
    tensor_dict,
)
from mast_bench.convert.torchvision_src import extract_bare, is_bare
from mast_bench.registry import CONVERTERS

BACKBONE_PREFIX = "module.backbone."


def ddp_model_keys(ckpt: Any) -> set[str] | None:
    """Keys of ``ckpt["model"]`` when it is a tensor dict, else ``None``."""
    if isinstance(ckpt, Mapping) and is_tensor_dict(ckpt.get("model")):
        return set(ckpt["model"])
    return None


def extract_ddp_full(ckpt: Mapping[str, Any], drops: Mapping[str, str], evidence: str) -> Found:
    """Read ``{"model": {module.backbone.*, ...}, "epoch", "optimizer"}`` (VICReg / Barlow Twins ``main_*.py``)."""
    sd = tensor_dict(ckpt["model"], "model")
    _, trunk, labels, dropped = split_state(sd, "model", (BACKBONE_PREFIX,), drops)
    dropped.update(drop_entries(ckpt, {"model"}))
    return Found(trunk=trunk, labels=labels, dropped=dropped, evidence=evidence)


@CONVERTERS.register("vicreg")
class VicregFormat(SourceFormat):
    name = "vicreg"
    summary = "VICReg: backbone-only resnet50.pth, or full checkpoint with 'model' → module.backbone./module.projector."

    def detect(self, ckpt: Any) -> str | None:
        keys = ddp_model_keys(ckpt)
        if keys is None:
            return None
        has = {p: any(k.startswith(p) for k in keys) for p in (BACKBONE_PREFIX, "module.projector.", "module.bn.")}
        if has[BACKBONE_PREFIX] and has["module.projector."] and not has["module.bn."]:
            return "'model' holds module.backbone. and module.projector. (VICReg full checkpoint)"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        if is_bare(ckpt):
            return extract_bare(ckpt, "a backbone-only VICReg file (torchvision names)", fc_reason=None)
        if ddp_model_keys(ckpt) is None:
            raise layout_error(
                "vicreg", "a torchvision-named state dict or a dict with 'model' (module.backbone.*)", ckpt
            )
        return extract_ddp_full(
            ckpt, {"module.projector.": "projector (expander)"}, "'model' → module.backbone. (VICReg full checkpoint)"
        )
