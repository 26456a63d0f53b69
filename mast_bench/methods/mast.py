"""MAST (Huang, Goh, Gu, Susskind, ICLR 2023): VICReg with learnable augmentation subspaces.

The projector output is split into K soft subspaces, one per enabled augmentation family
(``augment.families``), by learnable masks ``m_k = sigmoid(θ_k)``: each dimension's invariance weight is
shared out between the subspaces in proportion to the masks, and within each subspace between pairs by a
predicted per-pair uncertainty, so every dimension keeps VICReg's total weight; VICReg's variance and
covariance terms act on the whole embedding. Every part is switchable from ``method.mast`` (see
docs/method.md). The loss itself is the pure function :func:`mast_bench.methods.mast_loss.mast_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mast_bench.augment import FAMILIES, JITTER_FACTORS, PARAM_DIM, PARAM_LAYOUT, validate_families
from mast_bench.config import ConfigError, MastConfig, Recipe
from mast_bench.distributed import gather_with_grad
from mast_bench.errors import CheckpointError
from mast_bench.methods.base import PretrainMethod
from mast_bench.methods.mast_heads import AwarenessHead, UncertaintyHead
from mast_bench.methods.mast_loss import MastCoefficients, awareness_term, mast_loss
from mast_bench.registry import METHODS

#: Parameter columns the awareness head regresses per family. Colour jitter: the four factors, not the
#: application order (a permutation, whose difference has no meaning as a number).
AWARE_COLUMNS: dict[str, range] = {
    name: range(s.start, s.stop) for name, s in PARAM_LAYOUT.items() if name != "color_jitter"
} | {"color_jitter": range(JITTER_FACTORS.start, JITTER_FACTORS.stop)}


def width_scaled_grad(logits: torch.Tensor) -> torch.Tensor:
    """Identity in the forward pass (exactly); multiplies the gradient reaching ``logits`` ``(K, D)`` by D.

    Every mask term is a mean over dimensions, so each logit's gradient is O(1/D). Rescaling it by D makes
    the masks' effective step size independent of the embedding width: the same mask learning rate
    (``optim.aux_lr_scale`` × lr) then suits D = 512 and D = 8192, as measured in docs/method.md section 4
    (for SGD/LARS; Adam-type optimisers ignore gradient scale anyway).
    """
    width = logits.shape[1]
    return logits.detach() + (logits - logits.detach()) * width


def validate_mast_config(cfg: MastConfig) -> None:
    """Raise :class:`ConfigError` for ``method.mast`` values that cannot train."""
    nonneg = (
        "invariance_coeff",
        "sparsity_coeff",
        "coverage_coeff",
        "mass_floor_coeff",
        "aware_coeff",
        "uncertainty_coeff",
    )
    for name in nonneg:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"method.mast.{name} must be non-negative, got {getattr(cfg, name)}")
    if not 0.0 < cfg.mass_floor < 1.0:
        raise ConfigError(f"method.mast.mass_floor must be in (0, 1), got {cfg.mass_floor}")
    for name in ("uncertainty_hidden", "aware_hidden"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"method.mast.{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.uncertainty_bound <= 0:
        raise ConfigError(f"method.mast.uncertainty_bound must be positive, got {cfg.uncertainty_bound}")
    if not cfg.masks:
        for part in ("uncertainty", "aware"):
            if getattr(cfg, part):
                raise ConfigError(
                    f"method.mast.{part} acts per subspace and needs method.mast.masks: true; "
                    f"with masks off (plain VICReg) also set method.mast.{part}: false"
                )


@METHODS.register("mast")
class MAST(PretrainMethod):
    """Backbone + projector + mask logits ``(K, D)`` + optional uncertainty and awareness heads.

    Attributes:
        families: the K enabled augmentation families, in recipe order (subspace k ↔ ``families[k]``).
        mask_logits: ``(K, D)`` parameter (absent with ``masks: false``).
        uncertainty_head: :class:`UncertaintyHead` (absent with ``uncertainty: false``).
        aware_head: :class:`AwarenessHead` (absent with ``aware: false``).
    """

    def __init__(self, recipe: Recipe) -> None:
        cfg = recipe.method.mast
        validate_families(recipe.augment.families)
        if not recipe.augment.families:
            raise ConfigError(
                "augment.families is empty; MAST needs at least one augmentation family (one subspace "
                f"each); valid families: {', '.join(FAMILIES)}"
            )
        validate_mast_config(cfg)
        k = len(recipe.augment.families)
        if cfg.masks and cfg.mass_floor_coeff > 0 and cfg.mass_floor >= 1.0 / k:
            # The floor is on each subspace's mean share, and the K shares of a dimension sum to 1.
            raise ConfigError(
                f"method.mast.mass_floor ({cfg.mass_floor}) must be below 1/K = {1.0 / k:.4g} for K = {k} "
                "augmentation families: the subspaces' shares of the dimensions average 1/K"
            )
        super().__init__(recipe)  # backbone and projector first: same initialisation as VICReg for a seed
        self.families = tuple(recipe.augment.families)
        self.cfg = cfg
        m = recipe.method
        self.coeffs = MastCoefficients(
            sim_coeff=m.sim_coeff,
            std_coeff=m.std_coeff,
            cov_coeff=m.cov_coeff,
            invariance_coeff=cfg.invariance_coeff,
            sparsity_coeff=cfg.sparsity_coeff,
            coverage_coeff=cfg.coverage_coeff,
            mass_floor=cfg.mass_floor,
            mass_floor_coeff=cfg.mass_floor_coeff,
            aware_coeff=cfg.aware_coeff,
            uncertainty_coeff=cfg.uncertainty_coeff,
            uncertainty_form=cfg.uncertainty_form,
        )
        k, d = len(self.families), self.embed_dim
        # Saved with the masks so a checkpoint says which family each subspace belongs to.
        self.register_buffer("family_index", torch.tensor([FAMILIES.index(f) for f in self.families]))
        self.mask_logits: nn.Parameter | None = None
        self.uncertainty_head: UncertaintyHead | None = None
        self.aware_head: AwarenessHead | None = None
        if cfg.masks:
            self.mask_logits = nn.Parameter(torch.full((k, d), float(cfg.mask_init)))
        if cfg.uncertainty:
            self.uncertainty_head = UncertaintyHead(
                [PARAM_LAYOUT[f] for f in self.families],
                cfg.uncertainty_hidden,
                cfg.uncertainty_inputs,
                feat_dim=d if cfg.uncertainty_features else 0,
                bound=cfg.uncertainty_bound,
            )
        if cfg.aware:
            self.aware_head = AwarenessHead(d, [list(AWARE_COLUMNS[f]) for f in self.families], cfg.aware_hidden)

    def masks(self) -> torch.Tensor | None:
        """Soft masks ``(K, D)`` (``None`` with masks off)."""
        return None if self.mask_logits is None else torch.sigmoid(self.mask_logits)

    def log_variances(self, z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        """Predicted log-variances ``(N, K)`` for pairs with embeddings ``(N, D)`` and parameters ``(N, PARAM_DIM)``."""
        if self.uncertainty_head is None:
            raise ValueError("this MAST model was trained without the uncertainty head (method.mast.uncertainty)")
        feats = ((z1 + z2) / 2).detach() if self.cfg.uncertainty_features else None
        return self.uncertainty_head(p1, p2, feats)

    def compute_loss(
        self, z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """MAST loss from embeddings ``(N, D)`` and augmentation parameters ``(N, PARAM_DIM)``."""
        for p in (p1, p2):
            if p.ndim != 2 or p.shape[1] != PARAM_DIM or p.shape[0] != z1.shape[0]:
                raise ValueError(
                    f"expected augmentation parameters of shape ({z1.shape[0]}, {PARAM_DIM}), got {tuple(p.shape)}"
                )
        # Statistics in float32 even under mixed precision, as VICReg.
        with torch.autocast(device_type=z1.device.type, enabled=False):
            z1, z2, p1, p2 = z1.float(), z2.float(), p1.float(), p2.float()
            gathered = (gather_with_grad(z1), gather_with_grad(z2))
            log_var = self.log_variances(z1, z2, p1, p2) if self.uncertainty_head is not None else None
            logits = None if self.mask_logits is None else width_scaled_grad(self.mask_logits)
            aware = None
            if self.aware_head is not None and logits is not None:
                pred = self.aware_head(z1, z2, torch.sigmoid(logits))
                aware = awareness_term(pred, self.aware_head.target(p1, p2), self.aware_head.valid)
            return mast_loss(z1, z2, logits, log_var, aware, self.coeffs, gathered=gathered)

    def load_method_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Strict load, first checking that the checkpoint's subspaces are this recipe's families.

        Raises:
            CheckpointError: a different number or list of augmentation subspaces (naming both), or any
                missing, unexpected or mis-shaped key.
        """
        ours = ", ".join(self.families)
        saved = state.get("family_index")
        if saved is not None:
            idx = [int(i) for i in saved.reshape(-1).tolist()]
            names = [FAMILIES[i] if 0 <= i < len(FAMILIES) else f"<unknown #{i}>" for i in idx]
            if len(idx) != len(self.families):
                raise CheckpointError(
                    f"checkpoint has {len(idx)} augmentation masks ({', '.join(names)}) but the recipe enables "
                    f"{len(self.families)} augmentation families ({ours}); use the recipe the checkpoint was "
                    "trained with"
                )
            if tuple(names) != self.families:
                raise CheckpointError(
                    f"checkpoint's augmentation masks are for ({', '.join(names)}) but the recipe enables ({ours}), "
                    "in that order; use the recipe the checkpoint was trained with"
                )
        logits = state.get("mask_logits")
        if logits is not None and self.mask_logits is not None and logits.shape[0] != len(self.families):
            raise CheckpointError(
                f"checkpoint has {logits.shape[0]} augmentation masks but the recipe enables "
                f"{len(self.families)} augmentation families ({ours})"
            )
        super().load_method_state_dict(state)
