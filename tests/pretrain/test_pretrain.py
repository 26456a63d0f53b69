"""The pretraining engine: outputs, checkpoints, resume, stops, data loading, and the CLI's bad-input paths."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml
from fixtures.image_pool import LAYOUT, register_png_pool, write_pngs
from fixtures.recipes import tiny_recipe
from fixtures.threads import one_thread

from mast_bench.augment import PARAM_DIM
from mast_bench.config import RunConfig, load_recipe
from mast_bench.errors import TrainingError, TrainingInterrupted
from mast_bench.methods.vicreg import VICReg, vicreg_loss
from mast_bench.pretrain import loop
from mast_bench.pretrain.checkpoint import load_checkpoint
from mast_bench.pretrain.data import EpochBatchSampler, build_pretrain_data
from mast_bench.pretrain.distributed import DistEnv, gather_with_grad
from mast_bench.pretrain.logbook import read_log
from mast_bench.pretrain.run import pretrain
from mast_bench.registry import DATASETS

POOL = "pretrain-test-pool"


_one_thread = pytest.fixture(autouse=True)(one_thread)
register_png_pool(POOL)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pngs(tmp_path_factory.mktemp("pool"), 24, 20, 20)


TINY = tiny_recipe("tiny-test", POOL, epochs=3)


def _recipe(*overrides: str):
    return load_recipe(TINY, overrides)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(path)
    return {**{f"b.{k}": v for k, v in ckpt["backbone"].items()}, **{f"p.{k}": v for k, v in ckpt["projector"].items()}}


def test_run_writes_checkpoints_log_and_recipe(pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    final = pretrain(_recipe(), out, data_root=pool, progress=False)
    assert final == out / "final.pt"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "final.pt", "log.jsonl", "recipe.yaml"]
    raw = torch.load(final, weights_only=True)  # tensors and plain values only
    assert set(raw) == {"format", "format_version", "backbone", "projector", "method_state", "meta"}
    meta = raw["meta"]
    assert (meta["epoch"], meta["step"], meta["complete"], meta["method"]) == (3, 9, True, "vicreg")
    assert meta["backbone"]["name"] == "resnet_tiny" and meta["backbone"]["widths"] == [4, 8, 8, 8]
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.0.bn2.bias"} <= set(raw["backbone"])
    assert raw["method_state"] == {} and meta["code_version"] and meta["created"]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert "optimizer" in ckpt and ckpt["meta"]["complete"] and ckpt["meta"]["step"] == 9
    assert load_recipe(out / "recipe.yaml") == load_recipe(TINY, [f"data.root={pool}"])
    rows = read_log(out / "log.jsonl")
    steps = [r for r in rows if r["event"] == "step"]
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert [r["step"] for r in steps] == list(range(1, 10)) and [r["epoch"] for r in epochs] == [1, 2, 3]
    for r in steps + epochs:
        assert {"epoch", "step", "lr", "loss", "invariance", "variance", "covariance", "images_per_s", "time"} <= set(r)
        assert np.isfinite(r["loss"]) and r["images_per_s"] > 0
    assert steps[0]["lr"] == 0.0 and steps[3]["lr"] == pytest.approx(0.2 * 8 / 256)  # warm-up of 3 steps
    assert rows[0]["event"] == "start" and rows[-1]["event"] == "end"
    torch.manual_seed(0)  # the run's seeded initialisation: training moved every conv away from it
    init = VICReg(_recipe()).backbone.state_dict()
    assert all(not torch.equal(init[k], raw["backbone"][k]) for k in init if k.endswith("conv1.weight"))


def test_interrupted_then_resumed_equals_uninterrupted(pool: Path, tmp_path: Path, monkeypatch) -> None:
    recipe = _recipe("run.checkpoint_every_steps=2")
    pretrain(recipe, tmp_path / "a", data_root=pool, progress=False)

    real_step, calls = loop.train_step, []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", interrupting)
    out = tmp_path / "b"
    with pytest.raises(TrainingInterrupted) as exc:
        pretrain(recipe, out, data_root=pool, progress=False)
    assert exc.value.resumable
    assert str(exc.value) == (
        f"interrupted at epoch 2 step 6; last good checkpoint kept at {out / 'checkpoint.pt'} (epoch 1, step 4); "
        f"continue with --resume --out {out}"
    )
    assert not (out / "final.pt").exists()
    assert load_checkpoint(out / "checkpoint.pt")["meta"]["step"] == 4
    monkeypatch.setattr(loop, "train_step", real_step)
    pretrain(recipe, out, data_root=pool, resume=True, progress=False)
    a, b = _weights(tmp_path / "a" / "final.pt"), _weights(out / "final.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [r["step"] for r in read_log(out / "log.jsonl") if r["event"] == "step"]
    assert steps == list(range(1, 10))  # the log holds each step once, as the weights took it
    assert [r["event"] for r in read_log(out / "log.jsonl")].count("resume") == 1


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(pool: Path, tmp_path: Path, monkeypatch) -> None:
    real, calls = VICReg.compute_loss, []

    def poisoned(self, *args):
        out = real(self, *args)
        calls.append(1)
        if len(calls) == 5:
            out = {**out, "loss": out["loss"] * float("nan"), "variance": out["variance"] * float("nan")}
        return out

    monkeypatch.setattr(VICReg, "compute_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as exc:
        pretrain(_recipe(), out, data_root=pool, progress=False)
    msg = str(exc.value)
    assert msg.startswith("non-finite loss at epoch 2 step 5 (loss=nan, invariance=")
    assert msg.endswith(f"stopped without saving; last good checkpoint kept at {out / 'checkpoint.pt'} "
                        "(epoch 1, step 3)")
    assert "variance=nan" in msg
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "log.jsonl", "recipe.yaml"]
    meta = load_checkpoint(out / "checkpoint.pt")["meta"]
    assert (meta["epoch"], meta["step"], meta["complete"]) == (1, 3, False)
    last = read_log(out / "log.jsonl")[-1]
    assert last["event"] == "stop" and last["message"] == msg


def test_cpu_keeps_fp32_and_logs_a_warning(pool: Path, tmp_path: Path) -> None:
    pretrain(_recipe("run.precision=bf16", "run.epochs=1", "optim.warmup_epochs=0"), tmp_path / "r",
             data_root=pool, progress=False)
    rows = read_log(tmp_path / "r" / "log.jsonl")
    assert rows[0]["precision"] == "fp32"
    assert {"event": "warning", "step": 0, "message": "run.precision=bf16 needs CUDA; training on cpu in fp32"} in rows
    assert load_checkpoint(tmp_path / "r" / "final.pt")["backbone"]["conv1.weight"].dtype == torch.float32


# --------------------------------------------------------------------------- data loading


def test_loader_yields_two_views_and_params_deterministically(pool: Path) -> None:
    recipe = _recipe()
    data = build_pretrain_data(recipe, pool, DistEnv())
    assert data.sampler.steps_per_epoch == 3 and data.num_images == 24
    data.sampler.set_epoch(1)
    batches = list(data.loader)
    (x1, x2), (p1, p2) = batches[0]
    assert x1.shape == x2.shape == (8, 3, 16, 16) and p1.shape == p2.shape == (8, PARAM_DIM)
    assert not torch.equal(x1, x2)
    data.sampler.set_epoch(1, start_step=2)  # resuming mid-epoch skips exactly the first two batches
    tail = list(data.loader)
    assert len(tail) == 1
    assert torch.equal(tail[0][0][0], batches[2][0][0]) and torch.equal(tail[0][1][1], batches[2][1][1])
    data.sampler.set_epoch(2)
    assert not torch.equal(next(iter(data.loader))[0][0], x1)  # a new epoch: new order and new views


def test_worker_processes_give_the_same_batches(pool: Path) -> None:
    a = build_pretrain_data(_recipe(), pool, DistEnv())
    b = build_pretrain_data(_recipe("data.workers=2"), pool, DistEnv())
    for s in (a.sampler, b.sampler):
        s.set_epoch(0)
    for (va, pa), (vb, pb) in zip(a.loader, b.loader, strict=True):
        assert torch.equal(va[0], vb[0]) and torch.equal(va[1], vb[1]) and torch.equal(pa[1], pb[1])


def test_ranks_split_each_global_batch() -> None:
    single = EpochBatchSampler(20, 8, seed=3, env=DistEnv())
    ranks = [EpochBatchSampler(20, 8, seed=3, env=DistEnv(rank=r, world_size=2)) for r in range(2)]
    for s in (single, *ranks):
        s.set_epoch(4)
    for whole, r0, r1 in zip(single, *ranks, strict=True):
        assert r0 + r1 == whole and len(r0) == 4
    assert len(single) == 2  # 20 // 8, the remainder dropped


# --------------------------------------------------------------------------- CLI and bad input


def _write_recipe(tmp_path: Path, **changes) -> Path:
    tree = json.loads(json.dumps(TINY))
    for section, values in changes.items():
        tree[section].update(values)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _cli(*args: str):
    from click.testing import CliRunner  # imported here: the spawned ranks below need not load the CLI

    from mast_bench.cli import main

    return CliRunner().invoke(main, ["pretrain", *args])


def test_cli_unknown_key_names_closest_and_writes_nothing(tmp_path: Path, pool: Path) -> None:
    recipe = _write_recipe(tmp_path)
    out = tmp_path / "out"
    res = _cli(str(recipe), "--set", "run.epocs=2", "--data-root", str(pool), "--out", str(out))
    assert res.exit_code == 2
    valid = ", ".join(f.name for f in dataclasses.fields(RunConfig))
    assert res.output.strip() == (
        f"Error: {recipe}: --set run.epocs=2: unknown key 'run.epocs'; did you mean 'epochs'? (valid keys here: "
        f"{valid})"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "optim": {"base_lrr": 0.1}}))
    res = _cli(str(bad), "--data-root", str(pool), "--out", str(out))
    assert res.exit_code == 2 and "unknown key 'optim.base_lrr'; did you mean 'base_lr'?" in res.output
    assert not out.exists()


def test_cli_refuses_out_folder_with_other_files(tmp_path: Path, pool: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    res = _cli(str(_write_recipe(tmp_path)), "--data-root", str(pool), "--out", str(out))
    assert res.exit_code == 2
    assert res.output.strip() == (f"Error: output folder {str(out)!r} already exists and holds other files "
                                  "(keep.txt); choose another --out or pass --overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "precious"


def test_cli_refuses_unwritable_out_folder(tmp_path: Path, pool: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    out = parent / "out"
    try:
        if os.access(parent, os.W_OK):  # root ignores permission bits: use a read-only filesystem instead
            out = Path("/sys/mast-bench-out")
            if not Path("/sys").is_dir():
                pytest.skip("running as root without a read-only filesystem to write into")
        res = _cli(str(_write_recipe(tmp_path)), "--data-root", str(pool), "--out", str(out))
        assert res.exit_code == 2
        assert res.output.startswith(f"Error: cannot create output folder {str(out)!r}: ")
        assert not out.exists()
    finally:
        parent.chmod(0o755)


def test_cli_missing_data_root_and_wrong_layout(tmp_path: Path) -> None:
    recipe = str(_write_recipe(tmp_path))
    out = tmp_path / "out"
    res = _cli(recipe, "--out", str(out))
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: dataset {POOL!r} needs --data-root (expected layout: {LAYOUT})"
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _cli(recipe, "--data-root", str(empty), "--out", str(out))
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: no images in {str(empty / 'images')!r} (expected layout: {LAYOUT})"
    res = _cli(recipe, "--data-root", str(tmp_path / "nowhere"), "--out", str(out))
    assert res.exit_code == 2 and "does not exist (expected layout" in res.output
    assert not out.exists()


def test_cli_unknown_family_and_too_large_batch(tmp_path: Path, pool: Path) -> None:
    recipe = str(_write_recipe(tmp_path))
    out = tmp_path / "out"
    res = _cli(recipe, "--set", "augment.families=[crop, colour]", "--data-root", str(pool), "--out", str(out))
    assert res.exit_code == 2 and "unknown augmentation family 'colour' (did you mean 'color_jitter'?)" in res.output
    res = _cli(recipe, "--set", "run.batch_size=32", "--data-root", str(pool), "--out", str(out))
    assert res.exit_code == 2
    assert f"run.batch_size (32) is larger than dataset {POOL!r} split 'train' (24 images)" in res.output
    assert not out.exists()


def test_cli_interrupt_then_resume(tmp_path: Path, pool: Path, monkeypatch) -> None:
    recipe = str(_write_recipe(tmp_path, run={"epochs": 2}))
    out = tmp_path / "out"
    real_step, calls = loop.train_step, []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", interrupting)
    res = _cli(recipe, "--data-root", str(pool), "--out", str(out), "--no-progress")
    assert res.exit_code == 130
    assert f"last good checkpoint kept at {out / 'checkpoint.pt'} (epoch 1, step 3)" in res.output
    assert f"Resume with: mast-bench pretrain {recipe} --out {out} --data-root {pool} --resume" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "log.jsonl", "recipe.yaml"]
    monkeypatch.setattr(loop, "train_step", real_step)
    (out / "notes.txt").write_text("mine")  # --resume accepts the run's own files only
    res = _cli(recipe, "--data-root", str(pool), "--out", str(out), "--resume", "--no-progress")
    assert res.exit_code == 2 and "holds other files (notes.txt)" in res.output
    (out / "notes.txt").unlink()
    res = _cli(recipe, "--data-root", str(pool), "--out", str(out), "--resume", "--no-progress")
    assert res.exit_code == 0, res.output
    assert f"final weights: {out / 'final.pt'}" in res.output
    assert load_checkpoint(out / "final.pt")["meta"]["step"] == 6
    res = _cli(recipe, "--data-root", str(pool), "--out", str(out), "--resume", "--set", "optim.base_lr=0.3")
    assert res.exit_code == 2
    assert "cannot resume" in res.output and "optim.base_lr: 0.2 → 0.3" in res.output


def test_cli_resume_without_checkpoint(tmp_path: Path, pool: Path) -> None:
    out = tmp_path / "out"
    res = _cli(str(_write_recipe(tmp_path)), "--data-root", str(pool), "--out", str(out), "--resume")
    assert res.exit_code == 2
    assert res.output.strip() == (f"Error: nothing to resume: {str(out / 'checkpoint.pt')!r} does not exist "
                                  "(drop --resume to start)")
    assert not out.exists()


# --------------------------------------------------------------------------- two processes (gloo), spawned once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gather_check(rank: int, out_dir: Path) -> None:
    """VICReg on half a batch per rank with gather_with_grad, through DDP (saved for the parent to compare)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 6)  # same init on every rank
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    half = slice(rank * 4, rank * 4 + 4)
    z1, z2 = ddp(x1[half]), ddp(x2[half])
    out = vicreg_loss(z1, z2, gathered=(gather_with_grad(z1), gather_with_grad(z2)))
    out["loss"].backward()
    torch.save({"loss": out["loss"].detach(), "variance": out["variance"], "covariance": out["covariance"],
                "grad_w": model.weight.grad, "grad_b": model.bias.grad}, out_dir / f"rank{rank}.pt")


def _rank_main(rank: int, ports: tuple[int, int], pool: str, out: str) -> None:
    """What torchrun would start (its environment variables, then the library call), then the gather check."""
    import torch.distributed as dist

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(ports[0]))
    torch.set_num_threads(1)
    pretrain(_recipe("run.epochs=2"), Path(out) / "run", data_root=pool, progress=False)  # joins and leaves the group
    if dist.is_initialized():
        raise RuntimeError("pretrain left its process group open")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{ports[1]}", rank=rank, world_size=2)
    try:
        _gather_check(rank, Path(out))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank_main, args=((_free_port(), _free_port()), str(pool), str(out)), nprocs=2, join=True)
    return out


@pytest.mark.slow
def test_two_process_gather_gives_full_batch_loss_and_gradients(two_processes: Path) -> None:
    ranks = [torch.load(two_processes / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 6)
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    full = vicreg_loss(model(x1), model(x2))
    full["loss"].backward()
    # invariance is a per-rank mean over equal halves, so the mean over ranks is the full-batch loss
    assert torch.stack([r["loss"] for r in ranks]).mean().item() == pytest.approx(full["loss"].item(), rel=1e-5)
    for r in ranks:  # variance and covariance see the gathered batch on every rank
        assert r["variance"].item() == pytest.approx(full["variance"].item(), rel=1e-5)
        assert r["covariance"].item() == pytest.approx(full["covariance"].item(), rel=1e-5)
        # DDP averages the ranks' gradients: the single-process full-batch gradient
        torch.testing.assert_close(r["grad_w"], model.weight.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(r["grad_b"], model.bias.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_process_run_writes_once_from_rank_zero(two_processes: Path) -> None:
    out = two_processes / "run"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "final.pt", "log.jsonl", "recipe.yaml"]
    rows = read_log(out / "log.jsonl")
    assert rows[0]["world_size"] == 2
    assert [r["step"] for r in rows if r["event"] == "step"] == list(range(1, 7))  # one line per step, not per rank
    assert load_checkpoint(out / "final.pt")["meta"]["step"] == 6


# --------------------------------------------------------------------------- shipped recipes

RECIPES = sorted((Path(__file__).resolve().parents[2] / "pretrain").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path: Path) -> None:
    from mast_bench.augment import build_multiview
    from mast_bench.pretrain.run import _validate_run
    from mast_bench.pretrain.schedule import build_schedule
    from mast_bench.registry import METHODS

    r = load_recipe(path)
    _validate_run(r)
    build_multiview(r.augment)
    METHODS.get(r.method.name)
    assert r.data.split in DATASETS.get(r.data.dataset).splits
    build_schedule(r.optim, r.run.batch_size, 100, r.run.epochs)


def test_paper_scale_recipes_follow_vicreg_and_augself() -> None:
    r50 = load_recipe(Path(RECIPES[0]).parent / "vicreg_r50_imagenet.yaml")
    assert (r50.model.backbone, r50.model.projector, r50.augment.size) == ("resnet50", (8192, 8192, 8192), 224)
    assert (r50.optim.name, r50.optim.base_lr, r50.optim.weight_decay, r50.optim.eta) == ("lars", 0.2, 1e-6, 0.001)
    assert (r50.optim.warmup_epochs, r50.optim.final_lr_ratio) == (10, 0.001)
    assert (r50.run.batch_size, r50.run.epochs, r50.run.precision) == (2048, 1000, "fp16")
    assert (r50.method.sim_coeff, r50.method.std_coeff, r50.method.cov_coeff) == (25, 25, 1)
    stl = load_recipe(Path(RECIPES[0]).parent / "vicreg_r18_stl10.yaml")
    assert (stl.model.backbone, stl.augment.pipeline, stl.augment.size, stl.augment.crop_scale) == (
        "resnet18", "augself", 96, (0.2, 1.0))
    assert (stl.data.dataset, stl.data.split, stl.run.epochs) == ("stl10", "train+unlabeled", 200)


# --------------------------------------------------------------------------- checkpoint files


@pytest.fixture(scope="module")
def finished(pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finished") / "run"
    pretrain(_recipe("run.epochs=1", "optim.warmup_epochs=0"), out, data_root=pool, progress=False)
    torch.set_num_threads(before)
    return out


class _Foreign:
    pass


@pytest.mark.parametrize(("make", "message"), [
    (lambda p, good: p.write_bytes(good.read_bytes()[:1000]), "is truncated or corrupt and cannot be read"),
    (lambda p, good: p.write_text("hello"), "is not a PyTorch checkpoint: it looks like a text file"),
    (lambda p, good: torch.save({"state_dict": {}}, p), "is not a mast-bench checkpoint (no 'format'"),
    (lambda p, good: torch.save({"format": "mast-bench-checkpoint", "format_version": 9}, p), "format_version 9"),
    (lambda p, good: torch.save({"format": "mast-bench-checkpoint", "format_version": 1, "backbone": {}}, p),
     "lacks projector, method_state, meta"),
    (lambda p, good: torch.save({"x": _Foreign()}, p), "refusing to load checkpoint"),
])
def test_bad_checkpoint_files_are_refused(finished: Path, tmp_path: Path, make, message: str) -> None:
    from mast_bench.errors import CheckpointError

    path = tmp_path / "bad.pt"
    make(path, finished / "final.pt")
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(")):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_restore_is_strict_and_names_leftover_keys(finished: Path) -> None:
    from mast_bench.errors import CheckpointError
    from mast_bench.pretrain.checkpoint import restore_method

    ckpt = load_checkpoint(finished / "final.pt")
    method = VICReg(_recipe())
    restore_method(method, ckpt)
    assert torch.equal(method.backbone.conv1.weight, ckpt["backbone"]["conv1.weight"])
    ckpt["backbone"]["fc.weight"] = torch.zeros(1)
    del ckpt["backbone"]["bn1.bias"]
    with pytest.raises(CheckpointError) as exc:
        restore_method(method, ckpt)
    assert str(exc.value) == (
        "backbone weights do not match the model: missing keys: bn1.bias; unexpected keys: fc.weight"
    )


def test_resuming_a_finished_run_changes_nothing(finished: Path, pool: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in finished.iterdir()}
    again = pretrain(_recipe("run.epochs=1", "optim.warmup_epochs=0"), finished, data_root=pool, resume=True,
                     progress=False)
    assert again == finished / "final.pt"
    assert {p.name: p.stat().st_mtime_ns for p in finished.iterdir()} == before
