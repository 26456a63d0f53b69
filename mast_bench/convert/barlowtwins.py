"""Barlow Twins (Zbontar et al., ICML 2021; facebookresearch/barlowtwins) checkpoints.

Published backbone ``resnet50.pth``: torchvision names (``fc`` replaced by identity, so absent).
Full ``checkpoint.pth`` from ``main.py``: ``{"epoch", "model", "optimizer"}`` with ``module.backbone.*``,
``module.projector.*`` and ``module.bn.*``, the affine-free BatchNorm that normalises the
embeddings before the cross-correlation matrix.
"""

from __future__ import annotations

from typing import Any

from mast_bench.convert.formats import Found, SourceFormat, layout_error
from mast_bench.convert.torchvision_src import extract_bare, is_bare
from mast_bench.convert.vicreg import BACKBONE_PREFIX, ddp_model_keys, extract_ddp_full
from mast_bench.registry import CONVERTERS

_DROPS = {
    "module.projector.": "projector",
    "module.bn.": "cross-correlation BatchNorm (loss normaliser)",
}


@CONVERTERS.register("barlowtwins")
class BarlowTwinsFormat(SourceFormat):
    name = "barlowtwins"
    summary = (
        "Barlow Twins: backbone-only resnet50.pth, or checkpoint.pth with 'model' → module.backbone./projector./bn."
    )

    def detect(self, ckpt: Any) -> str | None:
        keys = ddp_model_keys(ckpt)
        if keys and any(k.startswith(BACKBONE_PREFIX) for k in keys) and "module.bn.running_mean" in keys:
            return "'model' holds module.backbone. and module.bn. (Barlow Twins full checkpoint)"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        if is_bare(ckpt):
            return extract_bare(ckpt, "a backbone-only Barlow Twins file (torchvision names)", fc_reason=None)
        if ddp_model_keys(ckpt) is None:
            raise layout_error("barlowtwins", "a torchvision-named state dict or a dict with 'model'", ckpt)
        return extract_ddp_full(ckpt, _DROPS, "'model' → module.backbone. (Barlow Twins full checkpoint)")
