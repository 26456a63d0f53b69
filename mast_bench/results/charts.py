"""Bar chart of a paper-layout table as inline SVG: one group of bars per column, one bar per model.

Each bar is a measured row's value with its ± (std over seeds or 95 % CI) as an error bar; a
published number under a measured row is drawn as a black tick over that bar, and a published-only
row as a hatched grey bar. Conflicting and missing cells get no bar. One axes per table keeps a page
of many tables quick to render. The SVG is byte-for-byte reproducible: no date in its metadata, fixed
element ids (``svg.hashsalt``), text kept as text.
"""

from __future__ import annotations

import io

from mast_bench.results.paper import PaperTable, TableRow
from mast_bench.results.render import header_label

_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_GREYS = ("#e4e4e4", "#c8c8c8", "#f2f2f2", "#b0b0b0")
_HATCHES = ("//", "\\\\", "xx", "..", "--", "++")
_GROUP_WIDTH = 0.8


def bar_chart_svg(table: PaperTable) -> str | None:
    """The chart as an ``<svg>`` element (no XML prolog), or None when no cell column has a value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [r for r in table.rows if r.kind == "measured" or (r.kind == "reference" and not r.parent)]
    columns = [c for c in table.layout.cell_columns if any(r.cells[c.key].has_value for r in bars)]
    if not columns or not bars:
        return None
    width = _GROUP_WIDTH / len(bars)
    fig_width = min(13.0, 1.6 + len(columns) * max(0.55, 0.22 * len(bars)))
    with matplotlib.rc_context({"svg.hashsalt": "mast-bench", "svg.fonttype": "none", "font.size": 8}):
        fig, ax = plt.subplots(figsize=(fig_width, 2.8))
        for j, row in enumerate(bars):
            _bars(ax, table, row, j, columns, width, len(bars))
        ax.set_xticks(
            range(len(columns)),
            [header_label(c) for c in columns],
            rotation=30 if len(columns) > 4 else 0,
            ha="right" if len(columns) > 4 else "center",
        )
        ax.set_ylabel(", ".join(sorted({c.metric for c in columns})) + " (%)")
        ax.grid(axis="y", linewidth=0.3)
        ax.set_axisbelow(True)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bars(ax, table: PaperTable, row: TableRow, j: int, columns, width: float, n: int) -> None:  # type: ignore[no-untyped-def]
    xs, ys, errs = [], [], []
    for i, column in enumerate(columns):
        cell = row.cells[column.key]
        if cell.has_value:
            xs.append(i - _GROUP_WIDTH / 2 + (j + 0.5) * width)
            ys.append(cell.value)
            # NaN, not 0: a zero-length bar still draws its caps, which read as the published-number tick.
            errs.append(cell.error if cell.error_kind else float("nan"))
    if row.kind == "reference":
        # Published-only rows: greys and hatches told apart in the legend, never a measured row's colour.
        k = sum(1 for r in table.rows[: table.rows.index(row)] if r.kind == "reference" and not r.parent)
        ax.bar(xs, ys, width, color=_GREYS[k % len(_GREYS)], edgecolor="#444444", hatch=_HATCHES[k % len(_HATCHES)],
               linewidth=0.5, label=f"{row.label} (published)")  # fmt: skip
        return
    ax.bar(
        xs,
        ys,
        width,
        yerr=errs if any(e == e for e in errs) else None,  # e == e: not NaN
        capsize=2,
        color=_COLOURS[j % len(_COLOURS)],
        ecolor="#222222",
        label=row.label,
    )
    published = next((r for r in table.rows if r.kind == "reference" and r.parent == row.label), None)
    if published is None:
        return
    for i, column in enumerate(columns):
        cell = published.cells[column.key]
        if cell.has_value:
            x = i - _GROUP_WIDTH / 2 + (j + 0.5) * width
            ax.plot([x - width / 2, x + width / 2], [cell.value] * 2, color="black", linewidth=1.5)
