"""One table cell from the leaderboard rows that claim it: a value, seeds aggregated, conflicts kept.

Several leaderboard rows can fall into one cell of a table:

* **runs** — different seeds of one evaluation (records of one cell with disjoint ``seeds``), or
  different checkpoints a layout row groups on purpose (``models: ["mast-s*"]``, one per pretraining
  seed). The cell shows their mean ± sample standard deviation (ddof = 1) and ``n``, the number of runs.
* **conflict** — two records of the *same* cell and the same seeds with different values (a re-run
  on other hardware, two merged job folders). Neither is right by default: the cell shows both values
  and is marked as a conflict; nothing is averaged or dropped.

A single row shows its own value and the uncertainty it carries: its ``std`` when it holds two or more
seeds (e.g. Detectron2's mean of 5 runs), otherwise its ``ci95`` if it has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

#: Values closer than this (relative) are the same number written twice, not a conflict.
SAME_VALUE_RTOL = 1e-9


@dataclass(frozen=True)
class CellValue:
    """What one table cell holds.

    Attributes:
        status: ``missing`` (no record), ``value`` or ``conflict``.
        value: the number (the mean over runs); NaN unless ``status == "value"``.
        error: its uncertainty (NaN when none); error_kind: ``std``, ``ci95`` or ``""``.
        n: number of runs or seeds behind ``value`` (0 when missing).
        values: every number behind the cell (the runs, or the conflicting values), in row order.
        provenance: one line per record behind the cell.
    """

    status: Literal["missing", "value", "conflict"]
    value: float = math.nan
    error: float = math.nan
    error_kind: str = ""
    n: int = 0
    values: tuple[float, ...] = ()
    provenance: tuple[str, ...] = ()

    @property
    def has_value(self) -> bool:
        return self.status == "value"


MISSING_CELL = CellValue("missing")


def half_width_95(cell: CellValue) -> float:
    """The cell's 95 % half-width: its ``ci95``, or 1.96 standard errors of a mean over ``n`` seeds; NaN if none."""
    if not cell.has_value or math.isnan(cell.error):
        return math.nan
    if cell.error_kind == "ci95":
        return cell.error
    if cell.error_kind == "std" and cell.n >= 2:
        return 1.96 * cell.error / math.sqrt(cell.n)
    return math.nan


def same_value(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SAME_VALUE_RTOL, abs_tol=1e-12)


def seeds_of(row: pd.Series) -> tuple[int, ...]:
    """The seeds of a leaderboard row (a JSON list in the CSV; ``()`` when absent)."""
    raw = row.get("seeds", "[]")
    if isinstance(raw, (list, tuple)):
        return tuple(int(s) for s in raw)
    try:
        return tuple(int(s) for s in json.loads(raw or "[]"))
    except (TypeError, ValueError):
        return ()


def claim(row: pd.Series) -> tuple[str, tuple[int, ...]]:
    """What a row claims to be: its cell key and seeds. Rows with equal claims must agree."""
    return str(row.get("key", "")), seeds_of(row)


def provenance_line(row: pd.Series) -> str:
    """One line naming a leaderboard row's record, checkpoint, selection and seeds."""
    parts = [f"{row.get('model', '')}: {_num(row['value'])}"]
    sha = str(row.get("checkpoint_sha256", "") or "")
    parts.append(f"checkpoint {sha[:12]}" if sha else "no checkpoint (random init)")
    selected = str(row.get("selected", "") or "")
    if selected and selected != "{}":
        parts.append(f"selected {selected} on {row.get('selected_on', '') or '?'}")
    seeds = seeds_of(row)
    if seeds:
        parts.append(f"seeds {list(seeds)}")
    version = str(row.get("protocol_version", "") or "")
    if version:
        parts.append(f"{row.get('protocol', '')} v{version}")
    code = str(row.get("code_version", "") or "")
    if code:
        parts.append(f"code {code}")
    record = str(row.get("record_file", "") or "")
    if record:
        parts.append(f"record {record}")
    return "; ".join(parts)


def aggregate(rows: pd.DataFrame) -> CellValue:
    """The cell made by ``rows`` (leaderboard rows already selected for one table cell).

    Returns:
        ``MISSING_CELL`` for no rows; a ``conflict`` when two rows make the same claim (cell key and
        seeds) with different values; otherwise one row's value with its own uncertainty, or the mean
        ± sample std over several runs.
    """
    if rows.empty:
        return MISSING_CELL
    order = [c for c in ("model", "checkpoint_sha256", "seeds", "record_file", "value") if c in rows.columns]
    ordered = rows.sort_values(order, kind="stable")
    lines = tuple(provenance_line(r) for _, r in ordered.iterrows())
    values = tuple(float(v) for v in ordered["value"])
    by_claim: dict[tuple[str, tuple[int, ...]], list[float]] = {}
    for (_, row), value in zip(ordered.iterrows(), values):
        by_claim.setdefault(claim(row), []).append(value)
    if any(not all(same_value(v, group[0]) for v in group) for group in by_claim.values()):
        return CellValue("conflict", values=values, provenance=lines, n=len(values))
    runs = [group[0] for group in by_claim.values()]
    if len(runs) == 1:
        row = ordered.iloc[0]
        # A std is a spread over seeds: with fewer than two seeds it is no such thing (a single run's 0.0, or
        # the spread of few-shot episodes, whose uncertainty of the mean is the ci95), so it is not shown.
        n_seeds = len(seeds_of(row))
        std, ci95 = _float(row.get("std")), _float(row.get("ci95"))
        if n_seeds >= 2 and not math.isnan(std):
            return CellValue("value", runs[0], std, "std", n_seeds, (runs[0],), lines)
        if not math.isnan(ci95):
            return CellValue("value", runs[0], ci95, "ci95", 1, (runs[0],), lines)
        return CellValue("value", runs[0], n=1, values=(runs[0],), provenance=lines)
    arr = np.asarray(runs, dtype=float)
    return CellValue("value", float(arr.mean()), float(arr.std(ddof=1)), "std", len(runs), tuple(runs), lines)


def mean_cell(cells: Sequence[CellValue]) -> CellValue:
    """Mean of several cells' values; missing unless every one has a value (a partial mean is not comparable)."""
    if not cells or not all(c.has_value for c in cells):
        return MISSING_CELL
    return CellValue("value", float(np.mean([c.value for c in cells])), n=1, values=tuple(c.value for c in cells))


def difference(measured: CellValue, reference: CellValue, spread: float | None) -> tuple[CellValue, bool]:
    """``measured − reference`` and whether it exceeds ``spread`` (never flagged when ``spread`` is None)."""
    if not (measured.has_value and reference.has_value):
        return MISSING_CELL, False
    delta = measured.value - reference.value
    flagged = spread is not None and abs(delta) > spread + 1e-12
    return CellValue("value", delta, n=1, values=(delta,)), flagged


def _float(x: object) -> float:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return value


def _num(x: object) -> str:
    return f"{float(x):.6g}"  # type: ignore[arg-type]
