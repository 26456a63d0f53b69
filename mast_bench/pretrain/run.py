"""``pretrain(recipe, out)``: set up a run (data, method, optimiser, resume state) and train it.

Everything that can be wrong with the inputs (recipe values, dataset name, data folder, the
checkpoint to resume) is checked before the output folder is touched, so a bad command leaves
nothing behind. Under torchrun the ranks join the process group first and then agree on those checks,
so a problem seen by one rank only (its copy of the data is missing) stops every rank with the same
message instead of leaving the others waiting. The output folder then holds ``recipe.yaml``,
``log.jsonl``, ``checkpoint.pt`` (latest resumable state), when training ends ``final.pt``, and with
``run.tensorboard`` a ``tensorboard/`` folder of event files.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mast_bench import code_version
from mast_bench.config import ConfigError, Recipe, dump_yaml
from mast_bench.fileio import atomic_write_text, prepare_out_dir
from mast_bench.methods.base import PretrainMethod
from mast_bench.pretrain.checkpoint import load_checkpoint, restore_method, save_checkpoint
from mast_bench.pretrain.data import PretrainData, build_pretrain_data
from mast_bench.pretrain.device import Precision, environment, maybe_compile, resolve_device, setup_precision
from mast_bench.pretrain.distributed import (
    DistEnv,
    barrier,
    env_from_environ,
    init_distributed,
    raise_if_any_failed,
    shutdown,
)
from mast_bench.pretrain.logbook import Logbook
from mast_bench.pretrain.loop import Trainer
from mast_bench.pretrain.optimizer import build_optimizer
from mast_bench.pretrain.resume import CHECKPOINT, FINAL, LOG, RECIPE, check_resumable, own_files
from mast_bench.pretrain.rng import restore_rng_state, seed_everything
from mast_bench.pretrain.schedule import LRSchedule, build_schedule
from mast_bench.pretrain.tensorboard_events import TensorBoardSink, check_available
from mast_bench.registry import METHODS

log = logging.getLogger(__name__)


def _validate_run(recipe: Recipe) -> None:
    run = recipe.run
    checks = [
        (run.epochs >= 1, f"run.epochs must be at least 1, got {run.epochs}"),
        (run.seed >= 0, f"run.seed must be non-negative, got {run.seed}"),
        (run.log_every >= 1, f"run.log_every must be at least 1, got {run.log_every}"),
        (run.checkpoint_every >= 0, f"run.checkpoint_every must be non-negative, got {run.checkpoint_every}"),
        (run.checkpoint_every_steps >= 0,
         f"run.checkpoint_every_steps must be non-negative, got {run.checkpoint_every_steps}"),
        (run.max_steps_per_epoch >= 0, f"run.max_steps_per_epoch must be non-negative, got {run.max_steps_per_epoch}"),
        (run.threads >= 0, f"run.threads must be non-negative (0 = torch's default), got {run.threads}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _build_method(recipe: Recipe, env: DistEnv, device: torch.device) -> PretrainMethod:
    """The recipe's method, seeded, on the CPU (SyncBatchNorm when training on several GPUs)."""
    seed_everything(recipe.run.seed)
    method = METHODS.get(recipe.method.name)(recipe)
    if not isinstance(method, PretrainMethod):
        raise TypeError(f"method {recipe.method.name!r} did not build a PretrainMethod (got {type(method).__name__})")
    if env.distributed and device.type == "cuda":
        # VICReg converts to SyncBatchNorm; the new layers reuse the same Parameter objects.
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    elif env.distributed:
        log.warning("SyncBatchNorm needs CUDA: on %s, BatchNorm statistics stay per process", device.type)
    return method


@dataclass
class _Setup:
    """Everything a run needs, built and checked before the output folder is touched."""

    recipe: Recipe
    env: DistEnv
    device: torch.device
    precision: Precision
    data: PretrainData
    schedule: LRSchedule
    method: PretrainMethod
    optimizer: torch.optim.Optimizer
    ckpt: dict[str, Any] | None


def _prepare(recipe: Recipe, out: Path, resume: bool, env: DistEnv, device: torch.device, verify: bool = True
             ) -> _Setup:
    precision = setup_precision(recipe.run.precision, device)
    METHODS.get(recipe.method.name)  # unknown method: fail before the data is read
    if recipe.run.tensorboard and env.is_main:
        check_available()
    data = build_pretrain_data(recipe, None, env, device, verify=verify)
    spe = data.sampler.steps_per_epoch
    schedule = build_schedule(recipe.optim, recipe.run.batch_size, spe, recipe.run.epochs)
    method = _build_method(recipe, env, device)
    optimizer = build_optimizer(method, recipe.optim)
    ckpt: dict[str, Any] | None = None
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise ConfigError(f"nothing to resume: {str(out / CHECKPOINT)!r} does not exist (drop --resume to start)")
        ckpt = load_checkpoint(out / CHECKPOINT)
        check_resumable(ckpt, recipe, spe, out / CHECKPOINT)
        restore_method(method, ckpt)
    return _Setup(recipe, env, device, precision, data, schedule, method, optimizer, ckpt)


def pretrain(
    recipe: Recipe,
    out: str | Path,
    data_root: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    verify: bool = True,
) -> Path:
    """Pretrain ``recipe`` into folder ``out``; returns the path of ``final.pt``.

    Args:
        recipe: the pretraining recipe.
        out: output folder; refused if it holds other files unless ``overwrite`` (with ``resume`` its
            own files are expected).
        data_root: dataset folder (``--data-root``); overrides ``recipe.data.root`` and is recorded.
        resume: continue from ``out/checkpoint.pt`` at its exact step (weights, optimiser, RNG states).
        overwrite: allow a non-empty ``out`` for a fresh run.
        progress: show a tqdm bar (rank 0).
        verify: check the data copy against the official counts and checksums first (``--no-verify``
            reads a partial copy as it is).
    Raises:
        ConfigError, UnknownNameError, DatasetError, CheckpointError, OutputDirError: bad input,
            raised before anything is written.
        TrainingError: a non-finite loss (the last good checkpoint is kept).
        TrainingInterrupted: Ctrl-C (the last good checkpoint is kept).
    """
    out = Path(out)
    if data_root is not None:
        recipe = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, root=str(data_root)))
    threads = torch.get_num_threads()
    try:
        if recipe.run.threads > 0:
            torch.set_num_threads(recipe.run.threads)
        _validate_run(recipe)
        env = env_from_environ()
        device = resolve_device(recipe.run.device, env.local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        env = init_distributed(device)
        try:
            return _start(recipe, out, resume, overwrite, progress, env, device, verify)
        finally:
            shutdown(env)
    finally:
        torch.set_num_threads(threads)


def _start(recipe: Recipe, out: Path, resume: bool, overwrite: bool, progress: bool, env: DistEnv,
           device: torch.device, verify: bool = True) -> Path:
    """Check everything on every rank, agree across ranks, then train (or return a finished run).

    Every rank reaches both agreement points whatever happened before them, so an error on any rank stops
    all of them (:func:`raise_if_any_failed`); the output folder is created only once every rank's inputs
    checked out.
    """
    setup, error, done = None, None, False
    try:
        setup = _prepare(recipe, out, resume, env, device, verify)
        meta = setup.ckpt["meta"] if setup.ckpt is not None else {}
        total = setup.data.sampler.steps_per_epoch * recipe.run.epochs
        done = bool(meta.get("complete") and meta.get("step") == total and (out / FINAL).is_file())
    except Exception as exc:  # reported to every rank before anyone raises
        error = exc
    raise_if_any_failed(error)
    if setup is None:  # unreachable: raise_if_any_failed raised
        raise RuntimeError("setup failed without an error")
    if done:
        log.info("%s is already complete; nothing to do", out / FINAL)
        return out / FINAL
    error = None
    if env.is_main:
        try:
            prepare_out_dir(out, overwrite=overwrite, allowed=own_files(out) if resume else ())
        except Exception as exc:
            error = exc
    raise_if_any_failed(error)
    return _run(setup, out, progress)


def _run(setup: _Setup, out: Path, progress: bool) -> Path:
    recipe, env, device, precision, data, ckpt = (setup.recipe, setup.env, setup.device, setup.precision,
                                                  setup.data, setup.ckpt)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if recipe.run.channels_last else torch.preserve_format
    method = setup.method.to(device, memory_format=fmt)
    optimizer = setup.optimizer  # .to() moved the parameters in place, so its references hold
    step, last_good = 0, None
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])  # casts the state to the parameters' device
        if precision.scaler is not None and ckpt["resume"]["scaler"]:
            precision.scaler.load_state_dict(ckpt["resume"]["scaler"])
        step = int(ckpt["meta"]["step"])
        last_good = (int(ckpt["meta"]["epoch"]), step)
        restore_rng_state(ckpt["resume"]["rng"])
    model: nn.Module = method
    if env.distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(method, device_ids=ids)
    model, compiled, compile_warning = maybe_compile(model, recipe.run.compile, device)
    spe = data.sampler.steps_per_epoch
    tensorboard = TensorBoardSink(out, method, purge_step=step + 1 if ckpt is not None else None) if (
        recipe.run.tensorboard and env.is_main) else None
    logbook = Logbook(out / LOG, enabled=env.is_main, keep_until_step=step if ckpt is not None else -1,
                      sinks=(tensorboard,) if tensorboard is not None else ())
    if env.is_main:
        atomic_write_text(out / RECIPE, dump_yaml(recipe))
    logbook.write("resume" if ckpt is not None else "start", step=step, epoch=step // spe, images=data.num_images,
                  steps_per_epoch=spe, peak_lr=setup.schedule.peak, world_size=env.world_size, device=str(device),
                  precision=precision.effective, augment_where=recipe.augment.where,
                  channels_last=recipe.run.channels_last, compiled=compiled, code_version=code_version(),
                  environment=environment(device))
    for warning in (precision.warning, compile_warning):
        if warning:
            log.warning(warning)
            logbook.write("warning", step=step, message=warning)
    try:
        return _train(setup, out, progress, model, method, optimizer, logbook, step, last_good)
    finally:
        if tensorboard is not None:
            tensorboard.close()


def _train(setup: _Setup, out: Path, progress: bool, model: nn.Module, method: PretrainMethod,
           optimizer: torch.optim.Optimizer, logbook: Logbook, step: int, last_good: tuple[int, int] | None) -> Path:
    recipe, env, device, precision, data = setup.recipe, setup.env, setup.device, setup.precision, setup.data
    spe = data.sampler.steps_per_epoch
    trainer = Trainer(recipe=recipe, out=out, env=env, device=device, precision=precision, data=data,
                      schedule=setup.schedule, method=method, model=model, optimizer=optimizer, logbook=logbook,
                      step=step, last_good=last_good)
    trainer.run(progress)
    if env.is_main:
        save_checkpoint(out / FINAL, trainer.final())
        logbook.write("end", step=trainer.step, epoch=trainer.step // spe, final=str(out / FINAL))
    barrier()
    return out / FINAL
