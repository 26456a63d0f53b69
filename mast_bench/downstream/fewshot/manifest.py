"""Episode manifests on disk: JSON written atomically, read back with every field checked.

A manifest file holds ``{"format": "mast-bench-fewshot-episodes", "version": 1, ...}`` plus
:meth:`EpisodeManifest.to_dict`: the dataset, the pool (fingerprint, size, splits), the protocol and
its class rule, N, K, Q, the number of episodes, the seed, the class rule's decisions, the identifiers
of the images used, each episode's classes, and the support and query indices into those identifiers.
Its sha256 goes into every record computed from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mast_bench.downstream.fewshot.episodes import EpisodeManifest
from mast_bench.errors import ProtocolError
from mast_bench.fileio import atomic_write_text, sha256_file

MANIFEST_FORMAT = "mast-bench-fewshot-episodes"
MANIFEST_VERSION = 1


def write_manifest(path: str | Path, manifest: EpisodeManifest) -> tuple[Path, str]:
    """Write ``manifest`` atomically as JSON; returns ``(path, sha256 of the file)``."""
    body = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **manifest.to_dict()}
    text = json.dumps(body, separators=(",", ":")) + "\n"
    out = atomic_write_text(path, text)
    return out, hashlib.sha256(text.encode()).hexdigest()


def manifest_sha256(path: str | Path) -> str:
    """sha256 of a manifest file's bytes."""
    return sha256_file(path)


def read_manifest(path: str | Path) -> EpisodeManifest:
    """Load a manifest written by :func:`write_manifest`.

    Raises:
        ProtocolError: the file is missing, not JSON, not a manifest, or internally inconsistent.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtocolError(f"episode manifest {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"episode manifest {str(path)!r} cannot be read ({exc})") from None
    if not isinstance(d, dict) or d.get("format") != MANIFEST_FORMAT:
        raise ProtocolError(f"{str(path)!r} is not a mast-bench episode manifest")
    if d.get("version") != MANIFEST_VERSION:
        raise ProtocolError(
            f"episode manifest {str(path)!r} has version {d.get('version')!r}; this mast-bench reads {MANIFEST_VERSION}"
        )
    try:
        m = EpisodeManifest(
            dataset=d["dataset"], pool_fingerprint=d["pool"]["fingerprint"], pool_size=int(d["pool"]["size"]),
            pool_splits=tuple(d["pool"]["splits"]), protocol=d["protocol"]["name"],
            protocol_version=d["protocol"]["version"], class_rule=d["protocol"]["class_rule"], ways=int(d["ways"]),
            shots=int(d["shots"]), queries=int(d["queries"]), seed=int(d["seed"]), decisions=dict(d["decisions"]),
            ids=tuple(d["ids"]), classes=tuple(tuple(c) for c in d["classes"]),
            support=np.asarray(d["support"], dtype=np.int64), query=np.asarray(d["query"], dtype=np.int64),
        )  # fmt: skip
        e = int(d["episodes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"episode manifest {str(path)!r} is malformed ({type(exc).__name__}: {exc})") from None
    shapes_ok = m.support.shape == (e, m.ways, m.shots) and m.query.shape == (e, m.ways, m.queries)
    in_range = all(x.size == 0 or (x.min() >= 0 and x.max() < len(m.ids)) for x in (m.support, m.query))
    if not shapes_ok or len(m.classes) != e or not in_range:
        raise ProtocolError(f"episode manifest {str(path)!r} is malformed (episode arrays do not match its header)")
    return m
