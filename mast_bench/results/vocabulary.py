"""The names a table layout or a reference file may use: tasks, datasets, protocols, metrics.

A layout is checked against this vocabulary when it is loaded, so a misspelt name fails at once with
the closest valid one instead of rendering an empty column. Everything is read from what the evaluators
declare: datasets from :data:`mast_bench.registry.DATASETS` and the detection tasks; protocols from the
linear / kNN protocols, the ImageNet recipes, the few-shot protocols and heads, and the detection tasks;
metrics from the datasets, the classification metrics and the detection metric names. Some evaluators
name a record's protocol after its settings (kNN ``knn-k20``, few-shot ``augself-logreg-5way1shot``):
those are matched by pattern, and the common settings are listed for "closest" hints.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: What ``task`` a record may have (``finetune``: ImageNet semi-supervised; ``segmentation``: mask AP).
TASKS: tuple[str, ...] = ("linear", "knn", "finetune", "fewshot", "detection", "segmentation")
#: ImageNet evaluations report top-5 besides the datasets' own metrics.
EXTRA_METRICS: tuple[str, ...] = ("top5",)


@dataclass(frozen=True)
class Vocabulary:
    """Sorted valid names of each kind; ``patterns`` accept generated protocol names."""

    tasks: tuple[str, ...]
    datasets: tuple[str, ...]
    protocols: tuple[str, ...]
    metrics: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...] = field(default=())

    def check(self, kind: str, name: str, where: str) -> str | None:
        """None when ``name`` is a valid ``kind`` (``task``/``dataset``/``protocol``/``metric``), else the message."""
        valid: tuple[str, ...] = getattr(self, f"{kind}s")
        if name in valid or (kind == "protocol" and any(p.fullmatch(name) for p in self.patterns)):
            return None
        return f"{where}: unknown {kind} {name!r}{closest(name, valid)}"


def closest(name: str, valid: Iterable[str]) -> str:
    """``"; closest valid 'x'"`` for the nearest valid name (empty when nothing is close)."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.5)
    return f"; closest valid {match[0]!r}" if match else ""


def vocabulary() -> Vocabulary:
    """The vocabulary of this build (reads the registries)."""
    from mast_bench.downstream.detection.metrics import GROUPS, KEYS
    from mast_bench.downstream.detection.tasks import DETECTION_TASKS
    from mast_bench.downstream.fewshot.heads import HEADS
    from mast_bench.downstream.fewshot.protocols import FEWSHOT_PROTOCOLS
    from mast_bench.downstream.imagenet import LINEAR_RECIPE, SEMISUP_RECIPES
    from mast_bench.downstream.protocols import PROTOCOLS
    from mast_bench.registry import DATASETS

    detection = [task for _, task in DETECTION_TASKS.items()]
    knn = [name for name, p in PROTOCOLS.items() if p.task == "knn"]
    protocols = {name for name, p in PROTOCOLS.items() if p.task != "knn"}
    protocols |= {f"{name}-k{k}" for name in knn for k in PROTOCOLS[name].ks}
    protocols |= {r.name for r in (LINEAR_RECIPE, *SEMISUP_RECIPES.values())}
    protocols |= {f"{p.name}-{p.head}-{p.ways}way{k}shot" for p in FEWSHOT_PROTOCOLS.values() for k in p.shots}
    protocols |= {t.name for t in detection} | {f"{t.name}.seed{s}" for t in detection for s in range(t.seeds)}
    alternatives = "|".join(re.escape(n) for n in sorted(FEWSHOT_PROTOCOLS))
    heads = "|".join(re.escape(h) for h in sorted(HEADS))
    patterns = (
        re.compile(f"(?:{'|'.join(re.escape(n) for n in knn)})-k[0-9]+"),
        re.compile(f"(?:{alternatives})-(?:{heads})-[0-9]+way[0-9]+shot(?:-q[0-9]+e[0-9]+s[0-9]+)?"),
        re.compile(f"(?:{'|'.join(re.escape(t.name) for t in detection)})\\.seed[0-9]+"),
    )
    metrics = {str(DATASETS.get(n).metric) for n in DATASETS.names()} - {"none"}
    metrics |= set(EXTRA_METRICS) | {f"{g}_{k}" for g in GROUPS.values() for k in KEYS}
    return Vocabulary(
        tasks=tuple(sorted(TASKS)),
        datasets=tuple(sorted(set(DATASETS.names()) | {t.dataset for t in detection})),
        protocols=tuple(sorted(protocols)),
        metrics=tuple(sorted(metrics)),
        patterns=patterns,
    )


def dataset_metric(dataset: str) -> str | None:
    """The metric a registered dataset's protocols report (``top1``, ``mean_per_class``, ...), else None."""
    from mast_bench.registry import DATASETS

    if dataset not in DATASETS:
        return None
    return str(DATASETS.get(dataset).metric)
