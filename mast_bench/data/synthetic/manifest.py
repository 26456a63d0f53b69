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
#: Bump whenever a change to the factors or the drawing changes any output byte.
GENERATOR_VERSION = 1
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
    if manifest.get("generator_version") != GENERATOR_VERSION:
        raise DatasetError(
            f"synthetic suite at {str(path.parent)!r} was written by generator version "
            f"{manifest.get('generator_version')!r}, this code reads version {GENERATOR_VERSION}; regenerate it {hint}"
        )
    missing = [k for k in ("pool", "tasks", "fewshot", "scenes", "files") if not isinstance(manifest.get(k), dict)]
    if missing:
        raise DatasetError(f"synthetic suite manifest {str(path)!r} lacks the sections {missing} {hint}")
    return manifest


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
