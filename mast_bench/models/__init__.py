"""Backbones and heads."""

from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.models.projector import build_projector

__all__ = ["BackboneSpec", "build_backbone", "build_projector"]
