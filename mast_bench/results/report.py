"""Report: a leaderboard CSV rendered as comparison tables (Markdown and CSV, LaTeX on request).

The report is a list of sections, each a title plus a table; ``report.md`` strings them together
and every table is also written on its own under ``tables/`` (``<slug>.md``, ``<slug>.csv``,
``<slug>.tex``) so a paper or another page can include it. Paper-layout sections and an HTML
page with figures render from the same list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mast_bench.fileio import atomic_open, atomic_write_text, prepare_out_dir, sha256_file
from mast_bench.results.leaderboard import read_leaderboard
from mast_bench.results.tables import ComparisonTable, comparison_tables

REPORT_INDEX = "report.md"
TABLES_DIR = "tables"


@dataclass(frozen=True)
class ReportSection:
    """One titled table of the report."""

    title: str
    table: ComparisonTable


@dataclass
class ReportOutputs:
    """Where :func:`render_report` wrote things."""

    out_dir: Path
    index: Path
    tables: list[Path] = field(default_factory=list)


def build_sections(
    leaderboard_csv: str | Path, models: Sequence[str] | None = None, datasets: Sequence[str] | None = None
) -> list[ReportSection]:
    """One section per (task, protocol, metric, split) comparison table of the leaderboard."""
    df = read_leaderboard(leaderboard_csv)
    return [ReportSection(t.title, t) for t in comparison_tables(df, models=models, datasets=datasets)]


def render_markdown(sections: Sequence[ReportSection], source: str) -> str:
    """The whole report as one Markdown document; ``source`` says which leaderboard it came from."""
    parts = ["# mast-bench results", "", source, ""]
    for section in sections:
        parts += [f"## {section.title}", "", section.table.to_markdown().rstrip(), "", section.table.footnote(), ""]
    return "\n".join(parts)


def render_report(
    leaderboard_csv: str | Path,
    out_dir: str | Path,
    *,
    latex: bool = False,
    overwrite: bool = False,
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
) -> ReportOutputs:
    """Render every comparison table of a leaderboard into ``out_dir``.

    Args:
        leaderboard_csv: a CSV written by :func:`mast_bench.results.leaderboard.build_leaderboard`.
        out_dir: output folder; it may already hold an earlier report (``report.md``, ``tables/``),
            anything else needs ``overwrite``.
        latex: also write ``tables/<slug>.tex`` (booktabs).
        overwrite: allow other files in ``out_dir`` (none is deleted).
        models / datasets: row / column order (others follow alphabetically).

    Returns:
        The index file and every table file written.

    Raises:
        FileNotFoundError: no leaderboard CSV at that path.
        RecordError: the CSV is malformed, or a table would hold two results for one cell.
        OutputDirError: ``out_dir`` holds other files (without ``overwrite``) or is not writable.
    """
    leaderboard_csv = Path(leaderboard_csv)
    sections = build_sections(leaderboard_csv, models=models, datasets=datasets)  # validate before writing
    out = prepare_out_dir(out_dir, overwrite=overwrite, allowed=(REPORT_INDEX, TABLES_DIR))
    tables_dir = out / TABLES_DIR
    outputs = ReportOutputs(out_dir=out, index=out / REPORT_INDEX)
    for section in sections:
        outputs.tables += write_table_files(section.table, tables_dir, section.table.slug, latex=latex)
    formats = "Markdown, CSV and LaTeX" if latex else "Markdown and CSV"
    source = (
        f"Rendered from `{leaderboard_csv.name}` (sha256 {sha256_file(leaderboard_csv)[:12]}); "
        f"each table is also under `{TABLES_DIR}/` as {formats}."
    )
    atomic_write_text(outputs.index, render_markdown(sections, source))
    return outputs


def write_table_files(table: ComparisonTable, out_dir: str | Path, stem: str, *, latex: bool = False) -> list[Path]:
    """Write ``<stem>.md`` (table + footnote), ``<stem>.csv`` and optionally ``<stem>.tex`` atomically."""
    out_dir = Path(out_dir)
    md = atomic_write_text(out_dir / f"{stem}.md", f"{table.to_markdown()}\n{table.footnote()}\n")
    csv = out_dir / f"{stem}.csv"
    with atomic_open(csv, "w", encoding="utf-8", newline="") as fh:
        table.to_frame().to_csv(fh, index=False)
    written = [md, csv]
    if latex:
        written.append(atomic_write_text(out_dir / f"{stem}.tex", table.to_latex()))
    return written
