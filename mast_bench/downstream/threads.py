"""Intra-op thread control for the probes' many small tensor operations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the caller's setting."""
    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def product_threads(flops: float) -> int:
    """Threads for a matrix product of ``flops``: the caller's setting for large ones, one below 10 MFLOP.

    The optimisers run their vector algebra (dot products, axpys on ~10⁵ values) on one thread: handing
    each of those to a thread pool costs far more than the work (measured 0.04 ms on one thread vs
    10 ms on two on a busy 2-core machine). Only the big products with the feature matrix use more.
    """
    return torch.get_num_threads() if flops >= 1e7 else 1
