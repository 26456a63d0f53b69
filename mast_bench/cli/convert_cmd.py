"""``mast-bench convert``: one checkpoint → torchvision or Detectron2 backbone weights."""

from __future__ import annotations

import click

from mast_bench.cli import main


@main.command("convert")
@click.argument("ckpt", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--to",
    "to",
    type=click.Choice(["torchvision", "detectron2"]),
    required=True,
    help="torchvision: OUT.pth + OUT.json; detectron2: OUT.pkl + OUT.yaml (config fragment) + OUT.json.",
)
@click.option(
    "--from",
    "from_format",
    default="auto",
    metavar="FORMAT",
    help="Source format: auto, mast-bench, vicreg, moco, barlowtwins, solo-learn, vissl, dino-resnet50, "
    "torchvision, lightning or lightning:PREFIX. auto says what it chose and refuses when ambiguous.",
)
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=str),
    help="Weights file to write (.pth/.pt for torchvision, .pkl for detectron2); companions go next to it.",
)
@click.option(
    "--arch",
    default=None,
    type=click.Choice(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet_tiny"]),
    help="Expected architecture; the conversion fails if the weights describe another.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files (otherwise they are refused).")
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Write Detectron2 weights that a stock Detectron2 ResNet would load only in part (e.g. a small CIFAR/STL "
    "stem, which would stay random); refused without it.",
)
def convert(
    ckpt: str, to: str, from_format: str, out: str, arch: str | None, overwrite: bool, allow_partial: bool
) -> None:
    """Convert the backbone of CKPT strictly: every key is mapped or dropped on purpose, and listed."""
    from mast_bench.convert import convert_checkpoint

    result = convert_checkpoint(
        ckpt, to, out, from_format=from_format, arch=arch, overwrite=overwrite, allow_partial=allow_partial
    )
    for line in result.report.summary_lines():
        click.echo(line)
    for path in result.files:
        click.echo(f"wrote {path}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
