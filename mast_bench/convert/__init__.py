"""Checkpoint conversion: any supported SSL checkpoint → torchvision or Detectron2 weights, strictly.

Importing this package registers every source format in ``mast_bench.registry.CONVERTERS``.
"""

from mast_bench.convert import (  # noqa: F401  (imported to register their formats)
    barlowtwins,
    dino,
    lightning,
    mastbench,
    moco,
    sololearn,
    torchvision_src,
    vicreg,
    vissl,
)
from mast_bench.convert.api import (
    ConvertResult,
    LoadedBackbone,
    convert_checkpoint,
    convert_source,
    load_backbone,
)
from mast_bench.convert.formats import SOURCE_FORMATS
from mast_bench.convert.report import ConversionReport

__all__ = [
    "SOURCE_FORMATS",
    "ConversionReport",
    "ConvertResult",
    "LoadedBackbone",
    "convert_checkpoint",
    "convert_source",
    "load_backbone",
]
