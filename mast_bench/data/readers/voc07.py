"""PASCAL VOC2007 classification: 20 binary labels per image, "difficult" counted as negative.

Labels come from the devkit's classification lists ``ImageSets/Main/<class>_<split>.txt``
(``<id> <label>``, label 1 = present, 0 = only *difficult* objects of the class, -1 = absent)
(Everingham et al. 2010, "The PASCAL Visual Object Classes (VOC) Challenge"). Following the
transfer protocol (docs/protocols.md: one binary classifier per class, "difficult" counts as
negative), only label 1 is positive. Targets are multi-hot ``float32`` vectors of shape (20,).
Splits: official train / val / test = 2501 / 2510 / 4952 images; both protocols select on val.
The listing also parses every ``Annotations/<id>.xml`` with torchvision's ``VOCDetection`` XML
reader and reports images whose list labels disagree with their objects (a failure when verifying).
Metric: 11-point interpolated mAP. Sample order: the order of ``ImageSets/Main/<split>.txt``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from torchvision.datasets import VOCDetection

from mast_bench.data.readers.official_files import OFFICIAL_VAL, listing_text, locate, register_listed
from mast_bench.data.verify.listing import DatasetListing, SplitListing, require_paths
from mast_bench.errors import DatasetError

NAME = "voc07"
TITLE = "PASCAL VOC2007 classification (multi-label; difficult counted as negative)"
FOLDER = "VOCdevkit/VOC2007"
SPLITS = ("train", "val", "test")
#: Official image counts (VOC2007 devkit; Everingham et al. 2010).
COUNTS = {"train": 2501, "val": 2510, "test": 4952}
#: The 20 VOC classes in the devkit's order.
CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
LAYOUT = (
    f"<root>/{FOLDER}/{{JPEGImages/<id>.jpg, Annotations/<id>.xml, ImageSets/Main/<split>.txt, "
    "ImageSets/Main/<class>_<split>.txt}: VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar extracted "
    "into the same folder; class list lines '<id> <1|0|-1>' (<root> may also be VOCdevkit or VOC2007 itself)"
)


def _ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _class_labels(main: Path, split: str, ids: Sequence[str]) -> dict[str, set[str]]:
    """class → ids of the images where it is present (label 1) in ``<class>_<split>.txt``."""
    positives: dict[str, set[str]] = {}
    for cls in CLASSES:
        labels: dict[str, str] = {}
        for line in _ids(main / f"{cls}_{split}.txt"):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("1", "0", "-1"):
                raise DatasetError(
                    f"dataset {NAME!r}: ImageSets/Main/{cls}_{split}.txt line {line!r} is not '<id> <1|0|-1>' "
                    f"(expected layout: {LAYOUT})"
                )
            labels[parts[0]] = parts[1]
        if set(labels) != set(ids):
            odd = sorted(set(labels) ^ set(ids))
            raise DatasetError(
                f"dataset {NAME!r}: ImageSets/Main/{cls}_{split}.txt and {split}.txt list different images, e.g. "
                f"{listing_text(odd)} (expected layout: {LAYOUT})"
            )
        positives[cls] = {i for i, v in labels.items() if v == "1"}
    return positives


def xml_positives(path: Path) -> set[str]:
    """Classes with at least one non-difficult object in one VOC XML annotation file."""
    try:
        ann = VOCDetection.parse_voc_xml(ET.parse(path).getroot())["annotation"]
    except (ET.ParseError, KeyError) as exc:
        raise DatasetError(f"dataset {NAME!r}: cannot read {str(path)!r} as a VOC annotation ({exc})") from None
    objects = ann.get("object", [])
    return {o["name"] for o in objects if str(o.get("difficult", "0")).strip() != "1"}


def _disagreements(base: Path, ids: Sequence[str], positives: dict[str, set[str]]) -> list[str]:
    found = []
    for i in ids:
        listed = {c for c in CLASSES if i in positives[c]}
        annotated = xml_positives(base / "Annotations" / f"{i}.xml")
        if listed != annotated:
            found.append(f"{i} (lists: {sorted(listed)}, xml: {sorted(annotated)})")
    return found


def listing(root: Path, splits: Sequence[str] | None = None) -> DatasetListing:
    """Describe the copy under ``root``: per-image positive classes of ``splits`` (default all three)."""
    base = root / "VOC2007" if (root / "VOC2007" / "ImageSets").is_dir() else root
    base = locate(base, FOLDER, ("ImageSets/Main", "JPEGImages", "Annotations"), NAME, LAYOUT)
    main = base / "ImageSets" / "Main"
    listed, problems = [], []
    for split in [s for s in SPLITS if splits is None or s in splits]:
        require_paths(main, [f"{split}.txt"] + [f"{c}_{split}.txt" for c in CLASSES], dataset=NAME, layout=LAYOUT)
        ids = _ids(main / f"{split}.txt")
        positives = _class_labels(main, split, ids)
        missing_xml = [i for i in ids if not (base / "Annotations" / f"{i}.xml").is_file()]
        if missing_xml:
            problems.append(f"{split}: {len(missing_xml)} annotation files missing, e.g. {listing_text(missing_xml)}")
        else:
            bad = _disagreements(base, ids, positives)
            if bad:
                problems.append(
                    f"{split}: {len(bad)} images whose list labels disagree with their XML objects "
                    f"(non-difficult objects are positives), e.g. {listing_text(bad)}"
                )
        targets = [tuple(k for k, c in enumerate(CLASSES) if i in positives[c]) for i in ids]
        files = [base / "JPEGImages" / f"{i}.jpg" for i in ids]
        listed.append(SplitListing(split, targets, files=files, expected_count=COUNTS[split]))
    return DatasetListing(
        NAME,
        base,
        LAYOUT,
        CLASSES,
        len(CLASSES),
        listed,
        problems=problems,
        source="VOC2007 devkit (Everingham et al. 2010)",
    )


register_listed(
    NAME, TITLE, len(CLASSES), LAYOUT, listing, SPLITS, metric="voc07_map", multilabel=True, val_splits=OFFICIAL_VAL
)
