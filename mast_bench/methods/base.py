"""The contract every pretraining method implements.

A method is an ``nn.Module`` built from a :class:`~mast_bench.config.Recipe`. It owns the
backbone and the projector and turns a batch of two augmented views (plus their recorded
augmentation parameters) into a scalar loss and a few detached scalars to log. The training
engine knows nothing else about it.

A subclass implements :meth:`PretrainMethod.compute_loss`. Anything it adds beyond the backbone
and projector (submodules, parameters, buffers) is automatically part of
:meth:`method_state_dict` (saved as the checkpoint's ``method_state``) and, for parameters, of
:meth:`aux_parameters` (trained with ``lr × optim.aux_lr_scale``, no LARS adaptation, no weight
decay). Override :meth:`aux_parameters` to change that split.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mast_bench.checkpoints import strict_mismatch
from mast_bench.config import Recipe
from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import BackboneSpec, build_backbone, spec_from_model_config, zero_init_residual_
from mast_bench.models.projector import build_projector

#: State-dict prefixes owned by the checkpoint's ``backbone`` and ``projector`` entries.
_CORE_PREFIXES = ("backbone.", "projector.")


class PretrainMethod(nn.Module, abc.ABC):
    """Backbone + projector + a self-supervised loss on two views.

    Attributes:
        recipe: the recipe the method was built from.
        spec: :class:`BackboneSpec` (name, stem, widths, normalisation) recorded in checkpoints.
        backbone: images ``(N, 3, H, W)`` → features ``(N, feat_dim)``; built with every residual block's
            last BatchNorm weight at zero (VICReg's ``zero_init_residual=True``).
        feat_dim: backbone feature dimension.
        projector: features ``(N, feat_dim)`` → embeddings ``(N, embed_dim)``.
        embed_dim: embedding dimension D (last projector size).
    """

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe
        self.spec: BackboneSpec = spec_from_model_config(recipe.model, recipe.augment.mean, recipe.augment.std)
        self.backbone, self.feat_dim = build_backbone(self.spec)
        # VICReg's main_vicreg.py: resnet50(zero_init_residual=True); every residual block starts as the identity.
        zero_init_residual_(self.backbone)
        self.projector = build_projector(self.feat_dim, recipe.model.projector)
        self.embed_dim = int(recipe.model.projector[-1])

    def embed(self, views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Embed each view separately (per-view BatchNorm statistics, as VICReg's code).

        Args:
            views: two (or more) image batches ``(N, 3, H, W)``.
        Returns:
            one embedding ``(N, embed_dim)`` per view.
        """
        return [self.projector(self.backbone(x)) for x in views]

    def forward(self, views: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss on a batch of views.

        Args:
            views: ``(x1, x2)``, each ``(N, 3, H, W)``.
            params: ``(p1, p2)``, each ``(N, PARAM_DIM)`` (see :mod:`mast_bench.augment`).
        Returns:
            ``{"loss": scalar with grad, <name>: detached scalar, ...}``.
        """
        if len(views) != 2 or len(params) != 2:
            raise ValueError(f"expected two views and two parameter batches, got {len(views)} and {len(params)}")
        z1, z2 = self.embed(views)
        return self.compute_loss(z1, z2, params[0], params[1])

    @abc.abstractmethod
    def compute_loss(
        self, z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The method's loss from the two views' embeddings ``(N, D)`` and parameters ``(N, PARAM_DIM)``.

        Returns ``{"loss": scalar with grad, ...detached scalar logs}``.
        """

    # ------------------------------------------------------------------ extra state beyond backbone + projector

    def method_state_dict(self) -> dict[str, torch.Tensor]:
        """Every state entry outside the backbone and projector (``{}`` for VICReg)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(_CORE_PREFIXES)}

    def load_method_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load :meth:`method_state_dict` output strictly: every key must match, with its shape.

        Raises:
            CheckpointError: naming every missing, unexpected or mis-shaped key.
        """
        problems = strict_mismatch(self.method_state_dict(), state)
        if problems:
            raise CheckpointError(f"method state does not match {type(self).__name__}: " + "; ".join(problems))
        # Only the method entries are given; the backbone and projector are loaded separately, so the
        # module-level load is partial by design and its result is checked instead.
        result = self.load_state_dict(dict(state), strict=False)
        leftover = sorted(result.unexpected_keys) + [k for k in result.missing_keys if not k.startswith(_CORE_PREFIXES)]
        if leftover:
            raise CheckpointError(
                f"method state does not match {type(self).__name__}: leftover keys {', '.join(leftover)}"
            )

    def aux_parameters(self) -> list[nn.Parameter]:
        """Parameters outside backbone and projector (MAST: mask logits, uncertainty head)."""
        return [p for n, p in self.named_parameters() if not n.startswith(_CORE_PREFIXES)]
