"""Read a checkpoint file without ever running code from it.

Every checkpoint the harness reads goes through :func:`safe_load`: ``torch.load(...,
weights_only=True)`` restores tensors and plain Python values only, so a file that needs
arbitrary unpickling (``argparse.Namespace`` arguments, optimiser filters stored as
functions, a planted ``__reduce__``) is refused before any of its code can run. Files that
are not PyTorch checkpoints at all, or were cut short in transfer, get a message that
says which case it is.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mast_bench.errors import CheckpointError
from mast_bench.fileio import sha256_file

# torch.save writes a zip archive (PyTorch >= 1.6) or, with the legacy serialiser, a pickle
# stream that opens with protocol 2 (b"\x80\x02").
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"
# Formats people mistake for checkpoints, named in the error so the user sees the mix-up.
_KNOWN_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF", "an HDF5 file"),
)
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


@dataclass(frozen=True)
class LoadedFile:
    """A checkpoint read safely: the restored object, its path and the file's sha256."""

    obj: Any
    path: Path
    sha256: str


def _describe_foreign(head: bytes) -> str:
    for magic, what in _KNOWN_MAGIC:
        if head.startswith(magic):
            return what
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown binary file"
    return "a text file"


def _foreign_zip(path: Path) -> bool:
    """True for an intact zip archive without the ``<name>/data.pkl`` that torch.save writes."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False  # not intact: truncated or corrupt
    return not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)


def _unsafe_message(path: Path, exc: BaseException) -> str:
    found = sorted(set(_GLOBAL_RE.findall(str(exc))))
    what = f"Python objects ({', '.join(found)})" if found else "pickled Python objects"
    return (
        f"refusing to load checkpoint {str(path)!r}: it contains {what} that only arbitrary unpickling can "
        "restore, and unpickling can run code from the file. mast-bench reads checkpoints with "
        "torch.load(weights_only=True) (tensors and plain values only). Re-save the weights as tensors only, "
        "e.g. torch.save({'state_dict': ckpt['state_dict']}, 'clean.pth') without entries such as 'args'; "
        "if you trust the file, load it yourself with weights_only=False and re-save its state dict."
    )


def safe_load(path: str | Path) -> LoadedFile:
    """Load a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Args:
        path: the checkpoint file.

    Returns:
        The restored object (tensors, dicts, lists and plain values), the path and its sha256.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: a folder, an empty / truncated / corrupt file, a file that is not a PyTorch
            checkpoint, or a checkpoint that needs arbitrary unpickling.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {str(p)!r}")
    if p.is_dir():
        raise CheckpointError(f"checkpoint path {str(p)!r} is a folder; give the checkpoint file itself")
    with open(p, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise CheckpointError(f"checkpoint {str(p)!r} is empty (0 bytes)")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC)):
        raise CheckpointError(
            f"{str(p)!r} is not a PyTorch checkpoint: it looks like {_describe_foreign(head)} "
            "(torch.save writes a zip archive or a pickle stream)"
        )
    digest = sha256_file(p)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it did not write; the restricted unpickler still decides.
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise CheckpointError(_unsafe_message(p, exc)) from None
        raise CheckpointError(f"checkpoint {str(p)!r} is corrupt: {exc}") from None
    except (EOFError, RuntimeError, KeyError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if head.startswith(_ZIP_MAGIC) and _foreign_zip(p):
            raise CheckpointError(f"{str(p)!r} is a zip archive but not a PyTorch checkpoint (no data.pkl)") from None
        raise CheckpointError(
            f"checkpoint {str(p)!r} is truncated or corrupt and cannot be read ({type(exc).__name__}: {msg}); "
            "copy the file again and compare its sha256 with the source"
        ) from None
    return LoadedFile(obj=obj, path=p, sha256=digest)
