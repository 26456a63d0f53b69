"""Published numbers to compare against: ``results/reference/*.csv``, every row naming its source.

One CSV row per published number::

    model,label,task,dataset,protocol,metric,split,value,source,location,row,note
    vicreg,VICReg R50,linear,imagenet,vicreg-linear,top1,val,73.2,VICReg (...),README.md pretrained models,ResNet-50,

``model`` is the name a table row refers to (a layout row's ``reference``, or a measured model's name);
``label`` is how its row is shown; ``source`` names the paper or repository, ``location`` the table or
file, and ``row`` the row of that table the number is read from. All three are required: a number whose
origin cannot be named is not shipped. ``note`` is optional free text. The identifying columns use the
same names as result records, so a reference lands in every table cell that shows that measurement.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from mast_bench.config import ConfigError
from mast_bench.results.vocabulary import Vocabulary, closest, vocabulary

REQUIRED_COLUMNS: tuple[str, ...] = (
    "model",
    "task",
    "dataset",
    "protocol",
    "metric",
    "split",
    "value",
    "source",
    "location",
    "row",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("label", "note")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


@dataclass(frozen=True)
class Reference:
    """One published number (see the module docstring); ``file`` and ``line`` say where it was read."""

    model: str
    label: str
    task: str
    dataset: str
    protocol: str
    metric: str
    split: str
    value: float
    source: str
    location: str
    row: str
    note: str = ""
    file: str = ""
    line: int = 0

    def selector(self) -> tuple[str, str, str, str, str]:
        return (self.task, self.dataset, self.protocol, self.metric, self.split)

    @property
    def citation(self) -> str:
        return f"{self.source}, {self.location}, row {self.row}"


def read_references(path: str | Path, vocab: Vocabulary | None = None) -> list[Reference]:
    """Read one reference CSV.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: an unknown or missing column (with the closest valid name), a row without a
            ``source`` or ``location``, a value that is not a finite number, an unknown task / dataset /
            protocol / metric, or the same number listed twice. Messages name the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference file {str(path)!r} does not exist")
    vocab = vocab if vocab is not None else vocabulary()
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        for name in header:
            if name not in COLUMNS:
                raise ConfigError(
                    f"{path}: unknown column {name!r}{closest(name, COLUMNS)} (columns: {', '.join(COLUMNS)})"
                )
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
        refs = [_reference(row, path, reader.line_num, vocab) for row in reader]
    seen: dict[tuple[str, ...], int] = {}
    for ref in refs:
        ident = (ref.model, *ref.selector())
        if ident in seen:
            raise ConfigError(f"{path}:{ref.line}: the same number is listed on line {seen[ident]} already")
        seen[ident] = ref.line
    return refs


def _reference(row: dict[str, str | None], path: Path, line: int, vocab: Vocabulary) -> Reference:
    where = f"{path}:{line}"
    if None in row:
        raise ConfigError(f"{where}: more fields than columns")
    cells = {k: (v or "").strip() for k, v in row.items()}
    for name in ("source", "location", "row"):
        if not cells[name]:
            raise ConfigError(f"{where}: no {name} (every reference value must name where it was published)")
    for name in ("model", "split"):
        if not cells[name]:
            raise ConfigError(f"{where}: empty {name}")
    for kind in ("task", "dataset", "protocol", "metric"):
        problem = vocab.check(kind, cells[kind], f"{where}: {kind}")
        if problem:
            raise ConfigError(problem)
    try:
        value = float(cells["value"])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{where}: value must be a finite number, got {cells['value']!r}")
    return Reference(
        model=cells["model"],
        label=cells.get("label", "") or cells["model"],
        task=cells["task"],
        dataset=cells["dataset"],
        protocol=cells["protocol"],
        metric=cells["metric"],
        split=cells["split"],
        value=value,
        source=cells["source"],
        location=cells["location"],
        row=cells["row"],
        note=cells.get("note", ""),
        file=path.name,
        line=line,
    )


def read_reference_dir(folder: str | Path | None, vocab: Vocabulary | None = None) -> list[Reference]:
    """Every ``*.csv`` under ``folder`` (sorted by name); ``[]`` for None.

    Raises:
        FileNotFoundError: ``folder`` is given but is not a folder.
        ConfigError: as :func:`read_references`, or one number listed in two files.
    """
    if folder is None:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"reference folder {str(folder)!r} does not exist")
    vocab = vocab if vocab is not None else vocabulary()
    refs: list[Reference] = []
    seen: dict[tuple[str, ...], Reference] = {}
    for path in sorted(folder.glob("*.csv")):
        for ref in read_references(path, vocab):
            ident = (ref.model, *ref.selector())
            if ident in seen:
                first = seen[ident]
                raise ConfigError(f"{path}:{ref.line}: the same number is listed in {first.file}:{first.line}")
            seen[ident] = ref
            refs.append(ref)
    return refs
