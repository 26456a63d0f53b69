"""LARS exactly as VICReg's ``main_vicreg.py`` implements it (You et al., 2017; Bardes et al., 2022).

For each parameter ``p`` with gradient ``g``:

    d = g + wd · p                          (weight decay, unless excluded)
    d = d · q,  q = η‖p‖/‖d‖ if ‖p‖ > 0 and ‖d‖ > 0 else 1   (adaptation, unless excluded)
    μ = momentum · μ + d
    p = p − lr · μ

VICReg excludes biases and normalisation parameters (every 1-D tensor) from both weight decay and
adaptation. Where VICReg passes filter functions, we put the two switches into each parameter
group (``weight_decay`` and ``lars_adapt``), so the optimiser state holds plain values only and
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def exclude_bias_and_norm(p: torch.Tensor) -> bool:
    """VICReg's filter: 1-D tensors (biases, BatchNorm weights and biases) get no decay and no adaptation."""
    return p.ndim == 1


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling with momentum (VICReg's variant).

    Args:
        params: parameters or groups; a group may set ``weight_decay`` and ``lars_adapt`` (bool).
        lr: learning rate (the schedule overwrites it every step).
        weight_decay: L2 coefficient added to the gradient (VICReg: 1e-6).
        momentum: heavy-ball momentum (VICReg: 0.9).
        eta: trust coefficient η (VICReg: 0.001).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        eta: float = 0.001,
    ) -> None:
        if lr < 0 or weight_decay < 0 or not 0 <= momentum < 1 or eta <= 0:
            raise ValueError(
                f"invalid LARS settings: lr={lr}, weight_decay={weight_decay}, momentum={momentum}, eta={eta}"
            )
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta, lars_adapt=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                dp = p.grad
                if g["weight_decay"] != 0:
                    dp = dp.add(p, alpha=g["weight_decay"])
                if g["lars_adapt"]:
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(
                        param_norm > 0.0, torch.where(update_norm > 0, g["eta"] * param_norm / update_norm, one), one
                    )
                    dp = dp.mul(q)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])
        return loss


def lars_param_groups(model: nn.Module, weight_decay: float, exclude: Iterable[nn.Parameter] = ()) -> list[dict]:
    """Split ``model``'s trainable parameters into VICReg's two LARS groups.

    Args:
        model: the module whose parameters LARS trains.
        weight_decay: decay for the adapted group.
        exclude: parameters to leave out (e.g. a method's auxiliary parameters, trained separately).
    Returns:
        ``[{"params": ≥2-D, "weight_decay": wd, "lars_adapt": True},
           {"params": 1-D (biases, norms), "weight_decay": 0.0, "lars_adapt": False}]`` (empty groups dropped).
    """
    skip = {id(p) for p in exclude}
    adapted, plain = [], []
    for p in model.parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        (plain if exclude_bias_and_norm(p) else adapted).append(p)
    groups = [
        {"params": adapted, "weight_decay": weight_decay, "lars_adapt": True, "name": "weights"},
        {"params": plain, "weight_decay": 0.0, "lars_adapt": False, "name": "bias_and_norm"},
    ]
    return [g for g in groups if g["params"]]
