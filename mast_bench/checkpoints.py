"""The one reader of checkpoint files: safe load, mast-bench format and version rules, strict weight loads.

Every ``.pt``/``.pth`` the harness reads goes through :func:`safe_load`, the only ``torch.load`` of the
package, with ``weights_only=True``: tensors and plain Python values only, so a file that needs
arbitrary unpickling (``argparse.Namespace`` arguments, optimiser filters stored as functions, a
planted ``__reduce__``) is refused before any of its code can run. Files that are not PyTorch
checkpoints at all, or were cut short in transfer, get a message that says which case it is.

On top of it: :func:`load_checkpoint` (mast-bench's own pretraining checkpoints, format and version
checked), :func:`check_format` (the version rule the converter shares), :func:`read_weights` (caches:
tensors only, no sha256 pass) and :func:`load_strict` / :func:`strict_mismatch` (every key accounted for,
leftovers named), which pretraining, the methods and the analyses use to restore modules.

mast-bench checkpoint layout (``format_version`` 1)::

    {"format": "mast-bench-checkpoint", "format_version": 1,
     "backbone": {torchvision-style keys}, "projector": {...}, "method_state": {...},
     "optimizer": {...},            # resumable checkpoints only
     "resume": {"rng": ..., "scaler": ..., "steps_per_epoch": int, "world_size": int},  # resumable only
     "meta": {"method", "backbone": BackboneSpec.to_dict(), "recipe", "epoch" (completed epochs), "step",
              "complete", "code_version", "created"}}

Version rule: a reader accepts every ``format_version`` up to :data:`FORMAT_VERSION` (bump it, and keep
reading the older layouts, whenever the layout changes); a newer file is refused with both numbers.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mast_bench.errors import CheckpointError
from mast_bench.fileio import sha256_file

FORMAT = "mast-bench-checkpoint"
FORMAT_VERSION = 1
REQUIRED = ("backbone", "projector", "method_state", "meta")
REQUIRED_META = ("method", "backbone", "recipe", "epoch", "step", "complete")

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
    """A checkpoint read safely: the restored object, its path and the file's sha256 ("" when not hashed)."""

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


def safe_load(path: str | Path, *, hash_file: bool = True) -> LoadedFile:
    """Load a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Args:
        path: the checkpoint file.
        hash_file: also compute the file's sha256 (skipped by caches that key entries otherwise).

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
    digest = sha256_file(p) if hash_file else ""
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


def read_weights(path: str | Path) -> Any:
    """What a cache entry written by ``torch.save`` holds (tensors and plain values), read safely.

    Raises:
        FileNotFoundError, CheckpointError: as :func:`safe_load`; caches treat both as a miss.
    """
    return safe_load(path, hash_file=False).obj


def readable_version(version: Any) -> bool:
    """The version rule: an integer ``format_version`` from 1 up to :data:`FORMAT_VERSION` (not a bool)."""
    return isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= FORMAT_VERSION


def check_format(ckpt: Any, where: str) -> dict[str, Any]:
    """Apply the mast-bench format and version rules to a loaded object; returns it as a dict.

    Raises:
        CheckpointError: no ``format`` marker, a ``format_version`` newer than :data:`FORMAT_VERSION`
            (or not an integer), or missing required entries.
    """
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{where} is not a mast-bench checkpoint (no 'format': {FORMAT!r} entry); "
            "for weights from other code use `mast-bench convert`"
        )
    version = ckpt.get("format_version")
    if not readable_version(version):
        raise CheckpointError(
            f"checkpoint {where} has format_version {version!r}; this code reads up to {FORMAT_VERSION}"
        )
    missing = [k for k in REQUIRED if not isinstance(ckpt.get(k), dict)]
    missing += [f"meta.{k}" for k in REQUIRED_META if isinstance(ckpt.get("meta"), dict) and k not in ckpt["meta"]]
    if missing:
        raise CheckpointError(f"checkpoint {where} lacks {', '.join(missing)}")
    return ckpt


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a mast-bench checkpoint on the CPU (:func:`safe_load`, then :func:`check_format`).

    Raises:
        CheckpointError: missing file, truncated or non-torch file, objects that are not tensors or
            plain values, a foreign format, a newer format version, or missing entries.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist")
    return check_format(safe_load(p, hash_file=False).obj, repr(str(p)))


def strict_mismatch(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """``["missing keys: ...", "unexpected keys: ...", "shape mismatch: ..."]`` (only the non-empty parts)."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    parts = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes))
    return [f"{label}: {', '.join(keys)}" for label, keys in parts if keys]


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` requiring the same keys and shapes; name every leftover key.

    Raises:
        CheckpointError: ``<what> weights do not match the model: missing keys: ...; unexpected keys: ...``.
    """
    problems = strict_mismatch(module.state_dict(), state)
    if problems:
        raise CheckpointError(f"{what} weights do not match the model: " + "; ".join(problems))
    module.load_state_dict(dict(state), strict=True)
