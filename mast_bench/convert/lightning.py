"""Generic PyTorch Lightning checkpoints: the backbone sits under a prefix the user names.

``--from lightning:model.backbone.`` converts ``state_dict["model.backbone.*"]``; every other
module of the LightningModule is dropped and listed. ``--from lightning`` (and ``auto`` on a
Lightning file no specific format claims) accepts the prefix only when exactly one ResNet trunk
is present; two candidates are an error naming both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mast_bench.convert.formats import (
    Found,
    SourceFormat,
    drop_entries,
    is_tensor_dict,
    layout_error,
    require_mapping,
    split_state,
    tensor_dict,
)
from mast_bench.convert.layout import trunk_prefixes
from mast_bench.errors import CheckpointError
from mast_bench.registry import CONVERTERS


def _choose(sd: Mapping[str, Any], option: str | None) -> tuple[str, str]:
    candidates = trunk_prefixes(sd)
    shown = ", ".join(repr(p) for p in candidates) or "none"
    if option is not None:
        prefix = option if option == "" or option.endswith(".") else option + "."
        if prefix not in candidates:
            raise CheckpointError(
                f"no ResNet trunk under prefix {prefix!r} in 'state_dict' (ResNet trunks found under: {shown})"
            )
        return prefix, f"prefix {prefix!r} given with --from"
    if not candidates:
        raise CheckpointError("no ResNet trunk (conv1.weight + layer1.0.conv1.weight) found in 'state_dict'")
    if len(candidates) > 1:
        raise CheckpointError(
            f"'state_dict' holds ResNet trunks under {len(candidates)} candidate prefixes: {shown}; "
            "name the one to convert with --from lightning:PREFIX"
        )
    return candidates[0], f"the only ResNet trunk prefix, {candidates[0]!r}"


@CONVERTERS.register("lightning")
class LightningFormat(SourceFormat):
    name = "lightning"
    summary = "PyTorch Lightning checkpoint; backbone prefix named as lightning:PREFIX (or the only one present)"
    generic = True

    def detect(self, ckpt: Any) -> str | None:
        if isinstance(ckpt, Mapping) and "pytorch-lightning_version" in ckpt and is_tensor_dict(ckpt.get("state_dict")):
            return "a PyTorch Lightning checkpoint ('pytorch-lightning_version', 'state_dict')"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        ckpt = require_mapping(ckpt, "Lightning")
        if "state_dict" not in ckpt:
            raise layout_error("lightning", "a dict with 'state_dict'", ckpt)
        sd = tensor_dict(ckpt["state_dict"], "state_dict")
        prefix, how = _choose(sd, option)

        reason = f"other LightningModule modules (outside {prefix!r})"
        _, trunk, labels, dropped = split_state(sd, "state_dict", (prefix,), {}, other=lambda _key: reason)
        dropped.update(drop_entries(ckpt, {"state_dict"}))
        return Found(
            trunk=trunk,
            labels=labels,
            dropped=dropped,
            evidence=f"'state_dict' → {prefix!r} ({how})",
            fc_reason="classifier (fc)",
        )
