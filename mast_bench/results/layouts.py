"""Table layouts as data: which cells a paper table shows, in what order, and how they are formatted.

A layout is a YAML file (the shipped ones live in ``mast_bench/results/layouts/``; a user adds a table
by adding a file, no code)::

    title: ImageNet linear and semi-supervised (ResNet-50)
    source: MAST (Huang et al. 2023), Table 1 layout      # which paper table it mirrors
    decimals: 1                                           # number format
    better: higher                                        # which direction is best (bold)
    defaults: {task: linear, dataset: imagenet, split: val, evaluator: imagenet-linear}
    rows:                                                 # optional: fixed rows, in order
      - {label: VICReg, models: ["vicreg*"], reference: vicreg}
    columns:
      - {group: Linear, label: top-1, protocol: vicreg-linear, metric: top1}
      - {label: mean, mean_of: [Linear/top-1, ...]}       # a mean column: keys of other columns

Every column names one cell per row: ``(task, dataset, protocol, metric, split)``, each taken from the
column or else from ``defaults``; ``metric: dataset`` means the dataset's own metric. ``evaluator``,
``options`` and ``data_folder`` say how ``mast-bench reproduce`` computes a missing cell. ``spread`` is
the protocol's known run-to-run spread for that cell: a measured − reference difference larger than it
is flagged. Rows match record ``model`` names by glob pattern; several records matching one row and
column (seeds) are aggregated. Without ``rows`` the table shows every model that has one of its cells.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from mast_bench.config import ConfigError, load
from mast_bench.results.vocabulary import Vocabulary, closest, dataset_metric, vocabulary

#: Folder of the shipped layouts (package data).
LAYOUTS_DIR = Path(__file__).resolve().parent / "layouts"
LAYOUT_SUFFIX = ".yaml"
#: ``metric: dataset`` in a layout: the metric the dataset's protocols report.
DATASET_METRIC = "dataset"
_SELECTORS = ("task", "dataset", "protocol", "metric", "split")


@dataclass(frozen=True)
class CellDefaults:
    """Fields every column inherits unless it sets its own (see :class:`ColumnSpec`)."""

    task: str = ""
    dataset: str = ""
    protocol: str = ""
    metric: str = ""
    split: str = "test"
    evaluator: str = ""
    request_protocol: str = ""
    data_folder: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnSpec:
    """One column as written in the file.

    Attributes:
        label: header text; group: header over several columns (``""``: none).
        task, dataset, protocol, metric, split: the cell (empty: the layout's default).
        evaluator: registry name of the evaluator that computes the cell (``reproduce``).
        request_protocol: the protocol to ask that evaluator for, where its records name the protocol after
            their settings (few-shot ``augself`` writes ``augself-logreg-5way1shot``; ``""``: ``protocol``).
        options: that evaluator's options (e.g. ``{shots: 5}``); data_folder: sub-folder of ``--data-root``
            holding the dataset (None: one folder named after the dataset; ``"."``: the root itself).
        mean_of: keys of other columns; makes this a mean column (no cell of its own).
        spread: the protocol's known run-to-run spread of this number (None: unknown, never flagged).
        better: ``higher`` / ``lower`` / ``none`` (no bold); ``""``: the layout's.
    """

    label: str = ""
    group: str = ""
    task: str = ""
    dataset: str = ""
    protocol: str = ""
    metric: str = ""
    split: str = ""
    evaluator: str = ""
    request_protocol: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    data_folder: str | None = None
    mean_of: tuple[str, ...] = ()
    spread: float | None = None
    better: Literal["higher", "lower", "none", ""] = ""


@dataclass(frozen=True)
class RowSpec:
    """A fixed row: ``models`` are glob patterns on record model names (default: the label itself)."""

    label: str = ""
    models: tuple[str, ...] = ()
    reference: str = ""
    note: str = ""


@dataclass(frozen=True)
class LayoutFile:
    """The YAML file as written (see the module docstring)."""

    name: str = ""
    title: str = ""
    description: str = ""
    source: str = ""
    decimals: int = 1
    better: Literal["higher", "lower"] = "higher"
    defaults: CellDefaults = field(default_factory=CellDefaults)
    rows: tuple[RowSpec, ...] = ()
    columns: tuple[ColumnSpec, ...] = ()
    reproduce: str = ""


@dataclass(frozen=True)
class Column:
    """A resolved column: every selector filled (empty for a mean column, whose ``mean_of`` is set)."""

    key: str
    label: str
    group: str = ""
    task: str = ""
    dataset: str = ""
    protocol: str = ""
    metric: str = ""
    split: str = ""
    evaluator: str = ""
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    data_folder: str | None = None
    mean_of: tuple[str, ...] = ()
    spread: float | None = None
    better: str = "higher"
    request_protocol: str = ""

    @property
    def is_mean(self) -> bool:
        return bool(self.mean_of)

    def selector(self) -> tuple[str, str, str, str, str]:
        """``(task, dataset, protocol, metric, split)`` of the cell."""
        return (self.task, self.dataset, self.protocol, self.metric, self.split)


@dataclass(frozen=True)
class Row:
    """A resolved row."""

    label: str
    models: tuple[str, ...]
    reference: str
    note: str = ""

    def matches(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


@dataclass(frozen=True)
class Layout:
    """A validated layout, ready to render (see :func:`load_layout`)."""

    name: str
    title: str
    description: str
    source: str
    decimals: int
    better: str
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    reproduce: str
    path: Path | None = None

    @property
    def cell_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.is_mean)

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


def shipped_layouts() -> dict[str, Path]:
    """Name → file of every layout shipped with the package, sorted by name."""
    return {p.stem: p for p in sorted(LAYOUTS_DIR.glob(f"*{LAYOUT_SUFFIX}"))}


def find_layout(name_or_path: str | Path) -> Path:
    """The file of a shipped layout name, or a path to a layout file.

    Raises:
        ConfigError: neither a shipped name nor an existing file (lists the shipped names, closest first).
    """
    shipped = shipped_layouts()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    path = Path(name_or_path)
    if path.suffix == LAYOUT_SUFFIX and path.is_file():
        return path
    raise ConfigError(
        f"unknown table {str(name_or_path)!r}{closest(str(name_or_path), shipped)}; "
        f"shipped tables: {', '.join(shipped)} (or give the path of a layout {LAYOUT_SUFFIX} file)"
    )


def load_layout(name_or_path: str | Path, vocab: Vocabulary | None = None) -> Layout:
    """Load, resolve and check one layout.

    Args:
        name_or_path: a shipped layout name (``mast-bench reproduce --list``) or a ``.yaml`` file.
        vocab: names to check against (default: :func:`mast_bench.results.vocabulary.vocabulary`).

    Raises:
        ConfigError: unknown key, unknown task / dataset / protocol / metric (with the closest valid one),
            a column without a full cell, duplicate column keys, a mean over unknown columns, or no columns.
            The message starts with the file's path.
    """
    path = find_layout(name_or_path)
    raw = load(LayoutFile, path)
    try:
        return _resolve(raw, path, vocab if vocab is not None else vocabulary())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _resolve(raw: LayoutFile, path: Path, vocab: Vocabulary) -> Layout:
    if not raw.columns:
        raise ConfigError("a layout needs at least one column")
    if raw.decimals < 0 or raw.decimals > 6:
        raise ConfigError(f"decimals must be between 0 and 6, got {raw.decimals}")
    columns: list[Column] = []
    for i, spec in enumerate(raw.columns):
        columns.append(_column(spec, raw, f"columns[{i}]", vocab))
    keys = [c.key for c in columns]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(f"column keys must be unique (group/label), repeated: {', '.join(dupes)}")
    for i, col in enumerate(columns):
        for ref in col.mean_of:
            target = next((c for c in columns if c.key == ref), None)
            if target is None or target.is_mean:
                valid = [c.key for c in columns if not c.is_mean]
                raise ConfigError(f"columns[{i}].mean_of: no cell column {ref!r}{closest(ref, valid)}")
    rows = []
    for i, spec in enumerate(raw.rows):
        if not spec.label:
            raise ConfigError(f"rows[{i}]: a row needs a label")
        rows.append(Row(spec.label, spec.models or (spec.label,), spec.reference or spec.label, spec.note))
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"row labels must be unique, got {labels}")
    return Layout(
        name=raw.name or path.stem,
        title=raw.title or path.stem,
        description=raw.description,
        source=raw.source,
        decimals=raw.decimals,
        better=raw.better,
        rows=tuple(rows),
        columns=tuple(columns),
        reproduce=raw.reproduce,
        path=path,
    )


def _column(spec: ColumnSpec, raw: LayoutFile, where: str, vocab: Vocabulary) -> Column:
    d = raw.defaults
    label = spec.label or spec.dataset or d.dataset
    if not label:
        raise ConfigError(f"{where}: a column needs a label (or a dataset to name it)")
    key = f"{spec.group}/{label}" if spec.group else label
    better = spec.better or raw.better
    if spec.spread is not None and spec.spread < 0:
        raise ConfigError(f"{where}.spread must be >= 0, got {spec.spread}")
    if spec.mean_of:
        return Column(key, label, spec.group, mean_of=tuple(spec.mean_of), spread=spec.spread, better=better)
    values = {name: getattr(spec, name) or getattr(d, name) for name in _SELECTORS}
    missing = [name for name in _SELECTORS if not values[name]]
    if missing:
        raise ConfigError(f"{where} ({key!r}): no {', '.join(missing)} (set it on the column or in defaults)")
    if values["metric"] == DATASET_METRIC:
        metric = dataset_metric(values["dataset"])
        if metric is None:
            raise ConfigError(
                f"{where}: metric 'dataset' needs a registered dataset, {values['dataset']!r} is not; "
                "name the metric explicitly"
            )
        values["metric"] = metric
    for kind in ("task", "dataset", "protocol", "metric"):
        problem = vocab.check(kind, values[kind], f"{where}.{kind}")
        if problem:
            raise ConfigError(problem)
    options = {**dict(d.options), **dict(spec.options)}
    return Column(
        key=key,
        label=label,
        group=spec.group,
        evaluator=spec.evaluator or d.evaluator,
        request_protocol=spec.request_protocol or d.request_protocol or values["protocol"],
        options=MappingProxyType(options),
        data_folder=spec.data_folder if spec.data_folder is not None else d.data_folder,
        mean_of=(),
        spread=spec.spread,
        better=better,
        **values,
    )


def list_layouts() -> list[Layout]:
    """Every shipped layout, loaded and checked, sorted by name."""
    vocab = vocabulary()
    return [load_layout(path, vocab) for path in shipped_layouts().values()]
