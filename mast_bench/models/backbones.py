"""Backbone factories: torchvision ResNets without ``fc`` and a tiny ResNet for CPU work.

Every factory returns ``(module, feature_dim)``; ``module(x)`` maps images ``(N, 3, H, W)``
to global-average-pooled features ``(N, feature_dim)``. All backbones keep torchvision's
state-dict key layout (``conv1``, ``bn1``, ``layer1`` … ``layer4``), so the converters and
Detectron2 key renaming apply to each of them unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from mast_bench.registry import BACKBONES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """What a checkpoint must record to rebuild its backbone exactly."""

    name: str
    stem: str = "imagenet"
    widths: tuple[int, ...] = (64, 128, 256, 512)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackboneSpec:
        return cls(
            name=str(d["name"]),
            stem=str(d.get("stem", "imagenet")),
            widths=tuple(int(w) for w in d.get("widths", (64, 128, 256, 512))),
            mean=tuple(float(v) for v in d.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
        )


def _apply_stem(model: nn.Module, stem: str) -> None:
    if stem == "imagenet":
        return
    if stem != "small":
        raise ValueError(f"unknown stem {stem!r}; valid stems: imagenet, small")
    # Small-image stem (CIFAR/STL-style): 3x3 stride-1 conv, no max-pool.
    out = model.conv1.out_channels
    model.conv1 = nn.Conv2d(3, out, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()


def zero_init_residual_(module: nn.Module) -> int:
    """Start every residual block as the identity: zero the weight of its last BatchNorm, in place.

    VICReg's official ``main_vicreg.py`` builds its ResNet with ``zero_init_residual=True`` (as torchvision's
    option of that name: ``bn3`` of a Bottleneck, ``bn2`` of a BasicBlock), so each block's residual branch
    starts at zero; the pretraining methods do the same (:class:`~mast_bench.methods.base.PretrainMethod`).
    Consumes no random numbers, so a seeded build is otherwise unchanged.

    Args:
        module: any module holding torchvision ``BasicBlock`` / ``Bottleneck`` blocks.
    Returns:
        the number of blocks changed.
    """
    count = 0
    for m in module.modules():
        if isinstance(m, tv_resnet.Bottleneck):
            nn.init.zeros_(m.bn3.weight)
            count += 1
        elif isinstance(m, tv_resnet.BasicBlock):
            nn.init.zeros_(m.bn2.weight)
            count += 1
    return count


class ResNetTrunk(nn.Module):
    """A ResNet with torchvision's key layout and arbitrary stage widths, ending at pooled features."""

    def __init__(
        self,
        block: type[tv_resnet.BasicBlock] | type[tv_resnet.Bottleneck],
        layers: tuple[int, int, int, int],
        widths: tuple[int, int, int, int],
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = widths[3] * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            zero_init_residual_(self)

    def _make_layer(self, block: Any, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                tv_resnet.conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature maps of every stage: ``{"stem", "layer1", …, "layer4"}`` (for dense tasks)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {"stem": x}
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            out[name] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(N, 3, H, W)``. Returns pooled features ``(N, out_dim)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class TorchvisionTrunk(ResNetTrunk):
    """torchvision's resnet18/resnet50 with ``fc`` removed; identical keys and initialisation."""

    def __init__(self, arch: str) -> None:
        nn.Module.__init__(self)
        tv = getattr(tv_resnet, arch)(weights=None)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(tv, name))
        self.out_dim = tv.fc.in_features


@BACKBONES.register("resnet18")
def resnet18(stem: str = "imagenet", widths: tuple[int, ...] | None = None) -> tuple[nn.Module, int]:
    m = TorchvisionTrunk("resnet18")
    _apply_stem(m, stem)
    return m, m.out_dim


@BACKBONES.register("resnet50")
def resnet50(stem: str = "imagenet", widths: tuple[int, ...] | None = None) -> tuple[nn.Module, int]:
    m = TorchvisionTrunk("resnet50")
    _apply_stem(m, stem)
    return m, m.out_dim


@BACKBONES.register("resnet_tiny")
def resnet_tiny(stem: str = "imagenet", widths: tuple[int, ...] | None = None) -> tuple[nn.Module, int]:
    """ResNet-10-style trunk (one BasicBlock per stage) with small widths, for CPU tests and the demo."""
    w = tuple(widths) if widths else (16, 32, 64, 128)
    if len(w) != 4 or any(int(v) <= 0 for v in w):
        raise ValueError(f"resnet_tiny needs 4 positive stage widths, got {list(w)}")
    m = ResNetTrunk(tv_resnet.BasicBlock, (1, 1, 1, 1), w)  # type: ignore[arg-type]
    _apply_stem(m, stem)
    return m, m.out_dim


FIXED_WIDTHS = {"resnet18": (64, 128, 256, 512), "resnet50": (64, 128, 256, 512)}


def build_backbone(spec: BackboneSpec | str, **kwargs: Any) -> tuple[nn.Module, int]:
    """Build a backbone from its spec (or name). Returns ``(module, feature_dim)``."""
    if isinstance(spec, str):
        return BACKBONES.get(spec)(**kwargs)
    factory = BACKBONES.get(spec.name)
    widths = None if spec.name in FIXED_WIDTHS else spec.widths
    return factory(stem=spec.stem, widths=widths)


def spec_from_model_config(model_cfg: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> BackboneSpec:
    """The :class:`BackboneSpec` a recipe's ``model`` section describes."""
    widths = FIXED_WIDTHS.get(model_cfg.backbone, tuple(model_cfg.widths))
    return BackboneSpec(
        name=model_cfg.backbone, stem=model_cfg.stem, widths=widths, mean=tuple(mean), std=tuple(std)  # type: ignore[arg-type]
    )
