"""Result records: one JSON file per result cell, written atomically, stamped with provenance.

A cell is identified by (model, checkpoint sha256, task, dataset, protocol, metric, split); its
file name is derived from those so that many jobs can write side by side without locks, and a
re-run can tell that a cell already exists. Record files end in ``.record.json`` so that other
JSON an evaluation leaves next to them (episode manifests, cache metadata) is never mistaken
for a result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mast_bench.errors import RecordError
from mast_bench.fileio import atomic_write_json

SCHEMA_VERSION = 1
RECORD_SUFFIX = ".record.json"

# Fields that identify a cell; everything else is the measurement and its provenance.
KEY_FIELDS = ("model", "checkpoint_sha256", "task", "dataset", "protocol", "metric", "split")
_NONEMPTY_STR = ("model", "task", "dataset", "protocol", "protocol_version", "metric", "split")
_STR = ("checkpoint_sha256", "selected_on", "device", "code_version", "created", "method", "backbone")
#: Metrics reported in percent (accuracies, mean per-class accuracy, VOC07 mAP): a value outside [0, 100]
#: is a defect upstream, never a result.
PERCENT_METRICS = frozenset({"top1", "top5", "mean_per_class", "voc07_map", "accuracy", "mAP"})
#: COCO-style detection metrics (Detectron2's ``AP``, ``AP50``, ``APs``, ``bbox_AP75``, ``AP-<class>``): percent too.
_AP_METRIC = re.compile(r"^(?:[a-z]+[_/])?AP(?:\d+|[sml])?(?:-.+)?$")


#: An evaluator that runs several seeds and also writes their mean (detection) names each seed's own records
#: ``<protocol>.seed<k>`` and the mean's ``<protocol>``: the per-seed records stay on the leaderboard, and tables
#: show the mean wherever it exists (:func:`aggregate_protocol`).
_PER_SEED = re.compile(r"^(?P<protocol>.+)\.seed(?P<seed>[0-9]+)$")


def seed_protocol(protocol: str, seed: int) -> str:
    """The protocol name of one seed's records next to the mean over seeds named ``protocol``."""
    return f"{protocol}.seed{seed}"


def aggregate_protocol(protocol: str) -> tuple[str, int] | None:
    """``(mean's protocol, seed)`` for a per-seed protocol name (:func:`seed_protocol`), else None."""
    m = _PER_SEED.match(protocol)
    return (m["protocol"], int(m["seed"])) if m else None


def metric_range(metric: str) -> tuple[float, float] | None:
    """The values ``metric`` can take (``(0, 100)`` for percentages), or None when the harness knows no bound."""
    return (0.0, 100.0) if metric in PERCENT_METRICS or _AP_METRIC.match(metric) else None


@dataclass(frozen=True)
class ResultRecord:
    """One number with everything needed to trust and replay it.

    Attributes:
        model: human name of the evaluated model (e.g. ``vicreg-tiny-synthetic``).
        checkpoint_sha256: sha256 of the evaluated weights file ("" for a random-init floor).
        task: ``linear`` | ``fewshot`` | ``knn`` | ``detection`` | ``segmentation`` | …
        dataset: dataset registry name.
        protocol: protocol name (``ericsson``, ``augself``, ``synthetic-linear``, …).
        protocol_version: bumped whenever the protocol's computation changes.
        metric: ``top1`` | ``mean_per_class`` | ``voc07_map`` | ``AP`` | …
        value: the reported number (percent for accuracies and APs).
        ci95 / std: uncertainty, where the protocol defines one.
        seeds: seeds that produced the value.
        selected: the hyperparameters chosen, e.g. ``{"C": 0.1}``.
        selected_on: the split they were chosen on (never ``test``).
        split: the split the value was measured on.
        wall_time_s, device, code_version, created: provenance (``created`` is ISO-8601 UTC).
        method, backbone: what produced the weights (``vicreg``/``mast``/``random-init``; ``resnet_tiny``).
        extra: protocol-specific details (grid, per-class scores, n_train, …).

    Raises:
        ValueError: on a field of the wrong type, an empty identifying field, a non-finite value or
            uncertainty, a value outside its metric's range (:func:`metric_range`), or hyperparameters
            selected on the test split.
    """

    model: str
    checkpoint_sha256: str
    task: str
    dataset: str
    protocol: str
    protocol_version: str
    metric: str
    value: float
    split: str = "test"
    ci95: float | None = None
    std: float | None = None
    seeds: tuple[int, ...] = ()
    selected: dict[str, Any] = field(default_factory=dict)
    selected_on: str = ""
    wall_time_s: float = 0.0
    device: str = "cpu"
    code_version: str = ""
    created: str = ""
    method: str = ""
    backbone: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in _NONEMPTY_STR:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"record field {name!r} must be a non-empty string, got {value!r}")
        for name in _STR:
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"record field {name!r} must be a string, got {getattr(self, name)!r}")
        if not _is_number(self.value) or not math.isfinite(self.value):
            raise ValueError(f"record value must be a finite number, got {self.value!r}")
        for name in ("ci95", "std"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not math.isfinite(value) or value < 0):
                raise ValueError(f"record field {name!r} must be a finite number >= 0 or null, got {value!r}")
        bounds = metric_range(self.metric)
        if bounds is not None:
            low, high = bounds
            if not low <= self.value <= high:
                raise ValueError(
                    f"record field 'value' must lie in [{low:g}, {high:g}] for metric {self.metric!r} (percent), "
                    f"got {self.value!r}"
                )
            per_class = self.extra.get("per_class") if isinstance(self.extra, dict) else None
            scores = per_class.get("values") if isinstance(per_class, dict) else None
            slack = 1e-9 * (high - low)  # per-class APs are float sums of 11 terms: 100.00000000000003 is 100
            for i, score in enumerate(scores if isinstance(scores, list) else []):
                if score is not None and (not _is_number(score) or not low - slack <= score <= high + slack):
                    raise ValueError(
                        f"record field 'extra.per_class.values[{i}]' must lie in [{low:g}, {high:g}] for metric "
                        f"{self.metric!r} (percent) or be null, got {score!r}"
                    )
            for name in ("ci95", "std"):
                value = getattr(self, name)
                if value is not None and value > high - low:
                    raise ValueError(
                        f"record field {name!r} must be at most {high - low:g} for metric {self.metric!r}, "
                        f"got {value!r}"
                    )
        if not _is_number(self.wall_time_s) or self.wall_time_s < 0:
            raise ValueError(f"record field 'wall_time_s' must be a number >= 0, got {self.wall_time_s!r}")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ValueError(f"record field 'seeds' must hold integers, got {self.seeds!r}")
        for name in ("selected", "extra"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"record field {name!r} must be a mapping, got {getattr(self, name)!r}")
        if self.selected_on == "test":
            raise ValueError("a record cannot have hyperparameters selected on the test split")
        if self.created and created_datetime(self.created) is None:
            raise ValueError(f"record field 'created' must be an ISO-8601 timestamp, got {self.created!r}")

    def key(self) -> str:
        """Stable cell identifier used as the file name (a readable slug plus a hash of :data:`KEY_FIELDS`)."""
        ident = "|".join(getattr(self, name) for name in KEY_FIELDS)
        digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.model}__{self.task}__{self.dataset}__{self.protocol}")
        return f"{slug}__{self.metric}__{digest}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultRecord:
        """Rebuild a record from :meth:`to_dict` output, refusing other schema versions and unknown fields."""
        if not isinstance(d, dict):
            raise ValueError(f"a record must be a JSON object, got {type(d).__name__}")
        version = d.get("schema_version")
        if _is_number(version) and version > SCHEMA_VERSION:
            raise ValueError(
                f"record schema_version {version} is newer than this mast-bench reads ({SCHEMA_VERSION}); "
                "upgrade mast-bench to read it"
            )
        if version != SCHEMA_VERSION:
            raise ValueError(f"record schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"record has unknown fields: {', '.join(unknown)}")
        missing = sorted(f.name for f in dataclasses.fields(cls) if _required(f) and f.name not in d)
        if missing:
            raise ValueError(f"record is missing fields: {', '.join(missing)}")
        d = dict(d)
        if not isinstance(d.get("seeds", []), list):
            raise ValueError(f"record field 'seeds' must be a list, got {d['seeds']!r}")
        d["seeds"] = tuple(d.get("seeds", ()))
        return cls(**d)


def created_datetime(created: str) -> datetime | None:
    """Parse a record's ``created`` stamp (naive stamps are taken as UTC); None if empty or unparseable."""
    try:
        stamp = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def record_path(out_dir: str | Path, record: ResultRecord) -> Path:
    """Where :func:`write_record` puts ``record`` under ``out_dir``."""
    return Path(out_dir) / f"{record.key()}{RECORD_SUFFIX}"


def write_record(out_dir: str | Path, record: ResultRecord) -> Path:
    """Write ``record`` atomically under ``out_dir``, stamping ``created``/``code_version`` if empty.

    Returns:
        The path written (replacing an earlier record of the same cell).
    """
    if not record.created:
        record = dataclasses.replace(record, created=datetime.now(UTC).isoformat(timespec="microseconds"))
    if not record.code_version:
        from mast_bench import code_version

        record = dataclasses.replace(record, code_version=code_version())
    return atomic_write_json(record_path(out_dir, record), record.to_dict())


def read_record(path: str | Path) -> ResultRecord:
    """Load one record file.

    Raises:
        RecordError: the file cannot be read, is not JSON, or is not a valid record; the message
            starts with the file's path.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: cannot read record file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not a valid record file (invalid JSON: {exc})") from None
    try:
        return ResultRecord.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{path}: not a valid record file ({exc})") from None


def iter_records(root: str | Path) -> list[tuple[Path, ResultRecord]]:
    """All records under ``root`` (recursively, ``*.record.json``), sorted by path.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        RecordError: a record file is malformed (names the file).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"records folder {str(root)!r} does not exist")
    paths = sorted(p for p in root.rglob(f"*{RECORD_SUFFIX}") if not p.name.startswith("."))
    return [(p, read_record(p)) for p in paths]
