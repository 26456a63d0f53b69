"""``mast-bench datasets list|check|make-synthetic``."""

from __future__ import annotations

from pathlib import Path

import click

from mast_bench.cli import main


@main.group("datasets")
def datasets() -> None:
    """What datasets are supported, and whether a folder holds a valid copy."""


@datasets.command("list")
def list_cmd() -> None:
    """List every registered dataset with its classes, splits and metric."""
    from mast_bench.registry import DATASETS

    for name, info in DATASETS.items():
        click.echo(
            f"{name:24s} classes={info.num_classes:<4d} splits={','.join(info.splits):18s} "
            f"metric={info.metric:15s} {info.description}"
        )


@datasets.command("check")
@click.argument("name")
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="Folder holding the official files.")
@click.option(
    "--skip-duplicates",
    is_flag=True,
    help="Skip hashing every image to find identical images (the slow part on ImageNet-sized copies).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Only check that every listed file is present and not empty (no decoding, checksums or duplicate search).",
)
@click.option(
    "--workers", default=4, show_default=True, type=click.IntRange(1), help="Threads for image decoding and hashing."
)
def check_cmd(name: str, data_root: Path, skip_duplicates: bool, quick: bool, workers: int) -> None:
    """Verify a local copy of dataset NAME: files, split counts, every image decodes, duplicates, classes, checksums.

    Unreadable images (corrupt, empty, truncated, or not images at all) are listed by name.
    """
    from mast_bench.data.verify.check import check_dataset

    report = check_dataset(name, data_root, duplicates=not skip_duplicates, workers=workers, quick=quick)
    click.echo(report.render())
    if not report.ok:
        raise SystemExit(1)


@datasets.command("make-synthetic")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write the suite into.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed ⇒ byte-identical files.")
@click.option(
    "--size", default="demo", show_default=True, type=click.Choice(["demo", "quick", "test"]), help="Suite size."
)
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty folder.")
def make_synthetic_cmd(out: Path, seed: int, size: str, overwrite: bool) -> None:
    """Generate the synthetic invariance suite (pretraining pool, tasks, few-shot pool, scenes)."""
    from mast_bench.data.synthetic.suite import make_synthetic

    manifest = make_synthetic(out, seed=seed, size=size, overwrite=overwrite)
    click.echo(f"wrote synthetic suite ({size}, seed {seed}) to {out} ({len(manifest['files'])} files)")
