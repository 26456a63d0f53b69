"""Tiny copies of the fine-grained transfer datasets in their exact official on-disk formats.

Each ``make_<dataset>(parent)`` writes a few images per class into ``parent/<official folder>``
with the same index files, field names and struct layouts as the official archives (txt lists,
MATLAB ``.mat`` files written by scipy with the devkits' field names, VOC XML annotations), and
returns ``parent``. Class names are real ones from each dataset, including those with spaces or
odd characters, so parsers meet the same edge cases as on the full copy. Counts are tiny, so
these copies load only with ``verify=False``.

Images are small random JPEGs drawn from a seeded generator: every image has different bytes, so
a content-hash duplicate check finds nothing unless a test plants a duplicate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io as sio
from PIL import Image

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def write_jpeg(path: Path, rng: np.random.Generator, size: tuple[int, int] = (12, 10)) -> None:
    """A random ``size`` = (width, height) RGB JPEG at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _cell(strings: list[str], shape: tuple[int, int]) -> np.ndarray:
    """A MATLAB cell array of char arrays, as scipy.io writes it (object array of str arrays)."""
    cell = np.empty(len(strings), dtype=object)
    for i, s in enumerate(strings):
        cell[i] = np.array([s])
    return cell.reshape(shape)


# ----------------------------------------------------------------------------------------------
# FGVC-Aircraft 2013b: data/variants.txt, data/images_variant_<split>.txt ("<id> <variant>").

AIRCRAFT_VARIANTS = (
    ("707-320", "Boeing 707", "Boeing"),
    ("A300B4", "A300", "Airbus"),
    ("Cessna 172", "Cessna 172", "Cessna"),
)


def make_aircraft(parent: Path, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/fgvc-aircraft-2013b/data/...`` with 3 variants; images per variant per split."""
    per_split = per_split or {"train": 2, "val": 1, "test": 1}
    rng = np.random.default_rng(seed)
    data = parent / "fgvc-aircraft-2013b" / "data"
    _lines(data / "variants.txt", [v for v, _, _ in AIRCRAFT_VARIANTS])
    _lines(data / "families.txt", sorted({f for _, f, _ in AIRCRAFT_VARIANTS}))
    _lines(data / "manufacturers.txt", sorted({m for _, _, m in AIRCRAFT_VARIANTS}))
    next_id = 1025794
    rows: dict[str, list[tuple[str, int]]] = {}
    boxes = []
    for split, n in per_split.items():
        rows[split] = []
        for k in range(len(AIRCRAFT_VARIANTS)):
            for _ in range(n):
                image_id = f"{next_id:07d}"
                next_id += 17
                write_jpeg(data / "images" / f"{image_id}.jpg", rng, (16, 12))
                rows[split].append((image_id, k))
                boxes.append(f"{image_id} 1 2 14 9")
    rows["trainval"] = rows.get("train", []) + rows.get("val", [])
    for split, entries in rows.items():
        for level, col in (("variant", 0), ("family", 1), ("manufacturer", 2)):
            _lines(data / f"images_{level}_{split}.txt", [f"{i} {AIRCRAFT_VARIANTS[k][col]}" for i, k in entries])
        _lines(data / f"images_{split}.txt", [i for i, _ in entries])
    _lines(data / "images_box.txt", boxes)
    return parent


# ----------------------------------------------------------------------------------------------
# Caltech-101: caltech101/101_ObjectCategories/<class>/image_%04d.jpg, background class included.

CALTECH_CLASSES = {"BACKGROUND_Google": 33, "Faces_easy": 31, "accordion": 32}


def make_caltech101(parent: Path, counts: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/caltech101/101_ObjectCategories`` with ``counts`` images per class (≥ 31 for a 30-shot split)."""
    rng = np.random.default_rng(seed)
    base = parent / "caltech101" / "101_ObjectCategories"
    for cls, n in (counts or CALTECH_CLASSES).items():
        for i in range(1, n + 1):
            write_jpeg(base / cls / f"image_{i:04d}.jpg", rng, (10, 8))
    return parent


# ----------------------------------------------------------------------------------------------
# Stanford Cars: devkit/cars_meta.mat, devkit/cars_{train,test}_annos.mat, cars_test_annos_withlabels.mat.

CARS_CLASSES = ("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Type-S 2008")
_CARS_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


def _cars_annos(entries: list[tuple[str, int]], with_class: bool) -> np.ndarray:
    """The devkit's ``annotations`` struct array, shape (1, N), one-based class ids."""
    fields = [f for f in _CARS_FIELDS if with_class or f != "class"]
    annos = np.zeros((1, len(entries)), dtype=[(f, "O") for f in fields])
    for j, (fname, k) in enumerate(entries):
        values = {
            "bbox_x1": np.array([[3]], np.uint8),
            "bbox_y1": np.array([[2]], np.uint8),
            "bbox_x2": np.array([[14]], np.uint16),
            "bbox_y2": np.array([[9]], np.uint16),
            "class": np.array([[k + 1]], np.uint8),
            "fname": np.array([fname]),
        }
        annos[0, j] = tuple(values[f] for f in fields)
    return annos


def make_cars(parent: Path, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/stanford_cars`` with the devkit files and ``per_split`` images per class."""
    per_split = per_split or {"train": 2, "test": 2}
    rng = np.random.default_rng(seed)
    base = parent / "stanford_cars"
    devkit = base / "devkit"
    devkit.mkdir(parents=True, exist_ok=True)
    sio.savemat(devkit / "cars_meta.mat", {"class_names": _cell(list(CARS_CLASSES), (1, len(CARS_CLASSES)))})
    entries: dict[str, list[tuple[str, int]]] = {}
    for split, n in per_split.items():
        entries[split] = []
        for j in range(n * len(CARS_CLASSES)):
            fname = f"{j + 1:05d}.jpg"
            write_jpeg(base / f"cars_{split}" / fname, rng, (16, 12))
            entries[split].append((fname, j % len(CARS_CLASSES)))
    sio.savemat(devkit / "cars_train_annos.mat", {"annotations": _cars_annos(entries["train"], True)})
    sio.savemat(devkit / "cars_test_annos.mat", {"annotations": _cars_annos(entries["test"], False)})
    sio.savemat(base / "cars_test_annos_withlabels.mat", {"annotations": _cars_annos(entries["test"], True)})
    return parent


# ----------------------------------------------------------------------------------------------
# Oxford Flowers-102: jpg/image_%05d.jpg, imagelabels.mat (labels 1..102), setid.mat (trnid/valid/tstid).


def make_flowers102(parent: Path, num_classes: int = 3, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/flowers-102`` with ``per_split`` images per class in each of trnid/valid/tstid."""
    per_split = per_split or {"trnid": 2, "valid": 2, "tstid": 3}
    rng = np.random.default_rng(seed)
    base = parent / "flowers-102"
    # The official image ids interleave classes and splits; a shuffled order keeps parsers honest.
    slots = [(k, key) for k in range(num_classes) for key, n in per_split.items() for _ in range(n)]
    slots = [slots[i] for i in rng.permutation(len(slots))]
    for i in range(1, len(slots) + 1):
        write_jpeg(base / "jpg" / f"image_{i:05d}.jpg", rng, (12, 12))
    labels = np.array([[k + 1 for k, _ in slots]], dtype=np.uint8)
    sio.savemat(base / "imagelabels.mat", {"labels": labels})
    setid = {
        key: np.array([[i for i, (_, s) in enumerate(slots, start=1) if s == key]], dtype=np.uint16)
        for key in per_split
    }
    sio.savemat(base / "setid.mat", setid)
    return parent


# ----------------------------------------------------------------------------------------------
# Oxford-IIIT Pets: images/<Breed>_<n>.jpg, annotations/{trainval,test,list}.txt
# ("<image> <class id 1..37> <species 1 cat, 2 dog> <breed id within species>"; cats capitalised).

PETS_BREEDS = (("Abyssinian", 1, 1), ("american_bulldog", 2, 1), ("american_pit_bull_terrier", 2, 2))


def make_pets(parent: Path, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/oxford-iiit-pet`` with the first three breeds (class ids 1..3)."""
    per_split = per_split or {"trainval": 4, "test": 2}
    rng = np.random.default_rng(seed)
    base = parent / "oxford-iiit-pet"
    rows: dict[str, list[str]] = {}
    for split in per_split:
        rows[split] = []
    for class_id, (breed, species, breed_id) in enumerate(PETS_BREEDS, start=1):
        number = 100
        for split, n in per_split.items():
            for _ in range(n):
                name = f"{breed}_{number}"
                number += 3
                write_jpeg(base / "images" / f"{name}.jpg", rng, (12, 10))
                rows[split].append(f"{name} {class_id} {species} {breed_id}")
    for split, lines in rows.items():
        _lines(base / "annotations" / f"{split}.txt", lines)
    header = [
        "#Image CLASS-ID SPECIES BREED ID",
        "#ID: 1:37 Class ids",
        "#SPECIES: 1:Cat 2:Dog",
        "#BREED ID: 1-25:Cat 1:12:Dog",
        "#All images with 1st letter as captial are cat images",
        "#images with small first letter are dog images",
    ]
    _lines(base / "annotations" / "list.txt", header + sorted(line for lines in rows.values() for line in lines))
    return parent


# ----------------------------------------------------------------------------------------------
# PASCAL VOC2007: VOCdevkit/VOC2007/{Annotations/<id>.xml, JPEGImages/<id>.jpg, ImageSets/Main/...}.

#: image id → objects (class, difficult). 000012 has a difficult-only chair: its chair label is 0.
VOC_IMAGES: dict[str, dict[str, list[tuple[str, int]]]] = {
    "train": {"000005": [("chair", 0), ("chair", 1)], "000007": [("car", 0)], "000009": [("horse", 0), ("person", 0)]},
    "val": {"000012": [("chair", 1), ("person", 0)], "000016": [("bicycle", 0)]},
    "test": {"000001": [("dog", 0), ("person", 0)], "000002": [("train", 0)], "000004": [("car", 1), ("car", 0)]},
}


def voc_xml(image_id: str, objects: list[tuple[str, int]], width: int = 16, height: int = 12) -> str:
    """An annotation file in the VOC2007 format (pose, truncated, difficult, bndbox per object)."""
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>{difficult}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>2</xmin>\n\t\t\t<ymin>1</ymin>\n"
        f"\t\t\t<xmax>{width - 1}</xmax>\n\t\t\t<ymax>{height - 1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, difficult in objects
    )
    return (
        f"<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{image_id}.jpg</filename>\n"
        "\t<source>\n\t\t<database>The VOC2007 Database</database>\n\t\t<annotation>PASCAL VOC2007</annotation>\n"
        "\t\t<image>flickr</image>\n\t</source>\n\t<owner>\n\t\t<name>?</name>\n\t</owner>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
        f"\t<segmented>0</segmented>\n{objs}</annotation>\n"
    )


def voc_label(objects: list[tuple[str, int]], cls: str) -> int:
    """The devkit's per-class image label: 1 positive, 0 only difficult objects, -1 absent."""
    flags = [d for name, d in objects if name == cls]
    if not flags:
        return -1
    return 1 if 0 in flags else 0


def make_voc2007(
    parent: Path, images: dict[str, dict[str, list[tuple[str, int]]]] | None = None, seed: int = 0
) -> Path:
    """``parent/VOCdevkit/VOC2007`` with ``images`` (split → id → objects) and all ImageSets/Main lists."""
    images = images or VOC_IMAGES
    rng = np.random.default_rng(seed)
    base = parent / "VOCdevkit" / "VOC2007"
    (base / "Annotations").mkdir(parents=True, exist_ok=True)
    splits = dict(images)
    splits["trainval"] = {**images.get("train", {}), **images.get("val", {})}
    for entries in images.values():
        for image_id, objects in entries.items():
            write_jpeg(base / "JPEGImages" / f"{image_id}.jpg", rng, (16, 12))
            (base / "Annotations" / f"{image_id}.xml").write_text(voc_xml(image_id, objects))
    main = base / "ImageSets" / "Main"
    for split, entries in splits.items():
        ids = sorted(entries)
        _lines(main / f"{split}.txt", ids)
        for cls in VOC_CLASSES:
            # The devkit right-aligns the label in a 2-wide field: "000005 -1", "000012  0", "000009  1".
            _lines(main / f"{cls}_{split}.txt", [f"{i} {voc_label(entries[i], cls):2d}" for i in ids])
    return parent


# ----------------------------------------------------------------------------------------------
# CUB-200-2011: images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, images/<class>/.

CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross")


def make_cub200(parent: Path, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``parent/CUB_200_2011`` with ``per_split`` ({"train": n, "test": m}) images per class."""
    per_split = per_split or {"train": 2, "test": 2}
    rng = np.random.default_rng(seed)
    base = parent / "CUB_200_2011"
    images, labels, is_train, boxes = [], [], [], []
    for k, cls in enumerate(CUB_CLASSES, start=1):
        stem = "_".join(part.capitalize() for part in cls.split(".", 1)[1].split("_"))
        j = 0
        for split, n in per_split.items():
            for _ in range(n):
                j += 1
                image_id = len(images) + 1
                rel = f"{cls}/{stem}_{j:04d}_{700 + image_id}.jpg"
                write_jpeg(base / "images" / rel, rng, (12, 10))
                images.append(f"{image_id} {rel}")
                labels.append(f"{image_id} {k}")
                is_train.append(f"{image_id} {1 if split == 'train' else 0}")
                boxes.append(f"{image_id} 1.0 2.0 8.0 6.0")
    _lines(base / "images.txt", images)
    _lines(base / "image_class_labels.txt", labels)
    _lines(base / "train_test_split.txt", is_train)
    _lines(base / "bounding_boxes.txt", boxes)
    _lines(base / "classes.txt", [f"{k} {c}" for k, c in enumerate(CUB_CLASSES, start=1)])
    return parent


# ----------------------------------------------------------------------------------------------
# Stanford Dogs: Images/<wnid>-<breed>/<wnid>_<n>.jpg, lists/{file,train,test}_list.mat
# (fields file_list, annotation_list: N×1 cells; labels: N×1, one-based).

DOGS_CLASSES = ("n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog")


def _dogs_list(entries: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    files = [f for f, _ in entries]
    return {
        "file_list": _cell(files, (len(files), 1)),
        "annotation_list": _cell([f.rsplit(".", 1)[0] for f in files], (len(files), 1)),
        "labels": np.array([[k + 1] for _, k in entries], dtype=np.float64),
    }


def make_dogs(parent: Path, per_split: dict[str, int] | None = None, lists_dir: str = "lists", seed: int = 0) -> Path:
    """``parent/stanford_dogs`` with the ``.mat`` lists in ``lists_dir`` ("lists" or "" for the top level)."""
    per_split = per_split or {"train": 2, "test": 2}
    rng = np.random.default_rng(seed)
    base = parent / "stanford_dogs"
    entries: dict[str, list[tuple[str, int]]] = {s: [] for s in per_split}
    for k, cls in enumerate(DOGS_CLASSES):
        wnid = cls.split("-", 1)[0]
        number = 1000
        for split, n in per_split.items():
            for _ in range(n):
                number += 7
                rel = f"{cls}/{wnid}_{number}.jpg"
                write_jpeg(base / "Images" / rel, rng, (12, 10))
                entries[split].append((rel, k))
    lists = base / lists_dir if lists_dir else base
    lists.mkdir(parents=True, exist_ok=True)
    for split, rows in entries.items():
        sio.savemat(lists / f"{split}_list.mat", _dogs_list(rows))
    sio.savemat(lists / "file_list.mat", _dogs_list(sorted(e for rows in entries.values() for e in rows)))
    return parent


#: Dataset name → maker of its tiny copy, for every fine-grained reader.
FG_MAKERS = {
    "aircraft": make_aircraft, "caltech101": make_caltech101, "cars": make_cars, "cub200": make_cub200,
    "dogs": make_dogs, "flowers102": make_flowers102, "pets": make_pets, "voc07": make_voc2007,
}  # fmt: skip
