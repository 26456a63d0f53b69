"""solo-learn (da Costa et al., JMLR 2022) checkpoints: PyTorch Lightning files.

``state_dict`` keeps the backbone under ``backbone.`` (torchvision ResNet with ``fc`` removed;
CIFAR recipes swap in a 3x3 stride-1 stem without max-pool). Everything else in it is a module
of the SSL method: projector, predictor, momentum copies, prototypes, queues and the online
linear classifier solo-learn trains alongside.
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
from mast_bench.registry import CONVERTERS

PREFIX = "backbone."
_DROPS = {
    "momentum_backbone.": "momentum encoder",
    "projector.": "projector",
    "momentum_projector.": "momentum projector",
    "predictor.": "predictor",
    "classifier.": "online linear classifier",
    "momentum_classifier.": "momentum online linear classifier",
    "prototypes.": "prototypes",
    "head.": "method head",
    "momentum_head.": "momentum method head",
}


def _method_module(key: str) -> str:
    # solo-learn methods add their own modules (queues, extra heads) next to the backbone.
    return f"solo-learn method module '{key.split('.')[0]}'"


@CONVERTERS.register("solo-learn")
class SoloLearnFormat(SourceFormat):
    name = "solo-learn"
    summary = "solo-learn Lightning checkpoint (state_dict → backbone.)"

    def detect(self, ckpt: Any) -> str | None:
        sd = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
        if is_tensor_dict(sd) and PREFIX in trunk_prefixes(sd):
            return "'state_dict' holds backbone. (solo-learn)"
        return None

    def extract(self, ckpt: Any, option: str | None) -> Found:
        ckpt = require_mapping(ckpt, "solo-learn")
        if "state_dict" not in ckpt:
            raise layout_error("solo-learn", "a Lightning checkpoint with 'state_dict' (backbone.*)", ckpt)
        sd = tensor_dict(ckpt["state_dict"], "state_dict")
        _, trunk, labels, dropped = split_state(sd, "state_dict", (PREFIX,), _DROPS, other=_method_module)
        dropped.update(drop_entries(ckpt, {"state_dict"}))
        notes = []
        if trunk.get("conv1.weight") is not None and trunk["conv1.weight"].shape[-1] == 3:
            notes.append(
                "small-image stem: solo-learn's CIFAR recipes normalise with CIFAR statistics, not the ImageNet "
                "mean/std recorded here; check the recipe the checkpoint came from"
            )
        return Found(
            trunk=trunk,
            labels=labels,
            dropped=dropped,
            evidence="'state_dict' → backbone. (solo-learn)",
            fc_reason="classifier (fc)",
            notes=notes,
        )
