"""Process-group plumbing for training launched by ``torchrun`` (no-ops in a single process).

``torchrun --nproc_per_node=8 -m mast_bench pretrain RECIPE.yaml`` sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins
the process group (NCCL on CUDA, Gloo on CPU). Only rank 0 writes files. The gather the losses use
lives below the methods, in :mod:`mast_bench.distributed` (re-exported here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mast_bench.distributed import gather_with_grad, is_distributed  # noqa: F401  (gather_with_grad re-exported)
from mast_bench.errors import USER_ERRORS


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: This process created the process group (and so tears it down at the end).
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def env_from_environ() -> DistEnv:
    """The rank layout torchrun put in the environment (one process when unset)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return DistEnv(rank=rank, world_size=world, local_rank=local)


def init_distributed(device: torch.device) -> DistEnv:
    """Join the process group when launched with WORLD_SIZE > 1; otherwise return a one-process env.

    Args:
        device: the training device; CUDA uses the NCCL backend, CPU uses Gloo.
    """
    env = env_from_environ()
    if env.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
        return DistEnv(env.rank, env.world_size, env.local_rank, owns_group=True)
    return env


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ranks (``x`` itself in one process); for logging."""
    if not is_distributed():
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / dist.get_world_size()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (e.g. a non-finite loss)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if env.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def raise_if_any_failed(error: BaseException | None) -> None:
    """Stop every rank if any rank failed (e.g. its data root is missing), with the same one-line message.

    Setup errors seen by one rank only would otherwise leave the others waiting forever in their first
    collective. Each rank passes its own exception (or ``None``); they exchange them with one
    all-gather and all raise the first failing rank's error type and message, naming that rank (unless
    every rank failed identically). In a single process ``error`` is raised as it is.

    Raises:
        the failing rank's exception (that rank), or the same type with the rank named (other ranks).
    """
    if not is_distributed():
        if error is not None:
            raise error
        return
    mine = None if error is None else (type(error).__name__, str(error))
    reports: list[tuple[str, str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(reports, mine)
    failed = [(rank, rep) for rank, rep in enumerate(reports) if rep is not None]
    if not failed:
        return
    rank, (name, message) = failed[0]
    world = dist.get_world_size()
    if len(failed) == world and all(rep == (name, message) for _, rep in failed):
        text = message  # the same error everywhere (e.g. a recipe value): no rank to name
    else:
        more = f" (and {len(failed) - 1} more rank(s) failed)" if len(failed) > 1 else ""
        text = f"rank {rank} of {world}: {message}{more}"
    known = {c.__name__: c for c in USER_ERRORS}
    if error is not None:
        known.setdefault(type(error).__name__, type(error))
    cls = known.get(name, RuntimeError)
    try:
        same = cls(text)
    except TypeError:  # an exception type with another constructor
        same = RuntimeError(text)
    raise same from error
