"""Evaluation suites: a YAML matrix of (evaluator, protocol, dataset) cells run for one checkpoint.

A suite file (``downstream/<suite>.yaml``) loads strictly into :class:`SuiteConfig`::

    name: transfer-ericsson
    description: ...
    groups:
      - evaluator: linear          # linear | knn
        protocol: ericsson
        folder: null               # datasets live in <data-root>/<dataset>; "." = <data-root> itself
        datasets: [aircraft, caltech101, ...]

The runner skips a cell whose records already exist (unless ``redo``), keeps going when a cell
fails, and returns one :class:`CellOutcome` per cell so the caller can summarise the failures.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mast_bench.config import ConfigError, load
from mast_bench.downstream.protocols import PROTOCOLS
from mast_bench.registry import DATASETS, EVALUATORS
from mast_bench.results.records import RECORD_SUFFIX, ResultRecord, record_path

#: Evaluators a suite may name, with the protocol task each expects.
SUITE_EVALUATORS = {"linear": "linear", "knn": "knn"}


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


@dataclass
class CellOutcome:
    """What happened to one cell: ``done`` (records written), ``skipped`` (records existed) or ``failed``."""

    evaluator: str
    protocol: str
    dataset: str
    status: str
    records: list[ResultRecord] = field(default_factory=list)
    error: str = ""


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
        task = SUITE_EVALUATORS[group.evaluator]
        valid = sorted(n for n, p in PROTOCOLS.items() if p.task == task)
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
    backbone: Any,
    data_root: str | Path,
    out_dir: str | Path,
    model_name: str,
    *,
    verify: bool = True,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    redo: bool = False,
    progress: bool = True,
) -> list[CellOutcome]:
    """Run every cell of ``suite`` for one backbone; failures are recorded, not raised.

    Args:
        suite: a loaded :class:`SuiteConfig`.
        backbone: a ``LoadedBackbone``.
        data_root: parent folder of the datasets (see :class:`SuiteGroup`.folder).
        out_dir: records folder; model_name: the records' model name.
        verify, device, cache_dir: passed to each evaluator.
        redo: recompute cells whose records exist.
        progress: progress bars inside each cell.

    Returns:
        One :class:`CellOutcome` per cell, in file order.
    """
    outcomes = []
    out = Path(out_dir)
    for group, dataset in cells(suite):
        root = Path(data_root) / (group.folder if group.folder is not None else dataset)
        before = {p.name for p in out.glob(f"*{RECORD_SUFFIX}")} if out.is_dir() else set()
        try:
            records = EVALUATORS.get(group.evaluator)(
                backbone, dataset, root, group.protocol, out, model_name, verify=verify, device=device,
                cache_dir=cache_dir, redo=redo, progress=progress,
            )
        except Exception as exc:  # one bad cell must not stop the matrix; the summary reports it
            error = f"{type(exc).__name__}: {exc}"
            outcomes.append(CellOutcome(group.evaluator, group.protocol, dataset, "failed", error=error))
            continue
        existed = not redo and all(record_path(out, r).name in before for r in records)
        status = "skipped" if existed else "done"
        outcomes.append(CellOutcome(group.evaluator, group.protocol, dataset, status, records))
    return outcomes


def summarise(outcomes: list[CellOutcome]) -> str:
    """A short text summary: counts, then one line per failed cell."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    lines = [
        f"{len(outcomes)} cells: {counts['done']} done, {counts['skipped']} skipped (records exist), "
        f"{counts['failed']} failed"
    ]
    lines += [f"  FAILED {o.evaluator}/{o.protocol}/{o.dataset}: {o.error}" for o in outcomes if o.status == "failed"]
    return "\n".join(lines)
