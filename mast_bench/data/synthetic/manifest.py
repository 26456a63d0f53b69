"""Reading side of the synthetic suite: layout constants, the manifest, verification, factor table.

Kept apart from the generator so that loaders (and ``mast-bench datasets check``) depend only on
the on-disk contract, not on the drawing code.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from mast_bench.errors import DatasetError
from mast_bench.fileio import sha256_file

FORMAT = "mast-bench-synthetic"
#: Bump whenever a change to the factors or the drawing changes any output byte. The version is part
#: of a suite's identity: loaders refuse a suite written by another version (see :func:`check_generator_version`).
#: 1: 32-px images, objects 4–9 px. 2: see ``docs/synthetic.md`` ("Version history").
GENERATOR_VERSION = 2
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
SCENE_SPLITS = ("train", "val")
PARTS = ("pool", "tasks", "fewshot", "scenes", "factors.csv")
SUITE_LAYOUT = (
    "<root>/manifest.json, <root>/pool/*.png, <root>/tasks/<task>/{train,val,test}/<class>/*.png, "
    "<root>/fewshot/<class>/*.png, <root>/scenes/{train,val}/*.png and "
    "<root>/scenes/annotations/instances_{train,val}.json; write it with "
    "`mast-bench datasets make-synthetic --out <root>`"
)


def load_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``root/manifest.json``; raises DatasetError naming the expected layout."""
    path = Path(root) / MANIFEST
    hint = f"(expected layout: {SUITE_LAYOUT})"
    if not path.is_file():
        raise DatasetError(f"no synthetic suite manifest at {str(path)!r}; the suite is missing or incomplete {hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"synthetic suite manifest {str(path)!r} is unreadable: {exc} {hint}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{str(path)!r} is not a synthetic suite manifest (format != {FORMAT!r}) {hint}")
    check_generator_version(manifest, path.parent)
    missing = [k for k in ("pool", "tasks", "fewshot", "scenes", "files") if not isinstance(manifest.get(k), dict)]
    if missing:
        raise DatasetError(f"synthetic suite manifest {str(path)!r} lacks the sections {missing} {hint}")
    return manifest


def regenerate_command(root: str | os.PathLike[str], manifest: dict[str, Any]) -> str:
    """The command that rewrites the suite at ``root`` with this code, keeping its seed and size."""
    seed, size = manifest.get("seed", 0), manifest.get("size", "demo")
    return f"mast-bench datasets make-synthetic --out {root} --seed {seed} --size {size} --overwrite"


def check_generator_version(manifest: dict[str, Any], root: str | os.PathLike[str]) -> None:
    """Refuse a suite written by another generator version (its images and factors differ from this code's).

    Raises:
        DatasetError: naming both versions and, for an older suite, the command that regenerates it.
    """
    found = manifest.get("generator_version")
    if found == GENERATOR_VERSION:
        return
    newer = isinstance(found, int) and not isinstance(found, bool) and found > GENERATOR_VERSION
    if newer:
        fix = f"upgrade mast-bench, or regenerate it with this version: `{regenerate_command(root, manifest)}`"
    else:
        fix = f"regenerate it: `{regenerate_command(root, manifest)}`"
    raise DatasetError(
        f"synthetic suite at {str(root)!r} was written by generator version {found!r}, but this mast-bench "
        f"reads only version {GENERATOR_VERSION}; {fix}"
    )


def check_suite_version(root: str | os.PathLike[str]) -> None:
    """Refuse a suite whose manifest names another generator version, even when the copy is not verified.

    A missing or unreadable manifest is left to :func:`load_manifest` (verification reports it).
    """
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return
    if isinstance(manifest, dict) and manifest.get("format") == FORMAT:
        check_generator_version(manifest, root)


def verify_suite(root: str | os.PathLike[str]) -> list[str]:
    """Check every file of a suite against the manifest's sha256; returns the problems found (empty = valid)."""
    root = Path(root)
    files = load_manifest(root)["files"]
    problems = []
    for rel, digest in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"missing file {rel}")
        elif sha256_file(path) != digest:
            problems.append(f"checksum mismatch for {rel}")
    for part in PARTS:
        base = root / part
        found = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        rels = [p.relative_to(root).as_posix() for p in found]
        problems += [f"unexpected file {rel}" for rel in rels if rel not in files]
    return problems


def read_factors(root: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of ``root/factors.csv`` (strings; see ``synthetic_factors.factors_from_row``)."""
    path = Path(root) / "factors.csv"
    if not path.is_file():
        raise DatasetError(f"no factor table at {str(path)!r} (expected layout: {SUITE_LAYOUT})")
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
