"""Atomic file writes and output-folder policy.

Every artefact the harness produces (checkpoints, records, CSVs, figures) is written to a
temporary file in the destination folder and renamed over the target, so a crash or
Ctrl-C never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class OutputDirError(ValueError):
    """An output folder that cannot be used as asked (exists with other content, unwritable)."""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is left exactly as it was.
    """
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open supports write modes only, got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would (0666 & ~umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> Path:
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def atomic_savefig(path: str | os.PathLike[str], fig: Any, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format taken from the target's suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=fmt, **kwargs)
    return Path(path)


def check_out_dir(path: str | os.PathLike[str], *, overwrite: bool = False, allowed: tuple[str, ...] = ()) -> Path:
    """The checks of :func:`prepare_out_dir` without creating anything: run them before a job's work.

    Raises:
        OutputDirError: as :func:`prepare_out_dir`, and for a folder that could not be created (its
            nearest existing parent is a file or not writable).
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"output path {str(out)!r} exists and is not a folder")
    if out.is_dir() and not overwrite:
        others = sorted(p.name for p in out.iterdir() if p.name not in allowed)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise OutputDirError(
                f"output folder {str(out)!r} already exists and holds other files ({shown}); "
                "choose another --out or pass --overwrite"
            )
    parent = out if out.is_dir() else next((p for p in out.absolute().parents if p.exists()), Path("/"))
    if not parent.is_dir():
        raise OutputDirError(f"cannot create output folder {str(out)!r}: Not a directory ({str(parent)!r} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"output folder {str(out)!r} is not writable ({str(parent)!r} is read-only)")
    return out


def prepare_out_dir(
    path: str | os.PathLike[str], *, overwrite: bool = False, allowed: tuple[str, ...] = ()
) -> Path:
    """Create ``path`` for a job's outputs, refusing a folder that holds anything else.

    Args:
        path: the output folder.
        overwrite: allow a non-empty folder (its files are replaced one by one as the job
            writes; nothing is deleted up front, so an aborted job loses nothing).
        allowed: names that may already exist without ``overwrite`` (e.g. the job's own
            checkpoint folder when resuming).

    Raises:
        OutputDirError: the folder exists with other content, is a file, or is not writable.
    """
    out = check_out_dir(path, overwrite=overwrite, allowed=allowed)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(f"cannot create output folder {str(out)!r}: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputDirError(f"output folder {str(out)!r} is not writable")
    try:  # os.access lies for root; probe for real.
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(f"output folder {str(out)!r} is not writable: {exc.strerror}") from None
    return out


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
