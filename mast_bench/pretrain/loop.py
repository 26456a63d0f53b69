"""The training loop: steps, logging, checkpoints, and the two ways a run stops early.

* A non-finite loss on any rank stops the run before the optimiser step, with a
  :class:`TrainingError` naming the epoch, the step, the offending terms and the last good
  checkpoint, which is kept as it was.
* Ctrl-C (``KeyboardInterrupt``) keeps the last good checkpoint as it was (a step in flight may
  have half-updated the weights, so nothing new is written) and raises
  :class:`TrainingInterrupted` saying how to resume.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from mast_bench.config import Recipe
from mast_bench.errors import TrainingError, TrainingInterrupted
from mast_bench.methods.base import PretrainMethod
from mast_bench.pretrain.checkpoint import make_checkpoint, save_checkpoint
from mast_bench.pretrain.data import PretrainData
from mast_bench.pretrain.device import Precision
from mast_bench.pretrain.distributed import DistEnv, all_reduce_mean, broadcast_flag
from mast_bench.pretrain.logbook import Logbook
from mast_bench.pretrain.resume import CHECKPOINT
from mast_bench.pretrain.rng import capture_rng_state
from mast_bench.pretrain.schedule import LRSchedule, set_lr


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    views: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor],
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], bool]:
    """One optimiser step on a batch.

    Args:
        model: the method (possibly DDP-wrapped); ``model(views, params)`` returns ``{"loss", ...}``.
        views: ``(x1, x2)`` each ``(B, 3, H, W)``; params: ``(p1, p2)`` each ``(B, PARAM_DIM)``.
    Returns:
        the method's outputs and whether the loss was finite on every rank (no step is taken if not).
    """
    with precision.autocast():
        out = model(views, params)
    loss = out["loss"]
    if broadcast_flag(not bool(torch.isfinite(loss.detach()).all()), device):
        return out, False
    optimizer.zero_grad(set_to_none=True)
    if precision.scaler is not None:
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return out, True


@dataclass
class Trainer:
    """State of one pretraining run (built by :func:`mast_bench.pretrain.run.pretrain`)."""

    recipe: Recipe
    out: Path
    env: DistEnv
    device: torch.device
    precision: Precision
    data: PretrainData
    schedule: LRSchedule
    method: PretrainMethod
    model: nn.Module
    optimizer: torch.optim.Optimizer
    logbook: Logbook
    step: int = 0
    #: ``(epoch, step)`` of the last checkpoint written or resumed from.
    last_good: tuple[int, int] | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def steps_per_epoch(self) -> int:
        return self.data.sampler.steps_per_epoch

    def save(self, complete: bool = False) -> None:
        """Write ``checkpoint.pt`` (rank 0, atomically) at the current step."""
        epoch = self.step // self.steps_per_epoch
        if self.env.is_main:
            scaler = self.precision.scaler
            resume = {"rng": capture_rng_state(), "scaler": scaler.state_dict() if scaler else {},
                      "steps_per_epoch": self.steps_per_epoch, "world_size": self.env.world_size}
            ckpt = make_checkpoint(self.method, self.recipe, epoch, self.step, complete, self.optimizer, resume)
            save_checkpoint(self.out / CHECKPOINT, ckpt)
        self.last_good = (epoch, self.step)

    def _kept(self) -> str:
        if self.last_good is None:
            return "no checkpoint had been written yet"
        e, s = self.last_good
        return f"last good checkpoint kept at {self.out / CHECKPOINT} (epoch {e}, step {s})"

    def _nonfinite(self, epoch: int, out: dict[str, torch.Tensor]) -> TrainingError:
        terms = ", ".join(f"{k}={float(v.detach()):.6g}" for k, v in out.items())
        msg = (f"non-finite loss at epoch {epoch + 1} step {self.step + 1} ({terms}); stopped without saving; "
               f"{self._kept()}")
        self.logbook.write("stop", epoch=epoch + 1, step=self.step + 1, message=msg)
        return TrainingError(msg)

    def _interrupted(self, epoch: int) -> TrainingInterrupted:
        where = f"interrupted at epoch {epoch + 1} step {self.step + 1}; "
        if self.last_good is None:
            return TrainingInterrupted(where + "no checkpoint had been written yet, so start the run again")
        return TrainingInterrupted(where + self._kept() + f"; continue with --resume --out {self.out}", resumable=True)

    def _log_values(self, out: dict[str, torch.Tensor]) -> dict[str, float]:
        return {k: float(all_reduce_mean(v.detach().float())) for k, v in out.items()}

    def run(self, progress: bool) -> None:
        """Train from ``self.step`` to the end of ``run.epochs``."""
        run, spe = self.recipe.run, self.steps_per_epoch
        total = spe * run.epochs
        bar = tqdm(total=total, initial=self.step, disable=not (progress and self.env.is_main), unit="step",
                   desc=f"pretrain {self.recipe.name}", dynamic_ncols=True, mininterval=1.0)
        epoch = self.step // spe
        try:
            for epoch in range(self.step // spe, run.epochs):
                self._epoch(epoch, bar)
        except KeyboardInterrupt:
            raise self._interrupted(epoch) from None
        finally:
            bar.close()

    def _epoch(self, epoch: int, bar: tqdm) -> None:
        run, spe = self.recipe.run, self.steps_per_epoch
        self.data.sampler.set_epoch(epoch, start_step=self.step - epoch * spe)
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        n_steps, images, images_since = 0, 0, 0
        t_epoch = t_log = time.perf_counter()
        for views, params in self.data.loader:
            views = [v.to(self.device, non_blocking=True) for v in views]
            params = [p.to(self.device, non_blocking=True) for p in params]
            lr = self.schedule(self.step)
            set_lr(self.optimizer, lr)
            out, ok = train_step(self.model, self.optimizer, self.precision, views, params, self.device)
            if not ok:
                raise self._nonfinite(epoch, out)
            self.step += 1
            n_steps += 1
            batch_images = views[0].shape[0] * self.env.world_size
            images += batch_images
            images_since += batch_images
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float()
            bar.update(1)
            if self.step % run.log_every == 0:
                now = time.perf_counter()
                values = self._log_values(out)
                rate = images_since / max(now - t_log, 1e-9)
                self.logbook.write("step", epoch=epoch + 1, step=self.step, lr=lr, **values,
                                   images_per_s=rate, time=now - self.started)
                bar.set_postfix(loss=f"{values['loss']:.4g}", img_s=f"{rate:.0f}", refresh=False)
                t_log, images_since = now, 0
            if run.checkpoint_every_steps and self.step % run.checkpoint_every_steps == 0:
                self.save(complete=self.step == spe * run.epochs)
        if n_steps == 0:
            return
        now = time.perf_counter()
        means = {k: float(all_reduce_mean(v / n_steps)) for k, v in sums.items()}
        self.logbook.write("epoch", epoch=epoch + 1, step=self.step, lr=self.schedule(self.step - 1), **means,
                           images_per_s=images / max(now - t_epoch, 1e-9), epoch_time=now - t_epoch,
                           time=now - self.started)
        done = epoch + 1
        last = done == run.epochs
        due = last or (run.checkpoint_every and done % run.checkpoint_every == 0)
        if due and self.last_good != (done, self.step):
            self.save(complete=last)

    def final(self) -> dict:
        """The ``final.pt`` contents: weights and metadata, no optimiser state."""
        return make_checkpoint(self.method, self.recipe, self.step // self.steps_per_epoch, self.step, True)
