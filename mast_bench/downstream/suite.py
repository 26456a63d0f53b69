"""Evaluation suites: a YAML matrix of (evaluator, protocol, dataset) cells run for one checkpoint.

A suite file (``downstream/<suite>.yaml``) loads strictly into :class:`SuiteConfig`::

    name: transfer-ericsson
    description: ...
    groups:
      - evaluator: linear          # linear | knn | fewshot
        protocol: ericsson
        folder: null               # datasets live in <data-root>/<dataset>; "." = <data-root> itself
        datasets: [aircraft, caltech101, ...]

Each (group, dataset) runs through :func:`mast_bench.downstream.contract.execute`, exactly as a single
``evaluate`` command does: cells whose records exist are skipped (unless ``redo``) and said so. The
runner keeps going when a dataset fails and returns the outcomes of every cell (a failed dataset is one
``failed`` outcome named ``<evaluator>/<protocol>/<dataset>``) so the caller can summarise them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mast_bench.config import ConfigError, load
from mast_bench.downstream.contract import CellOutcome, EvalRequest, execute, summarise  # noqa: F401  (API)
from mast_bench.downstream.fewshot.evaluator import FewShotOptions
from mast_bench.downstream.fewshot.protocols import FEWSHOT_PROTOCOLS
from mast_bench.downstream.knn import KnnOptions
from mast_bench.downstream.linear import LinearOptions
from mast_bench.downstream.protocols import PROTOCOLS
from mast_bench.downstream.shard import WHOLE, Shard
from mast_bench.downstream.testset_ci import check_bootstrap
from mast_bench.registry import DATASETS, EVALUATORS

#: Evaluators a suite may name, with the protocol task each expects and its (default) options.
SUITE_EVALUATORS: dict[str, tuple[str, Callable[[], Any]]] = {
    "linear": ("linear", LinearOptions),
    "knn": ("knn", KnnOptions),
    "fewshot": ("fewshot", FewShotOptions),
}


@dataclass(frozen=True)
class SuiteGroup:
    """Datasets evaluated with one evaluator and protocol."""

    evaluator: str = "linear"
    protocol: str = "ericsson"
    #: Sub-folder of --data-root holding the datasets (None: one folder per dataset, named after it).
    folder: str | None = None
    datasets: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteConfig:
    name: str = "unnamed"
    description: str = ""
    groups: tuple[SuiteGroup, ...] = ()


def _closest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (closest: {close[0]!r})" if close else ""


def load_suite(path: str | Path) -> SuiteConfig:
    """Load and check a suite file.

    Raises:
        ConfigError: unknown key, unknown evaluator/protocol/dataset (with the closest valid name), a
            protocol of the wrong kind for its evaluator, or a group without datasets.
    """
    suite = load(SuiteConfig, path)
    datasets = DATASETS.names()
    for i, group in enumerate(suite.groups):
        where = f"{path}: groups[{i}]"
        if group.evaluator not in SUITE_EVALUATORS:
            valid = sorted(SUITE_EVALUATORS)
            raise ConfigError(
                f"{where}.evaluator: unknown evaluator {group.evaluator!r}{_closest(group.evaluator, valid)}; "
                f"valid: {', '.join(valid)}"
            )
        task = SUITE_EVALUATORS[group.evaluator][0]
        valid = sorted(n for n, p in PROTOCOLS.items() if p.task == task)
        if task == "fewshot":  # the few-shot protocols are declared beside the few-shot evaluator
            valid = sorted(FEWSHOT_PROTOCOLS)
        if group.protocol not in valid:
            raise ConfigError(
                f"{where}.protocol: {group.protocol!r} is not a {task} protocol{_closest(group.protocol, valid)}; "
                f"valid: {', '.join(valid)}"
            )
        if not group.datasets:
            raise ConfigError(f"{where}.datasets: list at least one dataset")
        for name in group.datasets:
            if name not in datasets:
                raise ConfigError(f"{where}.datasets: unknown dataset {name!r}{_closest(name, datasets)}")
    if not suite.groups:
        raise ConfigError(f"{path}: the suite has no groups")
    return suite


def cells(suite: SuiteConfig) -> list[tuple[SuiteGroup, str]]:
    """Every (group, dataset) cell in file order."""
    return [(g, d) for g in suite.groups for d in g.datasets]


def run_suite(
    suite: SuiteConfig,
    weights: Any,
    data_root: str | Path,
    out_dir: str | Path,
    model_name: str,
    *,
    verify: bool = True,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    redo: bool = False,
    progress: bool = True,
    workers: int = 0,
    echo: Callable[[str], None] | None = None,
    shard: Shard = WHOLE,
    feature_precision: str = "fp32",
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
) -> list[CellOutcome]:
    """Run every cell of ``suite`` for one set of weights; failures are recorded, not raised.

    Args:
        suite: a loaded :class:`SuiteConfig`.
        weights: :class:`~mast_bench.downstream.weights.EvalWeights` (or a ``LoadedBackbone``).
        data_root: parent folder of the datasets (see :class:`SuiteGroup`.folder).
        out_dir: records folder; model_name: the records' model name.
        verify, device, cache_dir, redo, progress, workers: as for every evaluation request.
        echo: where each cell's line goes (``None``: silent).
        shard: run only this shard's cells (:mod:`mast_bench.downstream.shard`: cell k of the file order belongs
            to shard k mod N), so N jobs cover the suite exactly once.
        feature_precision: ``fp32`` (the protocols') or ``bf16`` feature extraction, recorded in each record.
        bootstrap, bootstrap_seed: a test-set bootstrap 95 % interval for every linear and kNN cell (``ci95``; 0:
            none), as :class:`~mast_bench.downstream.linear.LinearOptions`; few-shot cells keep their episode interval.

    Returns:
        The outcomes of every cell, in file order.
    """
    check_bootstrap(bootstrap, bootstrap_seed)  # before any cell runs
    resampling = {"bootstrap": bootstrap, "bootstrap_seed": bootstrap_seed}
    outcomes: list[CellOutcome] = []
    for group, dataset in shard.select(cells(suite)):
        root = Path(data_root) / (group.folder if group.folder is not None else dataset)
        evaluator = EVALUATORS.get(group.evaluator)
        make_options = SUITE_EVALUATORS[group.evaluator][1]
        takes_bootstrap = "bootstrap" in {f.name for f in dataclasses.fields(make_options)}  # linear and kNN
        options = make_options(**resampling) if takes_bootstrap else make_options()
        request = EvalRequest(
            weights, model_name, dataset, root, group.protocol, options,
            device=device, verify=verify, redo=redo, progress=progress,
            cache_dir=Path(cache_dir) if cache_dir is not None else None, workers=workers,
            feature_precision=feature_precision,
        )
        try:
            outcomes += execute(evaluator, request, out_dir, echo=echo)
        except Exception as exc:  # one bad cell must not stop the matrix; the summary reports it
            error = f"{type(exc).__name__}: {exc}"
            outcomes.append(CellOutcome(f"{group.evaluator}/{group.protocol}/{dataset}", "failed", error=error))
            if echo is not None:
                echo(f"{group.evaluator}/{group.protocol}/{dataset}: FAILED ({error})")
    return outcomes
