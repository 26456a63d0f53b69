"""The evaluated weights: one typed object every evaluator receives.

:class:`EvalWeights` carries the eval-mode backbone together with what a record must say about it: the
sha256 of the file it came from (``""`` for a model held only in memory), the method that produced it
(``vicreg``, ``mast``, ``random-init``, ...; read from mast-bench checkpoint metadata, ``""`` when a
foreign file does not say), the backbone spec and the source format. Build it with :meth:`EvalWeights.load`
(any checkpoint ``mast-bench convert`` reads), :meth:`EvalWeights.from_module` (an in-memory model) or
:func:`as_weights` (from a ``LoadedBackbone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mast_bench.models.backbones import BackboneSpec

#: ``method`` of an untrained, randomly initialised backbone (the floor every table reports).
RANDOM_INIT = "random-init"


@dataclass(frozen=True)
class EvalWeights:
    """An eval-mode backbone plus its provenance.

    Attributes:
        model: ``nn.Module`` mapping images ``(N, 3, H, W)`` to pooled features ``(N, D)``.
        spec: architecture and normalisation (``spec.mean``/``spec.std`` for RGB in [0, 1]).
        sha256: sha256 of the weights file; ``""`` for an in-memory model (never feature-cached).
        method: what produced the weights (``vicreg``, ``mast``, ``random-init``, ...; ``""`` if unknown).
        source_format: the checkpoint format read (``mast-bench``, ``moco``, ..., ``in-memory``).
        name: display name (the file's stem, or the name given to :meth:`from_module`).
        input_size: image side the weights were trained for.
        path: the weights file (``None`` for an in-memory model).
    """

    model: nn.Module
    spec: BackboneSpec
    sha256: str
    method: str
    source_format: str
    name: str = ""
    input_size: int = 224
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path, from_format: str = "auto", arch: str | None = None) -> EvalWeights:
        """Load any supported checkpoint (converted on the fly, with the conversion cache).

        Raises:
            FileNotFoundError, CheckpointError, UnknownNameError: as ``mast_bench.convert.load_backbone``.
        """
        from mast_bench.convert import load_backbone

        return as_weights(load_backbone(path, from_format=from_format, arch=arch))

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        spec: BackboneSpec,
        name: str,
        *,
        method: str = RANDOM_INIT,
        sha256: str = "",
        input_size: int | None = None,
    ) -> EvalWeights:
        """Wrap an in-memory model (put in eval mode); ``sha256`` stays ``""`` unless a file backs it."""
        size = input_size or (224 if spec.stem == "imagenet" else 32)
        return cls(module.eval(), spec, sha256, method, "in-memory", name=name, input_size=size)


def as_weights(obj: Any) -> EvalWeights:
    """``obj`` as :class:`EvalWeights`: returned as is, or built from a ``LoadedBackbone``.

    Raises:
        TypeError: ``obj`` is neither.
    """
    if isinstance(obj, EvalWeights):
        return obj
    from mast_bench.convert.api import LoadedBackbone

    if not isinstance(obj, LoadedBackbone):
        raise TypeError(f"expected EvalWeights or LoadedBackbone, got {type(obj).__name__}")
    method = getattr(obj.report, "method", "") or ""
    if not method and obj.source_format == "in-memory":
        method = RANDOM_INIT
    return EvalWeights(
        model=obj.model,
        spec=obj.spec,
        sha256=obj.source_sha256 or "",
        method=method,
        source_format=obj.source_format,
        name=obj.name,
        input_size=obj.input_size,
        path=obj.path,
    )
