"""Verify a local copy of a dataset against its official description.

Every real-data module describes its copy as a :class:`~mast_bench.data.verify.listing.DatasetListing`
(see that module for the contract). Two users of the checks:

* ``mast-bench datasets check NAME --data-root DIR`` → :func:`check_dataset`: every check,
  including decoding every image (:func:`mast_bench.data.images.open_image`, the readers' own path)
  and duplicate images by content hash, rendered as a report; ``--quick`` checks only that every
  listed file is present and not empty.
* the loaders (``info.build(..., verify=True)``) → :func:`verify_listing`: the cheap checks only
  (index files, files present, counts, class counts, repeated entries, checksums), raising
  :class:`~mast_bench.errors.DatasetError` that says what differs and when ``--no-verify`` is
  appropriate.

Nothing here writes to the dataset folder or anywhere else.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mast_bench.data.images import open_image
from mast_bench.data.verify.listing import (
    DatasetListing,
    OfficialChecksum,
    SplitListing,
    content_keys,
    file_digest,
    listing_for,
)
from mast_bench.errors import DatasetError

Status = Literal["ok", "info", "warn", "fail"]
_SHOW = 5  # examples quoted per problem
_SHOW_UNREADABLE = 20  # unreadable images listed by name (the rest are counted)


@dataclass(frozen=True)
class CheckItem:
    status: Status
    topic: str
    message: str


@dataclass
class CheckReport:
    """The outcome of checking one copy: a list of findings; ``ok`` when none failed."""

    dataset: str
    root: Path
    layout: str
    items: list[CheckItem] = field(default_factory=list)

    def add(self, status: Status, topic: str, message: str) -> None:
        self.items.append(CheckItem(status, topic, message))

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckItem]:
        return [i for i in self.items if i.status == "fail"]

    @property
    def warnings(self) -> list[CheckItem]:
        return [i for i in self.items if i.status == "warn"]

    def render(self) -> str:
        """Human-readable report, one finding per line, verdict last."""
        lines = [f"dataset: {self.dataset}", f"root:    {self.root}", f"layout:  {self.layout}"]
        tag = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}
        lines += [f"  {tag[i.status]}  {i.topic:10s} {i.message}" for i in self.items]
        n_fail, n_warn = len(self.failures), len(self.warnings)
        verdict = "OK" if self.ok else f"FAILED: {n_fail} problem{'s' * (n_fail != 1)}"
        lines.append(f"{verdict}" + (f" ({n_warn} warning{'s' * (n_warn != 1)})" if n_warn else ""))
        return "\n".join(lines)

    def error_message(self) -> str:
        """The DatasetError text for a load that failed verification."""
        fails = self.failures
        what = "; ".join(i.message for i in fails[:3]) + (f"; and {len(fails) - 3} more" if len(fails) > 3 else "")
        return (
            f"dataset {self.dataset!r} at {str(self.root)!r} does not match the official copy "
            f"(counts, files or checksums differ): {what}. "
            f"Run `mast-bench datasets check {self.dataset} --data-root {self.root}` for the full report. "
            "Pass --no-verify (verify=False) only for a copy you know is partial, such as a test subset; "
            f"otherwise re-extract the official files. Expected layout: {self.layout}"
        )


# ----------------------------------------------------------------------------------------------
# the checks


def _examples(values: Iterable[Any]) -> str:
    values = list(values)
    return ", ".join(str(v) for v in values[:_SHOW]) + (", ..." if len(values) > _SHOW else "")


def _class_counts(targets: Sequence[Any]) -> Counter[int]:
    """Images per class; a multi-label target is a tuple of class indices or a multi-hot vector (C,)."""
    import numpy as np

    counts: Counter[int] = Counter()
    for t in targets:
        if getattr(t, "ndim", 0) == 1:  # multi-hot numpy array or tensor
            counts.update(int(c) for c in np.flatnonzero(np.asarray(t) > 0))
        elif isinstance(t, (tuple, list, set, frozenset)):
            counts.update(int(c) for c in t)
        else:
            counts[int(t)] += 1
    return counts


def _check_split(report: CheckReport, listing: DatasetListing, split: SplitListing) -> None:
    n = len(split)
    if split.expected_count is None:
        report.add("info", "count", f"{split.name}: {n} images (no official count to compare)")
    elif n != split.expected_count:
        report.add("fail", "count", f"{split.name}: {n} images, expected {split.expected_count}")
    else:
        report.add("ok", "count", f"{split.name}: {n} images")
    if split.files is not None and not split.scanned:
        missing = [f for f in split.files if not os.path.isfile(f)]
        if missing:
            report.add(
                "fail",
                "files",
                f"{split.name}: {len(missing)} of {n} listed files missing, e.g. {_rel(listing, missing)}",
            )
        else:
            report.add("ok", "files", f"{split.name}: all {n} listed files present")
    if split.files is not None:
        repeated = [p for p, c in Counter(os.path.normpath(f) for f in split.files).items() if c > 1]
        if repeated:
            report.add(
                "fail",
                "duplicates",
                f"{split.name}: {len(repeated)} files listed more than once, e.g. {_rel(listing, repeated)}",
            )
    n_classes = len(listing.classes)
    if not n_classes or not split.labeled:  # an unlabeled pool: nothing to count per class
        return
    counts = _class_counts(split.targets)
    bad = sorted(c for c in counts if not 0 <= c < n_classes)
    if bad:
        report.add("fail", "classes", f"{split.name}: labels outside 0..{n_classes - 1}: {_examples(bad)}")
    absent = [listing.classes[c] for c in range(n_classes) if counts[c] == 0]
    if split.expected_per_class is not None:
        off = {listing.classes[c]: counts[c] for c in range(n_classes) if counts[c] != split.expected_per_class}
        if off:
            report.add(
                "fail",
                "classes",
                f"{split.name}: {len(off)} classes do not have {split.expected_per_class} "
                "images, e.g. " + _examples(f"{k}={v}" for k, v in off.items()),
            )
        else:
            report.add("ok", "classes", f"{split.name}: {split.expected_per_class} images in each class")
    elif absent:
        report.add("warn", "classes", f"{split.name}: {len(absent)} classes have no images, e.g. {_examples(absent)}")
    elif n_classes:
        per = [counts[c] for c in range(n_classes)]
        report.add("info", "classes", f"{split.name}: {min(per)}..{max(per)} images per class")


def _check_duplicates(report: CheckReport, listing: DatasetListing, workers: int, progress: bool) -> None:
    where: dict[str, list[tuple[str, int]]] = defaultdict(list)
    hashed = False
    for split in listing.splits:
        for i, key in enumerate(content_keys(split, workers, progress)):
            hashed = True
            where[key].append((split.name, i))
    if not hashed:
        return

    def name(split_name: str, i: int) -> str:
        split = next(s for s in listing.splits if s.name == split_name)
        return os.path.relpath(split.files[i], listing.root) if split.files is not None else f"{split_name}[{i}]"

    groups = [occ for occ in where.values() if len(occ) > 1]
    across = [g for g in groups if len({s for s, _ in g}) > 1]
    within = [g for g in groups if len({s for s, _ in g}) == 1]
    # Across splits an identical image leaks test data into training; within a split it only reweights it.
    if across:
        report.add(
            "fail",
            "duplicates",
            f"{len(across)} images occur in more than one split (identical bytes), e.g. "
            + _examples(" = ".join(name(s, i) for s, i in g) for g in across),
        )
    if within:
        report.add(
            "warn",
            "duplicates",
            f"{len(within)} images occur more than once within a split, e.g. "
            + _examples(" = ".join(name(s, i) for s, i in g) for g in within),
        )
    if not groups:
        report.add("ok", "duplicates", "no identical images within or across splits")


def _check_sizes(report: CheckReport, listing: DatasetListing) -> None:
    """Every listed file present and not empty (the ``--quick`` check; no decoding)."""
    for split in listing.splits:
        if split.files is None:
            continue
        sizes = [os.stat(f).st_size if os.path.isfile(f) else -1 for f in split.files]
        missing = [f for f, s in zip(split.files, sizes) if s < 0]
        empty = [f for f, s in zip(split.files, sizes) if s == 0]
        if missing and split.scanned:  # unlisted copies (a scan) cannot miss files; a vanished one is worth saying
            report.add("fail", "files", f"{split.name}: {len(missing)} files vanished, e.g. " + _rel(listing, missing))
        if empty:
            report.add("fail", "size", f"{split.name}: {len(empty)} empty files (0 bytes): " + _rel(listing, empty))
        elif not missing:
            report.add("ok", "size", f"{split.name}: no empty files")


def _rel(listing: DatasetListing, files: Sequence[Any]) -> str:
    return _examples(os.path.relpath(f, listing.root) for f in files)


def _decode_error(path: Any) -> str | None:
    try:
        open_image(path)
    except DatasetError as exc:
        return str(exc)
    return None


def _check_decode(report: CheckReport, listing: DatasetListing, workers: int, progress: bool) -> None:
    """Decode every image file the way the readers do; list the ones that cannot be read."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    for split in listing.splits:
        if split.files is None:
            if split.arrays is not None:
                report.add("ok", "decode", f"{split.name}: raw pixel arrays (sizes checked, nothing to decode)")
            continue
        files = [f for f in split.files if os.path.isfile(f)]
        bad: list[str] = []
        bar = tqdm(total=len(files), desc=f"decoding {split.name}", unit="img", disable=not progress, leave=False)
        with bar, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PIL releases the GIL while decoding
            for start in range(0, len(files), 1024):  # blocks bound the pending futures
                block = files[start : start + 1024]
                bad += [e for e in pool.map(_decode_error, block) if e is not None]
                bar.update(len(block))
        if bad:
            shown = "; ".join(e.removeprefix("cannot read image ") for e in bad[:_SHOW_UNREADABLE])
            more = f"; and {len(bad) - _SHOW_UNREADABLE} more" if len(bad) > _SHOW_UNREADABLE else ""
            report.add(
                "fail", "decode", f"{split.name}: {len(bad)} of {len(files)} images cannot be read: {shown}{more}"
            )
        else:
            report.add("ok", "decode", f"{split.name}: all {len(files)} images decode")


def _check_checksums(report: CheckReport, listing: DatasetListing, splits: Sequence[str] | None) -> None:
    for cs in listing.checksums:
        if splits is not None and cs.splits and not set(cs.splits) & set(splits):
            continue
        path = listing.root / cs.path
        if not path.is_file():
            report.add("fail", "checksum", f"{cs.path} is missing")
            continue
        got = file_digest(path, cs.algorithm)
        if got != cs.digest:
            report.add("fail", "checksum", f"{cs.algorithm} of {cs.path} is {got}, the official value is {cs.digest}")
        else:
            report.add("ok", "checksum", f"{cs.algorithm} of {cs.path} matches {cs.source or 'the official value'}")


def check_listing(
    listing: DatasetListing,
    *,
    duplicates: bool = True,
    checksums: bool = True,
    splits: Sequence[str] | None = None,
    workers: int = 4,
    progress: bool = True,
    decode: bool = False,
    sizes: bool = False,
) -> CheckReport:
    """Run the checks on a listing.

    Args:
        listing: the copy as the dataset module describes it.
        duplicates: also hash every image's bytes and look for identical images (reads the whole copy).
        decode: decode every image file with the readers' own path and list those that cannot be read.
        sizes: check that no listed file is empty (implied by ``decode``).
        checksums: compare published checksums (restricted to files that ``splits`` read, if given).
        splits: the splits a loader is about to read (``None`` = all listed).
        workers: threads used for content hashing.
        progress: show a tqdm bar while hashing.
    """
    report = CheckReport(listing.dataset, listing.root, listing.layout)
    for problem in listing.problems:
        report.add("fail", "layout", problem)
    n_classes = len(listing.classes)
    if listing.expected_num_classes is not None and n_classes != listing.expected_num_classes:
        report.add("fail", "classes", f"{n_classes} classes, expected {listing.expected_num_classes}")
    else:
        report.add("ok", "classes", f"{n_classes} classes")
    for split in listing.splits:
        _check_split(report, listing, split)
    if len(listing.splits) > 1 and all(s.files is not None for s in listing.splits):
        seen: dict[str, str] = {}
        shared: list[str] = []
        for split in listing.splits:
            for f in {os.path.normpath(p) for p in split.files or ()}:
                if f in seen and seen[f] != split.name:
                    shared.append(os.path.relpath(f, listing.root))
                seen.setdefault(f, split.name)
        if shared:
            report.add(
                "fail",
                "duplicates",
                f"{len(shared)} files are listed in more than one split, e.g. " + _examples(shared),
            )
    if sizes and not decode:
        _check_sizes(report, listing)
    if decode:
        _check_decode(report, listing, workers, progress)
    if checksums:
        _check_checksums(report, listing, splits)
    if duplicates:
        _check_duplicates(report, listing, workers, progress)
    return report


def check_dataset(
    name: str,
    root: str | os.PathLike[str],
    *,
    duplicates: bool = True,
    workers: int = 4,
    progress: bool = True,
    quick: bool = False,
) -> CheckReport:
    """Check a local copy of a registered dataset: every check, rendered with ``.render()``.

    A copy whose layout is wrong (missing index files, unreadable folder) gives a report with a
    single ``layout`` failure rather than an exception, so the CLI always prints a report.

    Args:
        name: registry name (``cifar10``, ``sun397``, ``synthetic-shape``, ...).
        root: the data root passed as ``--data-root``.
        duplicates: hash every image to find identical images within and across splits.
        workers: threads for decoding and content hashing.
        progress: tqdm bars while decoding and hashing.
        quick: only the listing, counts and the presence and size of every file: no decoding, no
            checksums, no duplicate search.

    Returns:
        CheckReport with ``.ok``, ``.items`` and ``.render()``.
    """
    from mast_bench.registry import DATASETS

    info = DATASETS.get(name)
    try:
        listing = listing_for(name, root)
    except DatasetError as exc:
        report = CheckReport(name, Path(root), info.layout)
        report.add("fail", "layout", str(exc))
        return report
    if quick:
        return check_listing(listing, duplicates=False, checksums=False, workers=workers, progress=progress, sizes=True)
    return check_listing(listing, duplicates=duplicates, workers=workers, progress=progress, decode=True)


def verify_listing(listing: DatasetListing, splits: Sequence[str] | None = None) -> None:
    """Load-time verification: the cheap checks (no content hashing); raise DatasetError if any fails.

    Args:
        listing: the copy as its dataset module lists it.
        splits: the splits about to be loaded; checksums of files only other splits read are skipped.
    """
    report = check_listing(listing, duplicates=False, splits=splits, progress=False)
    if not report.ok:
        raise DatasetError(report.error_message())


def verify_checksums(
    dataset: str, root: Path, layout: str, checksums: Sequence[OfficialChecksum], splits: Sequence[str] | None = None
) -> None:
    """Compare published checksums before a file is parsed (e.g. before unpickling CIFAR batches)."""
    verify_listing(DatasetListing(dataset, root, layout, (), None, (), checksums), splits)
