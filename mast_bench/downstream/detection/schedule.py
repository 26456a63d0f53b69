"""Fit a pinned schedule to the hardware: total batch, learning rate and iterations.

A pinned config states its total batch (``SOLVER.IMS_PER_BATCH``, 16 for MoCo's protocols). When the
processes available cannot share that batch evenly, or a per-GPU batch is asked for, the total batch changes
and, following the linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD", §2.1), the
learning rate is multiplied by ``new / old`` while the iteration counts (``MAX_ITER``, ``STEPS``,
``WARMUP_ITERS``, checkpoint and eval periods) are divided by it, so that the same number of epochs is seen
with the same lr-per-image schedule. Every change is returned, so the materialised config can list it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hardware:
    """Where the run goes.

    Attributes:
        num_gpus: GPUs per machine (0: one CPU process).
        num_machines: machines (Detectron2's ``launch`` joins them).
        ims_per_gpu: images per GPU to use instead of the config's total batch (e.g. to fit memory).
    """

    num_gpus: int = 0
    num_machines: int = 1
    ims_per_gpu: int | None = None

    def __post_init__(self) -> None:
        if self.num_gpus < 0:
            raise ValueError(f"--num-gpus must be >= 0, got {self.num_gpus}")
        if self.num_machines < 1:
            raise ValueError(f"--num-machines must be >= 1, got {self.num_machines}")
        if self.num_machines > 1 and self.num_gpus == 0:
            raise ValueError("--num-machines > 1 needs GPUs (--num-gpus >= 1)")
        if self.ims_per_gpu is not None and self.ims_per_gpu < 1:
            raise ValueError(f"--ims-per-gpu must be >= 1, got {self.ims_per_gpu}")

    @property
    def world_size(self) -> int:
        return max(1, self.num_gpus) * self.num_machines

    @property
    def device(self) -> str:
        return "cuda" if self.num_gpus > 0 else "cpu"


@dataclass(frozen=True)
class Change:
    """One config value that differs from the pinned file, and why."""

    key: str
    old: Any
    new: Any
    why: str

    def line(self) -> str:
        return f"{self.key}: {self.old!r} -> {self.new!r} ({self.why})"


def total_batch(reference: int, hw: Hardware) -> int:
    """The total batch to use: the reference when the processes can share it evenly, else the nearest below.

    ``ims_per_gpu`` wins when given; otherwise the largest multiple of the world size not above the reference
    (at least one image per process).
    """
    if hw.ims_per_gpu is not None:
        return hw.ims_per_gpu * hw.world_size
    return hw.world_size * max(1, reference // hw.world_size)


#: The config keys a batch change scales (learning rate up, iteration counts down).
SCALED_KEYS = (
    "SOLVER.IMS_PER_BATCH", "SOLVER.BASE_LR", "SOLVER.MAX_ITER", "SOLVER.STEPS", "SOLVER.WARMUP_ITERS",
    "SOLVER.CHECKPOINT_PERIOD", "TEST.EVAL_PERIOD",
)  # fmt: skip
_ITERATIONS = ("SOLVER.MAX_ITER", "SOLVER.WARMUP_ITERS", "SOLVER.CHECKPOINT_PERIOD", "TEST.EVAL_PERIOD")


def scale_solver(values: dict[str, Any], hw: Hardware) -> tuple[dict[str, Any], list[Change]]:
    """Scale the schedule for ``hw``.

    Args:
        values: the pinned value of every key in :data:`SCALED_KEYS` (dotted names).
        hw: the hardware.

    Returns:
        ``(new values, changes)``; no change when the total batch stays the same. Periods of 0 (off) stay 0.
    """
    old_batch = int(values["SOLVER.IMS_PER_BATCH"])
    batch = total_batch(old_batch, hw)
    if batch == old_batch:
        return dict(values), []
    k = batch / old_batch
    why = f"total batch {old_batch} -> {batch} on {hw.world_size} process(es); linear scaling x{k:g}"
    new = dict(values)
    new["SOLVER.IMS_PER_BATCH"] = batch
    new["SOLVER.BASE_LR"] = float(values["SOLVER.BASE_LR"]) * k
    for key in _ITERATIONS:
        if int(values[key]) > 0:
            new[key] = max(1, round(int(values[key]) / k))
    new["SOLVER.STEPS"] = tuple(max(1, round(int(s) / k)) for s in values["SOLVER.STEPS"])
    return new, [Change(key, values[key], new[key], why) for key in SCALED_KEYS if new[key] != values[key]]
