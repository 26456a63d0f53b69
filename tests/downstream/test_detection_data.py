"""VOC and COCO registered from their official layouts under --data-root; a folder without the layout gets an
error that shows the expected tree, and nothing is registered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("detectron2")

from detection_fixtures import VOC_IMAGES, make_coco, make_voc

from mast_bench.downstream.detection.d2config import load_config
from mast_bench.downstream.detection.datasets import check_layout, register_task_datasets
from mast_bench.downstream.detection.tasks import get_task
from mast_bench.errors import DatasetError

pytestmark = pytest.mark.detectron2
VOC_NAMES = ["voc_2007_trainval", "voc_2012_trainval", "voc_2007_test"]


def test_voc_registration_reads_the_official_xml(tmp_path: Path) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    root = make_voc(tmp_path)
    register_task_datasets(get_task("voc0712-c4"), VOC_NAMES, root)
    test = {d["image_id"]: d for d in DatasetCatalog.get("voc_2007_test")}
    assert sorted(test) == ["000001", "000002"]
    classes = MetadataCatalog.get("voc_2007_test").thing_classes
    dogs = test["000001"]["annotations"]
    assert [classes[a["category_id"]] for a in dogs] == ["dog", "dog", "dog"]  # difficult ones are kept for training
    # Detectron2 turns VOC's 1-based inclusive pixel boxes into 0-based: xmin/ymin - 1.
    assert dogs[0]["bbox"] == [3.0, 3.0, 30.0, 30.0]
    assert MetadataCatalog.get("voc_2007_test").year == 2007  # VOC07 11-point AP at test
    assert str(MetadataCatalog.get("voc_2012_trainval").dirname) == str(root / "VOC2012")
    assert len(DatasetCatalog.get("voc_2007_trainval")) == len(VOC_IMAGES["VOC2007"]["trainval"])


def test_voc_under_vocdevkit_is_accepted(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOCdevkit").parent
    check_layout(get_task("voc0712-c4"), root)


def test_coco_registration(tmp_path: Path) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    root = make_coco(tmp_path)
    register_task_datasets(get_task("coco-fpn-1x"), ["coco_2017_train", "coco_2017_val"], root)
    val = DatasetCatalog.get("coco_2017_val")
    assert len(val) == 2 and all(d["file_name"].startswith(str(root / "coco" / "val2017")) for d in val)
    assert MetadataCatalog.get("coco_2017_val").thing_dataset_id_to_contiguous_id == {1: 0, 3: 1}
    assert any(a["iscrowd"] == 1 for d in val for a in d["annotations"])


@pytest.mark.parametrize(
    ("task", "make", "remove", "message"),
    [
        ("voc0712-c4", None, None, "no VOC2007/ folder"),
        ("voc0712-c4", make_voc, "VOC2012", "no VOC2012/ folder"),
        ("voc0712-c4", make_voc, "VOC2007/ImageSets/Main/test.txt", "VOC2007/ImageSets/Main/test.txt is missing"),
        ("coco-c4-2x", None, None, "coco/annotations/instances_train2017.json is missing"),
        ("coco-c4-2x", make_coco, "coco/val2017", "coco/val2017 is missing"),
        ("synthetic", None, None, "scenes/annotations/instances_train.json' not found"),
    ],
)
def test_a_root_without_the_layout_shows_the_expected_tree(tmp_path: Path, task, make, remove, message) -> None:
    from detectron2.data import DatasetCatalog

    before = set(DatasetCatalog.list())
    root = tmp_path / "data"
    root.mkdir()
    if make is not None:
        make(root)
        target = root / remove
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DatasetError, match=message) as err:
        check_layout(get_task(task), root)
    text = str(err.value)
    assert "\n" not in text  # one line
    expected = {"voc0712-c4": "VOC2007/", "coco-c4-2x": "coco/", "synthetic": "scenes"}[task]
    assert "expected layout" in text and expected in text
    cfg = load_config(get_task(task).config)
    with pytest.raises(DatasetError, match=message):
        register_task_datasets(get_task(task), [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST], root)
    assert set(DatasetCatalog.list()) == before


def test_a_missing_data_root_is_one_line(tmp_path: Path) -> None:
    expected = r"--data-root '.*nope' is not a folder; expected layout: <data-root>/VOC2007/ \(or VOCdevkit"
    with pytest.raises(DatasetError, match=expected):
        check_layout(get_task("voc0712-c4"), tmp_path / "nope")
