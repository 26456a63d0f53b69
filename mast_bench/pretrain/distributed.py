"""Process-group plumbing for training launched by ``torchrun`` (no-ops in a single process).

``torchrun --nproc_per_node=8 -m mast_bench pretrain RECIPE.yaml`` sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins
the process group (NCCL on CUDA, Gloo on CPU). Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class FullGatherLayer(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient and returns this rank's slice (VICReg's)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        out = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        all_grads = torch.stack(grads)
        dist.all_reduce(all_grads)
        return all_grads[dist.get_rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ``(N, ...)`` from every rank into ``(world·N, ...)``, keeping the gradient.

    Every rank computes the same loss on the gathered batch; the backward all-reduce sums the
    ranks' gradients, and DDP's gradient averaging then yields the single-process full-batch
    gradient. Returns ``x`` itself in a single process.
    """
    if not is_distributed():
        return x
    return torch.cat(FullGatherLayer.apply(x), dim=0)


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
