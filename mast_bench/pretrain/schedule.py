"""VICReg's learning-rate schedule: linear warm-up, then cosine to a fraction of the peak, per step.

From ``adjust_learning_rate`` in VICReg's ``main_vicreg.py``:

    peak = base_lr · batch_size / 256
    step < warmup:  lr = peak · step / warmup
    otherwise:      q = ½ (1 + cos(π (step − warmup) / (total − warmup)))
                    lr = peak · q + final_lr_ratio · peak · (1 − q)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mast_bench.config import ConfigError, OptimConfig


def peak_lr(base_lr: float, batch_size: int) -> float:
    """Linear scaling rule (Goyal et al., 2017) as VICReg uses it: ``base_lr × batch / 256``."""
    return base_lr * batch_size / 256


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate as a function of the global optimiser step (0-based)."""

    peak: float
    warmup_steps: int
    total_steps: int
    final_ratio: float

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak * step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        if decay_steps <= 0:
            return self.peak
        t = min(step - self.warmup_steps, decay_steps)
        q = 0.5 * (1 + math.cos(math.pi * t / decay_steps))
        end = self.peak * self.final_ratio
        return self.peak * q + end * (1 - q)


def build_schedule(cfg: OptimConfig, batch_size: int, steps_per_epoch: int, epochs: int) -> LRSchedule:
    """The schedule for a run of ``epochs × steps_per_epoch`` steps at global ``batch_size``.

    Raises:
        ConfigError: warm-up longer than the run, or a negative learning rate or ratio.
    """
    if cfg.base_lr <= 0:
        raise ConfigError(f"optim.base_lr must be positive, got {cfg.base_lr}")
    if not 0 <= cfg.final_lr_ratio <= 1:
        raise ConfigError(f"optim.final_lr_ratio must be within [0, 1], got {cfg.final_lr_ratio}")
    if not 0 <= cfg.warmup_epochs <= epochs:
        raise ConfigError(f"optim.warmup_epochs ({cfg.warmup_epochs}) must be within [0, run.epochs = {epochs}]")
    return LRSchedule(
        peak=peak_lr(cfg.base_lr, batch_size),
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        total_steps=epochs * steps_per_epoch,
        final_ratio=cfg.final_lr_ratio,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr to ``lr × group["lr_scale"]`` (1 unless the group says otherwise)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
