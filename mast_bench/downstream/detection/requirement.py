"""The one place that imports Detectron2 for the detection evaluator, with a one-line error when it is absent.

Detectron2 is an optional dependency (``make setup`` installs it). Every module of this package that needs it
calls :func:`require_detectron2` first, so a missing install is reported as a user error naming the fix, not
as an ``ImportError`` traceback from deep inside a training run.
"""

from __future__ import annotations

from types import ModuleType

from mast_bench.errors import ProtocolError

INSTALL_HINT = (
    "Detectron2 is not installed; run `make setup` (or install it as the README describes) to evaluate detection"
)


class Detectron2Missing(ProtocolError):
    """Detectron2 cannot be imported (a user error: the CLI prints it as one line, exit 2)."""


def require_detectron2() -> ModuleType:
    """Import and return ``detectron2``.

    Raises:
        Detectron2Missing: it is not installed (or fails to import); the message names ``make setup``.
    """
    try:
        import detectron2
        import detectron2.config
    except ImportError as exc:
        raise Detectron2Missing(f"{INSTALL_HINT} ({exc})") from None
    return detectron2


def detectron2_version() -> str:
    """The installed Detectron2 version (recorded in every detection record)."""
    return str(require_detectron2().__version__)
