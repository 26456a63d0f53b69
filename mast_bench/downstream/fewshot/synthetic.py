"""Few-shot rows on the embedded synthetic pool: one call evaluates every model the demo has.

The pool is ``synthetic-fewshot`` (24 fine-grained shape × colour classes); the protocol
``synthetic-fewshot`` (native size, 5-way, 16 queries, AugSelf's class rule, 600 episodes). Every model
runs on the same manifests (same pool, same seed), so the rows compare models on identical episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mast_bench.downstream.contract import EvalRequest, execute, records_of
from mast_bench.downstream.fewshot.evaluator import FewShotEvaluator, FewShotOptions
from mast_bench.results.records import ResultRecord

DATASET = PROTOCOL = "synthetic-fewshot"
#: What the demo reports: the prototype head and the logistic-regression head, at K = 1 and 5.
DEMO_HEADS = ("protonet", "logreg")
DEMO_SHOTS = (1, 5)


def synthetic_fewshot_records(
    weights: Mapping[str, Any],
    suite: str | Path,
    records_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    heads: Sequence[str] = DEMO_HEADS,
    shots: Sequence[int] = DEMO_SHOTS,
    episodes: int | None = None,
    seed: int = 0,
    redo: bool = True,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[ResultRecord]:
    """Few-shot records of every model on the synthetic pool: one per (model, head, K).

    Args:
        weights: model name → :class:`~mast_bench.downstream.weights.EvalWeights` (or ``LoadedBackbone``).
        suite: the synthetic suite folder (``mast-bench datasets make-synthetic``).
        records_dir: where records (and the shared manifests, under ``manifests/``) go.
        cache_dir: feature cache; heads, shots, episodes, seed: the evaluation (episodes: the protocol's 600).
        redo: recompute existing records (the demo rewrites its records every run).
        progress: progress bars; echo: one line per record (``<model> fewshot <head> K=<k>: mean ± ci``).

    Returns:
        The records, model by model in ``weights`` order, then head, then K.
    """
    options = FewShotOptions(heads=tuple(heads), shots=tuple(shots), episodes=episodes, seed=seed)
    out: list[ResultRecord] = []
    for name, w in weights.items():
        request = EvalRequest(w, name, DATASET, Path(suite), PROTOCOL, options, redo=redo, progress=progress,
                              cache_dir=Path(cache_dir) if cache_dir is not None else None)  # fmt: skip
        for r in records_of(execute(FewShotEvaluator(), request, records_dir)):
            out.append(r)
            if echo is not None:
                echo(f"    {name} fewshot {r.extra['head']} {r.extra['ways']}-way {r.extra['shots']}-shot: "
                     f"{r.value:.1f} ± {r.ci95:.1f}")  # fmt: skip
    return out


def fewshot_table(records: Sequence[ResultRecord]) -> str:
    """A Markdown table of few-shot records: one row per model, one column per (head, K), ``mean ± ci95``.

    Models and columns keep the order of ``records``; a missing cell (an omitted K) shows ``–``.
    """
    if not records:
        return f"No few-shot cell could be computed on the `{DATASET}` pool.\n"
    models = list(dict.fromkeys(r.model for r in records))
    columns = list(dict.fromkeys((r.extra["head"], r.extra["shots"]) for r in records))
    cell = {(r.model, r.extra["head"], r.extra["shots"]): f"{r.value:.1f} ± {r.ci95:.1f}" for r in records}
    ways = sorted({r.extra["ways"] for r in records})
    head = "| model | " + " | ".join(f"{h} {k}-shot" for h, k in columns) + " |"
    lines = [head, "|---|" + "---:|" * len(columns)]
    lines += ["| " + " | ".join([m, *(cell.get((m, h, k), "–") for h, k in columns)]) + " |" for m in models]
    episodes = sorted({r.extra["episodes"] for r in records})
    note = (f"Top-1 (%) on the `{DATASET}` pool, {'/'.join(map(str, ways))}-way, mean ± 1.96 · std / √episodes over "
            f"{'/'.join(map(str, episodes))} seeded episodes shared by every model and head.")  # fmt: skip
    return "\n".join(lines) + "\n\n" + note + "\n"
