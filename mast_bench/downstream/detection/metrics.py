"""Detectron2's evaluation results → the numbers a detection record holds, and their mean ± std over seeds.

Detectron2's evaluators return percentages: ``COCOEvaluator`` ``{"bbox": {"AP", "AP50", "AP75", ...},
"segm": {...}}`` (COCO's AP averaged over IoU 0.50:0.95, then at 0.50 and 0.75), and
``PascalVOCDetectionEvaluator`` ``{"bbox": {"AP", "AP50", "AP75"}}`` (VOC AP at IoU 0.50:0.95 in steps of
0.05; for VOC2007 each class AP is the 11-point interpolated one, as MoCo reports). We keep AP, AP50 and
AP75 of each group as ``box_AP``, ``box_AP50``, ... ``mask_AP75``.

A model that predicts nothing at all gets ``NaN`` from ``COCOEvaluator`` ("No predictions from the model!");
its AP is 0 by definition (no detection, no recall), and it is recorded as 0 with a note.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

GROUPS = {"bbox": "box", "segm": "mask"}
KEYS = ("AP", "AP50", "AP75")


def metric_names(groups: tuple[str, ...]) -> list[str]:
    """Record metric names for Detectron2 result groups, e.g. ``("bbox",)`` → ``box_AP``, ``box_AP50``, ..."""
    return [f"{GROUPS[g]}_{k}" for g in groups for k in KEYS]


def parse_results(results: dict[str, Any], groups: tuple[str, ...]) -> tuple[dict[str, float], list[str]]:
    """Pick AP/AP50/AP75 of each group.

    Args:
        results: Detectron2's results (``None`` or NaN where nothing was predicted).
        groups: the groups the task reports.

    Returns:
        ``({metric: value}, notes)``: values in percent; a missing prediction set gives 0 and a note.

    Raises:
        ValueError: a group or key the evaluator did not produce, or a value outside [0, 100].
    """
    values: dict[str, float] = {}
    notes: list[str] = []
    for group in groups:
        if group not in results:
            raise ValueError(f"Detectron2 returned no {group!r} results (got {sorted(results)})")
        for key in KEYS:
            if key not in results[group]:
                raise ValueError(f"Detectron2's {group!r} results have no {key!r}")
            raw = results[group][key]
            name = f"{GROUPS[group]}_{key}"
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                values[name] = 0.0
                notes.append(f"{name}: no predictions at all, recorded as 0")
                continue
            value = float(raw)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name} = {value} is outside [0, 100]")
            values[name] = value
    return values, notes


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1; 0 for a single value), as MoCo's 5-run spreads."""
    if not values:
        raise ValueError("no values to average")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
