"""``reproduce``: plan every cell a table layout needs for some checkpoints, run the missing ones, render.

For each named checkpoint and each cell column of the layout the plan says one of:

* ``exists`` — a record of that model, checkpoint (sha256) and cell is already in the records folder:
  it is reused, never recomputed (``--redo`` of ``evaluate`` recomputes on purpose);
* ``run`` — the column's evaluator will compute it; the plan shows the equivalent ``mast-bench evaluate``
  command;
* ``blocked`` — it cannot run here, with the reason: no evaluator of that name in this build, no data
  folder, or the evaluator's own plan refused the request (wrong layout, Detectron2 missing, ...).

Cells are grouped into one evaluation request per (model, evaluator, dataset, protocol, options), as an
``evaluate`` command would be; every request goes through :func:`mast_bench.downstream.contract.execute`,
which writes each record atomically and skips those that exist. A request that fails is reported and
the others still run. The table is rendered from all records in the folder afterwards; a cell nobody
could compute shows as missing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mast_bench.config import ConfigError, from_dict
from mast_bench.downstream.shard import WHOLE, Shard
from mast_bench.errors import USER_ERRORS
from mast_bench.fileio import sha256_file
from mast_bench.results.layouts import Column, Layout
from mast_bench.results.records import ResultRecord, iter_records

Echo = Callable[[str], None]
Status = Literal["exists", "run", "blocked"]


@dataclass(frozen=True)
class Weights:
    """A checkpoint to reproduce a table for: the records' model name, the file, its format and sha256."""

    name: str
    path: Path
    sha256: str
    from_format: str = "auto"
    arch: str | None = None


@dataclass
class Job:
    """One evaluation request: the cells of one (model, evaluator, dataset, protocol, options)."""

    weights: Weights
    column: Column  # the first column of the job (evaluator, dataset, request protocol, options, folder)
    data_root: Path
    columns: list[Column] = field(default_factory=list)
    status: Status = "run"
    reason: str = ""

    @property
    def evaluator(self) -> str:
        return self.column.evaluator

    def command(self, records: Path, *, device: str = "auto", verify: bool = True) -> str:
        """The ``mast-bench evaluate`` command that computes the same cells."""
        return format_command(self, records, device=device, verify=verify)


@dataclass(frozen=True)
class PlannedCell:
    """One (model, column) of the table and what ``reproduce`` does about it."""

    model: str
    column: Column
    status: Status
    detail: str  # the record file (exists), the command (run) or the reason (blocked)


@dataclass
class Plan:
    """Every cell of a layout for the given checkpoints, and the requests that compute the missing ones."""

    layout: Layout
    weights: list[Weights]
    records: Path
    cells: list[PlannedCell]
    jobs: list[Job]

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.cells) for s in ("exists", "run", "blocked")}

    def lines(self, *, device: str = "auto", verify: bool = True) -> list[str]:
        """The plan as text: one line per cell, then the commands of the requests to run (with ``device``
        and ``verify`` as the run would use them)."""
        out = []
        for cell in self.cells:
            what = {"exists": "reuse", "run": "run", "blocked": "cannot run"}[cell.status]
            detail = f": {cell.detail}" if cell.status != "run" else ""
            out.append(f"  {cell.model} | {cell.column.key}: {what}{detail}")
        runnable = [j for j in self.jobs if j.status == "run"]
        if runnable:
            out.append("commands:")
            out += [f"  {job.command(self.records, device=device, verify=verify)}" for job in runnable]
        c = self.counts()
        out.append(f"{len(self.cells)} cells: {c['exists']} exist, {c['run']} to run, {c['blocked']} cannot run")
        return out


def parse_weights(specs: Sequence[str], from_format: str = "auto", arch: str | None = None) -> list[Weights]:
    """``NAME=PATH`` strings → :class:`Weights` (hashing each file).

    Raises:
        ValueError: not ``NAME=PATH``, or a name given twice.
        FileNotFoundError: a weights file that does not exist.
    """
    out: list[Weights] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--weights must be NAME=PATH, got {spec!r}")
        name = name.strip()
        if any(w.name == name for w in out):
            raise ValueError(f"--weights: the name {name!r} is given twice")
        file = Path(path.strip())
        if not file.is_file():
            raise FileNotFoundError(f"weights file {str(file)!r} (for {name!r}) does not exist")
        out.append(Weights(name, file, sha256_file(file), from_format, arch))
    return out


def plan_reproduction(
    layout: Layout,
    weights: Sequence[Weights],
    data_root: str | Path,
    records: str | Path,
    *,
    check: Callable[[Job], str] | None = None,
) -> Plan:
    """Plan every cell of ``layout`` for ``weights`` without running anything.

    Args:
        layout: the table.
        weights: the checkpoints (one table row each).
        data_root: parent folder of the datasets (a column's ``data_folder`` below it, else ``<dataset>/``).
        records: the records folder (read to find cells that exist; need not exist yet).
        check: asks the evaluator whether a request can run (returns ``""`` or the reason); default
            :func:`evaluator_check` (loads the weights and calls the evaluator's own ``plan``).
    """
    from mast_bench.registry import EVALUATORS

    records = Path(records)
    existing = _existing(records)
    check = check if check is not None else evaluator_check
    found: dict[tuple[str, str], str] = {}
    jobs: dict[tuple[Any, ...], Job] = {}
    for w in weights:
        for column in layout.cell_columns:
            record = existing.get((w.name, w.sha256, *column.selector()))
            if record is not None:
                found[(w.name, column.key)] = record
                continue
            folder = data_folder(data_root, column)
            key = (w.name, column.evaluator, column.dataset, column.request_protocol, _frozen(column.options), folder)
            jobs.setdefault(key, Job(w, column, folder)).columns.append(column)
    # Several checkpoints share each dataset folder: open each (folder, dataset, split) once per plan.
    data_problems: dict[tuple[Path, str, str], str] = {}
    for job in jobs.values():
        if not job.evaluator or job.evaluator not in EVALUATORS:
            job.status, job.reason = "blocked", _no_evaluator(job.column, EVALUATORS.names())
            continue
        copy = (job.data_root, job.column.dataset, job.column.split)
        if copy not in data_problems:
            data_problems[copy] = data_problem(job)
        if problem := data_problems[copy]:
            job.status, job.reason = "blocked", problem
        else:
            reason = check(job)
            if reason:
                job.status, job.reason = "blocked", reason
    by_cell = {(job.weights.name, c.key): job for job in jobs.values() for c in job.columns}
    cells: list[PlannedCell] = []
    for w in weights:
        for column in layout.cell_columns:
            if (w.name, column.key) in found:
                cells.append(PlannedCell(w.name, column, "exists", found[(w.name, column.key)]))
            else:
                job = by_cell[(w.name, column.key)]
                cells.append(PlannedCell(w.name, column, job.status, job.reason))
    return Plan(layout, list(weights), records, cells, list(jobs.values()))


def job_key(job: Job) -> str:
    """A job's name, the same in every plan whatever is already done (what ``--shard`` assigns by)."""
    c = job.column
    parts = (job.weights.name, job.weights.sha256, c.evaluator, c.dataset, c.request_protocol, repr(_frozen(c.options)),
             str(job.data_root))
    return "|".join(str(p) for p in parts)


def run_plan(
    plan: Plan, *, device: str = "cpu", verify: bool = True, echo: Echo | None = None, shard: Shard = WHOLE
) -> list[str]:
    """Run every runnable request of ``plan`` through the evaluator contract; returns one line per failure.

    ``shard`` runs only the requests it owns (by :func:`job_key`: a plan lists only missing cells, so positions
    would shift between jobs started at different times; names do not).
    """
    from mast_bench.downstream.contract import execute, summarise

    failures = []
    for job in plan.jobs:
        if job.status != "run" or not shard.owns_key(job_key(job)):
            continue
        if echo is not None:
            echo(f"running: {job.command(plan.records, device=device, verify=verify)}")
        try:
            evaluator, request = build_request(job, device=device, verify=verify)
            outcomes = execute(evaluator, request, plan.records, echo=echo)
        except USER_ERRORS as exc:
            failures.append(f"{job.weights.name} {job.evaluator} {job.column.dataset}: {exc}")
            continue
        if echo is not None:
            echo(summarise(outcomes))
    return failures


def data_folder(data_root: str | Path, column: Column) -> Path:
    """Where a column's dataset lives under ``--data-root`` (``data_folder: "."`` is the root itself)."""
    root = Path(data_root)
    return root / (column.data_folder if column.data_folder is not None else column.dataset)


def data_problem(job: Job) -> str:
    """``""`` if the job's dataset folder holds a readable copy of the split its cells measure, else why.

    The split is opened the way the evaluator will open it (without checksums), so a missing or
    misplaced copy is reported in the plan instead of failing halfway through the run.
    """
    from mast_bench.registry import DATASETS

    column = job.column
    if not job.data_root.is_dir():
        return f"no data: {job.data_root} is not a folder ({column.dataset})"
    if column.dataset not in DATASETS:
        return ""  # read by its evaluator's own plan (e.g. detection checks its layout there)
    info = DATASETS.get(column.dataset)
    split = column.split.split("+")[0]
    if split not in info.splits:
        return ""
    try:
        info.build(job.data_root, split, None, False)
    except USER_ERRORS as exc:
        return f"no data: {exc}"
    return ""


def evaluator_check(job: Job) -> str:
    """``""`` if the evaluator's own ``plan`` accepts the request and plans every column of the job; else why."""
    try:
        evaluator, request = build_request(job, device="cpu", verify=False)
        planned = [c.skeleton for c in evaluator.plan(request)]
    except USER_ERRORS as exc:
        return str(exc)
    selectors = {(s.task, s.dataset, s.protocol, s.metric, s.split) for s in planned}
    missing = [c.key for c in job.columns if c.selector() not in selectors]
    if missing and job.columns:
        return f"evaluator {job.evaluator!r} does not produce {', '.join(missing)} (it plans {sorted(selectors)})"
    return ""


def build_request(job: Job, *, device: str, verify: bool) -> tuple[Any, Any]:
    """The evaluator and its ``EvalRequest`` for a job (loads the weights).

    Raises:
        ConfigError: the column's ``options`` do not fit the evaluator's options.
        FileNotFoundError, CheckpointError, UnknownNameError: the weights cannot be loaded.
    """
    from mast_bench.downstream.contract import EvalRequest
    from mast_bench.registry import EVALUATORS

    evaluator = EVALUATORS.get(job.evaluator)
    options = build_options(job.evaluator, evaluator.options_type, job.column)
    weights = _load(job.weights)
    request = EvalRequest(
        weights=weights,
        model_name=job.weights.name,
        dataset=job.column.dataset,
        data_root=job.data_root,
        protocol=job.column.request_protocol,
        options=options,
        device=device,
        verify=verify,
        progress=False,
    )
    return evaluator, request


_LOADED: dict[tuple[Path, str], Any] = {}


def _load(w: Weights) -> Any:
    from mast_bench.downstream.weights import EvalWeights

    key = (w.path, w.sha256)
    if key not in _LOADED:
        _LOADED.clear()  # one model in memory at a time
        _LOADED[key] = EvalWeights.load(w.path, from_format=w.from_format, arch=w.arch)
    return _LOADED[key]


def build_options(evaluator: str, options_type: type[Any], column: Column) -> Any:
    """The evaluator's typed options for a column.

    The ImageNet evaluators take their published recipe (semi-supervised: chosen by ``percent``);
    detection runs the protocol's own number of seeds (MoCo reports VOC as a mean of 5); the others are
    built from the column's ``options`` mapping, whose keys must be fields of ``options_type``.

    Raises:
        ConfigError: an unknown option or a value of the wrong type (names the key).
    """
    given = dict(column.options)
    if evaluator == "semisup":
        from mast_bench.downstream.imagenet import SEMISUP_RECIPES

        percent = given.get("percent")
        if percent not in SEMISUP_RECIPES:
            raise ConfigError(f"column {column.key!r}: semisup needs options.percent in {sorted(SEMISUP_RECIPES)}")
        return options_type(recipe=SEMISUP_RECIPES[percent], percent=percent)
    if evaluator == "detection" and "seeds" not in given:
        from mast_bench.downstream.detection.tasks import get_task

        given["seeds"] = list(range(get_task(column.request_protocol).seeds))
    try:
        return from_dict(options_type, given, where="options")
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"column {column.key!r}: {exc}") from None


def format_command(job: Job, records: Path, *, device: str = "auto", verify: bool = True) -> str:
    """The ``mast-bench evaluate ...`` command line computing a job's cells (for ``--dry-run`` and logs).

    ``device`` (unless ``auto``, the evaluators' default) and ``verify=False`` are passed on, so the command
    reads the data and runs where ``reproduce`` itself would.
    """
    col, w = job.column, job.weights
    args = ["mast-bench", "evaluate", job.evaluator, "--weights", str(w.path), "--model-name", w.name]
    if w.from_format != "auto":
        args += ["--from", w.from_format]
    if job.evaluator == "detection":
        args += ["--task", col.request_protocol, "--data-root", str(job.data_root)]
    elif job.evaluator in ("imagenet-linear", "semisup"):
        args += ["--dataset", col.dataset, "--data-root", str(job.data_root)]
        if job.evaluator == "semisup":
            args += ["--percent", str(col.options.get("percent"))]
    else:
        args += ["--dataset", col.dataset, "--data-root", str(job.data_root), "--protocol", col.request_protocol]
    for key, value in sorted(col.options.items()):
        if key == "percent" and job.evaluator == "semisup":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        args += [f"--{key.replace('_', '-')}", ",".join(str(v) for v in values)]
    if device != "auto":
        args += ["--device", device]
    if not verify:
        args += ["--no-verify"]
    args += ["--out", str(records)]
    return shlex.join(args)


def _existing(records: Path) -> dict[tuple[str, ...], str]:
    """``(model, sha256, task, dataset, protocol, metric, split) → record file`` of the records folder."""
    if not records.is_dir():
        return {}
    found: dict[tuple[str, ...], str] = {}
    for path, rec in iter_records(records):
        found.setdefault(_ident(rec), str(path))
    return found


def _ident(rec: ResultRecord) -> tuple[str, ...]:
    return (rec.model, rec.checkpoint_sha256, rec.task, rec.dataset, rec.protocol, rec.metric, rec.split)


def _frozen(options: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def _no_evaluator(column: Column, names: Sequence[str]) -> str:
    if not column.evaluator:
        return "the layout names no evaluator for this column"
    return f"no evaluator {column.evaluator!r} in this build (evaluators: {', '.join(names)})"


@dataclass
class Reproduction:
    """What :func:`reproduce` did: the plan, the failed requests, and the rendered files (None on a dry run)."""

    plan: Plan
    failures: list[str]
    outputs: Any = None


def reproduce(
    layout: Layout,
    weights: Sequence[Weights],
    data_root: str | Path,
    records: str | Path,
    out: str | Path,
    *,
    dry_run: bool = False,
    references: str | Path | None = None,
    device: str = "cpu",
    verify: bool = True,
    overwrite: bool = False,
    echo: Echo | None = None,
    shard: Shard = WHOLE,
) -> Reproduction:
    """Plan the table's cells for ``weights``, run the missing ones (unless ``dry_run``), render the table.

    Args:
        layout: the table (see :func:`mast_bench.results.layouts.load_layout`).
        weights: the checkpoints, one row each (:func:`parse_weights`).
        data_root: parent folder of the datasets.
        records: records folder: existing records are reused, new ones are written there.
        out: folder for ``report.md``, ``report.html`` and ``tables/<layout>.{md,csv,tex}``.
        dry_run: only plan (and print the plan); nothing is run or written.
        references: folder of published-number CSVs (None: none).
        shard: run only this shard's requests (``--shard I/N``) and render nothing: once every shard is done,
            an unsharded run finds every cell and renders the table.

    Raises:
        ConfigError: a bad reference file. OutputDirError: ``out`` holds other files (without ``overwrite``).
    """
    from mast_bench.fileio import prepare_out_dir
    from mast_bench.results.references import read_reference_dir
    from mast_bench.results.report import REPORT_HTML, REPORT_INDEX, TABLES_DIR

    refs = read_reference_dir(references)  # a bad reference file fails before any work
    if not dry_run and shard.count == 1:
        prepare_out_dir(out, overwrite=overwrite, allowed=(REPORT_INDEX, REPORT_HTML, TABLES_DIR))
    plan = plan_reproduction(layout, weights, data_root, records)
    for line in [f"{layout.name}: {layout.title}", *plan.lines(device=device, verify=verify)]:
        if echo is not None:
            echo(line)
    if dry_run:
        return Reproduction(plan, [])
    failures = run_plan(plan, device=device, verify=verify, echo=echo, shard=shard)
    if shard.count > 1:
        return Reproduction(plan, failures)
    outputs = render_reproduction(plan, refs, out, overwrite=overwrite)
    return Reproduction(plan, failures, outputs)


def render_reproduction(plan: Plan, references: Sequence[Any], out: str | Path, *, overwrite: bool = False) -> Any:
    """Render the plan's table from every record in its records folder (cells without one show as missing)."""
    import warnings

    import pandas as pd

    from mast_bench.results.leaderboard import (
        LEADERBOARD_COLUMNS,
        ConflictingRecordsWarning,
        DuplicateRecordWarning,
        build_leaderboard,
    )
    from mast_bench.results.paper import build_table
    from mast_bench.results.report import write_report

    if plan.records.is_dir() and _existing(plan.records):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateRecordWarning)  # duplicates and conflicts show in the table
            warnings.simplefilter("ignore", ConflictingRecordsWarning)
            df = build_leaderboard(plan.records, None)
    else:
        df = pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    table = build_table(plan.layout, df, references, models=[w.name for w in plan.weights])
    names = ", ".join(f"{w.name} (sha256 {w.sha256[:12]})" for w in plan.weights)
    source = f"Table {plan.layout.name} for {names}, from the records in {plan.records.name}/."
    return write_report([table], out, source, overwrite=overwrite)
