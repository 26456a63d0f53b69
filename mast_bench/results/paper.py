"""A paper-layout table: a layout filled from leaderboard rows and reference values.

Rows come in three kinds:

* ``measured`` — one per layout row (or per model found, for a layout without fixed rows): every
  cell aggregated from the leaderboard rows it matches (:func:`mast_bench.results.cells.aggregate`).
* ``reference`` — under a measured row whose ``reference`` name has published numbers, the published
  numbers; or, for a published model that nothing measured, a row of its own.
* ``delta`` — under a measured row with a reference row: measured − reference per cell, ``flagged``
  where the difference is larger than the column's known ``spread``.

A cell that no record fills is missing; the table never fails for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from mast_bench.results.cells import MISSING_CELL, CellValue, aggregate, difference, half_width_95, mean_cell
from mast_bench.results.layouts import Column, Layout, Row
from mast_bench.results.references import Reference

RowKind = Literal["measured", "reference", "delta"]
_SELECTOR = ["task", "dataset", "protocol", "metric", "split"]


@dataclass(frozen=True)
class TableRow:
    """One rendered row: ``cells`` by column key (every column of the layout, mean columns included).

    Attributes:
        label: the row's name; kind: ``measured`` / ``reference`` / ``delta``.
        parent: for reference and delta rows under a measured row, that row's label (``""`` otherwise).
        flags: column keys whose delta exceeds the known spread (delta rows only).
        citations: for reference rows, ``column key → (source, location, row)``.
        note: the layout row's note.
    """

    label: str
    kind: RowKind
    cells: Mapping[str, CellValue]
    parent: str = ""
    flags: frozenset[str] = frozenset()
    citations: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class PaperTable:
    """A layout with its rows filled."""

    layout: Layout
    rows: tuple[TableRow, ...]

    @property
    def error_kinds(self) -> set[str]:
        return {c.error_kind for r in self.rows for c in r.cells.values() if c.has_value and c.error_kind}

    def measured(self) -> list[TableRow]:
        return [r for r in self.rows if r.kind == "measured"]

    def best(self, column: Column) -> set[int]:
        """Indices of the rows whose rounded value is the best of ``column`` (measured and reference rows).

        A best value is bold only where it is told apart from the runner-up: when both carry an uncertainty,
        its lead must exceed their 95 % half-widths combined (``sqrt(h1² + h2²)``), so a difference within the
        noise is not marked as a win. Ties all count as best.
        """
        if column.better == "none":
            return set()
        d = self.layout.decimals
        cells = {i: r.cells[column.key] for i, r in enumerate(self.rows) if r.kind != "delta"}
        scored = {i: round(c.value, d) for i, c in cells.items() if c.has_value}
        if len(scored) < 2:
            return set()
        sign = 1.0 if column.better == "higher" else -1.0
        target = max(scored.values(), key=lambda v: sign * v)
        winners = {i for i, v in scored.items() if v == target}
        others = [i for i in scored if i not in winners]
        if not others:
            return winners
        runner_up = max(others, key=lambda i: sign * scored[i])
        h_up = half_width_95(cells[runner_up])
        for i in winners:
            h = half_width_95(cells[i])
            within_noise = sign * (cells[i].value - cells[runner_up].value) <= math.hypot(h, h_up)
            if not (math.isnan(h) or math.isnan(h_up)) and within_noise:
                return set()
        return winners

    def citations(self) -> list[str]:
        """One line per (source, location) of the reference rows, naming its rows: ``source, location (rows a, b)``."""
        by_place: dict[tuple[str, str], list[str]] = {}
        for row in self.rows:
            for source, location, published_row in row.citations.values():
                rows = by_place.setdefault((source, location), [])
                if published_row not in rows:
                    rows.append(published_row)
        return [f"{s}, {loc} (row{'s' if len(r) > 1 else ''} {', '.join(r)})" for (s, loc), r in by_place.items()]


def build_table(
    layout: Layout,
    leaderboard: pd.DataFrame,
    references: Sequence[Reference] = (),
    models: Sequence[str] = (),
) -> PaperTable:
    """Fill ``layout`` from a leaderboard frame and reference values.

    Args:
        layout: a loaded layout.
        leaderboard: rows as :func:`mast_bench.results.leaderboard.read_leaderboard` returns them.
        references: published numbers (only those matching one of the layout's cells are used).
        models: models to show first, one row each, even without any record (``reproduce --weights`` names);
            layouts with fixed rows add them after their own rows when no row matches them.

    Returns:
        The table; rows in layout order (fixed rows, then ``models``, then other models alphabetically).
    """
    selected = _select(layout, leaderboard)
    rows_spec = _rows(layout, selected, models)
    refs = [r for r in references if r.selector() in {c.selector() for c in layout.cell_columns}]
    out: list[TableRow] = []
    referenced: set[str] = set()
    for spec in rows_spec:
        mine = selected[selected["model"].map(spec.matches)] if not selected.empty else selected
        cells = _with_means(layout, {c.key: _cell(mine, c) for c in layout.cell_columns})
        out.append(TableRow(spec.label, "measured", cells, note=spec.note))
        ref_row = _reference_row(layout, [r for r in refs if r.model == spec.reference], spec.label)
        if ref_row is not None:
            referenced.add(spec.reference)
            out.append(ref_row)
            out.append(_delta_row(layout, cells, ref_row, spec.label))
    for name in sorted({r.model for r in refs} - referenced):
        ref_row = _reference_row(layout, [r for r in refs if r.model == name], "")
        if ref_row is not None:
            out.append(ref_row)
    return PaperTable(layout, tuple(out))


def _select(layout: Layout, df: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard rows that fall into some cell column of the layout."""
    if df.empty:
        return df
    wanted = {c.selector() for c in layout.cell_columns}
    keys = df[_SELECTOR].astype(str).apply(tuple, axis=1)
    return df[keys.isin(wanted)]


def _rows(layout: Layout, selected: pd.DataFrame, models: Sequence[str]) -> list[Row]:
    rows = list(layout.rows)
    present = sorted(set(selected["model"].astype(str))) if not selected.empty else []
    for name in [*models, *present]:
        if not any(r.matches(name) for r in rows) and (not layout.rows or name in models):
            rows.append(Row(name, (name,), name))
    return rows


def _cell(rows: pd.DataFrame, column: Column) -> CellValue:
    if rows.empty:
        return MISSING_CELL
    match = rows[rows[_SELECTOR].astype(str).apply(tuple, axis=1) == column.selector()]
    return aggregate(match)


def _with_means(layout: Layout, cells: dict[str, CellValue]) -> dict[str, CellValue]:
    for column in layout.columns:
        if column.is_mean:
            cells[column.key] = mean_cell([cells[k] for k in column.mean_of])
    return {c.key: cells[c.key] for c in layout.columns}


def _reference_row(layout: Layout, refs: Sequence[Reference], parent: str) -> TableRow | None:
    if not refs:
        return None
    cells: dict[str, CellValue] = {}
    citations: dict[str, tuple[str, str, str]] = {}
    for column in layout.cell_columns:
        ref = next((r for r in refs if r.selector() == column.selector()), None)
        if ref is None:
            cells[column.key] = MISSING_CELL
            continue
        cells[column.key] = CellValue("value", ref.value, n=1, values=(ref.value,), provenance=(ref.citation,))
        citations[column.key] = (ref.source, ref.location, ref.row)
    label = refs[0].label if not parent else f"{refs[0].label} (published)"
    return TableRow(label, "reference", _with_means(layout, cells), parent=parent, citations=citations)


def _delta_row(layout: Layout, measured: Mapping[str, CellValue], ref: TableRow, parent: str) -> TableRow:
    cells: dict[str, CellValue] = {}
    flags: set[str] = set()
    for column in layout.columns:
        cell, flagged = difference(measured[column.key], ref.cells[column.key], column.spread)
        cells[column.key] = cell
        if flagged:
            flags.add(column.key)
    return TableRow("Δ measured − published", "delta", cells, parent=parent, flags=frozenset(flags))
