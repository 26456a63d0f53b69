"""Output paths, the refusal to replace existing files, and the JSON sidecar every writer emits."""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mast_bench import code_version
from mast_bench.convert.report import Converted
from mast_bench.fileio import OutputDirError, atomic_open

SIDECAR_FORMAT = "mast-bench-converted-weights"


def check_output(
    out: str | Path, suffixes: tuple[str, ...], companions: tuple[str, ...], overwrite: bool
) -> list[Path]:
    """Validate a writer's output path; return it followed by its companion files.

    Args:
        out: the weights file to write.
        suffixes: accepted suffixes of ``out`` (e.g. ``(".pth", ".pt")``).
        companions: suffixes of the files written next to it (``".json"``, ``".yaml"``).
        overwrite: replace existing files instead of refusing.

    Raises:
        OutputDirError: a wrong suffix, a folder in the way, or existing files without ``overwrite``.
    """
    path = Path(out)
    if path.suffix not in suffixes:
        raise OutputDirError(f"output {str(path)!r} must end in {' or '.join(suffixes)}")
    paths = [path] + [path.with_suffix(s) for s in companions]
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise OutputDirError(f"output path {folders[0]!r} is a folder; give a file name")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputDirError(f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder")
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputDirError(
            f"output already exists: {', '.join(existing)}; pass --overwrite to replace it (nothing was written)"
        )
    return paths


@contextlib.contextmanager
def atomic_files(paths: list[Path], modes: list[str]) -> Iterator[list[IO[Any]]]:
    """Open temporaries for all ``paths``; rename them into place only if the block succeeds.

    The first path is renamed last, so a weights file never appears without its companions.
    """
    with contextlib.ExitStack() as stack:
        handles = [
            stack.enter_context(atomic_open(p, m) if "b" in m else atomic_open(p, m, encoding="utf-8"))
            for p, m in zip(paths, modes)
        ]
        yield handles


def sidecar(conv: Converted, target: str, weights: Path, weights_sha256: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Provenance of a converted weights file (written as JSON next to it)."""
    spec = conv.spec
    return {
        "format": SIDECAR_FORMAT,
        "format_version": 1,
        "target": target,
        "weights_file": weights.name,
        "weights_sha256": weights_sha256,
        "source_file": str(Path(conv.source).resolve()) if conv.source else "",
        "source_format": conv.report.source_format,
        "source_sha256": conv.report.source_sha256,
        "architecture": spec.name,
        "backbone": spec.to_dict(),
        "normalization": {"mean": list(spec.mean), "std": list(spec.std), "pixel_range": "RGB in [0, 1]"},
        "input_size": conv.input_size,
        "code_version": code_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
        "report": conv.report.to_dict(),
    }
