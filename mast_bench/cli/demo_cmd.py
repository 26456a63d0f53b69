"""``mast-bench demo``: the whole chain on the embedded synthetic suite, on CPU, in minutes."""

from __future__ import annotations

from pathlib import Path

import click

from mast_bench.cli import main


@main.command("demo")
@click.option("--out", default=Path("demo-out"), type=click.Path(path_type=Path), help="Output folder.")
@click.option("--quick", is_flag=True, help="Smaller suite and shorter pretraining (about 2 minutes instead of 10).")
@click.option(
    "--overwrite", is_flag=True, help="Reuse a non-empty output folder (a previous demo's records are replaced)."
)
@click.option("--seed", default=0, type=int, help="Seeds the suite, both pretraining runs and the random floor.")
def demo_cmd(out: Path, quick: bool, overwrite: bool, seed: int) -> None:
    """Generate the synthetic suite, pretrain VICReg and MAST, probe every task against a random-init floor,
    and write records, a leaderboard CSV, a comparison table and MAST's mask-overlap figure."""
    from mast_bench.demo import run_demo

    result = run_demo(out, quick=quick, overwrite=overwrite, seed=seed, echo=click.echo)
    click.echo("")
    click.echo(result.table_text)
    click.echo("stage timings, wall s (cpu s): " + ", ".join(
        f"{k} {v:.1f} ({result.cpu.get(k, 0.0):.1f})" for k, v in result.timings.items()
    ))
    click.echo(f"suite        {result.suite}")
    for name, ckpt in result.checkpoints.items():
        click.echo(f"{name + ' ckpt':12s} {ckpt}")
    click.echo(f"records      {result.out / 'records'} ({len(result.records)} files)")
    click.echo(f"leaderboard  {result.leaderboard}")
    click.echo(f"table        {result.table}")
    for fig in result.figures:
        click.echo(f"figure       {fig}")
    click.echo(f"summary      {result.summary}")
