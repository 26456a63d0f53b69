"""How MAST's masks and uncertainty head move on a frozen embedding, with the optimiser a recipe ships.

The encoder is replaced by a fixed generator of embedding pairs (a frozen encoder), so whatever the loss
changes is changed by the auxiliary parameters alone: the mask logits and the uncertainty head, trained
exactly as in pretraining (the recipe's :class:`~mast_bench.methods.mast.MAST` module with its D-scaled
mask gradients, :func:`~mast_bench.pretrain.optimizer.build_optimizer`'s auxiliary group, momentum SGD at
``optim.aux_lr_scale`` × the recipe's peak learning rate). Two uses:

* the check that masks cannot lower the invariance term by moving alone (``tests/methods``);
* the sweep over ``optim.aux_lr_scale`` recorded in docs/method.md
  (``python -m mast_bench.analysis.mask_dynamics --help``).

The generator (:class:`FrozenPairs`): ``z ~ N(0, 1)``, ``z' = z + σ_j ε`` with per-dimension noise
``σ_j²`` spread log-uniformly over a factor ``spread`` (30 by default), and, for each family ``f`` in
``blocks``, a block of dimensions whose extra mismatch grows with that family's strength in the pair (the
mean absolute difference of its parameter columns between the two views, uniform random per view).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mast_bench.augment import PARAM_DIM, PARAM_LAYOUT
from mast_bench.config import Recipe, load_recipe
from mast_bench.methods.mast import MAST, width_scaled_grad
from mast_bench.methods.mast_loss import mask_shares, mast_loss, pair_weights
from mast_bench.pretrain.loop import nonfinite_gradients
from mast_bench.pretrain.optimizer import build_optimizer
from mast_bench.pretrain.schedule import peak_lr, set_lr

RECIPES = Path(__file__).resolve().parents[2] / "pretrain"


@dataclass
class FrozenPairs:
    """Embedding pairs from a frozen encoder; see the module docstring.

    Attributes:
        dim: D.
        families: the K families, in the recipe's order (their parameter columns drive the blocks).
        spread: ratio of the largest to the smallest per-dimension noise variance.
        blocks: family → number of dimensions (taken from the start, in order) whose mismatch it drives.
        block_gain: standard deviation of a block's extra mismatch at full strength.
    """

    dim: int
    families: tuple[str, ...]
    spread: float = 30.0
    blocks: dict[str, int] = field(default_factory=dict)
    block_gain: float = 3.0

    def __post_init__(self) -> None:
        self.sigma2 = torch.logspace(0, math.log10(self.spread), self.dim) / self.spread**0.5  # geometric mean 1
        start, self.block_slices = 0, {}
        for fam, width in self.blocks.items():
            self.block_slices[fam] = slice(start, start + width)
            start += width
        if start > self.dim:
            raise ValueError(f"blocks need {start} dimensions but D = {self.dim}")

    def strength(self, p1: torch.Tensor, p2: torch.Tensor, family: str) -> torch.Tensor:
        """Family ``family``'s strength per pair ``(N,)``: mean |p1 − p2| over its parameter columns."""
        cols = PARAM_LAYOUT[family]
        return (p1[:, cols] - p2[:, cols]).abs().mean(dim=1)

    def sample(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z1, z2, p1, p2)``: embeddings ``(n, D)`` and augmentation parameters ``(n, PARAM_DIM)``."""
        p1, p2 = torch.rand(n, PARAM_DIM, generator=g), torch.rand(n, PARAM_DIM, generator=g)
        z1 = torch.randn(n, self.dim, generator=g)
        z2 = z1 + self.sigma2.sqrt() * torch.randn(n, self.dim, generator=g)
        for fam, cols in self.block_slices.items():
            t = self.strength(p1, p2, fam)[:, None]
            z2[:, cols] += self.block_gain * t * torch.randn(n, cols.stop - cols.start, generator=g)
        return z1, z2, p1, p2


@dataclass
class Trajectory:
    """What the auxiliary parameters did (measured on a held-out batch at the end)."""

    aux_lr: float
    steps: int
    finite: bool
    #: Step at which something first became non-finite (``None``: never).
    failed_at: int | None
    losses: list[float]
    #: Masked invariance term / plain mean squared error on the held-out batch (1 = VICReg's weighting).
    invariance_ratio: float
    #: Each dimension's total invariance weight relative to VICReg's: Σ_i Σ_k w_kj a_k(i) / N, ``(D,)``.
    total_weight: torch.Tensor
    #: Each subspace's share of each block, ``{family: (K,)}`` (sums to 1 over K).
    block_shares: dict[str, torch.Tensor]
    memberships: torch.Tensor
    #: Mean over the dimensions outside every block of the largest share minus the smallest (0 for equal
    #: shares): separation that batch noise alone produced, since nothing there depends on the parameters.
    spurious_spread: float
    max_abs_logit: float
    #: Mean of the head's likelihood term over the last tenth of the steps (lower is a better fit).
    head_nll: float
    #: Mean |Δθ| of the mask logits over the last 50 steps (how far the masks still move).
    late_drift: float
    seconds: float


def build_mast(base: str | Path, dim: int, overrides: Sequence[str] = ()) -> MAST:
    """The recipe's MAST module with its projector cut to one layer of width ``dim`` and a tiny backbone.

    Only the auxiliary parameters are trained here, and they depend on nothing but D, the families and the
    ``method`` and ``optim`` sections; the cut keeps a D = 8192 module small.
    """
    recipe = load_recipe(
        base, ["model.backbone=resnet_tiny", "model.widths=[4, 4, 4, 4]", f"model.projector=[{dim}]", *overrides]
    )
    return MAST(recipe)


def aux_loss(
    method: MAST, z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``method.compute_loss`` on a frozen embedding, without the work that cannot reach the aux parameters.

    VICReg's variance and covariance terms depend on the embeddings only, so on a frozen embedding they are
    constants: they are evaluated on the first two dimensions instead of all D (the D×D covariance would
    dominate the time at D = 8192). Every other term, and so every gradient reaching the mask logits and the
    heads, is exactly ``compute_loss``'s (a test checks it).

    Args:
        z1, z2: ``(N, D)`` embeddings (no gradient); p1, p2: ``(N, PARAM_DIM)`` parameters.
    """
    if method.aware_head is not None:
        raise ValueError("aux_loss covers masks and the uncertainty head; switch method.mast.aware off")
    log_var = method.log_variances(z1, z2, p1, p2) if method.uncertainty_head is not None else None
    logits = width_scaled_grad(method.mask_logits)
    return mast_loss(z1, z2, logits, log_var, None, method.coeffs, gathered=(z1[:, :2], z2[:, :2]))


def train_aux(
    method: MAST,
    data: FrozenPairs,
    steps: int = 300,
    batch: int = 256,
    aux_lr_scale: float | None = None,
    seed: int = 0,
) -> Trajectory:
    """Train the masks and the head on ``data`` with the recipe's optimiser at its peak learning rate.

    Args:
        method: from :func:`build_mast`.
        data: the frozen embedding.
        steps: optimiser steps (constant learning rate: the peak, the hardest case for stability).
        batch: pairs per step.
        aux_lr_scale: overrides ``optim.aux_lr_scale`` (``None``: the recipe's).
        seed: batches and evaluation.
    """
    recipe: Recipe = method.recipe
    opt = build_optimizer(method, recipe.optim)
    peak = peak_lr(recipe.optim.base_lr, recipe.run.batch_size)
    scale = recipe.optim.aux_lr_scale if aux_lr_scale is None else aux_lr_scale
    for group in opt.param_groups:
        if group.get("name") == "aux":
            group["lr_scale"] = scale
    set_lr(opt, peak)
    g = torch.Generator().manual_seed(seed)
    losses, nll, failed = [], [], None
    late = method.mask_logits.detach().clone()
    t0 = time.perf_counter()
    for step in range(steps):
        if step == steps - 50:
            late = method.mask_logits.detach().clone()
        z1, z2, p1, p2 = data.sample(batch, g)
        out = aux_loss(method, z1, z2, p1, p2)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        # only the aux parameters are in the graph: the encoder's gradients stay None
        if not torch.isfinite(out["loss"]) or nonfinite_gradients(method.named_parameters()):
            failed = step + 1
            break
        opt.step()
        losses.append(float(out["loss"].detach()))
        if "uncertainty_nll" in out and step >= steps - max(1, steps // 10):
            nll.append(float(out["uncertainty_nll"]))
    seconds = time.perf_counter() - t0
    drift = float((method.mask_logits.detach() - late).abs().mean())
    return _measure(method, data, scale * peak, steps, failed, losses, nll, drift, seconds, seed)


@torch.no_grad()
def _measure(
    method: MAST,
    data: FrozenPairs,
    lr: float,
    steps: int,
    failed: int | None,
    losses: list[float],
    nll: list[float],
    drift: float,
    seconds: float,
    seed: int,
) -> Trajectory:
    z1, z2, p1, p2 = data.sample(4096, torch.Generator().manual_seed(10_000 + seed))
    logits = method.mask_logits.detach()
    finite = failed is None and bool(torch.isfinite(logits).all())
    out = aux_loss(method, z1, z2, p1, p2)
    mse = float((z1 - z2).pow(2).mean())
    shares = mask_shares(logits)
    if method.uncertainty_head is not None:
        a = pair_weights(method.log_variances(z1, z2, p1, p2))  # (N, K)
        total = (a.mean(dim=0)[:, None] * shares).sum(dim=0)  # Σ_k w_kj mean_i a_k(i)
    else:
        total = shares.sum(dim=0)
    blocks = {f: shares[:, s].mean(dim=1) for f, s in data.block_slices.items()}
    outside = torch.ones(data.dim, dtype=torch.bool)
    for cols in data.block_slices.values():
        outside[cols] = False
    rest = shares[:, outside]
    spurious = float((rest.max(dim=0).values - rest.min(dim=0).values).mean()) if rest.numel() else float("nan")
    return Trajectory(
        aux_lr=lr,
        steps=steps,
        finite=finite,
        failed_at=failed,
        losses=losses,
        invariance_ratio=float(out["invariance"]) / mse,
        total_weight=total,
        block_shares=blocks,
        memberships=torch.sigmoid(logits),
        spurious_spread=spurious,
        max_abs_logit=float(logits.abs().max()),
        head_nll=float(sum(nll) / len(nll)) if nll else float("nan"),
        late_drift=drift,
        seconds=seconds,
    )


# --------------------------------------------------------------------------- the aux_lr_scale sweep


def _row(name: str, dim: int, scale: float, tr: Trajectory, families: Sequence[str]) -> str:
    if not tr.finite:
        return f"| {name} | {dim} | {scale:g} | {tr.aux_lr:.3g} | diverged at step {tr.failed_at} | | | | | |"
    own = [float(tr.block_shares[f][families.index(f)]) for f in tr.block_shares]
    return (
        f"| {name} | {dim} | {scale:g} | {tr.aux_lr:.3g} | {tr.invariance_ratio:.4f} | "
        f"{sum(own) / len(own):.3f} | {tr.spurious_spread:.3f} | {tr.head_nll:.4f} | {tr.max_abs_logit:.1f} | "
        f"{tr.late_drift:.3g} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print the sweep table (Markdown) for each recipe and width."""
    ap = argparse.ArgumentParser(description="Sweep optim.aux_lr_scale on a frozen embedding (docs/method.md).")
    ap.add_argument(
        "--recipes",
        default="mast_tiny_quick.yaml:512,mast_r50_imagenet.yaml:8192",
        help="comma-separated recipe:D pairs (recipes under pretrain/)",
    )
    ap.add_argument("--scales", default="0.01,0.03,0.1,0.3,1,3")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(
        "| recipe | D | aux_lr_scale | mask/head lr | invariance / MSE | own-block share | spurious share spread "
        "| head NLL (last 10 %) | max abs logit | mean abs logit change, last 50 steps |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for item in args.recipes.split(","):
        name, dim = item.split(":")
        for scale in (float(s) for s in args.scales.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                torch.manual_seed(seed)
                method = build_mast(RECIPES / name, int(dim))
                fams = method.families
                width = int(dim) // 8
                data = FrozenPairs(int(dim), fams, blocks={fams[0]: width, fams[2]: width})
                tr = train_aux(method, data, steps=args.steps, batch=args.batch, aux_lr_scale=scale, seed=seed)
                print(_row(name.removesuffix(".yaml"), int(dim), scale, tr, fams), flush=True)


if __name__ == "__main__":
    main()
