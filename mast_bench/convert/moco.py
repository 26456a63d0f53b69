"""MoCo checkpoints (facebookresearch/moco and moco-v3, ``main_moco.py``).

``{"epoch", "arch", "state_dict", "optimizer"[, "scaler"]}`` where ``state_dict`` is the DDP
model: v1/v2 keep the query encoder under ``module.encoder_q.`` (its ``fc`` is the projection
head), the key encoder under ``module.encoder_k.`` and the negative queue in ``module.queue`` /
``module.queue_ptr``; v3 uses ``module.base_encoder.`` (``fc`` = projector),
``module.momentum_encoder.`` and ``module.predictor.``. MoCo's ``main_lincls.py`` keeps exactly
the encoder minus ``fc``.
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
from mast_bench.registry import CONVERTERS

PREFIXES = {"module.encoder_q.": "MoCo v1/v2", "module.base_encoder.": "MoCo v3"}
_DROPS = {
    "module.encoder_k.": "momentum (key) encoder",
    "module.momentum_encoder.": "momentum encoder",
    "module.queue": "negative-key queue",
    "module.queue_ptr": "negative-key queue pointer",
    "module.predictor.": "predictor",
}


@CONVERTERS.register("moco")
class MocoFormat(SourceFormat):
    name = "moco"
    summary = "MoCo v1/v2 (state_dict → module.encoder_q.) and v3 (module.base_encoder.)"

    def detect(self, ckpt: Any) -> str | None:
        if not (isinstance(ckpt, Mapping) and is_tensor_dict(ckpt.get("state_dict"))):
            return None
        found = [p for p in PREFIXES if any(k.startswith(p) for k in ckpt["state_dict"])]
        if not found:
            return None
        return "'state_dict' holds " + " and ".join(f"{p} ({PREFIXES[p]})" for p in found)

    def extract(self, ckpt: Any, option: str | None) -> Found:
        ckpt = require_mapping(ckpt, "MoCo")
        if "state_dict" not in ckpt:
            raise layout_error("moco", "a dict with 'state_dict' (module.encoder_q.* or module.base_encoder.*)", ckpt)
        sd = tensor_dict(ckpt["state_dict"], "state_dict")
        prefix, trunk, labels, dropped = split_state(sd, "state_dict", tuple(PREFIXES), _DROPS)
        dropped.update(drop_entries(ckpt, {"state_dict"}))
        arch = ckpt.get("arch")
        return Found(
            trunk=trunk,
            labels=labels,
            dropped=dropped,
            evidence=f"'state_dict' → {prefix} ({PREFIXES[prefix]})",
            fc_reason="projection head (fc)",
            arch_hint=arch if isinstance(arch, str) else None,
        )
