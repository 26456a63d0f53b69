"""The contract every source format implements, and the key-accounting functions they share.

A source format knows where its checkpoints keep the backbone and what every other entry is
(projector, predictor, momentum encoder, queue, classifier, optimiser state, ...). Its
:meth:`SourceFormat.extract` returns a :class:`Found`: the backbone's tensors under torchvision
names plus a reason for every source key it leaves out. Keys a format cannot account for are
an error naming them, never silently skipped.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import BackboneSpec

#: Values accepted by ``--from`` (``lightning`` also takes ``lightning:PREFIX``).
SOURCE_FORMATS: tuple[str, ...] = (
    "auto",
    "mast-bench",
    "vicreg",
    "moco",
    "barlowtwins",
    "solo-learn",
    "vissl",
    "dino-resnet50",
    "torchvision",
    "lightning",
)

#: Top-level entries of training checkpoints that never hold backbone weights.
TRAINING_STATE: dict[str, str] = {
    "optimizer": "optimizer state",
    "optimizer_states": "optimizer state",
    "lr_schedulers": "learning-rate schedule state",
    "scheduler": "learning-rate schedule state",
    "lr_scheduler": "learning-rate schedule state",
    "scaler": "mixed-precision loss-scaler state",
    "fp16_scaler": "mixed-precision loss-scaler state",
    "amp": "mixed-precision loss-scaler state",
    "native_amp_scaling_state": "mixed-precision loss-scaler state",
    "epoch": "training progress",
    "global_step": "training progress",
    "step": "training progress",
    "iteration": "training progress",
    "loops": "Lightning loop state",
    "callbacks": "Lightning callback state",
    "pytorch-lightning_version": "Lightning version",
    "hparams_name": "hyper-parameters",
    "hyper_parameters": "hyper-parameters",
    "arch": "architecture name (checked against the weights)",
}


@dataclass
class Found:
    """A backbone located in a checkpoint.

    Attributes:
        trunk: torchvision-style key → tensor (may include ``fc.*``, see ``fc_reason``).
        labels: torchvision-style key → label of that tensor in the source.
        dropped: source label → reason it is left out.
        evidence: where the backbone was found, for the report.
        fc_reason: what ``fc.*`` under the backbone prefix is in this format (``None``: not allowed).
        spec: the backbone recorded in the checkpoint's own metadata, if any.
        arch_hint: an architecture name recorded in the checkpoint (e.g. MoCo's ``arch``).
        required_arch: the only architecture the format publishes (e.g. ``resnet50``).
        input_size: training image size recorded in the checkpoint, if any.
        method: the pretraining method recorded in the checkpoint (``vicreg``, ``mast``, ...), if any.
    """

    trunk: dict[str, torch.Tensor]
    labels: dict[str, str]
    dropped: dict[str, str]
    evidence: str
    fc_reason: str | None = None
    spec: BackboneSpec | None = None
    arch_hint: str | None = None
    required_arch: str | None = None
    input_size: int | None = None
    notes: list[str] = field(default_factory=list)
    method: str = ""


class SourceFormat(abc.ABC):
    """Base of the source formats registered in ``CONVERTERS``.

    Subclasses set ``name`` and ``summary``; ``generic`` formats (a prefix the user names) are
    chosen by ``--from auto`` only when no specific format recognises the checkpoint.
    """

    name: str = ""
    summary: str = ""
    generic: bool = False

    @abc.abstractmethod
    def detect(self, ckpt: Any) -> str | None:
        """Evidence that ``ckpt`` is in this format (a short phrase, used by ``--from auto``), or ``None``."""

    @abc.abstractmethod
    def extract(self, ckpt: Any, option: str | None) -> Found:
        """Locate the backbone and account for every other entry (``option``: e.g. a Lightning prefix)."""


def label(where: str, key: str) -> str:
    return f"{where}/{key}" if where else key


def tensor_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """``obj`` as a ``{str: Tensor}`` dict, or a CheckpointError saying what was found instead."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a dict of tensors at '{where or '<top level>'}', found {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"'{where or '<top level>'}' should hold tensors only, but holds other values: {bad[:5]}")
    return {str(k): v for k, v in obj.items()}


def is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def has_tensors(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if depth > 6:
        return False
    if isinstance(obj, Mapping):
        return any(has_tensors(v, depth + 1) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(has_tensors(v, depth + 1) for v in obj)
    return False


def _matches(key: str, rule: str) -> bool:
    # A rule ending in "." is a module prefix; otherwise it names one buffer exactly.
    return key.startswith(rule) if rule.endswith(".") else key == rule


def split_state(
    sd: Mapping[str, torch.Tensor],
    where: str,
    backbone: tuple[str, ...],
    drops: Mapping[str, str],
    other: Callable[[str], str] | None = None,
) -> tuple[str, dict[str, torch.Tensor], dict[str, str], dict[str, str]]:
    """Split a state dict into the backbone (one of the candidate prefixes) and dropped keys.

    Args:
        sd: the state dict.
        where: its label in the checkpoint.
        backbone: candidate backbone prefixes; exactly one must be present.
        drops: rule → reason; a rule ending in ``.`` is a prefix, otherwise an exact key.
        other: reason for keys no rule covers (``None``: such keys are an error).

    Returns:
        ``(prefix, trunk, labels, dropped)`` with trunk keys relative to the prefix.

    Raises:
        CheckpointError: no or several candidate prefixes present, or keys nothing accounts for.
    """
    present = [p for p in backbone if any(k.startswith(p) for k in sd)]
    if len(present) > 1:
        raise CheckpointError(
            f"'{where or '<top level>'}' holds backbone weights under two candidate prefixes: "
            f"{' and '.join(repr(p) for p in present)}; mast-bench will not guess which one to convert"
        )
    if not present:
        raise CheckpointError(
            f"no backbone keys under {' or '.join(repr(p) for p in backbone)} in '{where or '<top level>'}'"
        )
    prefix = present[0]
    trunk: dict[str, torch.Tensor] = {}
    labels: dict[str, str] = {}
    dropped: dict[str, str] = {}
    unknown: list[str] = []
    for k, v in sd.items():
        if k.startswith(prefix):
            trunk[k[len(prefix) :]] = v
            labels[k[len(prefix) :]] = label(where, k)
            continue
        reason = next((r for rule, r in drops.items() if _matches(k, rule)), None)
        if reason is None and other is not None:
            reason = other(k)
        if reason is None:
            unknown.append(k)
        else:
            dropped[label(where, k)] = reason
    if unknown:
        shown = ", ".join(unknown[:8]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise CheckpointError(f"keys in '{where or '<top level>'}' that this format does not account for: {shown}")
    return prefix, trunk, labels, dropped


def drop_entries(ckpt: Mapping[str, Any], used: set[str], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """Reasons for every top-level entry not in ``used``.

    Training state and the format's ``known`` entries get their reason; other entries without
    tensors are metadata. An unknown entry that holds tensors is an error: it could be weights.
    """
    known = {**TRAINING_STATE, **(known or {})}
    dropped: dict[str, str] = {}
    unknown: list[str] = []
    for k, v in ckpt.items():
        if k in used:
            continue
        if k in known:
            dropped[str(k)] = known[k]
        elif not has_tensors(v):
            dropped[str(k)] = "metadata (no tensors)"
        else:
            unknown.append(str(k))
    if unknown:
        raise CheckpointError(f"top-level entries holding tensors that this format does not account for: {unknown}")
    return dropped


def require_mapping(ckpt: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"a {what} checkpoint is a dict; this file holds a {type(ckpt).__name__}")
    return ckpt


def layout_error(fmt: str, expected: str, ckpt: Any) -> CheckpointError:
    """The error for a file given as ``--from fmt`` that does not have that format's layout."""
    if isinstance(ckpt, Mapping):
        keys = [str(k) for k in list(ckpt)[:6]]
        seen = f"top-level keys {keys}{' ...' if len(ckpt) > 6 else ''}"
    else:
        seen = f"a {type(ckpt).__name__}"
    return CheckpointError(f"this file is not in the {fmt} layout: expected {expected}; found {seen}")
