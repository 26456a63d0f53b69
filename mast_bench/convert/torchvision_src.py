"""Bare torchvision-layout state dicts: supervised torchvision weights and backbone-only releases.

torchvision's ImageNet weights are ``{conv1.weight, bn1.*, layer1.0.*, ..., fc.*}``. VICReg,
Barlow Twins and DINO publish their ResNet-50 backbones in the same layout without ``fc``,
so their formats read such files through :func:`extract_bare` too.
"""

from __future__ import annotations

from typing import Any

from mast_bench.convert.formats import Found, SourceFormat, is_tensor_dict, split_state, tensor_dict
from mast_bench.convert.layout import trunk_prefixes
from mast_bench.registry import CONVERTERS

BARE_EVIDENCE = (
    "a bare torchvision-layout state dict (also how VICReg, Barlow Twins and DINO publish backbone-only weights)"
)


def is_bare(ckpt: Any) -> bool:
    """True for a flat ``{name: tensor}`` dict whose trunk sits at the top level (no prefix)."""
    return is_tensor_dict(ckpt) and "" in trunk_prefixes(ckpt)


def extract_bare(ckpt: Any, evidence: str, fc_reason: str | None, required_arch: str | None = None) -> Found:
    """Read a flat torchvision-named state dict; ``fc.*`` is dropped with ``fc_reason``."""
    sd = tensor_dict(ckpt, "")
    _, trunk, labels, dropped = split_state(sd, "", ("",), {})
    return Found(
        trunk=trunk, labels=labels, dropped=dropped, evidence=evidence, fc_reason=fc_reason, required_arch=required_arch
    )


@CONVERTERS.register("torchvision")
class TorchvisionFormat(SourceFormat):
    name = "torchvision"
    summary = "torchvision ResNet state dict (supervised ImageNet weights; fc dropped)"

    def detect(self, ckpt: Any) -> str | None:
        return BARE_EVIDENCE if is_bare(ckpt) else None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        return extract_bare(ckpt, "the torchvision state dict", fc_reason="supervised classifier (fc)")
