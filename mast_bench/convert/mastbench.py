"""mast-bench's own checkpoints (any method), as written by ``mast_bench.pretrain``.

Layout and version rule: :mod:`mast_bench.checkpoints` (``{"format": "mast-bench-checkpoint",
"format_version": 1, "backbone": {torchvision names}, "projector": {...}, "method_state": {...},
"optimizer": {...}, "meta": {"method", "backbone": BackboneSpec dict, "recipe", "epoch", ...}}``). The backbone spec in
``meta`` (stem, widths, normalisation) is authoritative and checked against the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mast_bench.checkpoints import FORMAT, FORMAT_VERSION, readable_version
from mast_bench.convert.formats import (
    Found,
    SourceFormat,
    drop_entries,
    is_tensor_dict,
    label,
    require_mapping,
    tensor_dict,
)
from mast_bench.errors import CheckpointError
from mast_bench.models.backbones import BackboneSpec
from mast_bench.registry import CONVERTERS

MARKER = FORMAT


def _drop_module(ckpt: Mapping[str, Any], entry: str, reason: str) -> dict[str, str]:
    value = ckpt.get(entry)
    if is_tensor_dict(value):
        return {label(entry, str(k)): reason for k in value}
    return {entry: reason}


def _spec(meta: Any) -> BackboneSpec:
    if not isinstance(meta, Mapping) or not isinstance(meta.get("backbone"), Mapping):
        raise CheckpointError("mast-bench checkpoint has no 'meta' → 'backbone' entry describing its backbone")
    try:
        return BackboneSpec.from_dict(dict(meta["backbone"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"mast-bench checkpoint has an unreadable backbone spec in 'meta': {exc}") from None


def _input_size(meta: Mapping[str, Any]) -> int | None:
    recipe = meta.get("recipe")
    augment = recipe.get("augment") if isinstance(recipe, Mapping) else None
    size = augment.get("size") if isinstance(augment, Mapping) else None
    return size if isinstance(size, int) and size > 0 else None


@CONVERTERS.register("mast-bench")
class MastBenchFormat(SourceFormat):
    name = "mast-bench"
    summary = "mast-bench pretraining checkpoint (any method); backbone spec read from its metadata"

    def detect(self, ckpt: Any) -> str | None:
        if isinstance(ckpt, Mapping) and ckpt.get("format") == MARKER:
            return f"format marker {MARKER!r}"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        ckpt = require_mapping(ckpt, "mast-bench")
        if ckpt.get("format") != MARKER:
            raise CheckpointError(f"not a mast-bench checkpoint: it has no 'format': {MARKER!r} entry")
        version = ckpt.get("format_version")
        if not readable_version(version):
            raise CheckpointError(
                f"mast-bench checkpoint format_version {version!r}; this version of mast-bench reads up to "
                f"{FORMAT_VERSION}"
            )
        if "backbone" not in ckpt:
            raise CheckpointError("mast-bench checkpoint has no 'backbone' entry")
        backbone = tensor_dict(ckpt["backbone"], "backbone")
        meta = ckpt.get("meta")
        spec = _spec(meta)
        method = str(meta.get("method", "unknown"))
        dropped = {
            **_drop_module(ckpt, "projector", "projector"),
            **_drop_module(ckpt, "method_state", f"{method} method state (e.g. MAST masks, uncertainty head)"),
        }
        dropped.update(
            drop_entries(
                ckpt,
                {"backbone", "projector", "method_state"},
                known={
                    "format": "format marker",
                    "format_version": "format marker",
                    "meta": "metadata (read)",
                    "resume": "resume state (RNG states, loss scaler)",
                },
            )
        )
        notes = []
        if meta.get("complete") is False:
            notes.append(f"training checkpoint not marked complete (epoch {meta.get('epoch', '?')})")
        return Found(
            trunk=backbone,
            labels={k: label("backbone", k) for k in backbone},
            dropped=dropped,
            evidence=f"'backbone' of a mast-bench {method} checkpoint",
            spec=spec,
            input_size=_input_size(meta),
            notes=notes,
            method=str(meta.get("method", "")),
        )
