"""``mast-bench leaderboard`` (records → CSV) and ``mast-bench report`` (CSV → tables)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from mast_bench.cli import main


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
    """Aggregate result records into one leaderboard CSV (one row per cell, newest record of each cell)."""
    from mast_bench.results.leaderboard import DuplicateRecordWarning, build_leaderboard

    with warnings.catch_warnings():
        # The duplicates are reported below from the returned table, once and readably.
        warnings.simplefilter("ignore", DuplicateRecordWarning)
        df = build_leaderboard(records_dir, out)
    for dup in df.attrs.get("duplicates", []):
        click.echo(f"note: duplicate records of one cell: kept {dup['kept']}, ignored {', '.join(dup['ignored'])}")
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
@click.option("--latex", is_flag=True, help="Also write each table as a booktabs LaTeX tabular.")
@click.option("--overwrite", is_flag=True, help="Allow an output folder that holds other files (none is deleted).")
def report_cmd(leaderboard_csv: Path, out: Path, latex: bool, overwrite: bool) -> None:
    """Render the leaderboard as model × dataset comparison tables (Markdown, CSV, optionally LaTeX)."""
    from mast_bench.results.report import render_report

    outputs = render_report(leaderboard_csv, out, latex=latex, overwrite=overwrite)
    click.echo(f"wrote {outputs.index} and {len(outputs.tables)} table files under {outputs.out_dir / 'tables'}")
