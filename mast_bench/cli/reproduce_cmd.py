"""``mast-bench reproduce TABLE``: plan a paper table's cells, run the missing ones, render it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mast_bench.cli import main

#: Published numbers shipped with the repository (used when present in the working folder).
DEFAULT_REFERENCES = Path("results/reference")


@main.command("reproduce")
@click.argument("table", required=False)
@click.option("--list", "list_tables", is_flag=True, help="List the shipped tables and exit.")
@click.option(
    "--weights",
    "weights",
    multiple=True,
    metavar="NAME=PATH",
    help="A checkpoint to evaluate, shown as row NAME (repeatable). Any format `mast-bench convert` reads.",
)
@click.option("--from", "from_format", default="auto", help="Format of the --weights files (auto-detected).")
@click.option("--arch", default=None, help="Backbone architecture when a file does not record it.")
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    default=None,
    help="Parent folder of the datasets (DATA/<dataset>/, or as the layout says).",
)
@click.option(
    "--records",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/runs"),
    show_default=True,
    help="Records folder: existing records are reused, new ones written here.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output folder [default: results/reproduce/TABLE]."
)
@click.option("--dry-run", is_flag=True, help="List every cell and the commands that would run; run nothing.")
@click.option(
    "--references",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of published-number CSVs [default: results/reference if it exists].",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--no-verify", is_flag=True, help="Skip the dataset copies' file-count and checksum checks.")
@click.option("--overwrite", is_flag=True, help="Allow an output folder that holds other files (none is deleted).")
@click.option("--shard", default=None, metavar="I/N",
              help="Run only shard I of N (0 <= I < N) of the missing cells and render nothing; N jobs with "
                   "I = 0 .. N-1 cover them once, then a run without --shard renders the table (docs/cluster.md).")
def reproduce_cmd(
    table: str | None,
    list_tables: bool,
    weights: tuple[str, ...],
    from_format: str,
    arch: str | None,
    data_root: Path | None,
    records: Path,
    out: Path | None,
    dry_run: bool,
    references: Path | None,
    device: str,
    no_verify: bool,
    overwrite: bool,
    shard: str | None,
) -> None:
    """Reproduce a paper table (`--list` shows them) for the given checkpoints.

    Every cell the table needs is planned: cells with a record in --records are reused, the others run
    through their evaluator, and cells that cannot run here (no data, no evaluator) are listed with the
    reason and shown as missing. Then the table is written as Markdown, CSV, LaTeX and HTML, with published
    numbers and measured - published differences where references exist.
    """
    from mast_bench.downstream.shard import parse_shard
    from mast_bench.results.layouts import list_layouts, load_layout
    from mast_bench.results.reproduce import parse_weights, reproduce

    if list_tables:
        for layout in list_layouts():
            click.echo(f"{layout.name:<20} {layout.title}")
        return
    if table is None:
        raise click.UsageError("name a TABLE (see `mast-bench reproduce --list`)")
    part = parse_shard(shard)
    layout = load_layout(table)
    if not weights:
        raise click.BadParameter("give at least one NAME=PATH", param_hint="--weights")
    if data_root is None:
        raise click.BadParameter("needed to find the datasets", param_hint="--data-root")
    try:
        checkpoints = parse_weights(weights, from_format, arch)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--weights") from None
    if references is None and DEFAULT_REFERENCES.is_dir():
        references = DEFAULT_REFERENCES
    result = reproduce(
        layout,
        checkpoints,
        data_root,
        records,
        out if out is not None else Path("results/reproduce") / layout.name,
        dry_run=dry_run,
        references=references,
        device=_device(device),
        verify=not no_verify,
        overwrite=overwrite,
        echo=click.echo,
        shard=part,
    )
    for line in result.failures:
        click.echo(f"FAILED {line}", err=True)
    if part.count > 1 and not dry_run:
        click.echo(f"shard {part} done; when every shard has finished, the same command without --shard "
                   "renders the table")
    if result.outputs is not None:
        click.echo(f"wrote {result.outputs.index}, {result.outputs.html} and {len(result.outputs.tables)} table files")
    if result.failures:
        sys.exit(1)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
