"""The numbers we record equal the reference libraries' on the same predictions: pycocotools' COCOeval for
box and mask AP, Detectron2's PascalVOCDetectionEvaluator (and a hand-computed VOC07 11-point AP) for VOC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("detectron2")

import torch
from detection_fixtures import make_coco, make_voc
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mast_bench.downstream.detection.d2config import load_config
from mast_bench.downstream.detection.datasets import register_task_datasets
from mast_bench.downstream.detection.metrics import mean_std, metric_names, parse_results
from mast_bench.downstream.detection.tasks import get_task
from mast_bench.downstream.detection.train import Trainer

pytestmark = pytest.mark.detectron2


def _instances(boxes: list[list[float]], scores: list[float], classes: list[int], masks: np.ndarray | None, hw):
    from detectron2.structures import Boxes, Instances

    inst = Instances(hw)
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
    if masks is not None:
        inst.pred_masks = torch.from_numpy(masks)
    return inst


def _coco_eval(gt: COCO, dets: list[dict], iou_type: str) -> list[float]:
    ev = COCOeval(gt, gt.loadRes(dets), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return [100.0 * float(v) for v in ev.stats[:3]]


def test_box_and_mask_ap_equal_cocoeval_on_the_same_predictions(tmp_path: Path) -> None:
    root = make_coco(tmp_path / "data", n_train=1, n_val=4)
    register_task_datasets(get_task("coco-c4-2x"), ["coco_2017_val"], root)
    cfg = load_config(get_task("coco-c4-2x").config)
    evaluator = Trainer.build_evaluator(cfg, "coco_2017_val", output_folder=str(tmp_path / "eval"))
    gt = COCO(str(root / "coco" / "annotations" / "instances_val2017.json"))
    contiguous = {1: 0, 3: 1}  # Detectron2's map of COCO's category ids, in sorted order
    rng = np.random.default_rng(0)
    dets: list[dict] = []
    evaluator.reset()
    for image in gt.dataset["images"]:
        h, w = image["height"], image["width"]
        boxes, scores, classes, masks = [], [], [], []
        for ann in gt.loadAnns(gt.getAnnIds(imgIds=[image["id"]], iscrowd=False)):
            x, y, bw, bh = ann["bbox"]
            dx, dy = rng.uniform(-2.5, 2.5, 2)  # IoUs spread over COCO's 0.50:0.95 thresholds
            box = [x + dx, y + dy, x + dx + bw, y + dy + bh]
            m = np.roll(gt.annToMask(ann), (round(dy), round(dx)), axis=(0, 1)).astype(bool)
            category = ann["category_id"] if rng.random() > 0.2 else 4 - ann["category_id"]  # some wrong labels
            boxes.append(box), scores.append(float(rng.uniform(0.3, 1.0))), classes.append(category), masks.append(m)
        boxes.append([30.0, 30.0, 44.0, 44.0]), scores.append(0.9), classes.append(1)  # a confident false positive
        masks.append(np.zeros((h, w), dtype=bool))
        masks[-1][30:44, 30:44] = True
        evaluator.process(
            [{"image_id": image["id"]}],
            [{"instances": _instances(boxes, scores, [contiguous[c] for c in classes], np.stack(masks), (h, w))}],
        )
        for box, score, cat, m in zip(boxes, scores, classes, masks):
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            xywh = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
            dets.append(
                {"image_id": image["id"], "category_id": cat, "bbox": xywh, "score": score, "segmentation": rle}
            )
    ours, notes = parse_results(evaluator.evaluate(), ("bbox", "segm"))
    assert notes == []
    box = _coco_eval(gt, dets, "bbox")
    mask = _coco_eval(gt, dets, "segm")
    assert [ours[m] for m in metric_names(("bbox",))] == pytest.approx(box, abs=1e-4)
    assert [ours[m] for m in metric_names(("segm",))] == pytest.approx(mask, abs=1e-4)
    assert 5.0 < ours["box_AP"] < 95.0 and ours["box_AP"] != ours["box_AP50"]  # not a trivial 0 / 100 case


def _voc_ap11(tp: list[int], npos: int) -> float:
    # VOC2007's 11-point interpolated AP, written out from the devkit's definition.
    tp_c = np.cumsum(tp)
    fp_c = np.cumsum([1 - t for t in tp])
    rec, prec = tp_c / npos, tp_c / (tp_c + fp_c)
    return float(np.mean([prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in np.arange(0.0, 1.1, 0.1)]))


def test_voc_ap_equals_detectron2_pascal_voc_evaluator(tmp_path: Path) -> None:
    from detectron2.data import DatasetCatalog
    from detectron2.evaluation import PascalVOCDetectionEvaluator

    root = make_voc(tmp_path / "data")
    task = get_task("voc0712-c4")
    register_task_datasets(task, ["voc_2007_test"], root)
    cfg = load_config(task.config)
    evaluator = Trainer.build_evaluator(cfg, "voc_2007_test")
    assert isinstance(evaluator, PascalVOCDetectionEvaluator)
    dog, cat = 11, 7  # indices in VOC's class list
    outputs = {
        # 000001: two dogs and a difficult one. Scores: the difficult one (ignored), a hit, a miss, a hit.
        "000001": _instances([[2, 32, 14, 46], [4, 4, 30, 30], [40, 0, 50, 6], [34, 10, 60, 44]],
                             [0.95, 0.9, 0.8, 0.7], [dog, dog, dog, dog], None, (48, 64)),
        "000002": _instances([[8, 8, 40, 40]], [0.6], [cat], None, (48, 64)),
    }  # fmt: skip
    # VOC boxes are 1-based inclusive; Detectron2 subtracts 1 from xmin/ymin when loading and adds it back when
    # writing detections, so predictions equal to the loaded boxes are exact hits.
    loaded = {d["image_id"]: d for d in DatasetCatalog.get("voc_2007_test")}
    outputs["000001"].pred_boxes.tensor[[1, 3]] = torch.tensor([a["bbox"] for a in loaded["000001"]["annotations"][:2]])
    outputs["000002"].pred_boxes.tensor[0] = torch.tensor(loaded["000002"]["annotations"][0]["bbox"])
    outputs["000001"].pred_boxes.tensor[0] = torch.tensor(loaded["000001"]["annotations"][2]["bbox"])
    evaluator.reset()
    for image_id, inst in outputs.items():
        evaluator.process([{"image_id": image_id}], [{"instances": inst}])
    direct = evaluator.evaluate()
    ours, _ = parse_results(direct, ("bbox",))
    assert ours == {f"box_{k}": direct["bbox"][k] for k in ("AP", "AP50", "AP75")}
    # And the evaluator computes VOC07's 11-point AP, ignoring the difficult dog: dog (6 x 1 + 5 x 2/3) / 11,
    # cat 1; the 18 classes absent from the fixture count as 0 in the 20-class mean.
    dog_ap = _voc_ap11([1, 0, 1], npos=2)
    assert dog_ap == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert ours["box_AP50"] == pytest.approx(100 * (dog_ap + 1.0) / 20, abs=1e-6)
    assert ours["box_AP75"] == ours["box_AP50"]  # exact boxes: every IoU threshold is met


def test_no_predictions_at_all_is_zero_with_a_note_and_out_of_range_is_refused() -> None:
    values, notes = parse_results({"bbox": {"AP": None, "AP50": float("nan"), "AP75": 0.0}}, ("bbox",))
    assert values == {"box_AP": 0.0, "box_AP50": 0.0, "box_AP75": 0.0}
    assert notes == ["box_AP: no predictions at all, recorded as 0", "box_AP50: no predictions at all, recorded as 0"]
    with pytest.raises(ValueError, match=r"box_AP = 101\.0 is outside"):
        parse_results({"bbox": {"AP": 101.0, "AP50": 1.0, "AP75": 1.0}}, ("bbox",))
    with pytest.raises(ValueError, match="no 'segm' results"):
        parse_results({"bbox": {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}}, ("bbox", "segm"))


def test_mean_and_sample_std() -> None:
    assert mean_std([57.0, 57.2, 56.8]) == pytest.approx((57.0, 0.2))
    assert mean_std([40.0]) == (40.0, 0.0)
    assert json.dumps(metric_names(("bbox", "segm"))) == json.dumps(
        ["box_AP", "box_AP50", "box_AP75", "mask_AP", "mask_AP50", "mask_AP75"]
    )


def test_detection_table_rows_in_model_order() -> None:
    from mast_bench.downstream.detection.api import detection_table
    from mast_bench.results.records import ResultRecord

    def rec(model: str, metric: str, value: float) -> ResultRecord:
        kind = "detection" if metric.startswith("box") else "segmentation"
        return ResultRecord(model, "", kind, "synthetic-scenes", "synthetic", "1", metric, value, split="val")

    table = detection_table(
        [rec("mast", "box_AP", 41.26), rec("random-init", "mask_AP", 30.0)], ["random-init", "mast"]
    )
    lines = table.splitlines()
    assert lines[0] == "| model | box_AP | box_AP50 | box_AP75 | mask_AP | mask_AP50 | mask_AP75 |"
    assert lines[2] == "| random-init | – | – | – | 30.0 | – | – |"
    assert lines[3] == "| mast | 41.3 | – | – | – | – | – |"
