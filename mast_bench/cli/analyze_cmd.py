"""``mast-bench analyze CKPT --out DIR`` and ``mast-bench ablation --out DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from mast_bench.cli import main


@main.command("analyze")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the figures and CSVs.")
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    default=None,
    help="Pretraining data folder [default: the data.root recorded in the checkpoint].",
)
@click.option("--pairs", default=512, type=click.IntRange(2), help="Freshly augmented pairs for the uncertainty plot.")
@click.option("--seed", default=0, type=int, help="Seed of the images and augmentations drawn.")
@click.option("--overwrite", is_flag=True, help="Allow an output folder that already holds files.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def analyze_cmd(
    checkpoint: Path, out: Path, data_root: Path | None, pairs: int, seed: int, overwrite: bool, no_progress: bool
) -> None:
    """MAST analyses of CHECKPOINT: mask heat-map, mask overlap (IoU, soft), uncertainty vs augmentation strength."""
    from mast_bench.analysis import analyze
    from mast_bench.fileio import check_out_dir

    check_out_dir(out, overwrite=overwrite)  # before the checkpoint and the data are read
    result = analyze(
        checkpoint, out, data_root=data_root, overwrite=overwrite, pairs=pairs, seed=seed, progress=not no_progress
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    for path in result.files:
        click.echo(f"wrote {path}")


@main.command("ablation")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the runs, records and the table (ablation_synthetic.md/.csv).",
)
@click.option(
    "--suite",
    type=click.Path(path_type=Path),
    default=None,
    help="An existing synthetic suite [default: generate one of --suite-size under OUT/suite].",
)
@click.option(
    "--suite-size", default="quick", type=click.Choice(["test", "quick", "demo"]), help="Size of the generated suite."
)
@click.option("--seeds", default="0,1,2", help="Comma-separated pretraining seeds.")
@click.option(
    "--recipe",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The MAST recipe every variant is derived from [default: pretrain/mast_tiny_quick.yaml].",
)
@click.option(
    "--jobs",
    default=1,
    type=click.IntRange(1),
    help="Pretrain this many runs at once as separate processes (several tiny runs share one GPU well).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Recipe override applied to every variant (e.g. --set run.epochs=4).",
)
@click.option(
    "--table-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where ablation_synthetic.md/.csv/_runs.csv go [default: OUT].",
)
@click.option("--variants", default=None, help="Comma-separated subset of the variants [default: all].")
@click.option(
    "--threads",
    default=0,
    type=click.IntRange(0),
    help="torch intra-op threads (0 = leave as is); 1 avoids thrashing on a busy 2-core machine.",
)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def ablation_cmd(
    out: Path,
    suite: Path | None,
    suite_size: str,
    seeds: str,
    recipe: Path | None,
    jobs: int,
    overrides: tuple[str, ...],
    table_dir: Path | None,
    variants: str | None,
    threads: int,
    no_progress: bool,
) -> None:
    """Ablate MAST on the synthetic suite: VICReg, masks, + uncertainty, + awareness; linear probe per task."""
    import torch

    from mast_bench.analysis.ablation import DEFAULT_RECIPE, VARIANTS, run_ablation

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {seeds!r}", param_hint="--seeds") from None
    chosen = [v.strip() for v in variants.split(",")] if variants else list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise click.BadParameter(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}", param_hint="--variants")
    if threads:
        torch.set_num_threads(threads)
    result = run_ablation(
        out,
        suite=suite,
        suite_size=suite_size,
        seeds=seed_list,
        overrides=overrides,
        variants=chosen,
        table_dir=table_dir,
        progress=not no_progress,
        base_recipe=recipe or DEFAULT_RECIPE,
        jobs=jobs,
        threads=threads,
    )
    click.echo(result.markdown)
    click.echo(f"wrote {result.table_md} and {result.table_csv}")
