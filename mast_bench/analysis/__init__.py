"""The paper's MAST analyses: mask heat-map and overlap, uncertainty vs augmentation strength, ablations."""

from mast_bench.analysis.analyze import AnalysisResult, analyze, mask_overlap_figure

__all__ = ["AnalysisResult", "analyze", "mask_overlap_figure"]
