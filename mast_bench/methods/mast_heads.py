"""MAST's two small heads, each batched over the K subspaces (one einsum, no Python loop over K or samples).

* :class:`UncertaintyHead` predicts a per-pair, per-subspace log-variance ``s_k(i)`` from the two views'
  augmentation parameters (and optionally the pair's detached mean embedding).
* :class:`AwarenessHead` predicts each family's parameter difference between the two views from the
  embedding dimensions *outside* that family's subspace (``z ⊙ (1 − m_k)``).

Both are K independent two-layer MLPs whose weights are stacked into ``(K, in, hidden)`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

#: Which families' parameters subspace k's uncertainty sees (docs/method.md, "Uncertainty").
UncertaintyInputs = Literal["others", "own", "all"]
UNCERTAINTY_INPUTS: tuple[str, ...] = ("others", "own", "all")


def _columns(slices: Sequence[slice]) -> list[int]:
    return [c for s in slices for c in range(s.start, s.stop)]


def _init_stacked(k: int, fan_in: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """nn.Linear's default init (uniform ±1/√fan_in) for K stacked ``(rows, cols)`` weights."""
    bound = (1.0 / fan_in.clamp_min(1).float().sqrt()).view(k, 1, 1)
    return (torch.rand(k, rows, cols) * 2 - 1) * bound


class UncertaintyHead(nn.Module):
    """K MLPs ``[p1, p2(, f)] → hidden → 1`` giving log-variances ``(N, K)`` bounded to ``±bound``.

    Args:
        slices: for each of the K enabled families, its slice of the parameter vector.
        hidden: hidden width.
        inputs: ``"others"`` (default): subspace k sees every enabled family's parameters except family
            k's, so mismatch caused by the *other* augmentations can be discounted there while mismatch
            from augmentation k cannot; ``"own"``: only family k's; ``"all"``: every family's.
        feat_dim: width of extra per-pair features (0 = none); they go to every subspace.
        bound: ``s = bound·tanh(raw / bound)`` keeps the weights ``exp(−s)`` within ``[e^−bound, e^bound]``.
    The output layer starts at zero, so ``s = 0`` (plain masked invariance) at initialisation.
    """

    def __init__(
        self,
        slices: Sequence[slice],
        hidden: int,
        inputs: UncertaintyInputs = "others",
        feat_dim: int = 0,
        bound: float = 5.0,
    ) -> None:
        super().__init__()
        if inputs not in UNCERTAINTY_INPUTS:
            raise ValueError(f"uncertainty inputs must be one of {list(UNCERTAINTY_INPUTS)}, got {inputs!r}")
        if hidden < 1 or bound <= 0:
            raise ValueError(f"need hidden >= 1 and bound > 0, got hidden={hidden}, bound={bound}")
        k = len(slices)
        self.k, self.bound = k, float(bound)
        cols = _columns(slices)
        self.register_buffer("columns", torch.tensor(cols, dtype=torch.long), persistent=False)
        owner = torch.tensor([j for j, s in enumerate(slices) for _ in range(s.start, s.stop)])
        rule = {
            "others": owner[None, :] != torch.arange(k)[:, None],
            "own": owner[None, :] == torch.arange(k)[:, None],
            "all": torch.ones(k, len(cols), dtype=torch.bool),
        }[inputs]
        keep = torch.cat([rule, rule, torch.ones(k, feat_dim, dtype=torch.bool)], dim=1).float()  # (K, 2C + F)
        self.register_buffer("keep", keep, persistent=False)
        self.feat_dim = feat_dim
        self.w1 = nn.Parameter(_init_stacked(k, keep.sum(dim=1), keep.shape[1], hidden))
        self.b1 = nn.Parameter(torch.zeros(k, hidden))
        self.w2 = nn.Parameter(torch.zeros(k, hidden))
        self.b2 = nn.Parameter(torch.zeros(k))

    def forward(self, p1: torch.Tensor, p2: torch.Tensor, feats: torch.Tensor | None = None) -> torch.Tensor:
        """Args: p1, p2 ``(N, PARAM_DIM)``; feats ``(N, feat_dim)`` when ``feat_dim > 0``.

        Returns:
            log-variances ``(N, K)``.
        """
        parts = [p1[:, self.columns], p2[:, self.columns]]
        if self.feat_dim:
            if feats is None or feats.shape[1] != self.feat_dim:
                raise ValueError(f"the uncertainty head expects features of width {self.feat_dim}")
            # Scaled by 1/√F so that D-wide features do not dominate the input norm: momentum SGD at the
            # backbone's lr is stable only for a modest ‖x‖² (see AwarenessHead).
            parts.append(feats * self.feat_dim**-0.5)
        x = torch.cat(parts, dim=1)
        h = F.relu(torch.einsum("ni,kih->nkh", x, self.w1 * self.keep[:, :, None]) + self.b1)
        raw = torch.einsum("nkh,kh->nk", h, self.w2) + self.b2
        return self.bound * torch.tanh(raw / self.bound)


class AwarenessHead(nn.Module):
    """K MLPs ``[z1 ⊙ (1 − m_k), z2 ⊙ (1 − m_k)] → hidden → P_k`` predicting family k's parameter change.

    The head is trained by plain momentum SGD at the backbone's learning rate (no LARS adaptation), so its
    layers are written in a width-independent form: inputs are multiplied by ``1/√(2D)`` and hidden units by
    ``1/√hidden`` with unit-scale weights. Plain ``nn.Linear`` layers over 2·512 inputs diverge at the tiny
    recipes' learning rate (0.8), since SGD on a linear layer is stable only for lr ≲ 2/‖x‖².
    The output layer starts at zero (predicting "no change").

    Args:
        embed_dim: D.
        targets: for each of the K families, the parameter columns to predict (their differences).
        hidden: hidden width.
    """

    def __init__(self, embed_dim: int, targets: Sequence[Sequence[int]], hidden: int) -> None:
        super().__init__()
        if hidden < 1 or not targets or any(len(t) == 0 for t in targets):
            raise ValueError("the awareness head needs hidden >= 1 and at least one target column per family")
        k, width = len(targets), max(len(t) for t in targets)
        padded = [list(t) + [t[0]] * (width - len(t)) for t in targets]
        self.register_buffer("targets", torch.tensor(padded, dtype=torch.long), persistent=False)
        valid = torch.tensor([[i < len(t) for i in range(width)] for t in targets])
        self.register_buffer("valid", valid, persistent=False)
        self.in_scale, self.hidden_scale = (2 * embed_dim) ** -0.5, hidden**-0.5
        self.w1 = nn.Parameter(torch.randn(k, 2 * embed_dim, hidden))
        self.b1 = nn.Parameter(torch.zeros(k, hidden))
        self.w2 = nn.Parameter(torch.zeros(k, hidden, width))
        self.b2 = nn.Parameter(torch.zeros(k, width))
        self.embed_dim = embed_dim

    def target(self, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        """Parameter differences ``(N, K, P)`` (padded columns repeat a valid one; see ``valid``)."""
        return (p1 - p2)[:, self.targets]

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Args: z1, z2 ``(N, D)``; masks ``(K, D)``. Returns: predictions ``(N, K, P)``."""
        outside = (1 - masks).repeat(1, 2) * self.in_scale  # (K, 2D): both views' copies of each dimension
        # Masking the weights instead of the inputs gives the same product without a (N, K, 2D) tensor.
        w = self.w1 * outside[:, :, None]
        h = F.relu(torch.einsum("ni,kih->nkh", torch.cat([z1, z2], dim=1), w) + self.b1)
        return torch.einsum("nkh,khp->nkp", h * self.hidden_scale, self.w2) + self.b2
