"""The detection tasks: each a pinned Detectron2 config under ``downstream/detectron2/`` plus what it needs.

Registry contract (:data:`DETECTION_TASKS`): name → :class:`DetectionTask`; the task's ``config`` file exists,
loads with every key known and every ``_BASE_`` resolved, and its datasets are the ones
:mod:`mast_bench.downstream.detection.datasets` registers for ``kind``. The protocol facts (schedules, norms,
reference numbers) and their sources are in ``docs/protocols.md``, "Detection".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mast_bench
from mast_bench.registry import Registry

#: The pinned configs (a source checkout's ``downstream/detectron2``).
CONFIG_DIR = Path(mast_bench.__file__).resolve().parent.parent / "downstream" / "detectron2"

_R50 = ("resnet50",)
_BASIC = ("resnet_tiny", "resnet18", "resnet34")


@dataclass(frozen=True)
class DetectionTask:
    """One detection protocol.

    Attributes:
        name: the ``--task`` name (also the config's file stem).
        kind: ``voc``, ``coco`` or ``synthetic``: which dataset layout ``--data-root`` must hold.
        dataset: the dataset name written into records.
        architectures: backbone architectures the config is written for (others are refused).
        seeds: default number of seeds (MoCo reports VOC as the mean of 5 runs).
        metrics: Detectron2 result groups reported (``bbox``, and ``segm`` for Mask R-CNN).
        source: where the protocol comes from.
        test_split: the split the numbers are measured on (written into records).
    """

    name: str
    kind: str
    dataset: str
    architectures: tuple[str, ...]
    seeds: int
    metrics: tuple[str, ...]
    source: str
    test_split: str

    @property
    def config(self) -> Path:
        return CONFIG_DIR / f"{self.name}.yaml"


DETECTION_TASKS: Registry[DetectionTask] = Registry("detection task")

for _task in (
    DetectionTask("voc0712-c4", "voc", "voc07+12", _R50, 5, ("bbox",),
                  "MoCo (He et al. 2020), detection/configs/pascal_voc_R_50_C4_24k_moco.yaml", "voc2007-test"),
    DetectionTask("coco-c4-2x", "coco", "coco2017", _R50, 1, ("bbox", "segm"),
                  "MoCo (He et al. 2020), detection/configs/coco_R_50_C4_2x_moco.yaml", "val2017"),
    DetectionTask("coco-fpn-1x", "coco", "coco2017", _R50, 1, ("bbox", "segm"),
                  "MoCo (He et al. 2020), appendix: Mask R-CNN R50-FPN 1x, SyncBN in backbone and FPN", "val2017"),
    DetectionTask("voc0712-fpn-ericsson", "voc", "voc07+12", _R50, 1, ("bbox",),
                  "Ericsson et al. 2021, ssl-transfer detectron2-configs/finetune/*.yaml", "voc2007-test"),
    DetectionTask("voc0712-fpn-ericsson-frozen", "voc", "voc07+12", _R50, 1, ("bbox",),
                  "Ericsson et al. 2021, ssl-transfer detectron2-configs/frozen/*.yaml", "voc2007-test"),
    DetectionTask("synthetic", "synthetic", "synthetic-scenes", _BASIC, 1, ("bbox", "segm"),
                  "mast-bench: small Mask R-CNN on the synthetic suite's scenes, for CPU", "val"),
    DetectionTask("synthetic-frozen", "synthetic", "synthetic-scenes", _BASIC, 1, ("bbox", "segm"),
                  "mast-bench: the synthetic task with the trunk frozen (FPN and heads train)", "val"),
):  # fmt: skip
    DETECTION_TASKS.add(_task.name, _task)


def get_task(name: str) -> DetectionTask:
    """The task called ``name``.

    Raises:
        UnknownNameError: no such task (the message lists the valid ones).
    """
    return DETECTION_TASKS.get(name)
