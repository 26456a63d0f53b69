"""CIFAR-10 and CIFAR-100 from the official python pickle batches, read by torchvision.

Sample order: torchvision's (``data_batch_1`` … ``data_batch_5`` in file order for CIFAR-10, the
single ``train`` file for CIFAR-100); the committed seeded splits index this order.
"""

from __future__ import annotations

import pickle
import pickletools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from torchvision.datasets import CIFAR10, CIFAR100

from mast_bench.data.register import register_reader
from mast_bench.data.splits.seeded import augself_split, ericsson_split
from mast_bench.data.verify.check import verify_checksums, verify_listing
from mast_bench.data.verify.listing import DatasetListing, OfficialChecksum, SplitListing, require_paths
from mast_bench.errors import DatasetError


class _CIFAR10(CIFAR10):
    """torchvision's CIFAR-10 reader minus its own md5 pass (done beforehand by ``verify_checksums``)."""

    meta: ClassVar[dict[str, Any]] = {**CIFAR10.meta, "md5": None}

    def _check_integrity(self) -> bool:
        return True


class _CIFAR100(CIFAR100):
    """torchvision's CIFAR-100 reader minus its own md5 pass."""

    meta: ClassVar[dict[str, Any]] = {**CIFAR100.meta, "md5": None}

    def _check_integrity(self) -> bool:
        return True


@dataclass(frozen=True)
class _Variant:
    name: str
    tv: type[CIFAR10]  # torchvision class: folder name and the published md5 table
    reader: type[CIFAR10]
    num_classes: int
    per_class: dict[str, int]  # official images per class and split (Krizhevsky 2009)

    @property
    def folder(self) -> str:
        return self.tv.base_folder

    @property
    def files(self) -> dict[str, list[list[str]]]:
        return {"train": self.tv.train_list, "test": self.tv.test_list}

    @property
    def layout(self) -> str:
        names = [f for f, _ in self.tv.train_list + self.tv.test_list] + [self.tv.meta["filename"]]
        return (
            f"<root>/{self.folder}/{{{', '.join(names)}}}: the extracted {self.tv.filename} "
            f"(python pickle batches, read by torchvision.datasets.{self.tv.__name__})"
        )

    def checksums(self) -> list[OfficialChecksum]:
        src = f"torchvision.datasets.{self.tv.__name__}"
        out = [
            OfficialChecksum(f"{self.folder}/{f}", md5, "md5", src, (split,))
            for split, files in self.files.items()
            for f, md5 in files
        ]
        out.append(OfficialChecksum(f"{self.folder}/{self.tv.meta['filename']}", self.tv.meta["md5"], "md5", src))
        return out


# What pickled numpy arrays reference (the official batches: Python 2 protocol 2; re-pickled copies: any
# protocol). Anything else could run code when unpickled.
_SAFE_GLOBALS = frozenset(
    {
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.ndarray",
        "numpy.dtype",
        "_codecs.encode",
    }
)
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
)


def pickle_globals(path: Path) -> list[str]:
    """The callables a pickle file would import, read from its opcodes without executing it.

    ``STACK_GLOBAL`` operands are followed through the memo; one that cannot be resolved is
    reported as ``"<unknown>"``, and ``INST``/``OBJ``/extension-registry opcodes as ``"<NAME>"``.
    """
    found: list[str] = []
    memo: dict[Any, Any] = {}
    pushed: list[Any] = []  # what the last opcodes pushed, where it is a known string
    with open(path, "rb") as fh:
        for op, arg, _ in pickletools.genops(fh):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                mod, name = pushed[-2:] if len(pushed) >= 2 else (None, None)
                found.append(f"{mod}.{name}" if isinstance(mod, str) and isinstance(name, str) else "<unknown>")
            elif op.name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4"):
                found.append(f"<{op.name}>")
            if op.name in _STRING_OPS:
                pushed.append(arg)
            elif op.name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = pushed[-1] if pushed else None
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(arg))
            else:
                pushed.append(None)
    return found


_IMAGE_BYTES = 3 * 32 * 32


def _file_images(v: _Variant, f: str) -> int | None:
    """Images the official data file ``f`` holds (None for the metadata file)."""
    for split, files in v.files.items():  # a split's images are spread evenly over its files
        if f in [name for name, _ in files]:
            return v.per_class[split] * v.num_classes // len(files)
    return None


def _truncated(v: _Variant, root: Path, f: str, why: str) -> DatasetError:
    path = root / v.folder / f
    n = _file_images(v, f)
    expected = f"; the official file holds {n} images of {_IMAGE_BYTES} bytes ({n * _IMAGE_BYTES} bytes of pixels)"
    return DatasetError(
        f"dataset {v.name!r}: {v.folder}/{f} is truncated or corrupt ({why}; it has {path.stat().st_size} bytes"
        f"{expected if n else ''}); re-extract {v.tv.filename} (expected layout: {v.layout})"
    )


def _diagnose(v: _Variant, root: Path, files: Sequence[str]) -> DatasetError | None:
    """The first data file whose pixels or labels are not whole images, as an error naming it (already scanned)."""
    for f in files:
        if _file_images(v, f) is None:
            continue
        try:
            with open(root / v.folder / f, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")  # only opcodes checked by pickle_globals or the md5
            data, labels = entry["data"], entry.get("labels", entry.get("fine_labels"))
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError, TypeError) as exc:
            return _truncated(v, root, f, f"{type(exc).__name__}: {exc}")
        if getattr(data, "size", 0) % _IMAGE_BYTES or len(data) != len(labels or ()):
            return _truncated(
                v, root, f, f"{getattr(data, 'size', 0)} pixel bytes and {len(labels or ())} labels do not make whole "
                "32x32 RGB images with one label each"
            )
    return None


def _open(
    v: _Variant, root: Path, split: str, transform: Callable[[Any], Any] | None = None, checked: bool = False
) -> CIFAR10:
    """torchvision's reader on one split; ``checked`` = the md5s matched, otherwise the pickles are scanned first."""
    needed = [f for f, _ in v.files[split]] + [v.tv.meta["filename"]]
    require_paths(root, [f"{v.folder}/{f}" for f in needed], dataset=v.name, layout=v.layout)
    for f in [] if checked else needed:
        try:
            unsafe = sorted(set(pickle_globals(root / v.folder / f)) - _SAFE_GLOBALS)
        except (ValueError, EOFError) as exc:  # cut short, or not a pickle at all
            raise _truncated(v, root, f, f"its pickle stream does not parse: {exc}") from None
        if unsafe:
            raise DatasetError(
                f"dataset {v.name!r}: refusing to unpickle {v.folder}/{f}: it references {unsafe[:3]}, which the "
                f"official CIFAR batches never do (expected layout: {v.layout})"
            )
    try:
        return v.reader(root, train=split == "train", transform=transform, download=False)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError) as exc:
        found = _diagnose(v, root, needed)
        if found is not None:
            raise found from None
        raise DatasetError(
            f"dataset {v.name!r}: cannot read the pickle batches under {str(root / v.folder)!r} ({exc}); "
            f"expected layout: {v.layout}"
        ) from None


def _listing(v: _Variant, root: Path, opened: dict[str, CIFAR10]) -> DatasetListing:
    splits = [
        SplitListing(
            split,
            ds.targets,
            arrays=ds.data,
            expected_count=v.per_class[split] * v.num_classes,
            expected_per_class=v.per_class[split],
        )
        for split, ds in opened.items()
    ]
    classes = next(iter(opened.values())).classes if opened else ()
    return DatasetListing(
        v.name,
        root,
        v.layout,
        classes,
        v.num_classes,
        splits,
        v.checksums(),
        source="Krizhevsky 2009; md5 values as recorded by torchvision",
    )


def _make_listing(v: _Variant) -> Callable[[Path, Sequence[str] | None], DatasetListing]:
    def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
        return _listing(v, root, {s: _open(v, root, s) for s in ("train", "test") if splits is None or s in splits})

    return listing


def _make_open(v: _Variant) -> Callable[..., Any]:
    def official(root: Path, split: str, transform: Callable[[Any], Any] | None, verify: bool) -> CIFAR10:
        if verify:  # md5 first: never unpickle a file that is not the official one
            verify_checksums(v.name, root, v.layout, v.checksums(), [split])
        ds = _open(v, root, split, transform, checked=verify)
        if verify:
            verify_listing(_listing(v, root, {split: ds}), [split])
        return ds

    return official


def _register(v: _Variant, val_splits: dict[str, Any], title: str) -> None:
    register_reader(
        name=v.name,
        title=f"{title} (official train/test; seeded validation splits per protocol)",
        num_classes=v.num_classes,
        metric="top1",
        layout=v.layout,
        open_split=_make_open(v),
        splits=("train", "test"),
        listing=_make_listing(v),
        val_splits=val_splits,
    )


_C10 = _Variant("cifar10", CIFAR10, _CIFAR10, 10, {"train": 5000, "test": 1000})
_C100 = _Variant("cifar100", CIFAR100, _CIFAR100, 100, {"train": 500, "test": 100})
# docs/protocols.md (validation splits): AugSelf 45000/5000, seeds 43 (CIFAR-10) and 44 (CIFAR-100); Ericsson 20 %
# of train, seed 0.
_register(_C10, {"augself": augself_split(45000, 5000, 43), "ericsson": ericsson_split(50000)}, "CIFAR-10")
_register(_C100, {"augself": augself_split(45000, 5000, 44), "ericsson": ericsson_split(50000)}, "CIFAR-100")
