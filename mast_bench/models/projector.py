"""VICReg's expander/projector."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def build_projector(in_dim: int, sizes: Sequence[int]) -> nn.Sequential:
    """VICReg projector: (Linear, BN, ReLU) for every hidden size, then a bias-free Linear.

    For R50 with ``sizes=(8192, 8192, 8192)``: Linear 2048→8192, BN, ReLU, Linear 8192→8192, BN,
    ReLU, Linear 8192→8192 (no bias), as in VICReg's ``main_vicreg.py``.

    Args:
        in_dim: backbone feature dimension.
        sizes: output sizes of each layer; the last is the embedding dimension D.
    Returns:
        module mapping ``(N, in_dim)`` → ``(N, sizes[-1])``.
    """
    if not sizes or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"projector sizes must be a non-empty list of positive integers, got {list(sizes)}")
    dims = [in_dim, *[int(s) for s in sizes]]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(True)]
    layers.append(nn.Linear(dims[-2], dims[-1], bias=False))
    return nn.Sequential(*layers)
