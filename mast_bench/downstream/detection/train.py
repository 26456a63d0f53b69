"""One fine-tune-and-evaluate run through Detectron2's ``DefaultTrainer``, started by Detectron2's ``launch``.

:func:`run_seed` is what the evaluator calls per seed. It hands :func:`worker` to
``detectron2.engine.launch`` (one process per GPU, ``--num-machines`` joined over ``--dist-url``; a CPU run is
one plain call), so the multi-GPU and multi-node path is Detectron2's own. Each worker re-registers the
datasets (catalogs are per process), loads the materialised config, builds :class:`Trainer`, loads the
converted backbone strictly and trains; the final evaluation runs on every rank, and rank 0 writes
``results.json`` (atomically) in the seed's output folder, which :func:`run_seed` reads back. A non-finite
loss stops Detectron2's loop with ``FloatingPointError``, which reaches the caller like any other crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from mast_bench.downstream.detection import modeling  # noqa: F401  (registers the backbone and the C4 head)
from mast_bench.downstream.detection.d2config import load_config
from mast_bench.downstream.detection.datasets import register_task_datasets
from mast_bench.downstream.detection.requirement import require_detectron2
from mast_bench.downstream.detection.tasks import get_task
from mast_bench.errors import CheckpointError
from mast_bench.fileio import atomic_write_json

require_detectron2()

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.engine import DefaultTrainer, launch  # noqa: E402
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator  # noqa: E402
from detectron2.utils import comm  # noqa: E402
from detectron2.utils.env import seed_all_rng  # noqa: E402
from detectron2.utils.events import CommonMetricPrinter, JSONWriter  # noqa: E402

RESULTS_FILE = "results.json"
# Parameters the converted .pkl must fill: the ResNet trunk wherever the architecture puts it (the FPN's
# bottom-up path, the C4 backbone, or res5 inside the C4 box head). BN step counters are not converted.
_TRUNK = re.compile(r"^(backbone\.(bottom_up\.)?(stem|res[2-5])\.|roi_heads\.res5\.\d+\.)")


def load_trunk_strictly(model: Any, path: str) -> None:
    """Load converted weights into ``model``: every trunk parameter filled, every checkpoint key used.

    Detectron2's checkpointer only logs incompatible keys; here they are an error.

    Raises:
        CheckpointError: trunk parameters left at their initialisation, or checkpoint keys nothing used.
    """
    checkpointer = DetectionCheckpointer(model)
    # The public ``load`` logs the incompatible keys and drops them; these two steps are what it does,
    # keeping the result (name-matching heuristics included, as for any Detectron2 .pkl).
    incompatible = checkpointer._load_model(checkpointer._load_file(path))
    missing = [k for k in incompatible.missing_keys if _TRUNK.match(k) and not k.endswith("num_batches_tracked")]
    if missing or incompatible.unexpected_keys:
        shown = ", ".join((missing + list(incompatible.unexpected_keys))[:5])
        raise CheckpointError(
            f"{path} does not fit the model: {len(missing)} trunk parameter(s) not in the file, "
            f"{len(incompatible.unexpected_keys)} key(s) in the file unused (e.g. {shown})"
        )


class Trainer(DefaultTrainer):
    """``DefaultTrainer`` with the task's evaluators, a strict weights load and file-only event writers."""

    @classmethod
    def build_evaluator(cls, cfg: Any, dataset_name: str, output_folder: str | None = None) -> Any:
        from detectron2.data import DatasetCatalog, MetadataCatalog

        if MetadataCatalog.get(dataset_name).get("evaluator_type") == "pascal_voc":
            return PascalVOCDetectionEvaluator(dataset_name)
        tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
        # Loading a COCO file is what sets the metadata's map from contiguous class indices back to COCO's
        # category ids; without it COCOEvaluator would score every prediction under the wrong category.
        if not MetadataCatalog.get(dataset_name).get("thing_dataset_id_to_contiguous_id"):
            DatasetCatalog.get(dataset_name)
        # No detectron2._C on these installs: pycocotools' COCOeval, explicitly (same numbers).
        return COCOEvaluator(
            dataset_name, tasks=tasks, distributed=True, output_dir=output_folder or cfg.OUTPUT_DIR,
            use_fast_impl=False,
        )  # fmt: skip

    def build_writers(self) -> list[Any]:
        return [CommonMetricPrinter(self.max_iter, window_size=20), JSONWriter(f"{self.cfg.OUTPUT_DIR}/metrics.json")]

    def resume_or_load(self, resume: bool = False) -> None:
        # A fresh fine-tune from the converted backbone; resuming a half-done seed is not offered.
        load_trunk_strictly(self.model, self.cfg.MODEL.WEIGHTS)
        self.start_iter = 0


def _quiet_logger(output_dir: str) -> None:
    # Detectron2's logs go to the seed folder; the terminal shows our own progress lines only. A process
    # that runs several seeds (CPU) moves the file handler to each new folder.
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(Path(output_dir) / f"log.rank{comm.get_rank()}.txt")
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
    handler.mast_bench = True  # type: ignore[attr-defined]
    # torch.fx warns once per process that Detectron2's is_fx_tracing changed meaning; it is not ours to fix.
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    for name in ("detectron2", "fvcore", "d2"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "mast_bench", False)]:
            logger.removeHandler(old)
            old.close()
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def worker(task_name: str, config_path: str, data_root: str) -> None:
    """Body of one ``launch`` process: register data, train, evaluate; rank 0 writes ``results.json``."""
    task = get_task(task_name)
    cfg = load_config(config_path)
    cfg.freeze()
    register_task_datasets(task, list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST), data_root)
    _quiet_logger(cfg.OUTPUT_DIR)
    seed_all_rng(cfg.SEED + comm.get_rank())
    # pycocotools prints its tables with print(): into the seed's log, not the terminal.
    log_path = Path(cfg.OUTPUT_DIR) / f"stdout.rank{comm.get_rank()}.txt"
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
    if comm.is_main_process():
        results = getattr(trainer, "_last_eval_results", None) or {}
        atomic_write_json(Path(cfg.OUTPUT_DIR) / RESULTS_FILE, _plain(results))


def _plain(obj: Any) -> Any:
    # Detectron2 returns OrderedDicts of numpy floats; NaN (no predictions at all) is kept as null.
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    value = float(obj)
    return None if value != value else value


def run_seed(
    task_name: str,
    config_path: Path,
    data_root: Path,
    num_gpus: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
) -> dict[str, Any]:
    """Train and evaluate one seed's materialised config through ``detectron2.engine.launch``.

    Returns:
        Detectron2's results (``{"bbox": {"AP": ...}, "segm": {...}}``; ``None`` for a metric without any
        prediction), read from ``results.json`` in the config's ``OUTPUT_DIR``.

    Raises:
        FloatingPointError: the loss became non-finite; any other exception of a worker.
    """
    cfg = load_config(config_path)
    out = Path(cfg.OUTPUT_DIR) / RESULTS_FILE
    if out.exists():
        out.unlink()  # a result left by an earlier, interrupted attempt must not be mistaken for this one
    launch(
        worker, max(1, num_gpus), num_machines=num_machines, machine_rank=machine_rank, dist_url=dist_url,
        args=(task_name, str(config_path), str(data_root)),
    )  # fmt: skip
    if machine_rank != 0:
        return {}
    if not out.exists():
        raise RuntimeError(f"the run finished without writing {out}")
    return json.loads(out.read_text(encoding="utf-8"))
