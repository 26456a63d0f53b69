"""Describable Textures (Cimpoi et al. 2014), split 1, from the official label lists.

The official validation split ``val1.txt`` is every protocol's validation split (docs/protocols.md).
Three placements of the extracted ``dtd-r1.0.1.tar.gz`` are accepted, tried in this order:
``<root>/dtd/dtd`` (torchvision's ``DTD`` convention: the archive extracted into ``<root>/dtd``),
``<root>/dtd`` (the archive extracted into ``<root>``: its own top folder ``dtd/``) and ``<root>``
itself (``--data-root`` pointing at that ``dtd/`` folder). Labels number the sorted union of the three
split files' classes (torchvision numbers only the classes of the requested file), so labels agree
across splits even on a partial copy. Sample order: the order of the lines of each list file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mast_bench.data.readers.official_files import OFFICIAL_VAL, register_listed
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_listed_files
from mast_bench.errors import DatasetError

NAME = "dtd"
TITLE = "Describable Textures, split 1 (official train/val/test)"
#: Where images/ and labels/ may sit, relative to the data root, in the order they are tried.
BASES = ("dtd/dtd", "dtd", ".")
LAYOUT = (
    "{images/<class>/<class>_<n>.jpg, labels/train1.txt, labels/val1.txt, labels/test1.txt} under <root>/dtd/dtd "
    "(torchvision's place), <root>/dtd (dtd-r1.0.1.tar.gz extracted into <root>) or <root> itself; list lines "
    "read <class>/<image>.jpg (partition 1)"
)
SPLITS = ("train", "val", "test")
# Cimpoi et al. 2014: 47 classes x 120 images, split into 40 train / 40 val / 40 test per class.
_PER_CLASS = 40


def locate_base(root: Path) -> Path:
    """The folder holding ``images/`` and ``labels/`` (see :data:`BASES`).

    Raises:
        DatasetError: none of the candidates holds both, naming each place looked at.
    """
    for rel in BASES:
        base = root / rel
        if (base / "images").is_dir() and (base / "labels").is_dir():
            return base
    tried = ", ".join(str(root / rel) for rel in BASES)
    raise DatasetError(f"dataset {NAME!r}: no images/ and labels/ folders in {tried} (expected layout: {LAYOUT})")


def _read(root: Path, splits: Sequence[str]) -> tuple[Path, list[str], dict[str, list[tuple[Path, int]]]]:
    base = locate_base(root)
    missing = [f"labels/{s}1.txt" for s in SPLITS if not (base / "labels" / f"{s}1.txt").is_file()]
    if missing:
        raise DatasetError(
            f"dataset {NAME!r}: {', '.join(missing)} not found under {str(base)!r} (expected layout: {LAYOUT})"
        )
    lines = {
        s: [ln.strip() for ln in (base / "labels" / f"{s}1.txt").read_text().splitlines() if ln.strip()] for s in SPLITS
    }
    malformed = [ln for v in lines.values() for ln in v if ln.count("/") != 1]
    if malformed:
        raise DatasetError(
            f"dataset {NAME!r}: label files must list <class>/<image>, got {malformed[:3]} (expected layout: {LAYOUT})"
        )
    classes = sorted({ln.split("/")[0] for v in lines.values() for ln in v})
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for s in splits:
        samples = [(base / "images" / ln, index[ln.split("/")[0]]) for ln in lines[s]]
        require_listed_files([f for f, _ in samples], f"labels/{s}1.txt", root=base, dataset=NAME, layout=LAYOUT)
        out[s] = samples
    return base, classes, out


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: the listed images of ``splits`` (default all three)."""
    wanted = [s for s in SPLITS if splits is None or s in splits]
    base, classes, samples = _read(root, wanted)
    listed = [
        SplitListing(
            s,
            [t for _, t in samples[s]],
            files=[f for f, _ in samples[s]],
            expected_count=47 * _PER_CLASS,
            expected_per_class=_PER_CLASS,
        )
        for s in wanted
    ]
    return DatasetListing(NAME, base, LAYOUT, classes, 47, listed, source="Cimpoi et al. 2014")


register_listed(NAME, TITLE, 47, LAYOUT, listing, SPLITS, val_splits=OFFICIAL_VAL)
