"""Training device and mixed precision.

``run.precision`` bf16/fp16 runs the forward pass under ``torch.autocast`` on CUDA (VICReg trains
with mixed precision); fp16 also uses a gradient scaler. On the CPU the run stays in fp32 and says
so, because CPU autocast is slower than fp32 for these convolutions and changes the numerics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mast_bench.config import ConfigError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; ``cuda`` → ``cuda:<local_rank>``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("run.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
        return torch.device("cuda", local_rank)
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"run.device: {name!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device is {name!r} but no CUDA device is available")
    return device


@dataclass
class Precision:
    """How the forward pass runs: an autocast context factory, an optional scaler, and a note for the log."""

    autocast: Callable[[], Any]
    scaler: torch.amp.GradScaler | None
    effective: str
    warning: str | None = None


def setup_precision(precision: str, device: torch.device) -> Precision:
    """Autocast (and a GradScaler for fp16) on CUDA; fp32 with a warning elsewhere."""
    if precision == "fp32":
        return Precision(contextlib.nullcontext, None, "fp32")
    if precision not in _DTYPES:
        raise ConfigError(f"run.precision: {precision!r} is not one of fp32, bf16, fp16")
    if device.type != "cuda":
        return Precision(contextlib.nullcontext, None, "fp32",
                         warning=f"run.precision={precision} needs CUDA; training on {device.type} in fp32")
    dtype = _DTYPES[precision]
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return Precision(lambda: torch.autocast(device_type="cuda", dtype=dtype), scaler, precision)
