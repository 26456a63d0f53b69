"""Map a located backbone onto the target model's state dict, strictly.

Every trunk key must be a key of the target model with the same shape (``fc.*`` is dropped when
the format says what it is); every target key must be supplied. The one exception is
BatchNorm's ``num_batches_tracked`` step counter, which older files (torchvision's own
ImageNet weights among them) do not carry: PyTorch itself fills it with 0 when loading such
files (``_BatchNorm._load_from_state_dict``), it plays no part in evaluation, and the report
lists every key filled this way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mast_bench.convert.formats import Found
from mast_bench.convert.layout import build_target, describe
from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import BackboneSpec

_COUNTER = "num_batches_tracked"


@dataclass
class Mapped:
    """The target state dict and the key accounting that produced it."""

    state_dict: dict[str, torch.Tensor]
    mapped: dict[str, str]
    dropped: dict[str, str]
    filled: list[str]
    notes: list[str]


def _listing(items: list[str], n: int = 8) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def map_backbone(found: Found, spec: BackboneSpec) -> Mapped:
    """Match ``found.trunk`` to the state dict of the backbone ``spec`` describes.

    Args:
        found: the backbone a source format located.
        spec: the architecture to load into (already checked against the keys).

    Returns:
        A state dict loadable with ``strict=True`` into ``build_target(spec)`` and the accounting.

    Raises:
        CheckpointError: naming every unmapped source key, missing target key, shape mismatch or
            non-finite tensor.
    """
    with torch.device("meta"):  # shapes and dtypes only: no memory, no random init
        target = build_target(spec).state_dict()
    state: dict[str, torch.Tensor] = {}
    mapped: dict[str, str] = {}
    dropped = dict(found.dropped)
    notes: list[str] = list(found.notes)
    unmapped: list[str] = []
    shapes: list[str] = []
    nonfinite: list[str] = []
    casts: set[str] = set()
    for key, value in found.trunk.items():
        src = found.labels[key]
        if key not in target:
            if key.startswith("fc.") and found.fc_reason:
                dropped[src] = found.fc_reason
            else:
                unmapped.append(src)
            continue
        ref = target[key]
        if tuple(value.shape) != tuple(ref.shape):
            shapes.append(f"{src} {tuple(value.shape)} vs {key} {tuple(ref.shape)}")
            continue
        # One reduction per tensor: a finite sum implies finite entries; only then check element-wise.
        if value.is_floating_point() and not torch.isfinite(value.sum()) and not torch.isfinite(value).all():
            nonfinite.append(src)
            continue
        if value.dtype != ref.dtype:
            casts.add(f"{value.dtype} → {ref.dtype}")
        state[key] = value.detach().to(dtype=ref.dtype, device="cpu").clone().contiguous()
        mapped[src] = key
    missing = [k for k in target if k not in state and not k.endswith(_COUNTER)]
    problems = []
    if unmapped:
        problems.append(f"backbone keys with no place in {spec.name}: {_listing(unmapped)}")
    if missing:
        problems.append(f"target keys of {spec.name} missing from the checkpoint: {_listing(missing)}")
    if shapes:
        problems.append(f"shape mismatches (source vs target): {_listing(shapes, 5)}")
    if nonfinite:
        problems.append(f"tensors with NaN or Inf values: {_listing(nonfinite)}")
    if problems:
        raise CheckpointError(
            f"the weights found in {found.evidence} do not match {describe(spec)}: " + "; ".join(problems)
        )
    filled = [k for k in target if k not in state]
    for k in filled:
        state[k] = torch.zeros(target[k].shape, dtype=target[k].dtype)
    if casts:
        notes.append(f"cast tensors {', '.join(sorted(casts))}")
    ordered = {k: state[k] for k in target}  # target order, so the saved file reads like torchvision's
    return Mapped(state_dict=ordered, mapped=mapped, dropped=dropped, filled=filled, notes=notes)
