"""Optional TensorBoard event files beside ``log.jsonl`` (``run.tensorboard: true``).

The JSON-lines log stays the record; TensorBoard is a view of the same numbers while a run goes.
:class:`TensorBoardSink` receives every logbook event of rank 0 and writes, under ``<out>/tensorboard``:

* ``train/<term>`` for each loss term of a ``step`` line, ``train/lr``, ``train/images_per_s``;
* ``epoch/<term>`` for the epoch means;
* for MAST, ``mast/mask_mass/<family>`` (mean of the soft mask m_k over the D dimensions) and
  ``mast/logvar/<family>`` (mean predicted log-variance s_k over the last batch), one curve per subspace.

The uncertainty head's output is taken with a forward hook during the training forward pass, so no
extra computation runs and nothing about training changes. ``torch.utils.tensorboard`` needs the
``tensorboard`` package (``pip install mast-bench[tensorboard]``); without it the run stops before
training with a message saying so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mast_bench.config import ConfigError

EVENTS_DIR = "tensorboard"
_NOT_SCALARS = frozenset({"epoch", "step", "time", "lr", "images_per_s", "epoch_time"})


def _summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard imports the tensorboard package
        raise ConfigError(
            "run.tensorboard: true needs the tensorboard package (pip install 'mast-bench[tensorboard]'), "
            "or set run.tensorboard=false"
        ) from None
    return SummaryWriter


def check_available() -> None:
    """Raise :class:`ConfigError` now (before any output is written) if TensorBoard cannot be written."""
    _summary_writer()


class TensorBoardSink:
    """Writes logbook events as TensorBoard scalars (rank 0 only).

    Args:
        out: the run's output folder; events go to ``out/tensorboard``.
        method: the (unwrapped) pretraining method; MAST's masks and uncertainty head are read from it.
        purge_step: on resume, the checkpoint's step: TensorBoard drops events after it, as the log does.
    """

    def __init__(self, out: Path, method: nn.Module, purge_step: int | None = None) -> None:
        self.writer = _summary_writer()(log_dir=str(Path(out) / EVENTS_DIR), purge_step=purge_step)
        self.method = method
        self.families: tuple[str, ...] = tuple(getattr(method, "families", ()))
        self._logvar: torch.Tensor | None = None
        head = getattr(method, "uncertainty_head", None)
        self._hook = head.register_forward_hook(self._keep_logvar) if isinstance(head, nn.Module) else None

    def _keep_logvar(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        self._logvar = output.detach().float().mean(dim=0)  # (K,)

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        """Receive one logbook event (``step`` and ``epoch`` lines become scalars)."""
        if event not in ("step", "epoch") or "step" not in fields:
            return
        step = int(fields["step"])
        prefix = "train" if event == "step" else "epoch"
        for key, value in fields.items():
            if key not in _NOT_SCALARS and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        for key in ("lr", "images_per_s"):
            if isinstance(fields.get(key), (int, float)):
                self.writer.add_scalar(f"{prefix}/{key}", fields[key], step)
        if event == "step":
            self._subspaces(step)

    def _subspaces(self, step: int) -> None:
        masks = self.method.masks() if callable(getattr(self.method, "masks", None)) else None
        if masks is not None:
            for name, mass in zip(self.families, masks.detach().float().mean(dim=1).tolist(), strict=True):
                self.writer.add_scalar(f"mast/mask_mass/{name}", mass, step)
        if self._logvar is not None:
            for name, value in zip(self.families, self._logvar.tolist(), strict=True):
                self.writer.add_scalar(f"mast/logvar/{name}", value, step)

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        self.writer.flush()
        self.writer.close()
