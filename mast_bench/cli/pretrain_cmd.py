"""``mast-bench pretrain RECIPE.yaml [--set key=value ...] [--data-root DIR] [--out DIR] [--resume] [--overwrite]``.

Multi-GPU / multi-node: ``torchrun --nproc_per_node=N -m mast_bench pretrain RECIPE.yaml ...``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from mast_bench.cli import main


@main.command("pretrain")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value, e.g. --set run.epochs=5 (type-checked like the YAML).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Dataset folder (overrides data.root of the recipe).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: runs/<recipe name>].")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt at its exact step.")
@click.option("--overwrite", is_flag=True, help="Allow an output folder that already holds files.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (the JSON-lines log is still written).")
@click.option("--no-verify", is_flag=True,
              help="Read the data copy as it is, without comparing it with the official counts and checksums "
                   "(for a partial copy, such as a test subset).")
def pretrain_cmd(recipe: Path, overrides: tuple[str, ...], data_root: Path | None, out: Path | None, resume: bool,
                 overwrite: bool, no_progress: bool, no_verify: bool) -> None:
    """Pretrain a self-supervised model from RECIPE (YAML); writes checkpoint.pt, final.pt, log.jsonl."""
    from mast_bench.config import load_recipe
    from mast_bench.errors import TrainingInterrupted
    from mast_bench.fileio import check_out_dir
    from mast_bench.pretrain.resume import own_files
    from mast_bench.pretrain.run import pretrain

    cfg = load_recipe(recipe, overrides)
    out = out if out is not None else Path("runs") / cfg.name
    check_out_dir(out, overwrite=overwrite, allowed=own_files(out) if resume else ())  # before the data is read
    try:
        final = pretrain(cfg, out, data_root=data_root, resume=resume, overwrite=overwrite, progress=not no_progress,
                         verify=not no_verify)
    except TrainingInterrupted as exc:
        again = ["mast-bench", "pretrain", str(recipe), *(f"--set={o}" for o in overrides), "--out", str(out)]
        if data_root is not None:
            again += ["--data-root", str(data_root)]
        if no_verify:
            again += ["--no-verify"]
        click.echo(f"\nStopped: {exc}", err=True)
        if exc.resumable:
            click.echo(f"Resume with: {shlex.join([*again, '--resume'])}", err=True)
        else:  # the folder already holds this run's recipe and log, so a fresh start needs --overwrite
            click.echo(f"Start again with: {shlex.join([*again, '--overwrite'])}", err=True)
        sys.exit(130)  # the shell's code for a run ended by SIGINT
    click.echo(f"final weights: {final}")
    click.echo(f"checkpoint:    {out / 'checkpoint.pt'}")
    click.echo(f"log:           {out / 'log.jsonl'}")
