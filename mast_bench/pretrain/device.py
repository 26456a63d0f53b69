"""Training device and mixed precision.

``run.precision`` bf16/fp16 runs the forward pass under ``torch.autocast`` on CUDA (VICReg trains
with mixed precision); fp16 also uses a gradient scaler. On the CPU the run stays in fp32 and says
so, because CPU autocast is slower than fp32 for these convolutions and changes the numerics.
``run.compile`` compiles the training model where a compiler backend works and falls back to eager
mode with a recorded warning where none does; :func:`environment` describes the machine for the log.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision

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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def compile_probe(device: torch.device) -> str | None:
    """Compile and run a two-op function on ``device``; ``None`` if it works, else the reason it failed.

    ``torch.compile`` is lazy: a missing backend (no C++ compiler for the CPU, no Triton for CUDA, a
    platform without inductor) surfaces only at the first call, deep inside the first training step.
    The probe makes that failure happen up front, where the run can fall back cleanly.
    """
    try:
        fn = torch.compile(lambda x: torch.sin(x) * 2.0 + 1.0, dynamic=False)
        fn(torch.ones(4, device=device))
    except Exception as exc:  # any backend failure means "no working compiler here"
        return _first_line(exc)
    finally:
        torch._dynamo.reset()  # the probe's cache must not count against the model's recompile limit
    return None


def maybe_compile(
    model: torch.nn.Module, enabled: bool, device: torch.device
) -> tuple[torch.nn.Module, bool, str | None]:
    """``torch.compile(model)`` when ``enabled`` and a compiler backend works on ``device``.

    Returns:
        ``(model to train, compiled, warning)``: the compiled model, ``True``, ``None``; or the eager
        model, ``False`` and, if compilation was asked for, the warning to log (the fallback is recorded).
    """
    if not enabled:
        return model, False, None
    reason = compile_probe(device)
    if reason is not None:
        warning = f"run.compile: torch.compile does not work on this machine ({reason}); training in eager mode"
        return model, False, warning
    # A failure the probe could not foresee (an op the backend cannot lower) falls back to eager per graph
    # instead of stopping the run.
    torch._dynamo.config.suppress_errors = True
    return torch.compile(model), True, None


def environment(device: torch.device) -> dict[str, str]:
    """What the run executes on, for the log's ``start``/``resume`` line: versions and the accelerator."""
    env = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
           "platform": platform.platform(), "cpu_threads": str(torch.get_num_threads())}
    if device.type == "cuda":
        env.update(cuda=str(torch.version.cuda), cudnn=str(torch.backends.cudnn.version()),
                   gpu=torch.cuda.get_device_name(device))
    return env
