"""Report: a leaderboard CSV rendered as tables in Markdown, CSV, LaTeX and one HTML page.

Two kinds of table, rendered the same way (:mod:`mast_bench.results.paper`):

* one model × dataset comparison per (task, protocol, metric, split) of the leaderboard, with the mean
  over its datasets;
* paper-layout tables (:mod:`mast_bench.results.layouts`): by default every shipped layout that at least
  one leaderboard row falls into, or the layouts asked for.

Published numbers from a reference folder are shown under the measured rows they belong to, with the
difference. ``report.md`` strings every table together; each table is also written on its own under
``tables/`` (``<slug>.md``, ``<slug>.csv``, ``<slug>.tex``); ``report.html`` holds them all with bar
charts and, when analysis folders are given, the MAST figures. The same inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mast_bench.fileio import atomic_write_text, prepare_out_dir, sha256_file
from mast_bench.results import render
from mast_bench.results.html import Section, check_analysis_dir, render_page
from mast_bench.results.layouts import Column, Layout, load_layout, shipped_layouts
from mast_bench.results.leaderboard import read_leaderboard
from mast_bench.results.paper import PaperTable, build_table
from mast_bench.results.records import aggregate_protocol
from mast_bench.results.references import Reference, read_reference_dir
from mast_bench.results.tables import short_labels
from mast_bench.results.vocabulary import vocabulary

REPORT_INDEX = "report.md"
REPORT_HTML = "report.html"
TABLES_DIR = "tables"
_GROUP = ["task", "protocol", "metric", "split"]


@dataclass
class ReportOutputs:
    """Where :func:`render_report` wrote things."""

    out_dir: Path
    index: Path
    html: Path
    tables: list[Path] = field(default_factory=list)


def without_superseded_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without the per-seed rows (``<protocol>.seed<k>``) whose mean over seeds is also a row.

    An evaluator that writes each seed's records and their mean (detection) would otherwise give every
    table twice, the mean and each seed. A per-seed row stays where its mean is missing (a seed failed and
    the mean waits for it), and every row stays on the leaderboard.
    """
    if df.empty:
        return df
    same = ["model", "checkpoint_sha256", "task", "dataset", "metric", "split"]
    same = [c for c in same if c in df.columns]
    means = {tuple(str(r[c]) for c in [*same, "protocol"]) for _, r in df.iterrows()}

    def superseded(row: pd.Series) -> bool:
        per_seed = aggregate_protocol(str(row["protocol"]))
        return per_seed is not None and (*(str(row[c]) for c in same), per_seed[0]) in means

    return df[[not superseded(r) for _, r in df.iterrows()]]


def comparison_layouts(df: pd.DataFrame) -> list[Layout]:
    """One model × dataset layout per (task, protocol, metric, split) group of a leaderboard, sorted.

    Per-seed rows whose mean over seeds is present make no table of their own (:func:`without_superseded_seeds`).
    """
    layouts = []
    for group, rows in without_superseded_seeds(df).groupby(_GROUP, sort=True):
        task, protocol, metric, split = (str(g) for g in group)
        datasets = sorted(rows["dataset"].astype(str).unique())
        labels = short_labels(datasets)
        columns = [
            Column(ds, labels[ds], task=task, dataset=ds, protocol=protocol, metric=metric, split=split)
            for ds in datasets
        ]
        if len(datasets) > 1:
            columns.append(Column("mean", "mean", mean_of=tuple(datasets)))
        name = "__".join(_slug(p) for p in (task, protocol, metric, split))
        layouts.append(
            Layout(name, f"{task} · {protocol} · {metric} ({split})", "", "", 1, "higher", (), tuple(columns), "")
        )
    return layouts


def paper_layouts(df: pd.DataFrame, names: Sequence[str | Path] | None) -> list[Layout]:
    """The layouts asked for, or every shipped layout in which the leaderboard fills at least one cell."""
    vocab = vocabulary()
    if names:
        return [load_layout(n, vocab) for n in names]
    chosen = []
    for path in shipped_layouts().values():
        layout = load_layout(path, vocab)
        table = build_table(layout, df)
        if any(cell.status != "missing" for row in table.measured() for cell in row.cells.values()):
            chosen.append(layout)
    return chosen


def build_tables(
    df: pd.DataFrame,
    layouts: Sequence[Layout],
    references: Sequence[Reference] = (),
    models: Sequence[str] = (),
) -> list[PaperTable]:
    """Fill each layout from the leaderboard frame (see :func:`mast_bench.results.paper.build_table`)."""
    return [build_table(layout, df, references, models) for layout in layouts]


def render_markdown(tables: Sequence[PaperTable], source: str) -> str:
    """Every table in one Markdown document; ``source`` says what it was rendered from."""
    parts = ["# mast-bench results", "", source, ""]
    for table in tables:
        parts += [f"## {table.layout.title}", ""]
        if table.layout.source:
            parts += [f"Layout: {table.layout.source}.", ""]
        parts += [render.to_markdown(table).rstrip(), ""]
    return "\n".join(parts)


def write_table_files(table: PaperTable, out_dir: str | Path) -> list[Path]:
    """Write ``<name>.md`` (table + footnote), ``<name>.csv`` and ``<name>.tex`` atomically."""
    out_dir = Path(out_dir)
    stem = table.layout.name
    return [
        atomic_write_text(out_dir / f"{stem}.md", render.to_markdown(table)),
        atomic_write_text(out_dir / f"{stem}.csv", render.to_csv(table)),
        atomic_write_text(out_dir / f"{stem}.tex", render.to_latex(table)),
    ]


def write_report(
    tables: Sequence[PaperTable],
    out_dir: str | Path,
    source: str,
    *,
    analyses: Sequence[str | Path] = (),
    overwrite: bool = False,
) -> ReportOutputs:
    """Write ``report.md``, ``report.html`` and ``tables/*`` for already-built tables.

    Raises:
        FileNotFoundError: an analysis folder without figures (checked before anything is written).
        OutputDirError: ``out_dir`` holds other files (without ``overwrite``) or is not writable.
    """
    folders = [check_analysis_dir(a) for a in analyses]
    out = prepare_out_dir(out_dir, overwrite=overwrite, allowed=(REPORT_INDEX, REPORT_HTML, TABLES_DIR))
    outputs = ReportOutputs(out_dir=out, index=out / REPORT_INDEX, html=out / REPORT_HTML)
    for table in tables:
        outputs.tables += write_table_files(table, out / TABLES_DIR)
    atomic_write_text(outputs.index, render_markdown(tables, source))
    sections = [Section(t.layout.name, t, paper=not t.layout.name.count("__")) for t in tables]
    atomic_write_text(outputs.html, render_page(sections, source, folders))
    return outputs


def render_report(
    leaderboard_csv: str | Path,
    out_dir: str | Path,
    *,
    layouts: Sequence[str | Path] | None = None,
    references: str | Path | None = None,
    analyses: Sequence[str | Path] = (),
    overwrite: bool = False,
) -> ReportOutputs:
    """Render a leaderboard's comparison tables and paper-layout tables into ``out_dir``.

    Args:
        leaderboard_csv: a CSV written by :func:`mast_bench.results.leaderboard.build_leaderboard`.
        out_dir: output folder; it may already hold an earlier report (``report.md``, ``report.html``,
            ``tables/``), anything else needs ``overwrite`` (nothing is deleted).
        layouts: layout names or files (None: every shipped layout with at least one leaderboard row).
        references: folder of reference CSVs (None: no published numbers).
        analyses: ``mast-bench analyze`` output folders whose figures the HTML page embeds.

    Raises:
        FileNotFoundError: no leaderboard CSV, reference folder or analysis folder at that path.
        RecordError: the CSV is malformed or of a newer schema.
        ConfigError: a bad layout or reference file (names it and the problem).
        OutputDirError: ``out_dir`` cannot be used.
    """
    leaderboard_csv = Path(leaderboard_csv)
    for folder in analyses:  # validate everything before any work or writing
        check_analysis_dir(folder)
    df = read_leaderboard(leaderboard_csv)
    refs = read_reference_dir(references)
    # Paper layouts first: they are what a reader looks for; the per-metric comparisons follow.
    tables = build_tables(df, [*paper_layouts(df, layouts), *comparison_layouts(df)], refs)
    source = (
        f"Rendered from {leaderboard_csv.name} (sha256 {sha256_file(leaderboard_csv)[:12]}, {len(df)} rows)"
        + (f" with the published numbers in {Path(references).name}/" if references is not None else "")
        + f"; each table is also under {TABLES_DIR}/ as Markdown, CSV and LaTeX."
    )
    return write_report(tables, out_dir, source, analyses=analyses, overwrite=overwrite)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)
