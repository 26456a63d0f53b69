"""Deterministic shards of an evaluation matrix, so N independent jobs cover it exactly once (``--shard I/N``).

A scheduler's job array runs the same command N times with ``I = 0 .. N-1``. Shard ``I/N`` owns the
cells at positions ``k`` with ``k mod N == I`` of the matrix in its file order: a pure function of the
position, so every job computes the same partition without talking to the others, the shards are
disjoint and together hold every cell, and consecutive cells (often the same dataset under two
evaluators) are spread over the jobs, which keeps them evenly loaded. The partition follows the file:
run every shard against the same suite file.

Records are one file per cell, written atomically, so shards never collide on disk, and a re-run of a
shard skips the cells whose records exist, like an unsharded run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from mast_bench.config import ConfigError

T = TypeVar("T")
_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``); ``Shard(0, 1)`` is the whole matrix."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"--shard: need 0 <= I < N in I/N, got {self.index}/{self.count}")

    def owns(self, position: int) -> bool:
        """Whether the cell at ``position`` (0-based, in matrix order) belongs to this shard."""
        return position % self.count == self.index

    def select(self, items: Sequence[T]) -> list[T]:
        """The items this shard owns, in their order."""
        return [item for k, item in enumerate(items) if self.owns(k)]

    def owns_key(self, key: str) -> bool:
        """Whether the item named ``key`` belongs to this shard, by a stable hash of the name.

        For lists whose length depends on what is already done (a plan of only the missing cells), where
        positions would shift between jobs; names do not. Less even than positions for short lists.
        """
        return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard(0, 1)


def parse_shard(text: str | None) -> Shard:
    """``"I/N"`` → :class:`Shard` (``None`` or empty: the whole matrix).

    Raises:
        ConfigError: not of the form I/N with 0 <= I < N (e.g. ``4/4``: shards are numbered from 0, as
            Slurm's ``SLURM_ARRAY_TASK_ID``).
    """
    if text is None or not str(text).strip():
        return WHOLE
    m = _FORM.fullmatch(str(text))
    if m is None:
        raise ConfigError(f"--shard: expected I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    index, count = int(m[1]), int(m[2])
    if count < 1 or index >= count:
        raise ConfigError(
            f"--shard: expected I/N with 0 <= I < N, got {text!r} (shards are numbered 0 .. N-1, like "
            "SLURM_ARRAY_TASK_ID)"
        )
    return Shard(index, count)
