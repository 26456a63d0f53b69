"""``mast-bench leaderboard`` (records → CSV) and ``mast-bench report`` (CSV → tables)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from mast_bench.cli import main

#: Published numbers shipped with the repository (used when present in the working folder).
DEFAULT_REFERENCES = Path("results/reference")


@main.command("leaderboard")
@click.option(
    "--records",
    "records_dir",
    default=Path("results/runs"),
    type=click.Path(path_type=Path),
    help="Folder searched recursively for *.record.json result records.",
)
@click.option(
    "--out", default=Path("results/leaderboard.csv"), type=click.Path(path_type=Path), help="CSV to (re)write."
)
def leaderboard_cmd(records_dir: Path, out: Path) -> None:
    """Aggregate result records into one leaderboard CSV: one row per record; repeated copies of a number are
    dropped, records of one cell that disagree are all kept and flagged in the conflict column."""
    from mast_bench.results.leaderboard import ConflictingRecordsWarning, DuplicateRecordWarning, build_leaderboard

    with warnings.catch_warnings():
        # Duplicates and conflicts are reported below from the returned table, once and readably.
        warnings.simplefilter("ignore", DuplicateRecordWarning)
        warnings.simplefilter("ignore", ConflictingRecordsWarning)
        df = build_leaderboard(records_dir, out)
    for dup in df.attrs.get("duplicates", []):
        click.echo(f"note: duplicate records of one cell: kept {dup['kept']}, ignored {', '.join(dup['ignored'])}")
    for con in df.attrs.get("conflicts", []):
        values = ", ".join(f"{v:g}" for v in con["values"])
        click.echo(f"conflict: records of one cell disagree ({values}); all kept: {', '.join(con['records'])}")
    click.echo(f"wrote {out} ({len(df)} rows, {df['model'].nunique()} models, {df['dataset'].nunique()} datasets)")


@main.command("report")
@click.option(
    "--leaderboard",
    "leaderboard_csv",
    default=Path("results/leaderboard.csv"),
    type=click.Path(path_type=Path),
    help="Leaderboard CSV written by `mast-bench leaderboard`.",
)
@click.option("--out", default=Path("results/report"), type=click.Path(path_type=Path), help="Output folder.")
@click.option(
    "--layout",
    "layouts",
    multiple=True,
    help="Paper-layout table to render (a name from `mast-bench reproduce --list`, or a layout .yaml file); "
    "repeatable. Default: every shipped layout that the leaderboard has a number for.",
)
@click.option(
    "--references",
    default=None,
    type=click.Path(path_type=Path),
    help="Folder of published-number CSVs to compare against [default: results/reference if it exists].",
)
@click.option("--no-references", is_flag=True, help="Show no published numbers.")
@click.option(
    "--analysis",
    "analyses",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A `mast-bench analyze` output folder whose MAST figures the HTML page shows; repeatable.",
)
@click.option("--overwrite", is_flag=True, help="Allow an output folder that holds other files (none is deleted).")
@click.option("--latex", is_flag=True, hidden=True, help="Accepted for compatibility: LaTeX is always written.")
def report_cmd(
    leaderboard_csv: Path,
    out: Path,
    layouts: tuple[str, ...],
    references: Path | None,
    no_references: bool,
    analyses: tuple[Path, ...],
    overwrite: bool,
    latex: bool,
) -> None:
    """Render the leaderboard as tables: Markdown, CSV, LaTeX (booktabs) and one self-contained HTML page.

    One model × dataset table per (task, protocol, metric, split), plus paper-layout tables with published
    numbers and measured − published differences.
    """
    from mast_bench.results.report import render_report

    if no_references:
        references = None
    elif references is None and DEFAULT_REFERENCES.is_dir():
        references = DEFAULT_REFERENCES
    outputs = render_report(
        leaderboard_csv,
        out,
        layouts=list(layouts) or None,
        references=references,
        analyses=analyses,
        overwrite=overwrite,
    )
    tables = outputs.out_dir / "tables"
    click.echo(f"wrote {outputs.index}, {outputs.html} and {len(outputs.tables)} table files under {tables}")
