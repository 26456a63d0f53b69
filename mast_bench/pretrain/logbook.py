"""The JSON-lines training log (``log.jsonl``): one object per line, appended as training goes.

Lines carry ``event`` ("start", "resume", "step", "epoch", "warning", "stop", "end"). Appending is
the one write that is not temp-file-and-rename: a crash can at worst cut the last line, and a
resumed run first rewrites the file atomically, keeping only the complete lines up to the
checkpoint's step, so the log never holds steps the weights did not take. Sinks (e.g. TensorBoard,
:mod:`mast_bench.pretrain.tensorboard_events`) receive every line written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mast_bench.fileio import atomic_write_text


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "nan"/"inf" as text: JSON has no such numbers
    return value


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a log (a cut last line is skipped)."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class Logbook:
    """Appends JSON lines to ``path`` (only where ``enabled``: rank 0)."""

    def __init__(self, path: str | Path, enabled: bool = True, keep_until_step: int | None = None,
                 sinks: tuple[Callable[[str, dict[str, Any]], None], ...] = ()) -> None:
        """
        Args:
            path: the ``log.jsonl`` file.
            enabled: write at all (False on ranks other than 0).
            keep_until_step: when resuming, drop lines of steps after this one before appending.
            sinks: called as ``sink(event, fields)`` after each line is written.
        """
        self.path = Path(path)
        self.enabled = enabled
        self.sinks = sinks
        if enabled and keep_until_step is not None:
            kept = [r for r in read_log(self.path) if int(r.get("step", 0)) <= keep_until_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        row = {"event": event, **{k: _clean(v) for k, v in fields.items()}}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
        for sink in self.sinks:
            sink(event, fields)
