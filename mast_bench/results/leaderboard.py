"""Leaderboard: every result record under a folder, one row each, in one CSV.

Records are written one file per cell, so the same cell can legitimately appear twice (a
re-run copied next to the original, two job folders merged). The leaderboard keeps the newest
record of each cell (by its ``created`` stamp) and says which files it ignored; it never
averages or otherwise merges numbers.
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
from mast_bench.fileio import atomic_open
from mast_bench.results.records import RECORD_SUFFIX, ResultRecord, created_datetime, iter_records

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
    "selected",
    "selected_on",
    "checkpoint_sha256",
    "wall_time_s",
    "device",
    "code_version",
    "created",
    "schema_version",
    "key",
    "record_file",
)
SORT_COLUMNS: tuple[str, ...] = ("task", "protocol", "metric", "split", "dataset", "model", "checkpoint_sha256")
# What a leaderboard CSV must hold for tables to be rendered from it.
REQUIRED_COLUMNS: tuple[str, ...] = ("model", "task", "dataset", "protocol", "metric", "split", "value", "std", "ci95")

_OLDEST = datetime.min.replace(tzinfo=UTC)


class DuplicateRecordWarning(UserWarning):
    """Several record files describe the same cell; only the newest one is on the leaderboard."""


def build_leaderboard(records_root: str | Path, out_csv: str | Path | None) -> pd.DataFrame:
    """Aggregate all ``*.record.json`` files under ``records_root`` into a sorted table and write it.

    Args:
        records_root: folder searched recursively for record files.
        out_csv: CSV written atomically (None: only return the table).

    Returns:
        One row per cell, columns :data:`LEADERBOARD_COLUMNS`, sorted by :data:`SORT_COLUMNS`.
        ``df.attrs["duplicates"]`` lists ``{"key", "kept", "ignored"}`` for every cell found in
        more than one file (paths relative to ``records_root``); a :class:`DuplicateRecordWarning`
        says the same.

    Raises:
        FileNotFoundError: ``records_root`` is not a folder.
        RecordError: a record file is malformed (the message names it), or there is no record.
    """
    root = Path(records_root)
    found = iter_records(root)
    if not found:
        raise RecordError(f"no result records (*{RECORD_SUFFIX}) under {str(root)!r}")
    kept, duplicates = _newest_per_cell(root, found)
    if duplicates:
        lines = "; ".join(f"kept {d['kept']}, ignored {', '.join(d['ignored'])}" for d in duplicates)
        warnings.warn(
            f"{len(duplicates)} cell(s) have more than one record; keeping the newest: {lines}",
            DuplicateRecordWarning,
            stacklevel=2,
        )
    rows = [_row(root, path, rec) for path, rec in kept]
    df = pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))
    df = df.sort_values(list(SORT_COLUMNS), kind="stable").reset_index(drop=True)
    df.attrs["duplicates"] = duplicates
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
) -> tuple[list[tuple[Path, ResultRecord]], list[dict[str, object]]]:
    by_key: dict[str, list[tuple[Path, ResultRecord]]] = defaultdict(list)
    for path, rec in found:
        by_key[rec.key()].append((path, rec))
    kept: list[tuple[Path, ResultRecord]] = []
    duplicates: list[dict[str, object]] = []
    for key in sorted(by_key):
        # Newest first; ties broken by path so the choice never depends on the file system's order.
        group = sorted(by_key[key], key=lambda pr: (created_datetime(pr[1].created) or _OLDEST, str(pr[0])))
        newest = group[-1]
        kept.append(newest)
        if len(group) > 1:
            duplicates.append({
                "key": key,
                "kept": _rel(root, newest[0]),
                "ignored": [_rel(root, p) for p, _ in group[:-1]],
            })
    return kept, duplicates


def _row(root: Path, path: Path, rec: ResultRecord) -> dict[str, object]:
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
        "selected": json.dumps(rec.selected, sort_keys=True),
        "selected_on": rec.selected_on,
        "checkpoint_sha256": rec.checkpoint_sha256,
        "wall_time_s": rec.wall_time_s,
        "device": rec.device,
        "code_version": rec.code_version,
        "created": rec.created,
        "schema_version": rec.schema_version,
        "key": rec.key(),
        "record_file": _rel(root, path),
    }


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
