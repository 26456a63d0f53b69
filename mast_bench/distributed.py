"""Collective operations the losses need, below both the methods and the training engine.

Each is a no-op in a single process, so a method's loss runs unchanged on one CPU and under
``torchrun``; joining and leaving the process group is the training engine's business
(:mod:`mast_bench.pretrain.distributed`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


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
