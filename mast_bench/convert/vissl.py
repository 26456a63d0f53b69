"""VISSL (facebookresearch/vissl) checkpoints.

``{"classy_state_dict": {"base_model": {"model": {"trunk": {...}, "heads": {...}}, ...}, <task state>},
"phase_idx", "iteration", ...}``. The ResNe(X)t trunk keeps torchvision's module names under
``_feature_blocks.`` (VISSL's ``extra_scripts/convert_vissl_to_torchvision.py`` strips exactly that);
the heads are the SSL projection heads, prototypes or a linear classifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mast_bench.convert.formats import (
    Found,
    SourceFormat,
    drop_entries,
    has_tensors,
    is_tensor_dict,
    label,
    layout_error,
    split_state,
    tensor_dict,
)
from mast_bench.errors import CheckpointError
from mast_bench.registry import CONVERTERS

PREFIX = "_feature_blocks."
_PATH = ("classy_state_dict", "base_model", "model")
_WHERE = "/".join(_PATH)
_HEADS = "SSL heads (projection, prototypes or classifier)"
_TOP = {
    "loss": "loss state (e.g. SwAV queue)",
    "phase_idx": "training progress",
    "train_phase_idx": "training progress",
    "iteration_num": "training progress",
}


def _model(ckpt: Any) -> Mapping[str, Any] | None:
    node = ckpt
    for part in _PATH:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


@CONVERTERS.register("vissl")
class VisslFormat(SourceFormat):
    name = "vissl"
    summary = "VISSL checkpoint (classy_state_dict → base_model → model → trunk, _feature_blocks.)"

    def detect(self, ckpt: Any) -> str | None:
        model = _model(ckpt)
        if model is not None and "trunk" in model:
            return f"'{_WHERE}/trunk' (VISSL)"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        model = _model(ckpt)
        if model is None or "trunk" not in model:
            raise layout_error("vissl", f"'{_WHERE}/trunk' holding _feature_blocks.*", ckpt)
        trunk_sd = tensor_dict(model["trunk"], f"{_WHERE}/trunk")
        _, trunk, labels, dropped = split_state(trunk_sd, f"{_WHERE}/trunk", (PREFIX,), {})
        heads = model.get("heads", {})
        if is_tensor_dict(heads):
            dropped.update({label(f"{_WHERE}/heads", str(k)): _HEADS for k in heads})
        elif heads:
            dropped[f"{_WHERE}/heads"] = _HEADS
        others = [k for k in model if k not in ("trunk", "heads") and has_tensors(model[k])]
        if others:
            raise CheckpointError(f"'{_WHERE}' holds tensors besides trunk and heads: {others}")
        csd = ckpt["classy_state_dict"]
        base = csd["base_model"]
        dropped.update({f"classy_state_dict/base_model/{k}": "metadata" for k in base if k != "model"})
        dropped.update({f"classy_state_dict/{k}": "VISSL training-task state" for k in csd if k != "base_model"})
        dropped.update(drop_entries(ckpt, {"classy_state_dict"}, known=_TOP))
        return Found(trunk=trunk, labels=labels, dropped=dropped, evidence=f"'{_WHERE}/trunk' → {PREFIX} (VISSL)")
