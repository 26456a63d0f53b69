"""Cluster launch scripts and throughput benchmarks: their lines parse, name real recipes, print their contract."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from torch.distributed.run import get_args_parser

from mast_bench.cli import main
from mast_bench.config import load_recipe

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_pretrain.sh"


def _dry_run_script(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``script`` with ``MAST_BENCH_DRY_RUN=1``, no inherited SLURM_* variables, and ``env`` on top."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(
        ["bash", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "MAST_BENCH_DRY_RUN": "1", **env},
    )


def _dry_run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return _dry_run_script(SCRIPT, env)


def _parse(line: str):
    """srun … torchrun <torchrun args> -m mast_bench <cli args> → (srun args, torchrun namespace, cli context)."""
    tokens = shlex.split(line)
    assert tokens[0] == "srun"
    at = tokens.index("torchrun")
    ns = get_args_parser().parse_args(tokens[at + 1 :])
    assert ns.module and ns.training_script == "mast_bench"
    verb, *rest = ns.training_script_args
    command = main.get_command(main.make_context("mast-bench", [verb], resilient_parsing=True), verb)
    ctx = command.make_context(verb, list(rest))
    return tokens[1:at], ns, verb, ctx.params


@pytest.mark.parametrize("recipe", [None, "pretrain/vicreg_r50_imagenet.yaml"])
def test_slurm_pretrain_line_parses_and_names_an_imagenet_recipe(recipe: str | None, tmp_path: Path) -> None:
    env = {
        "DATA_ROOT": "/data/image net",
        "SLURM_JOB_NUM_NODES": "4",
        "SLURM_JOB_ID": "4242",
        "MASTER_ADDR": "node007",
        "OUT": str(tmp_path / "run"),
    }
    if recipe:
        env["RECIPE"] = recipe
    done = _dry_run(env)
    assert done.returncode == 0, done.stderr
    srun, ns, verb, params = _parse(done.stdout.strip())
    assert "--ntasks-per-node=1" in srun  # one task per node; torchrun starts the per-GPU processes
    assert (ns.nnodes, ns.nproc_per_node, ns.rdzv_backend, ns.rdzv_endpoint, ns.rdzv_id) == (
        "4",
        "8",
        "c10d",
        "node007:29500",
        "4242",
    )
    assert verb == "pretrain"
    assert params["data_root"] == Path("/data/image net") and params["out"] == tmp_path / "run"
    assert not params["resume"]  # nothing to resume yet
    path = ROOT / params["recipe"]
    assert path.is_file() and params["recipe"] == Path(recipe or "pretrain/mast_r50_imagenet.yaml")
    r = load_recipe(path)
    assert r.data.dataset == "imagenet" and r.model.backbone == "resnet50"
    assert r.run.batch_size % (4 * 8) == 0  # the global batch divides over 4 nodes x 8 GPUs


def test_slurm_pretrain_resumes_when_a_checkpoint_exists(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"")
    done = _dry_run({"DATA_ROOT": "/data/imagenet", "OUT": str(tmp_path / "run")})
    assert done.returncode == 0, done.stderr
    _, _, _, params = _parse(done.stdout.strip())
    assert params["resume"]


def test_slurm_pretrain_requeues_itself_and_needs_a_data_root() -> None:
    text = SCRIPT.read_text()
    assert "#SBATCH --requeue" in text and re.search(r"#SBATCH --signal=B:USR1@\d+", text)
    assert re.search(r"trap requeue USR1", text) and "scontrol requeue" in text
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MAST_BENCH_DRY_RUN", "DATA_ROOT"))}
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=60, env=clean)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"Error: set DATA_ROOT to the ImageNet folder (DATA_ROOT=/data/imagenet sbatch {SCRIPT})"
    )


# --------------------------------------------------------------------------- benchmarks print their last line


def _bench(*args: str, timeout: int = 600) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_augment_throughput_prints_its_contract_line() -> None:
    last = _bench(
        sys.executable,
        "benchmarks/augment_throughput.py",
        "--batch",
        "4",
        "--size",
        "32",
        "--source",
        "40x48",
        "--reps",
        "1",
    )
    m = re.fullmatch(r"augment_throughput: per-image ([\d.]+), batched ([\d.]+), ratio ([\d.]+)", last)
    assert m and float(m[1]) > 0 and float(m[2]) > 0
    assert float(m[3]) == pytest.approx(float(m[2]) / float(m[1]), abs=0.01)


@pytest.mark.slow
def test_pretrain_throughput_prints_its_contract_line() -> None:
    last = _bench(
        sys.executable,
        "benchmarks/pretrain_throughput.py",
        "--recipe",
        "pretrain/vicreg_tiny_quick.yaml",
        "--batch",
        "8",
        "--size",
        "16",
        "--precision",
        "fp32",
        "--workers",
        "0",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--source",
        "24x24",
        "--threads",
        "1",
        "--device",
        "cpu",
    )
    assert re.fullmatch(r"pretrain_throughput: [\d.]+ img/s, peak \d+ MiB", last)


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_in_its_dry_mode() -> None:
    last = _bench("bash", "benchmarks/gpu_check.sh", "--dry")
    m = re.fullmatch(r"gpu_check: ours ([\d.]+) img/s, plain ([\d.]+) img/s, ratio ([\d.]+)", last)
    assert m and float(m[3]) == pytest.approx(float(m[1]) / float(m[2]), abs=0.01)


# --------------------------------------------------------------------------- evaluation job array

ARRAY = ROOT / "scripts" / "slurm_evaluate_array.sh"


def _array_task(task: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _dry_run_script(ARRAY, {"SLURM_ARRAY_TASK_ID": str(task), **env})


def test_slurm_evaluation_array_covers_checkpoints_times_shards_once(tmp_path: Path) -> None:
    from mast_bench.downstream.shard import parse_shard

    ckpts = tmp_path / "ckpts.txt"
    ckpts.write_text("runs/a/final.pt\n# a comment\n\nruns/b b/final.pt\nruns/c/final.pt\n")
    env = {"CHECKPOINTS": str(ckpts), "DATA_ROOT": "/data", "SHARDS": "4"}
    seen = []
    evaluate = main.get_command(main.make_context("mast-bench", ["evaluate"], resilient_parsing=True), "evaluate")
    for task in range(12):
        done = _array_task(task, env)
        assert done.returncode == 0, done.stderr
        tokens = shlex.split(done.stdout.strip())
        assert tokens[:3] == ["mast-bench", "evaluate", "suite"]
        suite_cmd = evaluate.get_command(evaluate.make_context("evaluate", ["suite"], resilient_parsing=True), "suite")
        params = suite_cmd.make_context("suite", tokens[3:]).params
        assert (ROOT / params["suite_file"]).is_file() and params["data_root"] == Path("/data")
        shard = parse_shard(params["shard"])
        seen.append((str(params["weights"]), shard.index, shard.count))
    expected = [(w, i, 4) for w in ("runs/a/final.pt", "runs/b b/final.pt", "runs/c/final.pt") for i in range(4)]
    assert sorted(seen) == sorted(expected) and len(set(seen)) == 12
    over = _array_task(12, env)
    assert over.returncode == 2
    assert over.stderr.strip() == (f"Error: array task 12 needs checkpoint 3 but '{ckpts}' lists 3; use --array=0-11")
