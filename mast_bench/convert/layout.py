"""What architecture a set of ResNet weights describes, read from key names and shapes.

The rule is torchvision's: ``BasicBlock`` stages (no ``conv3``) with 2-2-2-2 / 3-4-6-3 blocks are
ResNet-18 / 34; ``Bottleneck`` stages with 3-4-6-3 / 3-4-23-3 / 3-8-36-3 blocks are ResNet-50 /
101 / 152 (He et al., 2016, Table 1). One ``BasicBlock`` per stage is the project's
``resnet_tiny``, whose stage widths are read from the weights. A 7x7 first convolution is the
ImageNet stem; a 3x3 one is the small-image stem (CIFAR/STL-style, no max-pool).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import (
    FIXED_WIDTHS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneSpec,
    TorchvisionTrunk,
    build_backbone,
)

STANDARD_WIDTHS = (64, 128, 256, 512)
_DEPTHS: dict[tuple[str, tuple[int, ...]], str] = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("basic", (3, 4, 6, 3)): "resnet34",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
    ("bottleneck", (3, 8, 36, 3)): "resnet152",
}
ARCHITECTURES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet_tiny")
_STEMS = {7: "imagenet", 3: "small"}
# Markers of a Vision Transformer state dict (timm / DINO / MoCo v3 / MAE naming).
_VIT_PATTERNS = (
    re.compile(r"(^|\.)cls_token$"),
    re.compile(r"(^|\.)pos_embed$"),
    re.compile(r"(^|\.)blocks\.\d+\.attn\.qkv\.weight$"),
    re.compile(r"(^|\.)patch_embed\.proj\.weight$"),
)
_TRUNK_ANCHOR = "layer1.0.conv1.weight"


def iter_tensor_keys(obj: Any, where: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """Yield ``(container label, key)`` for every tensor in nested dicts (up to 6 levels deep)."""
    if depth > 6 or not isinstance(obj, Mapping):
        return
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            yield where, str(k)
        elif isinstance(v, Mapping):
            yield from iter_tensor_keys(v, f"{where}/{k}" if where else str(k), depth + 1)


def refuse_vit(obj: Any) -> None:
    """Raise a clear error if the checkpoint holds a Vision Transformer."""
    hits = [f"{w}/{k}" if w else k for w, k in iter_tensor_keys(obj) if any(p.search(k) for p in _VIT_PATTERNS)]
    if hits:
        shown = ", ".join(hits[:3]) + (", ..." if len(hits) > 3 else "")
        raise CheckpointError(
            f"this checkpoint holds a Vision Transformer (keys such as {shown}); mast-bench converts "
            f"ResNet backbones only ({', '.join(ARCHITECTURES)})"
        )


def trunk_prefixes(sd: Mapping[str, Any]) -> list[str]:
    """Prefixes under which ``sd`` holds a torchvision-named ResNet trunk (``P`` + ``conv1.weight`` etc.)."""
    found = []
    for k in sd:
        if isinstance(k, str) and k.endswith(_TRUNK_ANCHOR):
            prefix = k[: -len(_TRUNK_ANCHOR)]
            if prefix + "conv1.weight" in sd:
                found.append(prefix)
    return sorted(found)


def _blocks(trunk: Mapping[str, torch.Tensor], layer: int, where: str) -> int:
    idx = {int(m.group(1)) for k in trunk if (m := re.match(rf"layer{layer}\.(\d+)\.", k))}
    if not idx:
        raise CheckpointError(f"no 'layer{layer}' weights in {where}; a ResNet needs layer1..layer4")
    if idx != set(range(len(idx))):
        raise CheckpointError(f"blocks of layer{layer} in {where} are not numbered 0..N-1: {sorted(idx)}")
    return len(idx)


def _shape(trunk: Mapping[str, torch.Tensor], key: str, where: str, ndim: int) -> tuple[int, ...]:
    t = trunk.get(key)
    if not isinstance(t, torch.Tensor) or t.ndim != ndim:
        raise CheckpointError(f"{where} has no {ndim}-d tensor '{key}', which every torchvision ResNet has")
    return tuple(t.shape)


def infer_spec(trunk: Mapping[str, torch.Tensor], where: str) -> BackboneSpec:
    """The :class:`BackboneSpec` a torchvision-named trunk describes (ImageNet mean/std assumed).

    Args:
        trunk: torchvision-style keys (``conv1.weight``, ``layer1.0.conv1.weight``, ...) → tensors.
        where: label of the trunk in the checkpoint, for messages.

    Raises:
        CheckpointError: the keys do not form a supported ResNet.
    """
    kernel = _shape(trunk, "conv1.weight", where, 4)[-1]
    if kernel not in _STEMS:
        raise CheckpointError(f"first convolution in {where} is {kernel}x{kernel}; supported stems are 7x7 and 3x3")
    counts = tuple(_blocks(trunk, i, where) for i in (1, 2, 3, 4))
    block = "bottleneck" if "layer1.0.conv3.weight" in trunk else "basic"
    widths = tuple(_shape(trunk, f"layer{i}.0.conv1.weight", where, 4)[0] for i in (1, 2, 3, 4))
    name = _DEPTHS.get((block, counts))
    if name is None and block == "basic" and counts == (1, 1, 1, 1):
        name = "resnet_tiny"
    elif name is not None and widths != STANDARD_WIDTHS:
        name = None
    if name is None:
        raise CheckpointError(
            f"unsupported ResNet layout in {where}: {block} blocks {'-'.join(map(str, counts))}, stage widths "
            f"{'-'.join(map(str, widths))}; supported: {', '.join(ARCHITECTURES)} (torchvision widths 64-128-256-512 "
            "except resnet_tiny, one basic block per stage)"
        )
    return BackboneSpec(name=name, stem=_STEMS[kernel], widths=widths, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def describe(spec: BackboneSpec) -> str:
    return f"{spec.name} (stem {spec.stem}, widths {'-'.join(str(w) for w in spec.widths)})"


def build_target(spec: BackboneSpec) -> nn.Module:
    """An untrained backbone with the torchvision key layout ``spec`` names (pooled-feature output)."""
    if spec.name in FIXED_WIDTHS or spec.name == "resnet_tiny":
        return build_backbone(spec)[0]
    if spec.name in ARCHITECTURES:
        if spec.stem != "imagenet":
            raise CheckpointError(
                f"stem {spec.stem!r} is supported for resnet18, resnet50 and resnet_tiny, not {spec.name}"
            )
        return TorchvisionTrunk(spec.name)
    raise CheckpointError(f"unsupported architecture {spec.name!r}; supported: {', '.join(ARCHITECTURES)}")
