"""The detection evaluator: per seed, fine-tune and evaluate through Detectron2; then mean ± std over seeds.

Cells (:mod:`mast_bench.downstream.contract`): for each seed ``k`` one record per metric (``box_AP``,
``box_AP50``, ``box_AP75``, and ``mask_*`` for Mask R-CNN tasks) under protocol ``<task>.seed<k>``, and one
aggregate record per metric under protocol ``<task>`` whose value is the mean over the seeds and whose
``std`` is their sample standard deviation (MoCo reports VOC as the mean of 5 runs; None for one seed, which
has no spread). Box metrics have task ``detection``, mask metrics ``segmentation``. Tables show the aggregate
wherever it exists; the per-seed records stay on the leaderboard
(:func:`~mast_bench.results.records.aggregate_protocol`).

* A re-run skips every seed whose records exist (the contract's skip); an aggregate is computed from the
  per-seed records on disk as well as the new ones.
* A seed that crashes or diverges (Detectron2 stops on a non-finite loss) gets a failure file
  ``<model>__<task>.seed<k>.failure.json`` next to the records (error, config, hardware); its cells are
  omitted, the other seeds go on, and the aggregate waits (omitted, naming the failed seeds) until every seed
  has a record, so a mean is always over the seeds it says. Re-running retries the failed seeds only (their
  omission notes are cleared by :func:`_retry_failed_seeds`; the failure file goes once the seed succeeds).
* Every record carries the effective total batch, base lr, GPU and machine counts, world size, the
  Detectron2 version and the materialised config's path and changes.
"""

from __future__ import annotations

import dataclasses
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mast_bench.downstream.contract import Cell, EvalRequest, Evaluator, Omitted, omission_path
from mast_bench.downstream.detection.materialize import Materialized, check_architecture, materialize
from mast_bench.downstream.detection.metrics import mean_std, metric_names, parse_results
from mast_bench.downstream.detection.requirement import detectron2_version, require_detectron2
from mast_bench.downstream.detection.schedule import Hardware
from mast_bench.downstream.detection.tasks import DetectionTask, get_task
from mast_bench.errors import USER_ERRORS, ProtocolError
from mast_bench.fileio import atomic_write_json, atomic_write_text
from mast_bench.registry import EVALUATORS
from mast_bench.results.records import ResultRecord, aggregate_protocol, read_record, seed_protocol

PROTOCOL_VERSION = "1"
NAME = "detection"


@dataclass(frozen=True)
class DetectionOptions:
    """Options of ``evaluate detection``.

    Attributes:
        seeds: the seeds to run (``SEED`` of each run).
        hardware: GPUs per machine, machines, optional images per GPU.
        machine_rank, dist_url: Detectron2 ``launch``'s multi-machine settings (``auto``: a free local port).
        overrides: ``KEY=VALUE`` config overrides (``--set``), listed among the config's changes.
    """

    seeds: tuple[int, ...] = (0,)
    hardware: Hardware = field(default_factory=Hardware)
    machine_rank: int = 0
    dist_url: str = "auto"
    overrides: tuple[str, ...] = ()


def work_dir(out_dir: Path, model_name: str, sha256: str, task: str) -> Path:
    """Where a model's Detectron2 files for ``task`` go under the records folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name)
    return Path(out_dir) / "detectron2" / f"{slug}-{(sha256 or 'in-memory')[:12]}" / task


def check_hardware(hw: Hardware) -> None:
    """Refuse more GPUs per machine than this machine has (``launch`` would assert deep inside).

    Raises:
        ProtocolError: ``hw.num_gpus`` exceeds ``torch.cuda.device_count()``.
    """
    import torch

    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if hw.num_gpus > present:
        raise ProtocolError(
            f"--num-gpus {hw.num_gpus} asked, but this machine has {present} GPU(s); use --num-gpus {present} "
            "(0 runs one CPU process), or --dry-run to write the config for other hardware"
        )


def _check_aggregate_seeds(request: EvalRequest[DetectionOptions], task: DetectionTask) -> None:
    """Refuse to keep a mean over other seeds than those asked for (the contract would skip it as done)."""
    if request.redo or request.out_dir is None:
        return
    seeds = tuple(sorted(request.options.seeds))
    for metric in metric_names(task.metrics):
        kind = "detection" if metric.startswith("box") else "segmentation"
        cell = request.cell(task=kind, protocol=task.name, protocol_version=PROTOCOL_VERSION, metric=metric,
                            split=task.test_split, dataset=task.dataset)  # fmt: skip
        path = cell.path(request.out_dir)
        if path.is_file() and tuple(read_record(path).seeds) != seeds:
            raise ProtocolError(
                f"{path} holds the mean over seeds {list(read_record(path).seeds)}, not {list(seeds)}; remove the "
                f"{task.name} mean records (not the per-seed ones) to add seeds, or pass --redo to recompute all"
            )


def _retry_failed_seeds(request: EvalRequest[DetectionOptions], cells: list[Cell]) -> None:
    """Let a re-run retry the seeds that crashed or diverged.

    The contract notes an omitted cell and reports it as omitted on every re-run until ``--redo``: right for
    a cell the data cannot allow, wrong for a seed that crashed (a lost node, a NaN from one unlucky draw). A
    failed seed keeps its ``.failure.json``; its cells' omission notes, and those of the mean waiting for it,
    are removed here so that the next run computes them while every finished seed stays skipped.
    """
    if request.out_dir is None:
        return
    failed = {s for s in request.options.seeds if _failure_path(request.out_dir, request, s).is_file()}
    if not failed:
        return
    for cell in cells:
        seed = _seed_of(cell)
        if seed is None or seed in failed:
            omission_path(request.out_dir, cell).unlink(missing_ok=True)


def _seed_of(cell: Cell) -> int | None:
    per_seed = aggregate_protocol(cell.skeleton.protocol)
    return per_seed[1] if per_seed else None


def _keep_seed_config(mat: Materialized) -> Path:
    """Copy the config this seed trains with into its output folder; the records name the copy."""
    copy = Path(mat.cfg.OUTPUT_DIR) / "config.yaml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(copy, mat.config_path.read_text())


def _failure_path(records: Path, request: EvalRequest[DetectionOptions], seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{request.model_name}__{request.protocol}.seed{seed}")
    return records / f"{slug}.failure.json"


class DetectionEvaluator(Evaluator[DetectionOptions]):
    """Detectron2 fine-tuning on a pinned task (see the module docstring)."""

    name = NAME
    options_type = DetectionOptions

    def plan(self, request: EvalRequest[DetectionOptions]) -> list[Cell]:
        """Per-seed and aggregate cells; refuses what cannot run before anything else happens.

        Raises:
            Detectron2Missing, UnknownNameError, CheckpointError (weights of another depth), ProtocolError
            (more GPUs than present, no seeds), DatasetError (``data_root`` without the task's layout).
        """
        require_detectron2()
        task = get_task(request.protocol)
        opts = request.options
        if not opts.seeds:
            raise ProtocolError("no seeds to run (--seeds must be >= 1)")
        check_architecture(task, request.weights)
        check_hardware(opts.hardware)
        from mast_bench.downstream.detection.datasets import check_layout

        check_layout(task, request.data_root)
        _check_aggregate_seeds(request, task)
        cells = []
        for protocol in [seed_protocol(task.name, s) for s in opts.seeds] + [task.name]:
            for metric in metric_names(task.metrics):
                kind = "detection" if metric.startswith("box") else "segmentation"
                cells.append(
                    request.cell(task=kind, protocol=protocol, protocol_version=PROTOCOL_VERSION, metric=metric,
                                 split=task.test_split, dataset=task.dataset)
                )  # fmt: skip
        _retry_failed_seeds(request, cells)
        return cells

    def run(self, request: EvalRequest[DetectionOptions], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        task = get_task(request.protocol)
        opts = request.options
        records_dir = request.records_dir()
        folder = work_dir(records_dir, request.model_name, request.weights.sha256, task.name)
        seeds_todo = sorted({s for c in cells if (s := _seed_of(c)) is not None})
        values: dict[int, dict[str, float]] = {}
        runs: dict[int, dict[str, Any]] = {}
        failed: dict[int, str] = {}
        for seed in seeds_todo:
            request.say(f"{task.name} seed {seed}: fine-tuning on {opts.hardware.world_size} process(es) ...")
            mat = materialize(task, request.weights, opts.hardware, folder, seed=seed, overrides=opts.overrides)
            # The task folder's config.yaml is rewritten by the next seed and by any later --dry-run for other
            # hardware; each seed's records point to its own copy, which nothing rewrites.
            seed_config = _keep_seed_config(mat)
            start = time.perf_counter()
            try:
                from mast_bench.downstream.detection.train import run_seed

                results = run_seed(
                    task.name, mat.config_path, Path(request.data_root or "."), opts.hardware.num_gpus,
                    opts.hardware.num_machines, opts.machine_rank, opts.dist_url,
                )  # fmt: skip
                values[seed], notes = parse_results(results, task.metrics)
            except USER_ERRORS:
                raise  # weights that do not fit, a broken data copy: every seed would fail the same way
            except Exception as exc:  # a crashed or diverged seed must not stop the others
                failed[seed] = _one_line(exc)
                self._write_failure(request, records_dir, task, seed, mat, exc, seed_config)
                request.say(f"{task.name} seed {seed}: FAILED ({failed[seed]})")
                continue
            _failure_path(records_dir, request, seed).unlink(missing_ok=True)  # an earlier failure, now retried
            runs[seed] = {**self._provenance(mat, opts.hardware, seed_config), "seed": seed, "notes": notes,
                          "wall_time_s": round(time.perf_counter() - start, 3)}  # fmt: skip
        return [self._fill(request, task, c, values, runs, failed) for c in cells]

    def _fill(
        self,
        request: EvalRequest[DetectionOptions],
        task: DetectionTask,
        cell: Cell,
        values: dict[int, dict[str, float]],
        runs: dict[int, dict[str, Any]],
        failed: dict[int, str],
    ) -> ResultRecord | Omitted:
        metric = cell.skeleton.metric
        seed = _seed_of(cell)
        if seed is not None:
            if seed in failed:
                return Omitted(cell, f"seed {seed} failed: {failed[seed]}")
            run = runs[seed]
            return cell.fill(
                values[seed][metric], seeds=(seed,), wall_time_s=run["wall_time_s"], selected_on="none", extra=run
            )
        # The aggregate: every seed's value for this metric, from this run or from its record on disk.
        per_seed: dict[int, float] = {}
        missing = []
        for s in request.options.seeds:
            if s in values:
                per_seed[s] = values[s][metric]
                continue
            path = dataclasses.replace(cell.skeleton, protocol=seed_protocol(task.name, s))
            record_file = Cell(path).path(request.records_dir())
            if record_file.is_file():
                per_seed[s] = read_record(record_file).value
            else:
                missing.append(s)
        if missing:
            why = "; ".join(f"seed {s}: {failed.get(s, 'no record')}" for s in missing)
            return Omitted(cell, f"the mean over seeds waits for every seed ({why}); re-run to retry")
        mean, std = mean_std([per_seed[s] for s in sorted(per_seed)])
        # A std is a spread over seeds: one seed has none (mean_std's 0.0 would read as "no variation").
        # Provenance of the runs (batch, lr, hardware, version, config), without one seed's own fields.
        latest = {k: v for k, v in runs[max(runs)].items() if k not in ("seed", "notes", "wall_time_s")} if runs else {}
        return cell.fill(mean, std=std if len(per_seed) >= 2 else None, seeds=tuple(sorted(per_seed)),
                         selected_on="none",
                         extra={**latest, "per_seed": {str(s): v for s, v in sorted(per_seed.items())},
                                "aggregate": f"mean and sample std over {len(per_seed)} seeds" if len(per_seed) >= 2
                                else "one seed: its value, no std"})  # fmt: skip

    @staticmethod
    def _provenance(mat: Materialized, hw: Hardware, config: Path) -> dict[str, Any]:
        return {
            "ims_per_batch": mat.batch,
            "base_lr": mat.lr,
            "num_gpus": hw.num_gpus,
            "num_machines": hw.num_machines,
            "world_size": hw.world_size,
            "detectron2_version": detectron2_version(),
            "config": str(config),
            "config_changes": [c.line() for c in mat.changes],
            "model_selection": "none: the final iteration is evaluated once, as in MoCo's protocol",
        }

    def _write_failure(
        self, request: EvalRequest[DetectionOptions], records: Path, task: DetectionTask, seed: int,
        mat: Materialized, exc: BaseException, config: Path,
    ) -> None:  # fmt: skip
        atomic_write_json(
            _failure_path(records, request, seed),
            {
                "model": request.model_name, "checkpoint_sha256": request.weights.sha256, "task": task.name,
                "seed": seed, "status": "diverged" if _diverged(exc) else "crashed",
                "error": _one_line(exc), "traceback": traceback.format_exception(exc)[-8:],
                **self._provenance(mat, request.options.hardware, config),
            },
        )  # fmt: skip


def _diverged(exc: BaseException) -> bool:
    # In a multi-process launch the worker's FloatingPointError reaches us inside torch's
    # ProcessRaisedException, as text.
    return isinstance(exc, FloatingPointError) or "FloatingPointError" in str(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip()


EVALUATORS.add(NAME, DetectionEvaluator())
