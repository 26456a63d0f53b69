"""The evaluator contract: plan the cells, skip the done ones, run the rest, write one record per cell.

Every evaluator (linear, kNN, ImageNet linear, semi-supervised, few-shot, detection) implements
:class:`Evaluator`:

* ``plan(request) -> list[Cell]`` names every record the request will produce, without reading data
  or running the model. It refuses a request the protocol cannot honour (``ProtocolError``), so a bad
  request fails before any work and before anything is skipped. Cells are made with
  :meth:`EvalRequest.cell`, the only place a record skeleton is built.
* ``run(request, cells) -> list[ResultRecord | Omitted]`` computes exactly the cells it is given (a
  subset of its plan: those without a record, or all with ``redo``) and returns one entry per cell: a
  record made with :meth:`Cell.fill`, or :class:`Omitted` with the reason when the data turn out not to
  allow the cell (e.g. a kNN k larger than the bank). It never writes records and never decides what to
  skip; it prints through ``request.say``.

:func:`execute` is the one function that drives an evaluator, for a single ``evaluate`` command as
for every cell of a suite: it checks the records folder, plans, skips each cell whose record exists
(printing ``<cell>: skipped (record exists; --redo to recompute) -> <path>``), runs the rest, writes
their records atomically, prints one line per record (``<cell>: omitted (<reason>)`` for an omitted
one), and returns one :class:`CellOutcome` per cell; :func:`summarise` turns outcomes into the closing
summary. An omitted cell leaves a note next to the records (``<record name>.omitted.json``, never read
as a record), so that a re-run reports it without touching the data, exactly like an existing record,
until ``--redo``.

Options are typed: each evaluator declares a frozen dataclass (``options_type``) and receives it as
``request.options``; settings every evaluator shares (device, verification, cache, ``redo``) are
fields of :class:`EvalRequest`. The evaluated weights are one :class:`EvalWeights`.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

from mast_bench.downstream.weights import EvalWeights, as_weights
from mast_bench.fileio import atomic_write_json, prepare_out_dir
from mast_bench.results.records import ResultRecord, read_record, record_path, write_record

__all__ = [
    "OMITTED_SUFFIX",
    "SKIP_MESSAGE",
    "Cell",
    "CellOutcome",
    "EvalRequest",
    "EvalWeights",
    "Evaluator",
    "NoOptions",
    "Omitted",
    "as_weights",
    "describe",
    "execute",
    "records_of",
    "summarise",
]

#: Printed after a cell's name when its record already exists and is kept.
SKIP_MESSAGE = "skipped (record exists; --redo to recompute)"

Options = TypeVar("Options")
Echo = Callable[[str], None]


@dataclass(frozen=True)
class Cell:
    """One record an evaluator will produce: its identifying fields and provenance, value not yet known.

    Attributes:
        skeleton: the record with ``value`` 0.0; :data:`mast_bench.results.records.KEY_FIELDS` fix its file.
    """

    skeleton: ResultRecord

    @property
    def name(self) -> str:
        """How the cell is named on the terminal: ``<dataset> <protocol> <metric>``."""
        s = self.skeleton
        return f"{s.dataset} {s.protocol} {s.metric}"

    def path(self, out_dir: str | Path) -> Path:
        """The record file of this cell under ``out_dir``."""
        return record_path(out_dir, self.skeleton)

    def fill(
        self,
        value: float,
        *,
        selected: dict[str, Any] | None = None,
        selected_on: str = "none",
        seeds: Sequence[int] = (),
        ci95: float | None = None,
        std: float | None = None,
        wall_time_s: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> ResultRecord:
        """The finished record: the skeleton plus the measurement (``extra`` is merged over the skeleton's)."""
        return dataclasses.replace(
            self.skeleton,
            value=value,
            selected=dict(selected or {}),
            selected_on=selected_on,
            seeds=tuple(seeds),
            ci95=ci95,
            std=std,
            wall_time_s=wall_time_s,
            extra={**self.skeleton.extra, **(extra or {})},
        )


@dataclass(frozen=True)
class EvalRequest(Generic[Options]):
    """One evaluation asked for: which weights, on what data, under which protocol, with which options.

    Attributes:
        weights: the evaluated weights (a ``LoadedBackbone`` is converted on construction).
        model_name: the records' ``model``.
        dataset: dataset registry name.
        data_root: the dataset's folder (``None`` where the evaluator needs no files).
        protocol: protocol name (its meaning is the evaluator's).
        options: the evaluator's typed options (its ``options_type``).
        device: ``cpu`` / ``cuda`` / ``cuda:N``.
        verify: check the copy against its official counts and checksums before reading it.
        redo: recompute cells whose records exist, and their cached features.
        progress: show progress bars.
        cache_dir: feature cache folder (``None``: the default).
        workers: data-loading processes.
        echo: where progress lines go (cache hits, warnings); :func:`execute` sets it.
        out_dir: the records folder; :func:`execute` sets it.
    """

    weights: EvalWeights
    model_name: str
    dataset: str
    data_root: Path | None
    protocol: str
    options: Options
    device: str = "cpu"
    verify: bool = True
    redo: bool = False
    progress: bool = True
    cache_dir: Path | None = None
    workers: int = 0
    #: Frozen-feature extraction precision: ``fp32`` (the protocols') or ``bf16`` (opt-in, GPU).
    feature_precision: str = "fp32"
    echo: Echo | None = field(default=None, compare=False, repr=False)
    out_dir: Path | None = None

    def records_dir(self) -> Path:
        """The records folder (set by :func:`execute`); files an evaluation keeps with its records go there."""
        if self.out_dir is None:
            raise RuntimeError("the request has no records folder: run it through execute()")
        return self.out_dir

    def say(self, line: str) -> None:
        """Print one line to the user (set by :func:`execute`; silent without one)."""
        if self.echo is not None:
            self.echo(line)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", as_weights(self.weights))
        if self.data_root is not None:
            object.__setattr__(self, "data_root", Path(self.data_root))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def cell(
        self,
        *,
        task: str,
        protocol: str,
        protocol_version: str,
        metric: str,
        split: str = "test",
        dataset: str | None = None,
    ) -> Cell:
        """A cell of this request (the one place a record skeleton is built)."""
        w = self.weights
        return Cell(
            ResultRecord(
                model=self.model_name,
                checkpoint_sha256=w.sha256,
                task=task,
                dataset=dataset or self.dataset,
                protocol=protocol,
                protocol_version=protocol_version,
                metric=metric,
                value=0.0,
                split=split,
                device=str(self.device),
                method=w.method,
                backbone=w.spec.name,
                extra={"source_format": w.source_format,
                       # provenance of features computed in other than the protocols' fp32
                       **({"feature_precision": self.feature_precision} if self.feature_precision != "fp32" else {})},
            )
        )


@dataclass(frozen=True)
class Omitted:
    """A planned cell that ``run`` could not compute on this copy, and why (one line)."""

    cell: Cell
    reason: str


class Evaluator(abc.ABC, Generic[Options]):
    """Base of every evaluator registered in :data:`mast_bench.registry.EVALUATORS` (see the module docstring).

    Subclasses set ``name`` (the registry name) and ``options_type`` (a frozen dataclass of their options).
    """

    name: ClassVar[str] = ""
    options_type: ClassVar[type[Any]]

    @abc.abstractmethod
    def plan(self, request: EvalRequest[Options]) -> list[Cell]:
        """Every cell the request produces; raises ``ProtocolError`` for a request it cannot honour."""

    @abc.abstractmethod
    def run(self, request: EvalRequest[Options], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        """Compute ``cells`` (a non-empty subset of :meth:`plan`): per cell a record made by ``Cell.fill``, or
        :class:`Omitted`."""


@dataclass(frozen=True)
class CellOutcome:
    """What happened to one cell.

    Attributes:
        name: the cell's name (``Cell.name``), or the failed request's when planning failed.
        status: ``done`` (record written), ``skipped`` (record existed, kept), ``omitted`` (the data do not
            allow the cell; nothing written) or ``failed``.
        record: the record on disk (``None`` when failed).
        path: its record file (for ``omitted``: the note saying so).
        error: one line, for ``failed`` and ``omitted``.
    """

    name: str
    status: Literal["done", "skipped", "omitted", "failed"]
    record: ResultRecord | None = None
    path: Path | None = None
    error: str = ""


OMITTED_SUFFIX = ".omitted.json"
_OMITTED_FORMAT = "mast-bench-omitted-cell"


def omission_path(out_dir: str | Path, cell: Cell) -> Path:
    """Where :func:`execute` notes that ``cell`` was omitted (next to where its record would be)."""
    return Path(out_dir) / f"{cell.skeleton.key()}{OMITTED_SUFFIX}"


def _read_omission(path: Path) -> str | None:
    """The reason noted in an omission file, or None if there is none (an unreadable note is ignored)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("format") == _OMITTED_FORMAT and isinstance(data.get("reason"), str)
    return data["reason"] if ok else None


def describe(record: ResultRecord) -> str:
    """One terminal line for a record: name, value ± its interval or seed std, and what was selected on which split."""
    chosen = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.selected.items())
    how = f" ({chosen} selected on {record.selected_on})" if chosen else ""
    spread = f" ± {record.ci95:.2f} (95 % CI)" if record.ci95 is not None else ""
    spread += f" ± {record.std:.2f} (std over {len(record.seeds)} seeds)" if record.std is not None else ""
    return f"{record.dataset} {record.protocol} {record.metric} = {record.value:.2f}{spread}{how}"


def execute(
    evaluator: Evaluator[Any], request: EvalRequest[Any], out_dir: str | Path, *, echo: Echo | None = None
) -> list[CellOutcome]:
    """Plan, skip the cells whose record exists (unless ``request.redo``), run the rest, write their records.

    Args:
        evaluator: the evaluator.
        request: what to evaluate.
        out_dir: the records folder (created; refused if it is a file or not writable, before any work).
        echo: where to print one line per cell (``None``: silent).

    Returns:
        One :class:`CellOutcome` per planned cell, in plan order (``done``, ``skipped`` or ``omitted``).

    Raises:
        Whatever ``plan`` or ``run`` raises (``ProtocolError``, ``DatasetError``, ...): nothing is written
        for the cells that were to be computed; existing records are untouched.
        RuntimeError: ``run`` returned records that do not match the cells it was given.
    """
    out = prepare_out_dir(out_dir, overwrite=True)  # records accumulate; only check that the folder is usable
    request = dataclasses.replace(request, echo=echo, out_dir=out)
    cells = evaluator.plan(request)
    outcomes: dict[int, CellOutcome] = {}
    todo: list[tuple[int, Cell]] = []
    for i, cell in enumerate(cells):
        path, note = cell.path(out), omission_path(out, cell)
        reason = None if request.redo or not note.is_file() else _read_omission(note)
        if path.is_file() and not request.redo:
            outcomes[i] = CellOutcome(cell.name, "skipped", read_record(path), path)
            request.say(f"{cell.name}: {SKIP_MESSAGE} -> {path}")
        elif reason is not None:
            outcomes[i] = CellOutcome(cell.name, "omitted", path=note, error=reason)
            request.say(f"{cell.name}: omitted ({reason}; noted earlier; --redo to recompute) -> {note}")
        else:
            todo.append((i, cell))
    if todo:
        start = time.perf_counter()
        results = evaluator.run(request, [c for _, c in todo])
        wall = round(time.perf_counter() - start, 3)
        by_key = {(r.cell.skeleton if isinstance(r, Omitted) else r).key(): r for r in results}
        wanted = {c.skeleton.key() for _, c in todo}
        if len(results) != len(todo) or set(by_key) != wanted:
            raise RuntimeError(
                f"evaluator {evaluator.name!r} returned results {sorted(by_key)} for cells {sorted(wanted)}"
            )
        for i, cell in todo:
            record = by_key[cell.skeleton.key()]
            note = omission_path(out, cell)
            if isinstance(record, Omitted):
                payload = {"format": _OMITTED_FORMAT, "reason": record.reason, "cell": cell.skeleton.to_dict()}
                atomic_write_json(note, payload)
                outcomes[i] = CellOutcome(cell.name, "omitted", path=note, error=record.reason)
                request.say(f"{cell.name}: omitted ({record.reason})")
                continue
            if not record.wall_time_s:
                record = dataclasses.replace(record, wall_time_s=wall)
            path = write_record(out, record)
            note.unlink(missing_ok=True)  # the data now allow the cell
            outcomes[i] = CellOutcome(cell.name, "done", read_record(path), path)  # as stamped on disk
            request.say(f"{describe(outcomes[i].record)} -> {path}")  # type: ignore[arg-type]
    return [outcomes[i] for i in range(len(cells))]


def summarise(outcomes: Sequence[CellOutcome]) -> str:
    """Counts of done / skipped / (omitted) / failed cells, then one line per failure."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "omitted", "failed")}
    omitted = f"{counts['omitted']} omitted, " if counts["omitted"] else ""
    cells = f"{len(outcomes)} cell{'' if len(outcomes) == 1 else 's'}"
    done, skipped, failed = counts["done"], counts["skipped"], counts["failed"]
    lines = [f"{cells}: {done} done, {skipped} skipped (records exist), {omitted}{failed} failed"]
    lines += [f"  FAILED {o.name}: {o.error}" for o in outcomes if o.status == "failed"]
    return "\n".join(lines)


def records_of(outcomes: Sequence[CellOutcome]) -> list[ResultRecord]:
    """The records of the cells that have one (done or skipped), in order."""
    return [o.record for o in outcomes if o.record is not None]


@dataclass(frozen=True)
class NoOptions:
    """Options of an evaluator that has none."""
