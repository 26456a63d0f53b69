"""One self-contained HTML page: every table (sortable), bar charts, MAST figures, provenance.

Nothing on the page is fetched: styles and the sorting script are inline, charts are inline SVG and
the MAST analysis figures are PNGs embedded as base64 ``data:`` URIs, so the file can be mailed or
opened offline. Hovering a cell shows the records behind it; each table's "Provenance" details row
lists them all. Clicking a column header sorts the table by that column (a measured row moves together
with its published and delta rows). The page holds no date and no absolute path, so the same inputs
give the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mast_bench.results.charts import bar_chart_svg
from mast_bench.results.paper import PaperTable, TableRow
from mast_bench.results.render import cell_text, footnote, header_label

#: Figures of ``mast-bench analyze`` shown when an analysis folder is given, with their captions.
ANALYSIS_FIGURES: tuple[tuple[str, str], ...] = (
    ("mask_overlap.png", "Mask overlap: IoU of thresholded masks and soft overlap between augmentation subspaces"),
    ("mask_heatmap.png", "Masks over embedding dimensions, sorted by dominant subspace"),
    ("uncertainty_vs_strength.png", "Predicted uncertainty against augmentation strength, per family"),
)
ANALYSIS_SUMMARY = "analysis.json"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1300px;
 padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2.2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
p.meta,p.foot{color:#555;font-size:.9em}nav p{margin:.3em 0;line-height:1.6}nav a{margin-right:1em}
table.results{border-collapse:collapse;margin:.8em 0;font-size:.9em}
table.results th,table.results td{padding:.25em .6em;border-bottom:1px solid #eee;white-space:nowrap}
table.results td{text-align:right;font-variant-numeric:tabular-nums}
table.results th.row{text-align:left;font-weight:normal}
table.results thead th{border-bottom:2px solid #444;background:#fafafa}
table.results thead th.sortable{cursor:pointer}
table.results thead th.sortable:after{content:" \\2195";color:#aaa}
table.results thead th.group{text-align:center;border-bottom:1px solid #888}
tr.reference th,tr.reference td{color:#555;font-style:italic}
tr.delta th,tr.delta td{color:#777;font-size:.85em}
td.flag{background:#fde2e1}td.conflict{background:#fff3cd}td.missing{color:#bbb}
tbody.group{border-top:1px solid #ccc}b{font-weight:700}
details{margin:.5em 0 1em}details table td,details table th{text-align:left;white-space:normal;font-size:.85em}
figure{margin:1em 0}figure img{max-width:100%}figcaption{color:#555;font-size:.85em}
"""

# Sorting: each measured row and the rows under it form one <tbody>; tbodies are sorted by the measured
# row's data-sort value of the clicked column (missing values last), toggling direction on each click.
_SCRIPT = """
document.querySelectorAll("table.results").forEach(function(t){
 t.querySelectorAll("th.sortable").forEach(function(th){
  th.addEventListener("click",function(){
   var col=+th.dataset.col,asc=th.dataset.dir!=="asc";th.dataset.dir=asc?"asc":"desc";
   var groups=Array.prototype.slice.call(t.tBodies);
   groups.sort(function(a,b){
    var x=a.rows[0].cells[col].dataset.sort,y=b.rows[0].cells[col].dataset.sort;
    if(col===0){return asc?x.localeCompare(y):y.localeCompare(x);}
    x=x===""?NaN:+x;y=y===""?NaN:+y;
    if(isNaN(x))return isNaN(y)?0:1;if(isNaN(y))return -1;return asc?x-y:y-x;});
   groups.forEach(function(g){t.appendChild(g);});});});});
"""


@dataclass(frozen=True)
class Section:
    """One table of the page: an anchor id and its table."""

    anchor: str
    table: PaperTable
    paper: bool = True


def render_page(sections: Sequence[Section], source: str, analyses: Sequence[Path] = ()) -> str:
    """The whole page as text.

    Args:
        sections: the tables, in page order.
        source: one line saying what the page was rendered from (shown under the title).
        analyses: ``mast-bench analyze`` output folders whose figures to embed.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mast-bench results</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>mast-bench results</h1>",
        f'<p class="meta">{html.escape(source)}</p>',
        "<nav>",
    ]
    for paper, heading in ((True, "Tables"), (False, "By task, protocol and metric")):
        links = [f'<a href="#{s.anchor}">{html.escape(s.table.layout.title)}</a>' for s in sections if s.paper == paper]
        if paper and analyses:
            links.append('<a href="#mast-analysis">MAST analysis</a>')
        if links:
            parts.append(f"<p><b>{heading}:</b> " + " ".join(links) + "</p>")
    parts.append("</nav>")
    for section in sections:
        parts.append(_section(section))
    if analyses:
        parts.append(_analysis_section(analyses))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _section(section: Section) -> str:
    table, layout = section.table, section.table.layout
    out = [f'<section id="{html.escape(section.anchor)}">', f"<h2>{html.escape(layout.title)}</h2>"]
    meta = [t for t in (layout.description, f"Layout: {layout.source}" if layout.source else "") if t]
    if meta:
        out.append(f'<p class="meta">{html.escape(" ".join(meta))}</p>')
    out.append(_table(table))
    out.append(f'<p class="foot">{html.escape(footnote(table))}</p>')
    out.append(_provenance(table))
    # A one-column table (e.g. a single metric on ImageNet) reads better as the table itself than as a chart.
    svg = bar_chart_svg(table) if len(table.layout.cell_columns) > 1 else None
    if svg is not None:
        out.append(
            f"<figure>{svg}<figcaption>Measured values per column, ± as error bars; black tick: published "
            "number; hatched: published only.</figcaption></figure>"
        )
    out.append("</section>")
    return "\n".join(out)


def _table(table: PaperTable) -> str:
    columns = table.layout.columns
    head = []
    if any(c.group for c in columns):
        cells = ['<th rowspan="2" class="sortable row" data-col="0">model</th>']
        i = 0
        while i < len(columns):
            group = columns[i].group
            width = 1
            while group and i + width < len(columns) and columns[i + width].group == group:
                width += 1
            if group:
                cells.append(f'<th colspan="{width}" class="group">{html.escape(group)}</th>')
            else:
                cells.append(_sort_th(columns[i].label, i + 1, rowspan=2))
            i += width
        head.append("<tr>" + "".join(cells) + "</tr>")
        head.append("<tr>" + "".join(_sort_th(c.label, j + 1) for j, c in enumerate(columns) if c.group) + "</tr>")
    else:
        first = '<th class="sortable row" data-col="0">model</th>'
        head.append("<tr>" + first + "".join(_sort_th(c.label, j + 1) for j, c in enumerate(columns)) + "</tr>")
    body: list[str] = []
    best = {c.key: table.best(c) for c in columns}
    for i, row in enumerate(table.rows):
        if not row.parent:
            if body:
                body.append("</tbody>")
            body.append('<tbody class="group">')
        body.append(_row(table, i, row, best))
    body.append("</tbody>")
    return '<table class="results"><thead>' + "".join(head) + "</thead>" + "".join(body) + "</table>"


def _sort_th(label: str, col: int, rowspan: int = 1) -> str:
    span = f' rowspan="{rowspan}"' if rowspan > 1 else ""
    return f'<th class="sortable"{span} data-col="{col}">{html.escape(label)}</th>'


def _row(table: PaperTable, i: int, row: TableRow, best: dict[str, set[int]]) -> str:
    label = ("↳ " if row.parent else "") + row.label
    title = f' title="{html.escape(row.note)}"' if row.note else ""
    cells = [f'<th class="row" data-sort="{html.escape(row.label)}"{title}>{html.escape(label)}</th>']
    for column in table.layout.columns:
        cell = row.cells[column.key]
        text = html.escape(cell_text(table, row, column))
        if i in best[column.key]:
            text = f"<b>{text}</b>"
        classes = [cell.status] if cell.status != "value" else []
        if column.key in row.flags:
            classes.append("flag")
        cls = f' class="{" ".join(classes)}"' if classes else ""
        sort = repr(cell.value) if cell.has_value else ""
        tip = f' title="{html.escape(chr(10).join(cell.provenance))}"' if cell.provenance else ""
        cells.append(f'<td data-sort="{sort}"{cls}{tip}>{text}</td>')
    return f'<tr class="{row.kind}">' + "".join(cells) + "</tr>"


def _provenance(table: PaperTable) -> str:
    lines = []
    for row in table.rows:
        for column in table.layout.cell_columns:
            cell = row.cells[column.key]
            for line in cell.provenance:
                lines.append(
                    f"<tr><th>{html.escape(row.label)}</th><td>{html.escape(header_label(column))}</td>"
                    f"<td>{html.escape(line)}</td></tr>"
                )
    if not lines:
        return '<details><summary>Provenance</summary><p class="foot">No records.</p></details>'
    return (
        "<details><summary>Provenance</summary><table><tr><th>row</th><th>column</th><th>record</th></tr>"
        + "".join(lines)
        + "</table></details>"
    )


def _analysis_section(folders: Sequence[Path]) -> str:
    out = ['<section id="mast-analysis">', "<h2>MAST analysis</h2>"]
    for folder in folders:
        folder = Path(folder)
        summary = _summary(folder)
        sha = str(summary.get("checkpoint_sha256", ""))[:12]
        name = Path(str(summary.get("checkpoint", folder.name))).parent.name or folder.name
        out.append(f'<p class="meta">Checkpoint {html.escape(name)}' + (f" (sha256 {sha})" if sha else "") + "</p>")
        for filename, caption in ANALYSIS_FIGURES:
            png = folder / filename
            if not png.is_file():
                continue
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        notes = summary.get("notes") or []
        for note in notes if isinstance(notes, list) else []:
            out.append(f'<p class="foot">{html.escape(str(note))}</p>')
    out.append("</section>")
    return "\n".join(out)


def _summary(folder: Path) -> dict[str, object]:
    path = folder / ANALYSIS_SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_analysis_dir(folder: str | Path) -> Path:
    """An analysis folder to embed: must hold at least one of :data:`ANALYSIS_FIGURES`.

    Raises:
        FileNotFoundError: not a folder, or no analysis figure in it (names the files looked for).
    """
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / f).is_file() for f, _ in ANALYSIS_FIGURES):
        names = ", ".join(f for f, _ in ANALYSIS_FIGURES)
        raise FileNotFoundError(f"{str(folder)!r} is not a `mast-bench analyze` output folder (none of {names})")
    return folder
