"""``mast-bench evaluate fewshot``: N-way K-shot episodes on frozen features, one record per head and K."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mast_bench.cli import LazyChoice
from mast_bench.cli.evaluate_cmd import _cache_option, _execute, _request, _weights_options, evaluate


def _protocol_names() -> list[str]:
    from mast_bench.downstream.fewshot.protocols import FEWSHOT_PROTOCOLS

    return list(FEWSHOT_PROTOCOLS)


def _head_names() -> list[str]:
    from mast_bench.downstream.fewshot.heads import HEADS

    return list(HEADS)


def _shots(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    try:
        shots = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 1,5; got {value!r}") from None
    if not shots or min(shots) < 1:
        raise click.BadParameter(f"every K must be at least 1; got {value!r}")
    return tuple(dict.fromkeys(shots))


@evaluate.command("fewshot")
@_weights_options
@_cache_option
@click.option("--dataset", required=True, help="Dataset registry name (`mast-bench datasets list`).")
@click.option("--data-root", required=True, type=click.Path(path_type=Path), help="The dataset's folder.")
@click.option(
    "--protocol",
    type=LazyChoice(_protocol_names),
    default="ericsson",
    show_default=True,
    help="ericsson: 257² resize + 224 crop, 15 queries, 600 episodes, prototypes; augself: its linear "
    "preprocessing, 16 queries, 2000 episodes, logistic regression; synthetic-fewshot: the synthetic pool at its "
    "native size, AugSelf's episodes and class rule, 600 episodes.",
)
@click.option(
    "--head",
    "heads",
    multiple=True,
    type=LazyChoice(_head_names),
    help="Head(s) to run on the same episodes (repeat the option); default: the protocol's own.",
)
@click.option("--ways", type=click.IntRange(min=2), default=None, help="N (default: the protocol's, 5).")
@click.option(
    "--shots",
    callback=_shots,
    default=None,
    help="K values, comma-separated (default: ericsson 5,20,50; augself and synthetic-fewshot 1,5).",
)
@click.option(
    "--queries", type=click.IntRange(min=1), default=None, help="Queries per class (default: the protocol's)."
)
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="Episodes (default: the protocol's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the episode draw.")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Replay the episodes of this manifest (written under <out>/manifests/ by an earlier run).",
)
def fewshot_cmd(dataset: str, data_root: Path, protocol: str, heads: tuple[str, ...], ways: int | None,
                shots: tuple[int, ...], queries: int | None, episodes: int | None, seed: int,
                manifest: Path | None, **kw: Any) -> None:  # fmt: skip
    """Few-shot transfer: mean accuracy ± 95 % CI over seeded, replayable episodes; one record per head and K."""
    from mast_bench.downstream.fewshot import FewShotEvaluator, FewShotOptions

    options = FewShotOptions(heads=heads, ways=ways, shots=shots, queries=queries, episodes=episodes, seed=seed,
                             manifest=manifest)  # fmt: skip
    request, out = _request(kw, dataset, data_root, protocol, options)
    _execute(FewShotEvaluator(), request, out)
