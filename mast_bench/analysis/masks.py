"""How augmentations relate through MAST's masks: the K×D heat-map and the K×K overlap matrices.

Each figure is written as a PNG together with the CSV it was drawn from (atomically).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mast_bench.augment import FAMILIES
from mast_bench.errors import CheckpointError
from mast_bench.fileio import atomic_savefig, atomic_write_text

#: Threshold for the hard masks whose IoU is reported (a dimension belongs to subspace k when m_kj > 0.5).
IOU_THRESHOLD = 0.5


def checkpoint_masks(ckpt: Mapping[str, Any], source: str = "checkpoint") -> tuple[tuple[str, ...], torch.Tensor]:
    """The families and soft masks ``(K, D)`` stored in a MAST checkpoint dict.

    Raises:
        CheckpointError: the checkpoint has no masks (VICReg, or MAST with ``masks: false``), or its mask
            and family records disagree.
    """
    method = ckpt.get("meta", {}).get("method")
    state = ckpt.get("method_state", {})
    if "mask_logits" not in state:
        why = (
            "MAST trained with method.mast.masks: false"
            if method == "mast"
            else f"method {method!r}, which learns no augmentation masks"
        )
        raise CheckpointError(
            f"{source} has no augmentation masks to analyse ({why}); give a checkpoint pretrained with method 'mast'"
        )
    logits = state["mask_logits"].float()
    index = state.get("family_index")
    if index is None or index.numel() != logits.shape[0]:
        raise CheckpointError(
            f"{source}: mask logits {tuple(logits.shape)} do not match its family record "
            f"{None if index is None else index.tolist()}"
        )
    return tuple(FAMILIES[int(i)] for i in index.tolist()), torch.sigmoid(logits)


def sort_dimensions(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order dimensions by their dominant subspace, strongest first within each.

    Args:
        masks: ``(K, D)``.
    Returns:
        ``(order, dominant)``: ``order`` ``(D,)`` is a permutation of the dimensions; ``dominant`` ``(D,)``
        the subspace with the largest mask value at each (original) dimension.
    """
    top, dominant = masks.max(dim=0)
    # Lexicographic sort (dominant ascending, value descending) with two stable sorts.
    order = torch.argsort(-top, stable=True)
    order = order[torch.argsort(dominant[order], stable=True)]
    return order, dominant


def iou_matrix(masks: torch.Tensor, threshold: float = IOU_THRESHOLD) -> torch.Tensor:
    """IoU of the thresholded masks: ``|A_a ∩ A_b| / |A_a ∪ A_b|`` with ``A_k = {j : m_kj > threshold}``.

    Args:
        masks: ``(K, D)``.
    Returns:
        ``(K, K)`` float64; NaN where both masks are empty (IoU undefined).
    """
    b = (masks > threshold).double()
    inter = b @ b.T
    union = b.sum(dim=1, keepdim=True) + b.sum(dim=1) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def soft_overlap(masks: torch.Tensor) -> torch.Tensor:
    """Soft (weighted Jaccard) overlap ``Σ_j min(m_aj, m_bj) / Σ_j max(m_aj, m_bj)``.

    Args:
        masks: ``(K, D)``.
    Returns:
        ``(K, K)`` float64 in ``[0, 1]``, 1 on the diagonal.
    """
    m = masks.double()
    lo = torch.minimum(m[:, None, :], m[None, :, :]).sum(dim=2)
    hi = torch.maximum(m[:, None, :], m[None, :, :]).sum(dim=2)
    return lo / hi.clamp_min(torch.finfo(torch.float64).tiny)


def shares_of(masks: torch.Tensor) -> torch.Tensor:
    """Each dimension's invariance weight split between the subspaces, ``w_kj = m_kj / Σ_k m_kj`` ``(K, D)``.

    These, not the memberships ``m``, are what the objective weighs each subspace's invariance by
    (:func:`mast_bench.methods.mast_loss.mask_shares`).
    """
    m = masks.double()
    return m / m.sum(dim=0, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)


def heatmap_table(masks: torch.Tensor, families: Sequence[str]) -> pd.DataFrame:
    """One row per dimension in display order: ``rank, dimension, dominant`` and each family's mask value."""
    order, dominant = sort_dimensions(masks)
    table = pd.DataFrame(
        {
            "rank": np.arange(masks.shape[1]),
            "dimension": order.numpy(),
            "dominant": [families[int(dominant[j])] for j in order],
        }
    )
    for k, name in enumerate(families):
        table[name] = masks[k, order].double().numpy()
    return table


def overlap_table(masks: torch.Tensor, families: Sequence[str]) -> pd.DataFrame:
    """Long table of every ordered pair: ``family_a, family_b, iou, soft_overlap, share_overlap, mass_a, mass_b``.

    ``iou`` and ``soft_overlap`` are of the memberships ``m``; ``share_overlap`` is the soft overlap of the
    shares (:func:`shares_of`), the weights the objective uses: 1 while two subspaces weigh every dimension
    alike. (A hard threshold at the equal split 1/K would turn differences of 1e-4 into full disagreement.)
    """
    iou, soft, mass = iou_matrix(masks), soft_overlap(masks), masks.double().mean(dim=1)
    share = soft_overlap(shares_of(masks))
    rows = [
        {
            "family_a": a,
            "family_b": b,
            "iou": float(iou[i, j]),
            "soft_overlap": float(soft[i, j]),
            "share_overlap": float(share[i, j]),
            "mass_a": float(mass[i]),
            "mass_b": float(mass[j]),
        }
        for i, a in enumerate(families)
        for j, b in enumerate(families)
    ]
    return pd.DataFrame(rows)


def write_heatmap(masks: torch.Tensor, families: Sequence[str], out_dir: str | Path) -> tuple[Path, Path]:
    """Draw the K×D heat-map (dimensions sorted by dominant subspace); returns ``(png, csv)``."""
    out = Path(out_dir)
    table = heatmap_table(masks, families)
    csv = atomic_write_text(out / "mask_heatmap.csv", table.to_csv(index=False, float_format="%.6g"))
    values = table[list(families)].to_numpy().T
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(families) + 1.6))
    im = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    bounds = np.flatnonzero(table["dominant"].to_numpy()[1:] != table["dominant"].to_numpy()[:-1]) + 0.5
    for x in bounds:
        ax.axvline(x, color="white", linewidth=0.8)
    ax.set_yticks(range(len(families)), families)
    ax.set_xlabel(f"embedding dimension (D = {values.shape[1]}), sorted by dominant subspace")
    ax.set_title("MAST masks m = sigmoid(θ)")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    png = atomic_savefig(out / "mask_heatmap.png", fig, dpi=120)
    plt.close(fig)
    return png, csv


def write_overlap(masks: torch.Tensor, families: Sequence[str], out_dir: str | Path) -> tuple[Path, Path]:
    """Draw the K×K IoU (masks > 0.5), soft-overlap and share-overlap matrices side by side; returns ``(png, csv)``."""
    out = Path(out_dir)
    table = overlap_table(masks, families)
    csv = atomic_write_text(out / "mask_overlap.csv", table.to_csv(index=False, float_format="%.6g"))
    k = len(families)
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3 + 1.0, 0.55 * k + 2.2))
    titles = (f"IoU of masks > {IOU_THRESHOLD}", "soft overlap of masks", "soft overlap of shares w = m / Σ_k m")
    for ax, column, title in zip(axes, ("iou", "soft_overlap", "share_overlap"), titles, strict=True):
        grid = table[column].to_numpy().reshape(k, k)
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="magma", vmin=0.0, vmax=1.0)
        for i in range(k):
            for j in range(k):
                text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if not np.isnan(grid[i, j]) and grid[i, j] > 0.6 else "white",
                )
        ax.set_xticks(range(k), families, rotation=45, ha="right")
        ax.set_yticks(range(k), families)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    png = atomic_savefig(out / "mask_overlap.png", fig, dpi=120)
    plt.close(fig)
    return png, csv
