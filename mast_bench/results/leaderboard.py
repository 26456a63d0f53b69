"""Leaderboard: every result record under a folder, one row each, in one CSV.

Records are written one file per cell, so the same cell can legitimately appear twice (a
re-run copied next to the original, two job folders merged). Records of one cell are grouped by
their seeds: records with the same seeds and the same value are one number written twice (the
newest is kept, the others are named as ignored); records with the same seeds and *different*
values are a conflict: every one of them stays on the leaderboard, marked in the ``conflict``
column, and the tables show both values; records with different seeds are separate runs, all kept.
The leaderboard never averages or otherwise merges numbers.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mast_bench.errors import RecordError
from mast_bench.fileio import OutputDirError, atomic_open
from mast_bench.results.records import (
    RECORD_SUFFIX,
    SCHEMA_VERSION,
    ResultRecord,
    created_datetime,
    iter_records,
)

# Column order of the CSV: identity of the cell, the number, then provenance.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "model",
    "method",
    "backbone",
    "task",
    "dataset",
    "protocol",
    "protocol_version",
    "metric",
    "split",
    "value",
    "std",
    "ci95",
    "seeds",
    "n_seeds",
    "selected",
    "selected_on",
    "val_split",
    "data_verified",
    "checkpoint_sha256",
    "wall_time_s",
    "device",
    "code_version",
    "created",
    "schema_version",
    "key",
    "conflict",
    "record_file",
)
SORT_COLUMNS: tuple[str, ...] = ("task", "protocol", "metric", "split", "dataset", "model", "checkpoint_sha256")
# What a leaderboard CSV must hold for tables to be rendered from it.
REQUIRED_COLUMNS: tuple[str, ...] = ("model", "task", "dataset", "protocol", "metric", "split", "value", "std", "ci95")

_OLDEST = datetime.min.replace(tzinfo=UTC)


class DuplicateRecordWarning(UserWarning):
    """Several record files hold the same number for the same cell; only the newest one is on the leaderboard."""


class ConflictingRecordsWarning(UserWarning):
    """Several record files give different numbers for the same cell and seeds; all stay on the leaderboard."""


def build_leaderboard(records_root: str | Path, out_csv: str | Path | None) -> pd.DataFrame:
    """Aggregate all ``*.record.json`` files under ``records_root`` into a sorted table and write it.

    Args:
        records_root: folder searched recursively for record files.
        out_csv: CSV written atomically (None: only return the table).

    Returns:
        One row per cell, columns :data:`LEADERBOARD_COLUMNS`, sorted by :data:`SORT_COLUMNS`.
        ``df.attrs["duplicates"]`` lists ``{"key", "kept", "ignored"}`` for every cell found with the
        same value in more than one file (paths relative to ``records_root``); a
        :class:`DuplicateRecordWarning` says the same. ``df.attrs["conflicts"]`` lists ``{"key", "seeds",
        "records", "values"}`` for every cell whose files disagree; a :class:`ConflictingRecordsWarning`
        says the same.

    Raises:
        FileNotFoundError: ``records_root`` is not a folder.
        RecordError: a record file is malformed (the message names it), or there is no record.
        OutputDirError: ``out_csv`` is a folder (checked before any record is read).
    """
    if out_csv is not None and Path(out_csv).is_dir():
        suggestion = str(Path(out_csv) / "leaderboard.csv")
        raise OutputDirError(f"--out {str(out_csv)!r} is a folder; name the CSV file to write, e.g. {suggestion!r}")
    root = Path(records_root)
    found = iter_records(root)
    if not found:
        raise RecordError(f"no result records (*{RECORD_SUFFIX}) under {str(root)!r}")
    kept, duplicates, conflicts = _newest_per_cell(root, found)
    if duplicates:
        lines = "; ".join(f"kept {d['kept']}, ignored {', '.join(d['ignored'])}" for d in duplicates)
        warnings.warn(
            f"{len(duplicates)} cell(s) have more than one record; keeping the newest: {lines}",
            DuplicateRecordWarning,
            stacklevel=2,
        )
    if conflicts:
        lines = "; ".join(f"{c['key']}: {', '.join(c['records'])}" for c in conflicts)
        warnings.warn(
            f"{len(conflicts)} cell(s) have records that disagree; all are kept and shown: {lines}",
            ConflictingRecordsWarning,
            stacklevel=2,
        )
    in_conflict = {rec: len(c["records"]) for c in conflicts for rec in c["records"]}
    rows = [_row(root, path, rec, in_conflict.get(_rel(root, path), 0)) for path, rec in kept]
    df = pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))
    df = df.sort_values(list(SORT_COLUMNS), kind="stable").reset_index(drop=True)
    df.attrs["duplicates"] = duplicates
    df.attrs["conflicts"] = conflicts
    if out_csv is not None:
        write_leaderboard(df, out_csv)
    return df


def write_leaderboard(df: pd.DataFrame, out_csv: str | Path) -> Path:
    """Write a leaderboard table to ``out_csv`` atomically (temp file + rename)."""
    with atomic_open(out_csv, "w", encoding="utf-8", newline="") as fh:
        df.to_csv(fh, index=False)
    return Path(out_csv)


def read_leaderboard(path: str | Path) -> pd.DataFrame:
    """Load a leaderboard CSV, checking that it has the columns tables need.

    Raises:
        FileNotFoundError: no such file.
        RecordError: not a CSV, empty, or missing required columns (names the file and the columns).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"leaderboard CSV {str(path)!r} does not exist (build it with `mast-bench leaderboard`)"
        )
    try:
        # Empty cells stay "" in text columns (a random-init floor has no checkpoint hash); only the
        # number columns treat "" as missing.
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: not a readable leaderboard CSV ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise RecordError(f"{path}: not a leaderboard CSV (missing columns: {', '.join(missing)})")
    if "schema_version" in df.columns:
        versions = pd.to_numeric(df["schema_version"], errors="coerce")
        newer = versions > SCHEMA_VERSION
        if newer.any():
            raise RecordError(
                f"{path}: line {int(newer.to_numpy().nonzero()[0][0]) + 2} holds a record of schema_version "
                f"{df['schema_version'][newer].iloc[0]}, newer than this mast-bench reads ({SCHEMA_VERSION}); "
                "upgrade mast-bench to render it"
            )
    for col in ("value", "std", "ci95", "wall_time_s"):
        if col not in df.columns:
            continue
        raw = df[col].str.strip()
        num = pd.to_numeric(raw.replace("", None), errors="coerce").astype(float)
        bad = (num.isna() & (raw != "")) | ~num.fillna(0.0).map(math.isfinite)
        if col == "value":
            bad |= raw == ""
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0]) + 2  # +1 for the header, +1 for 1-based lines
            raise RecordError(f"{path}: column {col!r} needs a finite number on line {row}, got {raw[bad].iloc[0]!r}")
        df[col] = num
    return df


def _newest_per_cell(
    root: Path, found: list[tuple[Path, ResultRecord]]
) -> tuple[list[tuple[Path, ResultRecord]], list[dict[str, object]], list[dict[str, object]]]:
    """Group records by (cell, seeds): keep one per distinct value; name the ignored copies and the conflicts."""
    by_claim: dict[tuple[str, tuple[int, ...]], list[tuple[Path, ResultRecord]]] = defaultdict(list)
    for path, rec in found:
        by_claim[(rec.key(), tuple(rec.seeds))].append((path, rec))
    kept: list[tuple[Path, ResultRecord]] = []
    duplicates: list[dict[str, object]] = []
    conflicts: list[dict[str, object]] = []
    for claim in sorted(by_claim):
        # Newest first; ties broken by path so the choice never depends on the file system's order.
        group = sorted(by_claim[claim], key=lambda pr: (created_datetime(pr[1].created) or _OLDEST, str(pr[0])))
        distinct: list[list[tuple[Path, ResultRecord]]] = []  # records grouped by value, oldest first
        for path, rec in group:
            same = next((d for d in distinct if _same_value(d[0][1].value, rec.value)), None)
            if same is None:
                distinct.append([(path, rec)])
            else:
                same.append((path, rec))
        newest = [d[-1] for d in distinct]
        kept.extend(newest)
        for same in distinct:
            if len(same) > 1:
                duplicates.append(
                    {
                        "key": claim[0],
                        "kept": _rel(root, same[-1][0]),
                        "ignored": [_rel(root, p) for p, _ in same[:-1]],
                    }
                )
        if len(newest) > 1:
            conflicts.append(
                {
                    "key": claim[0],
                    "seeds": list(claim[1]),
                    "records": [_rel(root, p) for p, _ in newest],
                    "values": [r.value for _, r in newest],
                }
            )
    return kept, duplicates, conflicts


def _same_value(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _row(root: Path, path: Path, rec: ResultRecord, conflict: int = 0) -> dict[str, object]:
    return {
        "model": rec.model,
        "method": rec.method,
        "backbone": rec.backbone,
        "task": rec.task,
        "dataset": rec.dataset,
        "protocol": rec.protocol,
        "protocol_version": rec.protocol_version,
        "metric": rec.metric,
        "split": rec.split,
        "value": float(rec.value),
        "std": rec.std,
        "ci95": rec.ci95,
        "seeds": json.dumps(list(rec.seeds)),
        "n_seeds": len(rec.seeds),
        "selected": json.dumps(rec.selected, sort_keys=True),
        "selected_on": rec.selected_on,
        "val_split": _val_split(rec),
        "data_verified": _data_verified(rec),
        "checkpoint_sha256": rec.checkpoint_sha256,
        "wall_time_s": rec.wall_time_s,
        "device": rec.device,
        "code_version": rec.code_version,
        "created": rec.created,
        "schema_version": rec.schema_version,
        "key": rec.key(),
        "conflict": conflict,
        "record_file": _rel(root, path),
    }


def _val_split(rec: ResultRecord) -> str:
    """Where the selection split came from (``official``, ``committed (seed 43)``, ``drawn-from-copy (seed 0)``)."""
    vs = rec.extra.get("val_split")
    if not isinstance(vs, dict) or not vs.get("source"):
        return ""
    seed = vs.get("seed")
    return f"{vs['source']} (seed {seed})" if seed is not None else str(vs["source"])


def _data_verified(rec: ResultRecord) -> str:
    """``true`` / ``false`` when the record says whether its copy was verified, else empty."""
    verified = rec.extra.get("data_verified")
    return "" if not isinstance(verified, bool) else str(verified).lower()


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
