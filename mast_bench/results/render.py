"""A paper-layout table as Markdown, CSV (one row per cell) and LaTeX (booktabs).

Cell text: ``72.9`` (one run), ``72.9 ± 0.3 (n=5)`` (mean ± std over n seeds or runs), ``72.9 ± 0.3``
with a ``ci95`` (marked ``CI`` when a table mixes both kinds), ``70.1 / 70.4 (conflict)`` for records
that disagree, ``–`` when missing; delta rows ``+0.4``, followed by ``⚠`` where the difference
exceeds the column's known spread. The best value of each column (measured and published rows) is
in bold. Output depends only on the table: no dates, no dict-order effects.
"""

from __future__ import annotations

import io

import pandas as pd

from mast_bench.results.cells import CellValue
from mast_bench.results.layouts import Column
from mast_bench.results.paper import PaperTable, TableRow

MISSING = "–"
FLAG = "⚠"
_ERROR_NOTES = {"std": "± is the standard deviation over n seeds or runs", "ci95": "± is the 95 % confidence interval"}


def cell_text(table: PaperTable, row: TableRow, column: Column) -> str:
    """The text of one cell (see the module docstring)."""
    cell = row.cells[column.key]
    d = table.layout.decimals
    if cell.status == "missing":
        return MISSING
    if cell.status == "conflict":
        return " / ".join(f"{v:.{d}f}" for v in cell.values) + " (conflict)"
    if row.kind == "delta":
        text = f"{cell.value:+.{d}f}"
        return f"{text} {FLAG}" if column.key in row.flags else text
    return _value_text(cell, d, mixed=len(table.error_kinds) > 1)


def _value_text(cell: CellValue, d: int, mixed: bool) -> str:
    text = f"{cell.value:.{d}f}"
    if cell.error_kind:
        text += f" ± {cell.error:.{d}f}"
        if cell.error_kind == "ci95" and mixed:
            text += " CI"
    if cell.n > 1 and cell.error_kind != "ci95":
        text += f" (n={cell.n})"
    return text


def header_label(column: Column) -> str:
    """A one-line header (group and label joined) for formats without spanning headers."""
    return f"{column.group} {column.label}" if column.group else column.label


def row_label(row: TableRow) -> str:
    return f"↳ {row.label}" if row.parent else row.label


def footnote(table: PaperTable) -> str:
    """What the numbers are, what ± and ⚠ mean, and where published numbers come from."""
    layout = table.layout
    parts = [_measured(layout.cell_columns)]
    kinds = table.error_kinds
    if kinds == {"std", "ci95"}:
        parts.append(f"{_ERROR_NOTES['std']}; ± … CI is the 95 % confidence interval")
    elif kinds:
        parts.append(_ERROR_NOTES[kinds.pop()])
    if any(c.is_mean for c in layout.columns):
        parts.append("means are left empty when a cell they average is missing")
    parts.append(f"{MISSING}: no record")
    if any(r.kind == "delta" for r in table.rows):
        spreads = [f"{header_label(c)} {c.spread:g}" for c in layout.columns if c.spread is not None]
        known = f" ({', '.join(spreads)})" if spreads else " (none known for this table: nothing flagged)"
        parts.append(f"{FLAG}: |measured − published| larger than the protocol's known spread{known}")
    if layout.better != "none":
        parts.append(
            f"best per column in bold ({layout.better} is better), unless its lead over the runner-up is within "
            "their combined 95 % intervals"
        )
    text = "; ".join(parts) + "."
    cites = table.citations()
    if cites:
        text += " Published numbers: " + "; ".join(f"[{i}] {c}" for i, c in enumerate(cites, 1)) + "."
    return text


def _measured(columns: tuple[Column, ...]) -> str:
    """``top1 (%) on test``, or per header group when the groups measure different things."""
    groups: dict[str, tuple[set[str], set[str]]] = {}
    for c in columns:
        metrics, splits = groups.setdefault(c.group, (set(), set()))
        metrics.add(c.metric)
        splits.add(c.split)
    texts = {g: f"{', '.join(sorted(m))} (%) on {', '.join(sorted(sp))}" for g, (m, sp) in groups.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{g}: {t}" if g else t for g, t in texts.items())


def to_markdown(table: PaperTable) -> str:
    """GitHub-flavoured Markdown table followed by its footnote."""
    columns = table.layout.columns
    lines = [
        "| model | " + " | ".join(_md(header_label(c)) for c in columns) + " |",
        "|:--" + "|--:" * len(columns) + "|",
    ]
    best = {c.key: table.best(c) for c in columns}
    for i, row in enumerate(table.rows):
        texts = [cell_text(table, row, c) for c in columns]
        texts = [f"**{t}**" if i in best[c.key] else t for t, c in zip(texts, columns)]
        lines.append("| " + " | ".join([_md(row_label(row)), *(_md(t) for t in texts)]) + " |")
    return "\n".join(lines) + "\n\n" + footnote(table) + "\n"


def to_frame(table: PaperTable) -> pd.DataFrame:
    """One row per (table row, column): the cell's identity, number, uncertainty, status and sources."""
    records = []
    for row in table.rows:
        for column in table.layout.columns:
            cell = row.cells[column.key]
            records.append(
                {
                    "table": table.layout.name,
                    "row": row.label,
                    "row_kind": row.kind,
                    "parent": row.parent,
                    "column": column.key,
                    "task": column.task,
                    "dataset": column.dataset,
                    "protocol": column.protocol,
                    "metric": column.metric,
                    "split": column.split,
                    "status": cell.status,
                    "value": cell.value if cell.has_value else None,
                    "error": cell.error if cell.has_value and cell.error_kind else None,
                    "error_kind": cell.error_kind,
                    "n": cell.n,
                    "values": " ".join(repr(v) for v in cell.values),
                    "flag": column.key in row.flags,
                    "source": ", ".join(row.citations.get(column.key, ())),
                }
            )
    return pd.DataFrame.from_records(records)


def to_csv(table: PaperTable) -> str:
    buf = io.StringIO()
    to_frame(table).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def to_latex(table: PaperTable) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``): group headers spanning their columns."""
    columns = table.layout.columns
    lines = [f"\\begin{{tabular}}{{l{'r' * len(columns)}}}", "\\toprule"]
    if any(c.group for c in columns):
        spans = _spans([c.group for c in columns])
        heads, rules = [""], []
        for start, width, group in spans:
            heads.append(f"\\multicolumn{{{width}}}{{c}}{{{_tex(group)}}}" if group else " & ".join([""] * width))
            if group:
                rules.append(f"\\cmidrule(lr){{{start + 2}-{start + width + 1}}}")
        lines.append(" & ".join(heads) + " \\\\")
        lines.extend(rules)
    lines += [" & ".join(["model", *(_tex(c.label) for c in columns)]) + " \\\\", "\\midrule"]
    best = {c.key: table.best(c) for c in columns}
    for i, row in enumerate(table.rows):
        cells = []
        for column in columns:
            text = _tex_cell(cell_text(table, row, column))
            cells.append(f"\\textbf{{{text}}}" if i in best[column.key] else text)
        label = f"\\quad {_tex(row.label)}" if row.parent else _tex(row.label)
        lines.append(" & ".join([label, *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _spans(groups: list[str]) -> list[tuple[int, int, str]]:
    """Runs of equal consecutive group names: ``(start index, width, group)``."""
    spans: list[tuple[int, int, str]] = []
    for i, g in enumerate(groups):
        if spans and spans[-1][2] == g and g:
            start, width, _ = spans[-1]
            spans[-1] = (start, width + 1, g)
        else:
            spans.append((i, 1, g))
    return spans


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _tex_cell(text: str) -> str:
    text = _tex(text).replace(" ± ", " $\\pm$ ").replace(MISSING, "--").replace(f" {FLAG}", "$^{\\dagger}$")
    return text.replace("−", "$-$")


def _tex(text: str) -> str:
    out = text.replace("\\", "\\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    out = out.replace("~", "\\textasciitilde{}").replace("^", "\\textasciicircum{}")
    return out.replace("Δ", "$\\Delta$").replace("−", "$-$").replace("↳ ", "")
