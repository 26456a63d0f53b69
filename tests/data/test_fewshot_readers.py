"""Readers of the few-shot datasets on tiny copies in their official layouts.

FC100 from the CIFAR-100 python files (superclass split), EuroSAT RGB, CropDiseases and Plant Disease
(class folders), ISIC 2018 Task 3 (images + ground-truth CSV), ChestX (ChestX-ray14 images +
``Data_Entry_2017.csv``, CD-FSL's seven single-finding classes): what each split holds, in which
order and with which labels, the one-line errors for malformed index files, and ``datasets check``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from fewshot_fixtures import (
    CHESTX_CLASSES,
    CIFAR100_FINE,
    CROP_CLASSES,
    FEWSHOT_MAKERS,
    ISIC_CLASSES,
    make_chestx,
    make_cropdiseases,
    make_eurosat,
    make_fc100,
    make_isic2018,
    make_plantdisease,
)

from mast_bench.data.readers import fc100
from mast_bench.data.verify.check import check_dataset
from mast_bench.errors import DatasetError
from mast_bench.registry import DATASETS

MAKERS = FEWSHOT_MAKERS


def _build(name: str, root: Path, split: str):  # type: ignore[no-untyped-def]
    return DATASETS.get(name).build(root, split, None, verify=False)


def test_fc100_split_is_the_published_superclass_split() -> None:
    # 20 superclasses of 5 fine classes, 12/4/4 superclasses, 60/20/20 classes, every fine class once.
    assert sum(len(v) for v in fc100.SPLIT_SUPERCLASSES.values()) == 20
    assert set().union(*map(set, fc100.SPLIT_SUPERCLASSES.values())) == set(fc100.SUPERCLASSES)
    assert [len(fc100.split_classes(s)) for s in fc100.SPLITS] == [60, 20, 20]
    assert sorted(fc100.CLASSES) == CIFAR100_FINE and len(set(fc100.CLASSES)) == 100
    assert fc100.split_classes("test") == sorted(
        ["beaver", "dolphin", "otter", "seal", "whale", "bee", "beetle", "butterfly", "caterpillar", "cockroach",
         "fox", "porcupine", "possum", "raccoon", "skunk", "baby", "boy", "girl", "man", "woman"]
    )  # fmt: skip


def test_fc100_pools_both_cifar_files_by_superclass(tmp_path: Path) -> None:
    root = make_fc100(tmp_path, train_per_class=3, test_per_class=1)
    ds = _build("fc100", root, "test")
    assert len(ds) == 20 * 4
    names = [ds.classes[t] for t in ds.targets]
    assert sorted(set(names)) == fc100.split_classes("test")
    # Each item is the CIFAR image it names, with that image's fine class.
    raw = {p: pickle.loads((root / "cifar-100-python" / p).read_bytes(), encoding="latin1") for p in ("train", "test")}
    for i in (0, 17, 59, 60, 79):
        part, index = ds.ids[i].split("/")
        row = raw[part]["data"][int(index)].reshape(3, 32, 32).transpose(1, 2, 0)
        assert np.array_equal(ds.data[i], row)
        assert CIFAR100_FINE[raw[part]["fine_labels"][int(index)]] == names[i]
    assert [i.split("/")[0] for i in ds.ids] == ["train"] * 60 + ["test"] * 20  # train file first
    image, label = ds[0]
    assert image.size == (32, 32) and label == ds.targets[0]
    train = _build("fc100", root, "train")
    assert len(train) == 60 * 4 and not set(train.targets) & set(ds.targets)


def test_fc100_refuses_a_foreign_class_list(tmp_path: Path) -> None:
    root = make_fc100(tmp_path)
    meta = root / "cifar-100-python" / "meta"
    from data_fixtures import _py2_pickle

    _py2_pickle(meta, {"fine_label_names": [f"class_{i:02d}" for i in range(100)], "coarse_label_names": []})
    with pytest.raises(DatasetError, match=r"the CIFAR-100 meta file has no fine classes \['baby'"):
        _build("fc100", root, "test")


@pytest.mark.parametrize("folder", ["2750", "EuroSAT_RGB", ""])
def test_eurosat_reads_either_archive_folder(tmp_path: Path, folder: str) -> None:
    root = make_eurosat(tmp_path, per_class=3, folder=folder)
    ds = _build("eurosat", root, "all")
    info = DATASETS.get("eurosat")
    assert len(ds) == 9 and info.num_classes == 10
    # Labels index all ten classes in sorted order (CD-FSL's ImageFolder), whatever the copy holds.
    assert [ds.classes[t] for t in ds.targets] == ["AnnualCrop"] * 3 + ["Forest"] * 3 + ["River"] * 3
    assert ds.targets[-1] == 8
    assert [Path(p).name for p, _ in ds.samples[:3]] == ["AnnualCrop_1.jpg", "AnnualCrop_2.jpg", "AnnualCrop_3.jpg"]


def test_eurosat_unknown_class_folder_is_an_error(tmp_path: Path) -> None:
    root = make_eurosat(tmp_path, classes=("AnnualCrop", "Desert"))
    with pytest.raises(DatasetError, match=r"class folders \['Desert'\] .* are not classes of this dataset"):
        _build("eurosat", root, "all")


def test_cropdiseases_reads_cdfsl_train_folder(tmp_path: Path) -> None:
    root = make_cropdiseases(tmp_path, per_class=2)
    ds = _build("cropdiseases", root, "all")
    assert ds.classes == sorted(CROP_CLASSES) and len(ds) == 8
    assert all("/dataset/train/" in str(p) for p, _ in ds.samples)
    assert ds.targets == [0, 0, 1, 1, 2, 2, 3, 3]


def test_plantdisease_pools_train_and_test_with_one_class_list(tmp_path: Path) -> None:
    root = make_plantdisease(tmp_path, {"train": 3, "test": 2})
    train, test = _build("plantdisease", root, "train"), _build("plantdisease", root, "test")
    assert train.classes == test.classes == sorted(CROP_CLASSES)
    assert (len(train), len(test)) == (12, 8)
    (root / "test" / CROP_CLASSES[0]).rename(root / "test" / "Strawberry___healthy")
    with pytest.raises(DatasetError, match=r"differ from train/: extra \['Strawberry___healthy'\]"):
        _build("plantdisease", root, "test")


def test_isic_labels_follow_the_csv_columns(tmp_path: Path) -> None:
    root = make_isic2018(tmp_path, per_class=2)
    ds = _build("isic2018", root, "all")
    assert ds.classes == list(ISIC_CLASSES) and len(ds) == 14
    assert ds.targets == [i % 7 for i in range(14)]  # row i is one-hot in column i % 7
    assert Path(ds.samples[0][0]).name == "ISIC_0024306.jpg"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ISIC_0024306,1.0,1.0,0.0,0.0,0.0,0.0,0.0", r"lines 2 are not one-hot rows of 7 values"),
        ("ISIC_0024306,1.0,0.0,0.0", r"lines 2 are not one-hot rows of 7 values"),
        ("ISIC_0024306,yes,0.0,0.0,0.0,0.0,0.0,0.0", r"lines 2 are not one-hot rows of 7 values"),
    ],
)
def test_isic_malformed_row_is_one_line_error(tmp_path: Path, line: str, message: str) -> None:
    root = make_isic2018(tmp_path, per_class=1)
    csv = root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], line, *lines[2:]]) + "\n")
    with pytest.raises(DatasetError, match=message) as exc:
        _build("isic2018", root, "all")
    assert "\n" not in str(exc.value)


def test_isic_wrong_header_and_missing_image(tmp_path: Path) -> None:
    root = make_isic2018(tmp_path, per_class=1)
    csv = root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv"
    text = csv.read_text()
    csv.write_text(text.replace("image,MEL", "image,MELANOMA", 1))
    with pytest.raises(DatasetError, match=r"has header 'image,MELANOMA,NV"):
        _build("isic2018", root, "all")
    csv.write_text(text)
    (root / "ISIC2018_Task3_Training_Input" / "ISIC_0024307.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 of the 7 images listed in .* are missing .*ISIC_0024307.jpg"):
        _build("isic2018", root, "all")


def test_chestx_keeps_single_findings_of_the_seven_classes(tmp_path: Path) -> None:
    root = make_chestx(tmp_path, per_class=2)
    ds = _build("chestx", root, "all")
    assert ds.classes == list(CHESTX_CLASSES)
    assert len(ds) == 14  # No Finding, Pneumonia and the two-finding row are not in the pool
    assert ds.targets == [i % 7 for i in range(14)]
    image, _ = ds[0]
    assert image.mode == "RGB"  # grayscale PNGs are converted
    (root / "Data_Entry_2017.csv").write_text("Image,Labels\n")
    with pytest.raises(DatasetError, match=r"starts with 'Image,Labels', not 'Image Index,Finding Labels'"):
        _build("chestx", root, "all")


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_datasets_check_knows_every_fewshot_dataset(tmp_path: Path, name: str) -> None:
    root = MAKERS[name](tmp_path)
    report = check_dataset(name, root, progress=False, workers=1)
    text = report.render()
    assert f"dataset: {name}" in text
    # The layout was understood (FC100's only layout item is its per-class count: 4 of 600 images here).
    layout = [i.message.split(" (")[0] for i in report.items if i.topic == "layout"]
    expected = ["train: 60 classes do not have 600 images", "val: 20 classes do not have 600 images",
                "test: 20 classes do not have 600 images"]  # fmt: skip
    assert layout == (expected if name == "fc100" else []), text
    # A full copy's counts are published for some: the tiny copy must be reported short, not accepted.
    if name in ("eurosat", "isic2018", "chestx", "fc100"):
        assert not report.ok and "count" in {i.topic for i in report.failures}, text


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_verified_load_of_a_tiny_copy_is_refused(tmp_path: Path, name: str) -> None:
    root = MAKERS[name](tmp_path)
    split = next(s for s in DATASETS.get(name).splits if "@" not in s)
    if name in ("cropdiseases", "plantdisease"):
        with pytest.raises(DatasetError, match=r"38"):  # 4 of the 38 classes
            DATASETS.get(name).build(root, split, None, verify=True)
    else:
        with pytest.raises(DatasetError, match=r"does not match the official copy"):
            DATASETS.get(name).build(root, split, None, verify=True)


def test_fc100_class_counts_are_checked_on_the_split_classes_only() -> None:
    # Labels index all 100 classes; a split holds 20 (or 60) of them: the other 80 must not count as short.
    full = [fc100.CLASSES.index(c) for c in fc100.split_classes("test") for _ in range(600)]
    assert fc100._class_problems("test", full) == []
    assert fc100._class_problems("test", full[1:]) == [
        "test: 1 classes do not have 600 images (500 + 100 in the CIFAR files), e.g. baby=599"
    ]
