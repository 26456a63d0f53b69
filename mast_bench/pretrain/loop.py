"""The training loop: steps, logging, checkpoints, and the three ways a run stops early.

* A non-finite loss on any rank stops the run before the optimiser step, with a
  :class:`TrainingError` naming the epoch, the step, the offending terms and the last good
  checkpoint, which is kept as it was.
* Non-finite gradients with a finite loss (e.g. 0·∞ in a backward pass, or an fp16 overflow that the
  GradScaler answers by halving its scale) skip the optimiser step, as the GradScaler does; every
  skipped step is logged (``"skip"`` events, and ``skipped_steps`` in the step and epoch records). More
  than :data:`MAX_SKIPPED_IN_A_ROW` skipped steps in a row stop the run with a :class:`TrainingError`
  naming the step, the parameters whose gradients are not finite and the loss terms, keeping the last
  good checkpoint. Without this check an fp16 run whose gradients are NaN at every step would skip
  every step forever, its loss constant and its scale halving, and never say so.
* Ctrl-C (``KeyboardInterrupt``) keeps the last good checkpoint as it was (a step in flight may
  have half-updated the weights, so nothing new is written) and raises
  :class:`TrainingInterrupted` saying how to resume.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
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

#: Skipped optimiser steps in a row after which training stops. A GradScaler overflow halves the scale and
#: the scale grows only every 2000 good steps, so overflows of a healthy fp16 run come one or two at a time;
#: 8 in a row is a 256× drop in the scale, far beyond its calibration, and in fp32 any skip is suspicious.
MAX_SKIPPED_IN_A_ROW = 8
#: At most this many parameter names are quoted in a log line or message.
_NAMES_SHOWN = 8


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one batch.

    Attributes:
        loss_finite: the loss was finite on every rank (otherwise nothing else was done).
        stepped: the optimiser step was taken (false: skipped for non-finite gradients).
        nonfinite: names of the parameters whose gradients were not finite (empty when stepped).
        scale: the GradScaler's scale after the step (``None`` without a scaler).
    """

    loss_finite: bool
    stepped: bool
    nonfinite: tuple[str, ...] = ()
    scale: float | None = None


def nonfinite_gradients(named: Iterable[tuple[str, nn.Parameter]]) -> tuple[str, ...]:
    """Names of the parameters whose ``.grad`` holds a NaN or an infinity (one device sync in the common case).

    Args:
        named: ``(name, parameter)`` pairs, e.g. ``model.named_parameters()``.
    """
    pairs = [(n, p.grad) for n, p in named if p.grad is not None]
    if not pairs:
        return ()
    ok = torch.stack([torch.isfinite(g).all() for _, g in pairs])
    if bool(ok.all()):
        return ()
    return tuple(n for (n, _), good in zip(pairs, ok.tolist()) if not good)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    views: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor],
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], StepOutcome]:
    """One optimiser step on a batch, skipped when the gradients are not finite.

    Args:
        model: the method (possibly DDP-wrapped); ``model(views, params)`` returns ``{"loss", ...}``.
        views: ``(x1, x2)`` each ``(B, 3, H, W)``; params: ``(p1, p2)`` each ``(B, PARAM_DIM)``.
    Returns:
        the method's outputs and a :class:`StepOutcome`. With a non-finite loss nothing is computed
        further. Gradients are checked after unscaling (fp16) on every rank: DDP has averaged them, so
        every rank reaches the same verdict. The GradScaler skips such a step and halves its scale; without
        a scaler the step is skipped here in the same way.
    """
    with precision.autocast():
        out = model(views, params)
    loss = out["loss"]
    if broadcast_flag(not bool(torch.isfinite(loss.detach()).all()), device):
        return out, StepOutcome(loss_finite=False, stepped=False)
    optimizer.zero_grad(set_to_none=True)
    scaler = precision.scaler
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # true gradients, so the check below sees what the optimiser would use
    else:
        loss.backward()
    bad = nonfinite_gradients(model.named_parameters())
    if scaler is not None:
        scaler.step(optimizer)  # skips the step itself when unscale_ found an inf or NaN
        scaler.update()
    elif not bad:
        optimizer.step()
    if bad:
        optimizer.zero_grad(set_to_none=True)
    return out, StepOutcome(True, not bad, bad, None if scaler is None else float(scaler.get_scale()))


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
    #: Optimiser steps skipped for non-finite gradients: in this process, and in the current run of them.
    skipped_steps: int = 0
    skipped_in_a_row: int = 0
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

    def _skipped(self, epoch: int, out: dict[str, torch.Tensor], outcome: StepOutcome) -> None:
        """Log a skipped step; raise :class:`TrainingError` once too many come in a row."""
        self.skipped_steps += 1
        self.skipped_in_a_row += 1
        names = list(outcome.nonfinite[:_NAMES_SHOWN])
        more = len(outcome.nonfinite) - len(names)
        shown = ", ".join(names) + (f" and {more} more" if more > 0 else "")
        self.logbook.write("skip", epoch=epoch + 1, step=self.step + 1, nonfinite=names,
                           nonfinite_count=len(outcome.nonfinite), in_a_row=self.skipped_in_a_row,
                           skipped_steps=self.skipped_steps, scale=outcome.scale)
        if self.skipped_in_a_row <= MAX_SKIPPED_IN_A_ROW:
            return
        terms = ", ".join(f"{k}={float(v.detach()):.6g}" for k, v in out.items())
        first = self.step + 2 - self.skipped_in_a_row
        scale = "" if outcome.scale is None else f"; gradient scale now {outcome.scale:g}"
        msg = (f"optimiser step skipped {self.skipped_in_a_row} times in a row (steps {first} to {self.step + 1}, "
               f"epoch {epoch + 1}): non-finite gradients in {shown} with a finite loss ({terms}){scale}; "
               f"stopped without saving; {self._kept()}")
        self.logbook.write("stop", epoch=epoch + 1, step=self.step + 1, message=msg)
        raise TrainingError(msg)

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
            out, outcome = train_step(self.model, self.optimizer, self.precision, views, params, self.device)
            if not outcome.loss_finite:
                raise self._nonfinite(epoch, out)
            if outcome.stepped:
                self.skipped_in_a_row = 0
            else:
                self._skipped(epoch, out, outcome)
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
                                   skipped_steps=self.skipped_steps, images_per_s=rate, time=now - self.started)
                bar.set_postfix(loss=f"{values['loss']:.4g}", img_s=f"{rate:.0f}", refresh=False)
                t_log, images_since = now, 0
            if run.checkpoint_every_steps and self.step % run.checkpoint_every_steps == 0:
                self.save(complete=self.step == spe * run.epochs)
        if n_steps == 0:
            return
        now = time.perf_counter()
        means = {k: float(all_reduce_mean(v / n_steps)) for k, v in sums.items()}
        self.logbook.write("epoch", epoch=epoch + 1, step=self.step, lr=self.schedule(self.step - 1), **means,
                           skipped_steps=self.skipped_steps, images_per_s=images / max(now - t_epoch, 1e-9),
                           epoch_time=now - t_epoch, time=now - self.started)
        done = epoch + 1
        last = done == run.epochs
        due = last or (run.checkpoint_every and done % run.checkpoint_every == 0)
        if due and self.last_good != (done, self.step):
            self.save(complete=last)

    def final(self) -> dict:
        """The ``final.pt`` contents: weights and metadata, no optimiser state."""
        return make_checkpoint(self.method, self.recipe, self.step // self.steps_per_epoch, self.step, True)
