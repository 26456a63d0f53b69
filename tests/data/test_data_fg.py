"""Fine-grained transfer datasets read from tiny copies in their official formats.

What is proven: each loader recovers the labels that the fixture wrote (checked against an
independent reading of the same files or the folder names), ``verify=True`` refuses a copy
whose counts differ from the official ones and accepts one whose counts match, bad copies get a
DatasetError naming the expected layout, VOC2007 counts difficult-only classes as negative, the
Caltech-101 split is drawn without replacement, and seeded protocol splits partition ``train``.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch
from data_fixtures import tree_state
from data_fixtures_fg import (
    AIRCRAFT_VARIANTS,
    CALTECH_CLASSES,
    CARS_CLASSES,
    FG_MAKERS,
    VOC_CLASSES,
    VOC_IMAGES,
    make_aircraft,
    make_caltech101,
    make_cars,
    make_cub200,
    make_dogs,
    make_pets,
    make_voc2007,
    voc_label,
    voc_xml,
    write_jpeg,
)
from fixtures.dataset_copies import copies_fixture, official_splits
from torch.utils.data import random_split

from mast_bench.data import splits as S
from mast_bench.data.readers import aircraft, caltech101, cars, cub200, dogs, flowers102, pets, voc07
from mast_bench.data.verify.check import check_dataset
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS

MAKERS: dict[str, Callable[[Path], Path]] = FG_MAKERS
MODULES = {"aircraft": aircraft, "caltech101": caltech101, "cars": cars, "cub200": cub200, "dogs": dogs,
           "flowers102": flowers102, "pets": pets, "voc07": voc07}  # fmt: skip
# Fixture sizes per official split (see data_fixtures_fg).
FIXTURE_COUNTS = {
    "aircraft": {"train": 6, "val": 3, "test": 3}, "caltech101": {"train": 90, "test": 6},
    "cars": {"train": 6, "test": 6}, "cub200": {"train": 6, "test": 6}, "dogs": {"train": 6, "test": 6},
    "flowers102": {"train": 6, "val": 6, "test": 9}, "pets": {"train": 12, "test": 6},
    "voc07": {"train": 3, "val": 2, "test": 3},
}  # fmt: skip
# docs/protocols.md (classes, metric, where validation comes from) and the official split sizes.
PROTOCOL = {
    "aircraft": (100, "mean_per_class", "official", {"train": 3334, "val": 3333, "test": 3333}),
    "caltech101": (102, "mean_per_class", "seeded", {"train": 3060, "test": 6084}),
    "cars": (196, "top1", "seeded", {"train": 8144, "test": 8041}),
    "cub200": (200, "top1", "seeded", {"train": 5994, "test": 5794}),
    "dogs": (120, "top1", "seeded", {"train": 12000, "test": 8580}),
    "flowers102": (102, "mean_per_class", "official", {"train": 1020, "val": 1020, "test": 6149}),
    "pets": (37, "mean_per_class", "seeded", {"train": 3680, "test": 3669}),
    "voc07": (20, "voc07_map", "official", {"train": 2501, "val": 2510, "test": 4952}),
}


copies = copies_fixture(MAKERS)


@pytest.mark.parametrize("name", sorted(PROTOCOL))
def test_registration_follows_the_protocol_table(name: str) -> None:
    info = DATASETS.get(name)
    num_classes, metric, val_source, counts = PROTOCOL[name]
    assert (info.num_classes, info.metric, info.val_source) == (num_classes, metric, val_source)
    assert official_splits(name) == list(counts) and counts == MODULES[name].COUNTS
    assert info.multilabel == (name == "voc07") and info.listing is not None
    if val_source == "official":
        assert info.val_splits == {"ericsson": S.OFFICIAL, "augself": S.OFFICIAL}
    else:  # Ericsson et al.: a seeded random 20 % of the official train split, seed 0
        spec = info.val_splits["ericsson"]
        assert (spec.scheme, spec.n_total, spec.n_val, spec.seed) == (
            "ericsson",
            counts["train"],
            counts["train"] // 5,
            0,
        )
        assert {"train@ericsson", "val@ericsson"} <= set(info.splits)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_split_loads_with_the_written_labels(name: str, copies: dict[str, Path]) -> None:
    info = DATASETS.get(name)
    for split in official_splits(name):
        ds = info.build(copies[name], split, transform=lambda im: np.asarray(im), verify=False)
        assert len(ds) == FIXTURE_COUNTS[name][split]
        image, target = ds[0]
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        assert all(Path(p).is_file() for p, _ in ds.samples)
        assert len({str(p) for p, _ in ds.samples}) == len(ds)
        if name != "voc07":
            assert target == ds.samples[0][1] and ds.targets == [t for _, t in ds.samples]


@pytest.mark.parametrize("name", ["caltech101", "cub200", "dogs"])
def test_folder_named_classes_match_their_labels(name: str, copies: dict[str, Path]) -> None:
    for split in official_splits(name):
        ds = DATASETS.get(name).build(copies[name], split, verify=False)
        assert [ds.classes[t] for _, t in ds.samples] == [Path(p).parent.name for p, _ in ds.samples]
        assert len(set(ds.targets)) == 3


def test_aircraft_labels_match_the_variant_lists(copies: dict[str, Path]) -> None:
    data = copies["aircraft"] / "fgvc-aircraft-2013b" / "data"
    for split in ("train", "val", "test"):
        ds = DATASETS.get("aircraft").build(copies["aircraft"], split, verify=False)
        expected = [line.split(" ", 1) for line in (data / f"images_variant_{split}.txt").read_text().splitlines()]
        assert [(Path(p).stem, ds.classes[t]) for p, t in ds.samples] == [(i, v) for i, v in expected]
    assert ds.classes == [v for v, _, _ in AIRCRAFT_VARIANTS] and "Cessna 172" in ds.classes


def test_cars_labels_match_the_devkit_annotations(copies: dict[str, Path]) -> None:
    base = copies["cars"] / "stanford_cars"
    for split, mat in (
        ("train", base / "devkit" / "cars_train_annos.mat"),
        ("test", base / "cars_test_annos_withlabels.mat"),
    ):
        annos = sio.loadmat(mat)["annotations"][0]
        ds = DATASETS.get("cars").build(copies["cars"], split, verify=False)
        assert [(Path(p).name, t) for p, t in ds.samples] == [
            (str(a["fname"][0]), int(a["class"][0, 0]) - 1) for a in annos
        ]
        assert ds.classes == list(CARS_CLASSES)


def test_flowers_labels_match_the_mat_files(copies: dict[str, Path]) -> None:
    base = copies["flowers102"] / "flowers-102"
    labels = sio.loadmat(base / "imagelabels.mat")["labels"][0]
    setid = sio.loadmat(base / "setid.mat")
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        ds = DATASETS.get("flowers102").build(copies["flowers102"], split, verify=False)
        ids = setid[key][0]
        assert [Path(p).name for p, _ in ds.samples] == [f"image_{i:05d}.jpg" for i in ids]
        assert ds.targets == [int(labels[i - 1]) - 1 for i in ids]
    assert len(ds.classes) == 102 and ds.classes[0] == "pink primrose"


def test_pets_labels_and_class_names(copies: dict[str, Path]) -> None:
    ds = DATASETS.get("pets").build(copies["pets"], "train", verify=False)
    assert ds.classes == ["Abyssinian", "American Bulldog", "American Pit Bull Terrier"]
    names = ["Abyssinian", "american_bulldog", "american_pit_bull_terrier"]
    assert all(Path(p).stem.rsplit("_", 1)[0] == names[t] for p, t in ds.samples)
    lines = (copies["pets"] / "oxford-iiit-pet" / "annotations" / "trainval.txt").read_text().split("\n")
    assert [Path(p).stem for p, _ in ds.samples] == [line.split()[0] for line in lines if line]


def test_voc_difficult_only_objects_are_negatives(copies: dict[str, Path]) -> None:
    val = DATASETS.get("voc07").build(copies["voc07"], "val", verify=False)
    chair, person = VOC_CLASSES.index("chair"), VOC_CLASSES.index("person")
    _, target = val[0]  # 000012: a difficult chair and a person
    assert Path(val.samples[0][0]).stem == "000012" and target.dtype == torch.float32 and target.shape == (20,)
    assert target[chair] == 0 and target[person] == 1 and target.sum() == 1
    train = DATASETS.get("voc07").build(copies["voc07"], "train", verify=False)
    assert train[0][1][chair] == 1  # 000005: one difficult chair and one that is not
    main = copies["voc07"] / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    assert "000012  0" in (main / "chair_val.txt").read_text().splitlines()


def test_voc_targets_match_an_independent_reading_of_the_xml(copies: dict[str, Path]) -> None:
    base = copies["voc07"] / "VOCdevkit" / "VOC2007"
    for split in ("train", "val", "test"):
        ds = DATASETS.get("voc07").build(copies["voc07"], split, verify=False)
        for (path, _), target in zip(ds.samples, ds.targets):
            root = ET.parse(base / "Annotations" / f"{Path(path).stem}.xml").getroot()
            positive = {o.findtext("name") for o in root.iter("object") if o.findtext("difficult") == "0"}
            assert {VOC_CLASSES[k] for k in torch.nonzero(target).flatten().tolist()} == positive
    assert voc07.CLASSES == VOC_CLASSES


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_verify_refuses_a_copy_with_other_counts(name: str, copies: dict[str, Path]) -> None:
    split = official_splits(name)[0]
    official = PROTOCOL[name][3][split]
    with pytest.raises(DatasetError, match=rf"{split}: {FIXTURE_COUNTS[name][split]} images, expected {official}"):
        DATASETS.get(name).build(copies[name], split, verify=True)
    with pytest.raises(DatasetError, match=r"Pass --no-verify \(verify=False\) only for a copy you know is partial"):
        DATASETS.get(name).build(copies[name], split, verify=True)


@pytest.mark.parametrize("name", ["aircraft", "caltech101", "cub200", "dogs", "pets", "voc07"])
def test_verify_accepts_a_copy_with_the_expected_counts(
    name: str, copies: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same copy passes once the expected numbers are the fixture's: verification is not a constant failure."""
    module = MODULES[name]
    monkeypatch.setattr(module, "COUNTS", FIXTURE_COUNTS[name])
    if name != "voc07":  # the VOC class list is fixed: the copy lists all 20
        monkeypatch.setattr(module, "NUM_CLASSES", 3)
    if name == "dogs":
        monkeypatch.setattr(module, "PER_CLASS", {"train": 2, "test": None})
    for split in official_splits(name):
        assert len(DATASETS.get(name).build(copies[name], split, verify=True)) == FIXTURE_COUNTS[name][split]


def test_loading_writes_nothing_into_the_copy(copies: dict[str, Path]) -> None:
    for name, root in copies.items():
        before = tree_state(root)
        for split in official_splits(name):
            DATASETS.get(name).build(root, split, verify=False)
        assert tree_state(root) == before, name


@pytest.mark.parametrize(("name", "folder"), [
    ("aircraft", "fgvc-aircraft-2013b"), ("caltech101", "caltech101"), ("cars", "stanford_cars"),
    ("cub200", "CUB_200_2011"), ("dogs", "stanford_dogs"), ("flowers102", "flowers-102"),
    ("pets", "oxford-iiit-pet"), ("voc07", "VOCdevkit"), ("voc07", "VOCdevkit/VOC2007"),
])  # fmt: skip
def test_root_may_be_the_dataset_folder_itself(name: str, folder: str, copies: dict[str, Path]) -> None:
    split = official_splits(name)[-1]
    ds = DATASETS.get(name).build(copies[name] / folder, split, verify=False)
    assert len(ds) == FIXTURE_COUNTS[name][split]


def test_dogs_lists_may_sit_in_the_dataset_folder(tmp_path: Path) -> None:
    root = make_dogs(tmp_path, lists_dir="")
    assert not (root / "stanford_dogs" / "lists").exists()
    assert len(DATASETS.get("dogs").build(root, "test", verify=False)) == 6


# ----------------------------------------------------------------------------------------------
# bad copies


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_an_empty_folder_names_the_expected_layout(name: str, tmp_path: Path) -> None:
    info = DATASETS.get(name)
    with pytest.raises(DatasetError, match=r"not found under .*\(expected layout: <root>/") as err:
        info.build(tmp_path, official_splits(name)[0], verify=False)
    assert info.layout in str(err.value)


@pytest.mark.parametrize(("name", "relative", "shown"), [
    ("aircraft", "fgvc-aircraft-2013b/data/images_variant_val.txt", "data/images_variant_val.txt not found"),
    ("cars", "stanford_cars/cars_test_annos_withlabels.mat", "cars_test_annos_withlabels.mat not found"),
    ("cub200", "CUB_200_2011/train_test_split.txt", "train_test_split.txt not found"),
    ("dogs", "stanford_dogs/lists/test_list.mat", "lists/test_list.mat not found"),
    ("pets", "oxford-iiit-pet/annotations/test.txt", "annotations/test.txt not found"),
    ("voc07", "VOCdevkit/VOC2007/ImageSets/Main/dog_test.txt", "dog_test.txt not found"),
    ("flowers102", "flowers-102/setid.mat", "setid.mat not found"),
])  # fmt: skip
def test_a_missing_index_file_is_named(name: str, relative: str, shown: str, tmp_path: Path) -> None:
    root = MAKERS[name](tmp_path)
    (root / relative).unlink()
    split = "val" if name == "aircraft" else "test"
    with pytest.raises(DatasetError, match=rf"{shown} .*expected layout"):
        DATASETS.get(name).build(root, split, verify=False)


def test_missing_images_fail_verification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_cub200(tmp_path)
    monkeypatch.setattr(cub200, "COUNTS", FIXTURE_COUNTS["cub200"])
    monkeypatch.setattr(cub200, "NUM_CLASSES", 3)
    gone = next((root / "CUB_200_2011" / "images" / "002.Laysan_Albatross").iterdir())
    gone.unlink()
    with pytest.raises(DatasetError, match=rf"listed files missing, e.g. images/002.Laysan_Albatross/{gone.name}"):
        DATASETS.get("cub200").build(root, "train", verify=True)
    ds = DATASETS.get("cub200").build(root, "train", verify=False)  # a partial copy loads without verify ...
    index = [Path(p) for p, _ in ds.samples].index(gone)
    with pytest.raises(DatasetError, match=f"cannot read image '{gone}'"):  # ... and names the file when read
        ds[index]


def test_aircraft_unknown_variant_is_an_extra_class(tmp_path: Path) -> None:
    root = make_aircraft(tmp_path)
    listing = root / "fgvc-aircraft-2013b" / "data" / "images_variant_train.txt"
    listing.write_text(listing.read_text() + "1025794 Boeing 797\n")
    with pytest.raises(DatasetError, match=r"names variant 'Boeing 797', which is not in data/variants.txt"):
        DATASETS.get("aircraft").build(root, "train", verify=False)


def test_aircraft_folder_under_another_name_is_refused(tmp_path: Path) -> None:
    root = make_aircraft(tmp_path)
    shutil.move(root / "fgvc-aircraft-2013b", root / "aircraft")
    with pytest.raises(DatasetError, match="the dataset folder must be named 'fgvc-aircraft-2013b'"):
        DATASETS.get("aircraft").build(root / "aircraft", "train", verify=False)


def test_caltech_extra_class_folders_are_refused(tmp_path: Path) -> None:
    root = make_caltech101(tmp_path)
    for k in range(100):
        (root / "caltech101" / "101_ObjectCategories" / f"extra_{k:03d}").mkdir()
    with pytest.raises(DatasetError, match=r"103 class folders in .*, the official copy has 102 \(BACKGROUND_Google"):
        DATASETS.get("caltech101").build(root, "train", verify=False)


def test_caltech_without_background_fails_verification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_caltech101(tmp_path, counts={"Faces_easy": 31, "accordion": 32})
    monkeypatch.setattr(caltech101, "COUNTS", {"train": 60, "test": 3})
    monkeypatch.setattr(caltech101, "NUM_CLASSES", 2)
    with pytest.raises(DatasetError, match="the BACKGROUND_Google class folder is missing"):
        DATASETS.get("caltech101").build(root, "train", verify=True)


def test_cars_class_id_beyond_the_class_names(tmp_path: Path) -> None:
    root = make_cars(tmp_path)
    mat = root / "stanford_cars" / "devkit" / "cars_train_annos.mat"
    annos = sio.loadmat(mat)["annotations"]
    annos[0, 1]["class"] = np.array([[7]], np.uint8)
    sio.savemat(mat, {"annotations": annos})
    with pytest.raises(DatasetError, match=r"'cars' train: labels 6 outside the 3 listed classes"):
        DATASETS.get("cars").build(root, "train", verify=False)


def test_cars_unreadable_annotations(tmp_path: Path) -> None:
    root = make_cars(tmp_path)
    (root / "stanford_cars" / "devkit" / "cars_train_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match=r"cannot read devkit/cars_train_annos.mat .*'annotations' struct array"):
        DATASETS.get("cars").build(root, "train", verify=False)


def test_cub_label_beyond_classes_txt(tmp_path: Path) -> None:
    root = make_cub200(tmp_path)
    labels = root / "CUB_200_2011" / "image_class_labels.txt"
    labels.write_text(labels.read_text().replace("\n1 1\n", "\n1 4\n", 1).replace("1 1\n", "1 4\n", 1))
    with pytest.raises(DatasetError, match=r"'cub200' train: labels 3 outside the 3 listed classes"):
        DATASETS.get("cub200").build(root, "train", verify=False)


def test_cub_malformed_index_line(tmp_path: Path) -> None:
    root = make_cub200(tmp_path)
    (root / "CUB_200_2011" / "train_test_split.txt").write_text("1 1\nx 0\n")
    with pytest.raises(DatasetError, match=r"train_test_split.txt line 2 \('x 0'\) is not '<unique image id> <value>'"):
        DATASETS.get("cub200").build(root, "train", verify=False)


def test_dogs_label_and_folder_disagree(tmp_path: Path) -> None:
    root = make_dogs(tmp_path)
    mat = root / "stanford_dogs" / "lists" / "test_list.mat"
    data = sio.loadmat(mat)
    data["labels"][0, 0] = 2.0
    sio.savemat(mat, {k: v for k, v in data.items() if not k.startswith("__")})
    with pytest.raises(DatasetError, match=r"labels and breed folders disagree: 2: \['n02085620-Chihuahua', "):
        DATASETS.get("dogs").build(root, "train", verify=False)


def test_pets_malformed_line_and_gaps(tmp_path: Path) -> None:
    root = make_pets(tmp_path)
    test_list = root / "oxford-iiit-pet" / "annotations" / "test.txt"
    original = test_list.read_text()
    test_list.write_text(original + "Bengal_1 6\n")
    with pytest.raises(
        DatasetError, match=r"test.txt has a line that is not '<image> <class id> <species> <breed id>'"
    ):
        DATASETS.get("pets").build(root, "train", verify=False)
    test_list.write_text(original + "Bengal_1 6 1 6\n")
    write_jpeg(root / "oxford-iiit-pet" / "images" / "Bengal_1.jpg", np.random.default_rng(1))
    with pytest.raises(DatasetError, match=r"class ids must run 1..K without gaps; missing 4, 5"):
        DATASETS.get("pets").build(root, "test", verify=False)


def test_flowers_checksums_are_compared_when_verifying(copies: dict[str, Path]) -> None:
    md5 = dict(flowers102.Flowers102._file_dict.values())  # torchvision's published table
    with pytest.raises(
        DatasetError,
        match=rf"md5 of imagelabels.mat is [0-9a-f]{{32}}, the official value is "
        rf"{md5['imagelabels.mat']}",
    ):
        DATASETS.get("flowers102").build(copies["flowers102"], "val", verify=True)
    report = check_dataset("flowers102", copies["flowers102"], duplicates=False, progress=False)
    failed = {i.message.split(" is ")[0] for i in report.failures if i.topic == "checksum"}
    assert failed == {"md5 of imagelabels.mat", "md5 of setid.mat"}


def test_voc_list_and_xml_disagreement_fails_verification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_voc2007(tmp_path)
    monkeypatch.setattr(voc07, "COUNTS", FIXTURE_COUNTS["voc07"])
    xml = root / "VOCdevkit" / "VOC2007" / "Annotations" / "000012.xml"
    xml.write_text(voc_xml("000012", [("chair", 0), ("person", 0)]))  # the chair is no longer difficult
    with pytest.raises(
        DatasetError,
        match=r"val: 1 images whose list labels disagree with their XML objects .*"
        r"000012 \(lists: \['person'\], xml: \['chair', 'person'\]\)",
    ):
        DATASETS.get("voc07").build(root, "val", verify=True)
    assert len(DATASETS.get("voc07").build(root, "val", verify=False)) == 2


def test_voc_malformed_class_list(tmp_path: Path) -> None:
    root = make_voc2007(tmp_path)
    main = root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    (main / "cat_val.txt").write_text("000012 2\n000016 -1\n")
    with pytest.raises(DatasetError, match=r"cat_val.txt line '000012 2' is not '<id> <1\|0\|-1>'"):
        DATASETS.get("voc07").build(root, "val", verify=False)
    (main / "cat_val.txt").write_text("000012 -1\n")
    with pytest.raises(DatasetError, match=r"cat_val.txt and val.txt list different images, e.g. 000016"):
        DATASETS.get("voc07").build(root, "val", verify=False)


def test_fixture_voc_labels_follow_the_devkit_rule() -> None:
    objects = VOC_IMAGES["val"]["000012"]
    assert (voc_label(objects, "chair"), voc_label(objects, "person"), voc_label(objects, "dog")) == (0, 1, -1)


# ----------------------------------------------------------------------------------------------
# Caltech-101 split


def test_caltech_split_is_30_per_class_without_replacement() -> None:
    files = {c: [f"image_{i:04d}.jpg" for i in range(1, n + 1)] for c, n in CALTECH_CLASSES.items()}
    train, test = caltech101.draw_split(files)
    assert len(train) == 90 and len(test) == sum(CALTECH_CLASSES.values()) - 90
    for k, cls in enumerate(sorted(files)):
        picked = [f for f, t in train if t == k]
        assert len(picked) == len(set(picked)) == 30 and all(f.startswith(f"{cls}/") for f in picked)
    assert sorted(f for f, _ in train + test) == sorted(f"{c}/{n}" for c, names in files.items() for n in names)
    # The documented rule, computed independently: first 30 of a legacy RandomState permutation per class.
    import zlib

    names = files["accordion"]
    perm = np.random.RandomState([0, zlib.crc32(b"accordion")]).permutation(len(names))
    assert [f for f, t in train if t == 2] == [f"accordion/{names[i]}" for i in sorted(perm[:30])]


def test_caltech_split_is_deterministic_and_per_class_independent() -> None:
    files = {c: [f"image_{i:04d}.jpg" for i in range(1, n + 1)] for c, n in CALTECH_CLASSES.items()}
    train, _ = caltech101.draw_split(files)
    assert caltech101.draw_split(dict(reversed(files.items())))[0] == train
    more = {**files, "zebra_extra": [f"image_{i:04d}.jpg" for i in range(1, 41)]}
    assert [f for f, _ in caltech101.draw_split(more)[0] if not f.startswith("zebra")] == [f for f, _ in train]
    assert caltech101.draw_split(files, seed=1)[0] != train


def test_caltech_split_lists_with_repeats_or_overlap_are_refused() -> None:
    with pytest.raises(
        DatasetError,
        match=r"the train list names 1 images more than once \(drawn with replacement\?\)"
        r": a/image_0001.jpg",
    ):
        caltech101.check_split_lists([("a/image_0001.jpg", 0), ("a/image_0001.jpg", 0)], [("a/image_0002.jpg", 0)])
    with pytest.raises(DatasetError, match=r"1 images are in both train and test: a/image_0002\.jpg"):
        caltech101.check_split_lists([("a/image_0002.jpg", 0)], [("a/image_0002.jpg", 0)])


def test_caltech_class_too_small_for_the_split(tmp_path: Path) -> None:
    root = make_caltech101(tmp_path, counts={"BACKGROUND_Google": 31, "tiny": 30})
    with pytest.raises(DatasetError, match="class 'tiny' has 30 images; the split needs more than 30"):
        DATASETS.get("caltech101").build(root, "test", verify=False)


def test_check_finds_an_image_copied_across_splits(tmp_path: Path) -> None:
    root = make_caltech101(tmp_path)
    train = DATASETS.get("caltech101").build(root, "train", verify=False)
    test = DATASETS.get("caltech101").build(root, "test", verify=False)
    shutil.copyfile(train.samples[0][0], test.samples[0][0])
    report = check_dataset("caltech101", root, progress=False, workers=1)
    assert not report.ok
    assert any(i.topic == "duplicates" and "occur in more than one split" in i.message for i in report.items)
    assert any(i.message == "train: 30 images in each class" for i in report.items)


# ----------------------------------------------------------------------------------------------
# seeded protocol splits


def test_protocol_splits_are_the_committed_subsets_of_train(tmp_path: Path) -> None:
    """A Pets copy whose trainval list has the official 3680 lines (images are not read without verify)."""
    root = make_pets(tmp_path)
    names = [f"{breed}_{i}" for breed in ("Abyssinian", "american_bulldog") for i in range(1, 1841)]
    lines = [f"{n} {1 if n[0].isupper() else 2} {1 if n[0].isupper() else 2} 1" for n in names]
    (root / "oxford-iiit-pet" / "annotations" / "trainval.txt").write_text("\n".join(lines) + "\n")
    info = DATASETS.get("pets")
    full = info.build(root, "train", verify=False)
    _, ref = random_split(range(3680), [2940, 740], generator=torch.Generator().manual_seed(49))
    for protocol, val_indices in (("augself", sorted(ref.indices)), ("ericsson", S.ericsson_val_split(3680)[1])):
        train = info.build(root, f"train@{protocol}", verify=False)
        val = info.build(root, f"val@{protocol}", verify=False)
        assert val.indices == list(val_indices) and len(train) + len(val) == 3680
        assert sorted(train.indices + val.indices) == list(range(3680))
        assert val.targets == [full.targets[i] for i in val.indices] and val.classes == full.classes
        assert val.dataset.samples[val.indices[0]] == full.samples[val.indices[0]]


def test_a_partial_copy_cannot_use_the_committed_split(copies: dict[str, Path]) -> None:
    with pytest.raises(
        DatasetError,
        match="indexes the official 3680-image train split, but this copy's train split "
        "has 12 images; a partial copy cannot use it",
    ):
        DATASETS.get("pets").build(copies["pets"], "val@augself", verify=False)


def test_pets_augself_split_is_augselfs_random_split() -> None:
    spec = DATASETS.get("pets").val_splits["augself"]
    _, val, _, _ = S.load_committed_split("pets", "augself", spec)
    _, ref = random_split(range(3680), [2940, 740], generator=torch.Generator().manual_seed(49))
    assert val.tolist() == sorted(ref.indices)


@pytest.mark.parametrize("name", ["caltech101", "cars", "cub200", "dogs", "pets"])
def test_committed_ericsson_splits_are_the_legacy_shuffle(name: str) -> None:
    spec = DATASETS.get(name).val_splits["ericsson"]
    train, val, path, _ = S.load_committed_split(name, "ericsson", spec)
    assert path == S.SPLITS_DIR / name / "ericsson-val.json"
    assert val.tolist() == S.ericsson_val_split(spec.n_total)[1].tolist() and len(train) + len(val) == spec.n_total


@pytest.mark.parametrize("name", ["caltech101", "cars", "cub200", "dogs"])
def test_augself_without_a_published_split_refuses(name: str) -> None:
    with pytest.raises(ProtocolError, match=rf"'{name}' has no validation split for protocol 'augself'"):
        S.resolve_val_split(name, "augself")
