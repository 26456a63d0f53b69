"""Predicted uncertainty against augmentation strength, per subspace, on freshly augmented pairs.

A batch of images from the pretraining data is augmented with the checkpoint's own pipeline; for
every pair we record how strongly each augmentation family made the two views differ and the
model's predicted log-variance ``s_k`` (and the measured subspace distance ``d_k``) in every subspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mast_bench.augment import JITTER_FACTORS, PARAM_LAYOUT, build_multiview
from mast_bench.config import Recipe
from mast_bench.fileio import atomic_savefig, atomic_write_text
from mast_bench.methods.mast import MAST
from mast_bench.methods.mast_loss import mask_shares, subspace_invariance
from mast_bench.registry import DATASETS

#: The strength measure plotted for each family: column name and axis label. Each measures how much the
#: two views of a pair differ in that family (0 = identical), since that is what can cause a mismatch.
STRENGTH: dict[str, tuple[str, str]] = {
    "crop": ("crop_disagreement", "1 − IoU of the two crop boxes"),
    "flip": ("flip_differs", "views differ in flip"),
    "color_jitter": ("jitter_distance", "Σ|jitter factor difference|"),
    "grayscale": ("grayscale_differs", "views differ in grayscale"),
    "blur": ("blur_sigma_difference", "|σ1 − σ2| of the blur"),
    "solarize": ("solarize_differs", "views differ in solarisation"),
}


def _box_iou(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``(N, 4)`` given as normalised ``x0, y0, w, h``."""
    x0 = torch.maximum(b1[:, 0], b2[:, 0])
    y0 = torch.maximum(b1[:, 1], b2[:, 1])
    x1 = torch.minimum(b1[:, 0] + b1[:, 2], b2[:, 0] + b2[:, 2])
    y1 = torch.minimum(b1[:, 1] + b1[:, 3], b2[:, 1] + b2[:, 3])
    inter = (x1 - x0).clamp_min(0) * (y1 - y0).clamp_min(0)
    union = b1[:, 2] * b1[:, 3] + b2[:, 2] * b2[:, 3] - inter
    return inter / union.clamp_min(1e-12)


def pair_strengths(p1: torch.Tensor, p2: torch.Tensor) -> pd.DataFrame:
    """Per-pair strength measures from the two views' parameter vectors ``(N, PARAM_DIM)``.

    Returns:
        one row per pair: the :data:`STRENGTH` columns plus ``crop_area_1``, ``crop_area_2`` (fractions of
        the source image) and ``blur_sigma_1``, ``blur_sigma_2``.
    """
    p1, p2 = p1.double(), p2.double()
    crop, flip = PARAM_LAYOUT["crop"], PARAM_LAYOUT["flip"]
    gray, blur, sol = PARAM_LAYOUT["grayscale"], PARAM_LAYOUT["blur"], PARAM_LAYOUT["solarize"]
    cols = {
        "crop_disagreement": 1 - _box_iou(p1[:, crop], p2[:, crop]),
        "flip_differs": (p1[:, flip] - p2[:, flip]).abs().sum(dim=1),
        "jitter_distance": (p1[:, JITTER_FACTORS] - p2[:, JITTER_FACTORS]).abs().sum(dim=1),
        "grayscale_differs": (p1[:, gray] - p2[:, gray]).abs().sum(dim=1),
        "blur_sigma_difference": (p1[:, blur] - p2[:, blur]).abs().sum(dim=1),
        "solarize_differs": (p1[:, sol] - p2[:, sol]).abs().sum(dim=1),
        "crop_area_1": p1[:, crop.start + 2] * p1[:, crop.start + 3],
        "crop_area_2": p2[:, crop.start + 2] * p2[:, crop.start + 3],
        "blur_sigma_1": p1[:, blur.start],
        "blur_sigma_2": p2[:, blur.start],
    }
    return pd.DataFrame({k: v.numpy() for k, v in cols.items()})


def draw_pairs(
    recipe: Recipe, root: str | Path | None, pairs: int, seed: int, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment ``pairs`` images of the recipe's pretraining data with its own two-view pipeline.

    Returns:
        ``(x1, x2, p1, p2)``: views ``(n, 3, size, size)`` and parameters ``(n, PARAM_DIM)``,
        ``n = min(pairs, len(data))``; the same ``seed`` draws the same images and augmentations.
    Raises:
        DatasetError / UnknownNameError: the data cannot be read.
    """
    dataset = DATASETS.get(recipe.data.dataset).build(root, recipe.data.split, transform=None)
    augment = build_multiview(recipe.augment)
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(dataset), generator=g)[:pairs].tolist()
    out: list[list[torch.Tensor]] = [[], [], [], []]
    for i in tqdm(index, desc="augmenting pairs", disable=not progress, unit="pair"):
        (x1, x2), (p1, p2) = augment(dataset[i][0], g)
        for bucket, t in zip(out, (x1, x2, p1, p2), strict=True):
            bucket.append(t)
    return tuple(torch.stack(b) for b in out)  # type: ignore[return-value]


@torch.no_grad()
def uncertainty_table(
    model: MAST, x1: torch.Tensor, x2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, batch: int = 256
) -> pd.DataFrame:
    """Predicted log-variance and measured distance of every pair in every subspace (model in eval mode).

    Returns:
        long table, one row per (pair, subspace): ``pair, subspace, log_var, distance`` plus the pair's
        strength columns (:func:`pair_strengths`).
    """
    model.eval()
    masks = mask_shares(model.mask_logits.detach())  # the weights d_k uses in the objective
    s_parts, d_parts = [], []
    for lo in range(0, x1.shape[0], batch):
        sl = slice(lo, lo + batch)
        z1, z2 = model.embed([x1[sl], x2[sl]])
        s_parts.append(model.log_variances(z1, z2, p1[sl], p2[sl]))
        d_parts.append(subspace_invariance(z1, z2, masks))
    s, d = torch.cat(s_parts).double(), torch.cat(d_parts).double()
    n, k = s.shape
    strengths = pair_strengths(p1, p2)
    table = pd.DataFrame(
        {
            "pair": np.repeat(np.arange(n), k),
            "subspace": np.tile(np.array(model.families, dtype=object), n),
            "log_var": s.reshape(-1).numpy(),
            "distance": d.reshape(-1).numpy(),
        }
    )
    return table.join(strengths.loc[table["pair"]].reset_index(drop=True))


def correlation_table(table: pd.DataFrame, families: Sequence[str]) -> pd.DataFrame:
    """Spearman rank correlation of each subspace's log-variance with each family's strength (NaN if constant)."""
    rows = []
    for sub in families:
        part = table[table["subspace"] == sub]
        for fam in families:
            col = STRENGTH[fam][0]
            x, y = part[col], part["log_var"]
            rho = x.corr(y, method="spearman") if x.nunique() > 1 and y.nunique() > 1 else float("nan")
            rows.append({"subspace": sub, "augmentation": fam, "strength": col, "spearman": rho, "pairs": len(part)})
    return pd.DataFrame(rows)


def _binned(x: np.ndarray, y: np.ndarray, bins: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of ``y`` in quantile bins of ``x`` (one bin per value for binary ``x``), with standard errors."""
    values = np.unique(x)
    groups = [x == v for v in values] if len(values) <= bins else None
    if groups is None:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        groups = [which == b for b in range(len(edges) - 1)]
    groups = [g for g in groups if g.any()]
    mx = np.array([x[g].mean() for g in groups])
    my = np.array([y[g].mean() for g in groups])
    se = np.array([y[g].std(ddof=1) / np.sqrt(g.sum()) if g.sum() > 1 else 0.0 for g in groups])
    return mx, my, se


def write_uncertainty(table: pd.DataFrame, families: Sequence[str], out_dir: str | Path) -> tuple[Path, Path, Path]:
    """Draw predicted log-variance (rows: subspaces) against each family's strength (columns).

    Returns:
        ``(png, pairs_csv, correlation_csv)``.
    """
    out = Path(out_dir)
    pairs_csv = atomic_write_text(out / "uncertainty_pairs.csv", table.to_csv(index=False, float_format="%.6g"))
    corr = correlation_table(table, families)
    corr_csv = atomic_write_text(out / "uncertainty_correlation.csv", corr.to_csv(index=False, float_format="%.4f"))
    k = len(families)
    fig, axes = plt.subplots(k, k, figsize=(2.3 * k + 0.8, 1.9 * k + 0.8), sharey="row", squeeze=False)
    for i, sub in enumerate(families):
        part = table[table["subspace"] == sub]
        for j, fam in enumerate(families):
            ax = axes[i][j]
            col, label = STRENGTH[fam]
            mx, my, se = _binned(part[col].to_numpy(), part["log_var"].to_numpy())
            ax.errorbar(mx, my, yerr=se, marker="o", markersize=3, linewidth=1, capsize=2)
            rho = corr[(corr["subspace"] == sub) & (corr["augmentation"] == fam)]["spearman"].iloc[0]
            ax.set_title(f"ρ = {rho:.2f}" if np.isfinite(rho) else "ρ = n/a", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == k - 1:
                ax.set_xlabel(f"{fam}\n{label}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"s[{sub}]", fontsize=8)
    fig.suptitle("predicted log-variance per subspace (rows) vs augmentation strength (columns)", fontsize=10)
    fig.tight_layout()
    png = atomic_savefig(out / "uncertainty_vs_strength.png", fig, dpi=110)
    plt.close(fig)
    return png, pairs_csv, corr_csv
