"""Build the optimiser a recipe asks for, with VICReg's parameter grouping.

Backbone and projector weights get weight decay (and, for LARS, layer-wise adaptation); biases and
normalisation parameters get neither (VICReg's ``exclude_bias_and_norm``). A method's auxiliary
parameters (:meth:`PretrainMethod.aux_parameters`, e.g. MAST's mask logits) form their own group
with ``lr_scale = optim.aux_lr_scale``, no weight decay and no LARS adaptation.
"""

from __future__ import annotations

import torch

from mast_bench.config import ConfigError, OptimConfig
from mast_bench.methods.base import PretrainMethod
from mast_bench.pretrain.lars import LARS, lars_param_groups


def param_groups(method: PretrainMethod, cfg: OptimConfig) -> list[dict]:
    """VICReg's groups plus the auxiliary group; every group carries ``lr_scale`` and ``name``."""
    aux = [p for p in method.aux_parameters() if p.requires_grad]
    groups = lars_param_groups(method, cfg.weight_decay, exclude=aux)
    for g in groups:
        g["lr_scale"] = 1.0
    if aux:
        groups.append({"params": aux, "weight_decay": 0.0, "lars_adapt": False, "lr_scale": cfg.aux_lr_scale,
                       "name": "aux"})
    return groups


def build_optimizer(method: PretrainMethod, cfg: OptimConfig) -> torch.optim.Optimizer:
    """LARS (VICReg), SGD with momentum, or AdamW over :func:`param_groups`; the lr is set by the schedule."""
    if cfg.weight_decay < 0:
        raise ConfigError(f"optim.weight_decay must be non-negative, got {cfg.weight_decay}")
    if cfg.aux_lr_scale < 0:
        raise ConfigError(f"optim.aux_lr_scale must be non-negative, got {cfg.aux_lr_scale}")
    groups = param_groups(method, cfg)
    if cfg.name == "lars":
        return LARS(groups, lr=0.0, weight_decay=cfg.weight_decay, momentum=cfg.momentum, eta=cfg.eta)
    for g in groups:  # the LARS switch means nothing to the torch optimisers
        g.pop("lars_adapt", None)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=0.0, weight_decay=cfg.weight_decay)
    raise ConfigError(f"optim.name: unknown optimiser {cfg.name!r}; valid: lars, sgd, adamw")
