"""The on-disk form of validation splits: committed files, their checksums, and per-copy generated files.

Committed split (``downstream/splits/<dataset>/<protocol>-val.json``): a JSON object with
``format`` ("mast-bench-split"), ``format_version`` (1), ``dataset``, ``protocol``, ``scheme``
("random_split" | "ericsson"), ``base_split`` ("train"), ``n_total``, ``n_train``, ``n_val``,
``seed``, ``source`` and ``val_indices`` (sorted indices into the official train split in the
loader's sample order; the training part is the complement). ``downstream/splits/CHECKSUMS``
holds one ``<sha256>  <dataset>/<protocol>-val.json`` line per file (``sha256sum -c`` checks it).
A file whose sha256 or content disagrees with the dataset's declaration is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mast_bench.data.splits.seeded import SeededSplit, draw, ericsson_split
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.fileio import atomic_write_json, atomic_write_text, sha256_file
from mast_bench.registry import DATASETS

FORMAT = "mast-bench-split"
REPO = Path(__file__).resolve().parents[3]
SPLITS_DIR = Path(os.environ.get("MAST_BENCH_SPLITS_DIR", REPO / "downstream" / "splits"))
CHECKSUMS = "CHECKSUMS"


def split_file(dataset: str, protocol: str, splits_dir: Path | None = None) -> Path:
    return (splits_dir or SPLITS_DIR) / dataset / f"{protocol}-val.json"


def read_checksums(splits_dir: Path | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` from ``CHECKSUMS`` (``sha256sum`` format)."""
    path = (splits_dir or SPLITS_DIR) / CHECKSUMS
    if not path.is_file():
        raise ProtocolError(f"split checksum file {str(path)!r} is missing; run `python scripts/make_splits.py`")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip()] = digest
    return out


def load_committed_split(
    dataset: str, protocol: str, spec: SeededSplit, splits_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray, Path, str]:
    """Read a committed split, verifying its sha256 and that it is the declared split.

    Returns:
        (train_idx, val_idx, path, sha256); train_idx is the sorted complement of val_idx.
    """
    splits_dir = splits_dir or SPLITS_DIR
    path = split_file(dataset, protocol, splits_dir)
    rel = path.relative_to(splits_dir).as_posix()
    if not path.is_file():
        raise ProtocolError(f"committed split {str(path)!r} is missing; run `python scripts/make_splits.py`")
    digest = sha256_file(path)
    expected = read_checksums(splits_dir).get(rel)
    if digest != expected:
        raise ProtocolError(
            f"split file {str(path)!r} has sha256 {digest}, but {CHECKSUMS} records {expected}: "
            "the file was modified; restore it or regenerate both with `python scripts/make_splits.py`"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    want = {
        "format": FORMAT,
        "dataset": dataset,
        "protocol": protocol,
        "scheme": spec.scheme,
        "n_total": spec.n_total,
        "n_val": spec.n_val,
        "seed": spec.seed,
    }
    got = {k: data.get(k) for k in want}
    if got != want:
        raise ProtocolError(f"split file {str(path)!r} describes {got}, but the dataset declares {want}")
    val = np.asarray(data["val_indices"], dtype=np.int64)
    if len(val) != spec.n_val or np.any(np.diff(val) <= 0) or val[0] < 0 or val[-1] >= spec.n_total:
        raise ProtocolError(
            f"split file {str(path)!r}: val_indices must be {spec.n_val} sorted distinct indices "
            f"in 0..{spec.n_total - 1}"
        )
    return np.setdiff1d(np.arange(spec.n_total), val), val, path, digest


def _fingerprint(train: Any) -> tuple[int, str]:
    samples = getattr(train, "samples", None)
    if samples is None:
        raise ProtocolError("a generated validation split needs a train split with .samples (an image folder)")
    root = getattr(train, "root", "")
    text = "\n".join(f"{os.path.relpath(p, root)}\t{t}" for p, t in samples)
    return len(samples), hashlib.sha256(text.encode("utf-8")).hexdigest()


def generated_split(
    dataset: str, protocol: str, train: Any, record_dir: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray, Path, str]:
    """The split drawn from this copy on first use, or the one recorded in ``record_dir`` before.

    The file ``<record_dir>/splits/<dataset>-<protocol>-val.json`` keeps the indices and a sha256
    fingerprint of the ordered (file, label) list they index, so a changed copy is noticed.

    Returns:
        (train_idx, val_idx, path, sha256 of the file).
    """
    n_total, fingerprint = _fingerprint(train)
    path = Path(record_dir) / "splits" / f"{dataset}-{protocol}-val.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fingerprint") != fingerprint:
            raise DatasetError(
                f"the train split of {dataset!r} changed since the validation split in {str(path)!r} was drawn "
                f"(now {n_total} files); records in that folder used the old split: evaluate into a new --out"
            )
        val = np.asarray(data["val_indices"], dtype=np.int64)
        train_idx = np.setdiff1d(np.arange(n_total), val)
    else:
        spec = ericsson_split(n_total)
        train_idx, val = draw(spec)
        atomic_write_json(
            path,
            {
                "format": FORMAT,
                "format_version": 1,
                "dataset": dataset,
                "protocol": protocol,
                "scheme": spec.scheme,
                "n_total": n_total,
                "n_val": spec.n_val,
                "seed": spec.seed,
                "source": spec.source,
                "fingerprint": fingerprint,
                "val_indices": val.tolist(),
            },
        )
    return train_idx, val, path, sha256_file(path)


def committed_specs() -> dict[tuple[str, str], SeededSplit]:
    """Every (dataset, protocol) → SeededSplit declared by a registered dataset."""
    return {
        (name, p): spec
        for name, info in DATASETS.items()
        for p, spec in info.val_splits.items()
        if isinstance(spec, SeededSplit)
    }


def _payload(dataset: str, protocol: str, spec: SeededSplit) -> str:
    _, val = draw(spec)
    head = {
        "format": FORMAT,
        "format_version": 1,
        "dataset": dataset,
        "protocol": protocol,
        "scheme": spec.scheme,
        "n_total": spec.n_total,
        "n_train": spec.n_train,
        "n_val": spec.n_val,
        "seed": spec.seed,
        "source": spec.source,
        "base_split": "train",
    }
    body = json.dumps(head, indent=1, sort_keys=True)[:-2]  # keep the index list on one line per 20 entries
    rows = [", ".join(str(int(i)) for i in val[k : k + 20]) for k in range(0, len(val), 20)]
    return body + ',\n "val_indices": [\n  ' + ",\n  ".join(rows) + "\n ]\n}\n"


def write_committed_splits(splits_dir: Path | None = None) -> list[Path]:
    """(Re)write every declared seeded split and ``CHECKSUMS``; byte-identical on every run."""
    splits_dir = splits_dir or SPLITS_DIR
    lines, written = [], []
    for (dataset, protocol), spec in sorted(committed_specs().items()):
        path = atomic_write_text(split_file(dataset, protocol, splits_dir), _payload(dataset, protocol, spec))
        lines.append(f"{sha256_file(path)}  {path.relative_to(splits_dir).as_posix()}")
        written.append(path)
    atomic_write_text(splits_dir / CHECKSUMS, "\n".join(lines) + "\n")
    return written


def verify_committed_splits(splits_dir: Path | None = None) -> list[str]:
    """Problems with the committed files: missing, modified, or different from a fresh draw."""
    splits_dir = splits_dir or SPLITS_DIR
    problems = []
    for (dataset, protocol), spec in sorted(committed_specs().items()):
        try:
            _, val, path, _ = load_committed_split(dataset, protocol, spec, splits_dir)
        except ProtocolError as exc:
            problems.append(str(exc))
            continue
        if not np.array_equal(val, draw(spec)[1]):
            problems.append(f"{path}: differs from a fresh draw of {spec}")
    return problems
