"""Detection and instance segmentation on Detectron2: pinned tasks, materialised configs, seeds and records.

Modules, from the bottom up:

* :mod:`~.requirement`: the one Detectron2 import check (a one-line error naming ``make setup``);
* :mod:`~.tasks`: the registry of pinned tasks (``downstream/detectron2/<task>.yaml``);
* :mod:`~.schedule`: total batch, lr and iterations for the hardware (linear scaling, epochs kept);
* :mod:`~.d2config`: Detectron2's defaults plus our keys, strict loading;
* :mod:`~.modeling`: MoCo's C4 head with the extra res5 norm, and a ResNet-FPN for our BasicBlock trunks;
* :mod:`~.materialize`: converted ``.pkl`` + complete config + the list of changes;
* :mod:`~.datasets`: VOC / COCO / synthetic scenes registered from their official layouts;
* :mod:`~.train`: ``DefaultTrainer`` run through Detectron2's ``launch``;
* :mod:`~.metrics`: Detectron2 results → record values, mean ± std;
* :mod:`~.evaluator`: the evaluator contract (seeds, failures, aggregate), registered as ``detection``;
* :mod:`~.api`: ``dry_run``, ``evaluate_detection`` and the demo's rows.

Nothing here imports Detectron2 at package import; the modules that need it call ``require_detectron2``.
"""
