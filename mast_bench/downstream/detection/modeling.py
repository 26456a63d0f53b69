"""Detectron2 components the pinned configs name: MoCo's C4 box head and a ResNet-FPN for our small trunks.

* ``Res5ROIHeadsExtraNorm``: Detectron2's ``Res5ROIHeads`` with one more norm layer after res5, as in MoCo's
  ``detection/train_net.py`` (He et al. 2020: "an extra BN layer following the res5 stage" of the C4 head).
* ``build_mast_bench_resnet_fpn_backbone``: a ResNet of BasicBlocks with any blocks per stage and any stage
  widths (our ``resnet_tiny``, or resnet18/34) and either stem, built from Detectron2's own ``ResNet``,
  ``BasicBlock`` and ``FPN`` so that converted weights load under Detectron2 names (``stem.conv1``,
  ``res2.0.conv1`` ...) exactly as a stock ResNet's do. ``MODEL.MAST_BENCH_RESNET`` describes the trunk;
  ``MODEL.RESNETS.NORM`` is its norm.

Importing this module registers both in Detectron2's registries (once per process; ``launch`` workers import
it through :mod:`mast_bench.downstream.detection.train`).
"""

from __future__ import annotations

import math
from typing import Any

from mast_bench.downstream.detection.requirement import require_detectron2

require_detectron2()

from detectron2.layers import Conv2d, ShapeSpec, get_norm  # noqa: E402
from detectron2.modeling import BACKBONE_REGISTRY, ROI_HEADS_REGISTRY  # noqa: E402
from detectron2.modeling.backbone import FPN, ResNet  # noqa: E402
from detectron2.modeling.backbone.fpn import LastLevelMaxPool  # noqa: E402
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, CNNBlockBase  # noqa: E402
from detectron2.modeling.roi_heads import Res5ROIHeads  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

STEMS = ("imagenet", "small")


class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """``Res5ROIHeads`` plus a ``MODEL.RESNETS.NORM`` layer after the last res5 block (MoCo's C4 head)."""

    def __init__(self, cfg: Any, input_shape: Any) -> None:
        super().__init__(cfg, input_shape)
        self.res5.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, self.res5[-1].out_channels))


class SmallStem(CNNBlockBase):
    """The small-image stem of our trunks: 3x3 stride-1 conv + norm + ReLU, no max-pool (stride 1)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm: str = "BN") -> None:
        super().__init__(in_channels, out_channels, 1)
        self.conv1 = Conv2d(
            in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False,
            norm=get_norm(norm, out_channels),
        )  # fmt: skip

    def forward(self, x: Any) -> Any:
        return F.relu_(self.conv1(x))


class TorchvisionBasicBlock(BasicBlock):
    """Detectron2's ``BasicBlock`` with torchvision's shortcut rule: a projection whenever the block changes
    resolution *or* width (Detectron2's own adds one only when the width changes, which cannot hold a
    stride-2 block of equal widths, e.g. resnet_tiny's 16-16 stage)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm: str = "BN") -> None:
        super().__init__(in_channels, out_channels, stride=stride, norm=norm)
        if self.shortcut is None and stride != 1:
            self.shortcut = Conv2d(
                in_channels, out_channels, kernel_size=1, stride=stride, bias=False,
                norm=get_norm(norm, out_channels),
            )  # fmt: skip


def build_trunk(blocks: list[int], widths: list[int], stem: str, norm: str, freeze_at: int) -> ResNet:
    """A Detectron2 ``ResNet`` of BasicBlocks with torchvision's layout (stage strides 1, 2, 2, 2).

    Args:
        blocks: blocks per stage (``[1, 1, 1, 1]`` for resnet_tiny, ``[2, 2, 2, 2]`` for resnet18).
        widths: output channels per stage.
        stem: ``"imagenet"`` (7x7 stride-2 conv + max-pool, total stride 4) or ``"small"`` (stride 1).
        norm: a Detectron2 norm name (``"BN"``, ``"GN"``, ``"SyncBN"``, ``"FrozenBN"``).
        freeze_at: Detectron2's ``FREEZE_AT`` (0 trains everything).
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; valid stems: {', '.join(STEMS)}")
    if len(blocks) != 4 or len(widths) != 4:
        raise ValueError(f"MAST_BENCH_RESNET needs 4 stages, got BLOCKS {blocks} and WIDTHS {widths}")
    first = widths[0]
    stem_module: nn.Module = BasicStem(3, first, norm=norm) if stem == "imagenet" else SmallStem(3, first, norm=norm)
    stages, in_channels = [], first
    for i, (n, width) in enumerate(zip(blocks, widths)):
        stride = 1 if i == 0 else 2
        stages.append(
            ResNet.make_stage(
                block_class=TorchvisionBasicBlock, num_blocks=n, in_channels=in_channels, out_channels=width,
                stride_per_block=[stride] + [1] * (n - 1), norm=norm,
            )
        )  # fmt: skip
        in_channels = width
    return ResNet(stem_module, stages, out_features=["res2", "res3", "res4", "res5"], freeze_at=freeze_at)


def build_mast_bench_resnet_fpn_backbone(cfg: Any, input_shape: ShapeSpec) -> FPN:
    """Detectron2 backbone factory: :func:`build_trunk` from ``MODEL.MAST_BENCH_RESNET`` plus an FPN."""
    m = cfg.MODEL
    trunk = build_trunk(
        list(m.MAST_BENCH_RESNET.BLOCKS), list(m.MAST_BENCH_RESNET.WIDTHS), m.MAST_BENCH_RESNET.STEM,
        m.RESNETS.NORM, m.BACKBONE.FREEZE_AT,
    )  # fmt: skip
    top = LastLevelMaxPool()
    # FPN names its outputs p<log2 stride>; the extra level pools the last one (p5 for the ImageNet stem,
    # p3 for the stride-1 small stem).
    top.in_feature = f"p{int(math.log2(trunk.output_shape()[m.FPN.IN_FEATURES[-1]].stride))}"
    return FPN(
        bottom_up=trunk, in_features=m.FPN.IN_FEATURES, out_channels=m.FPN.OUT_CHANNELS, norm=m.FPN.NORM,
        top_block=top, fuse_type=m.FPN.FUSE_TYPE,
    )  # fmt: skip


def _register() -> None:
    # Registering twice raises in Detectron2's registry; a process imports this module once, but a peer
    # script (MoCo's train_net.py) may have registered its own Res5ROIHeadsExtraNorm already.
    if "Res5ROIHeadsExtraNorm" not in ROI_HEADS_REGISTRY:
        ROI_HEADS_REGISTRY.register(Res5ROIHeadsExtraNorm)
    if "build_mast_bench_resnet_fpn_backbone" not in BACKBONE_REGISTRY:
        BACKBONE_REGISTRY.register(build_mast_bench_resnet_fpn_backbone)


_register()
