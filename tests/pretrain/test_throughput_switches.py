"""Speed switches of a pretraining run: where augmentation runs, channels_last, compile, TensorBoard, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.image_pool import register_png_pool, write_pngs
from fixtures.recipes import tiny_recipe
from fixtures.threads import one_thread

from mast_bench.augment_batched import EQUALITY_ATOL
from mast_bench.config import ConfigError, load_recipe
from mast_bench.errors import CheckpointError
from mast_bench.pretrain.checkpoint import load_checkpoint
from mast_bench.pretrain.data import build_pretrain_data
from mast_bench.pretrain.device import compile_probe, maybe_compile
from mast_bench.pretrain.distributed import DistEnv
from mast_bench.pretrain.logbook import read_log
from mast_bench.pretrain.run import pretrain

POOL = "throughput-test-pool"
register_png_pool(POOL)

TINY = tiny_recipe("tiny-switches", POOL)


_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pngs(tmp_path_factory.mktemp("pool"), 16, 20, 24)


def _recipe(*overrides: str):
    return load_recipe(TINY, overrides)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(path)
    return {**{f"b.{k}": v for k, v in ckpt["backbone"].items()}, **{f"p.{k}": v for k, v in ckpt["projector"].items()}}


def test_device_and_worker_augmentation_give_the_same_batches(pool: Path) -> None:
    device = build_pretrain_data(_recipe("augment.where=device"), pool, DistEnv())
    workers = build_pretrain_data(_recipe("augment.where=workers"), pool, DistEnv())
    (vd, pd), (vw, pw) = next(iter(device.loader)), next(iter(workers.loader))
    std = min(_recipe().augment.std)
    for k in range(2):
        assert torch.equal(pd[k], pw[k])  # the same parameters, drawn and recorded identically
        assert vd[k].dtype == torch.float32 and vd[k].shape == (8, 3, 16, 16)
        torch.testing.assert_close(vd[k], vw[k], rtol=0, atol=EQUALITY_ATOL / std)
        assert (vd[k] - vw[k]).abs().max() > 0  # two code paths really ran (not one pipeline twice)


def test_runs_with_either_augmentation_path_train_alike(pool: Path, tmp_path: Path) -> None:
    a = pretrain(_recipe("augment.where=device"), tmp_path / "device", data_root=pool, progress=False)
    b = pretrain(_recipe("augment.where=workers"), tmp_path / "workers", data_root=pool, progress=False)
    la = [r["loss"] for r in read_log(a.parent / "log.jsonl") if r["event"] == "step"]
    lb = [r["loss"] for r in read_log(b.parent / "log.jsonl") if r["event"] == "step"]
    assert la[0] == pytest.approx(lb[0], rel=1e-5)  # same weights, views equal to ~1e-6
    np.testing.assert_allclose(la, lb, rtol=1e-3)
    start = read_log(a.parent / "log.jsonl")[0]
    assert start["augment_where"] == "device" and read_log(b.parent / "log.jsonl")[0]["augment_where"] == "workers"
    assert start["environment"]["torch"] == torch.__version__ and start["environment"]["python"]


def test_channels_last_changes_layout_not_the_result(pool: Path, tmp_path: Path) -> None:
    data = build_pretrain_data(_recipe("run.channels_last=true"), pool, DistEnv())
    views, _ = next(iter(data.loader))
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in views)
    ref = pretrain(_recipe(), tmp_path / "nchw", data_root=pool, progress=False)
    nhwc = pretrain(_recipe("run.channels_last=true"), tmp_path / "nhwc", data_root=pool, progress=False)
    assert read_log(nhwc.parent / "log.jsonl")[0]["channels_last"] is True
    a, b = _weights(ref), _weights(nhwc)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4)


_NO_COMPILER_RUN = """
import sys, json
from pathlib import Path
import torch, torch._inductor.config as inductor
sys.path[:0] = [{tests!r}, {fixtures_root!r}]  # the test module and the shared fixtures it imports
import test_throughput_switches as t
from mast_bench.pretrain.device import compile_probe
from mast_bench.pretrain.run import pretrain
torch.set_num_threads(1)
inductor.cpp.cxx = (None, {cxx!r})  # a machine whose C++ compiler is missing
inductor.fx_graph_cache = False
reason = compile_probe(torch.device("cpu"))
pretrain(t._recipe("run.compile=true", "run.epochs=1"), Path({out!r}), data_root={pool!r}, progress=False)
print(json.dumps(reason))
"""


@pytest.mark.slow
def test_compile_without_a_working_compiler_falls_back_with_a_recorded_warning(pool: Path, tmp_path: Path) -> None:
    """In a fresh process: inductor caches its compiler lookups process-wide, which must not leak into other tests."""
    out = tmp_path / "run"
    code = _NO_COMPILER_RUN.format(
        tests=str(Path(__file__).parent),
        fixtures_root=str(Path(__file__).parents[1]),
        cxx=str(tmp_path / "no-such-g++"),
        out=str(out),
        pool=str(pool),
    )
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor-cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reason = json.loads(done.stdout.strip().splitlines()[-1])
    assert reason.startswith("InductorError: InvalidCxxCompiler") and "no-such-g++" in reason
    rows = read_log(out / "log.jsonl")
    assert rows[0]["compiled"] is False
    warnings = [r["message"] for r in rows if r["event"] == "warning"]
    assert warnings == [f"run.compile: torch.compile does not work on this machine ({reason}); training in eager mode"]
    assert (out / "final.pt").is_file()


@pytest.mark.slow
def test_compile_where_a_compiler_works() -> None:
    if compile_probe(torch.device("cpu")) is not None:
        pytest.skip("no working torch.compile backend on this machine")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    compiled, ok, warning = maybe_compile(model, True, torch.device("cpu"))
    x = torch.randn(5, 4)
    assert ok and warning is None and compiled is not model
    torch.testing.assert_close(compiled(x), model(x))
    assert maybe_compile(model, False, torch.device("cpu")) == (model, False, None)


def test_tensorboard_events_hold_loss_terms_lr_rate_and_mast_subspaces(pool: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    pretrain(_recipe("method.name=mast", "run.tensorboard=true", "run.epochs=1"), out, data_root=pool, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt",
        "final.pt",
        "log.jsonl",
        "recipe.yaml",
        "tensorboard",
    ]
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    families = ("crop", "flip", "color_jitter", "grayscale", "blur", "solarize")
    assert {
        "train/loss",
        "train/invariance",
        "train/variance",
        "train/covariance",
        "train/lr",
        "train/images_per_s",
        "epoch/loss",
    } <= tags
    assert {f"mast/mask_mass/{f}" for f in families} <= tags and {f"mast/logvar/{f}" for f in families} <= tags
    steps = [r for r in read_log(out / "log.jsonl") if r["event"] == "step"]
    assert [e.step for e in acc.Scalars("train/loss")] == [r["step"] for r in steps]
    for event, row in zip(acc.Scalars("train/loss"), steps, strict=True):
        assert event.value == pytest.approx(row["loss"], rel=1e-6)
    # the last step's mask mass is the mean of the final soft masks
    masks = torch.sigmoid(load_checkpoint(out / "final.pt")["method_state"]["mask_logits"]).mean(dim=1)
    for family, mass in zip(families, masks.tolist(), strict=True):
        assert acc.Scalars(f"mast/mask_mass/{family}")[-1].value == pytest.approx(mass, rel=1e-5)
    logvar = [acc.Scalars(f"mast/logvar/{f}")[-1].value for f in families]
    assert all(abs(v) <= 5.0 for v in logvar)  # squashed to ±uncertainty_bound


def test_tensorboard_missing_is_a_clear_error_before_anything_is_written(
    pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as exc:
        pretrain(_recipe("run.tensorboard=true"), out, data_root=pool, progress=False)
    assert str(exc.value) == (
        "run.tensorboard: true needs the tensorboard package "
        "(pip install 'mast-bench[tensorboard]'), or set run.tensorboard=false"
    )
    assert not out.exists()


def test_resume_refuses_another_recipes_checkpoint_naming_the_fields(pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    pretrain(_recipe("run.epochs=1"), out, data_root=pool, progress=False)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    other = _recipe("run.epochs=2", "method.name=mast", "augment.crop_scale=[0.2, 1.0]")
    with pytest.raises(CheckpointError) as exc:
        pretrain(other, out, data_root=pool, resume=True, progress=False)
    message = str(exc.value)
    assert message.startswith(f"cannot resume {str(out / 'checkpoint.pt')!r} with a different recipe (")
    assert "augment.crop_scale: (0.08, 1.0) → (0.2, 1.0)" in message and "method.name: 'vicreg' → 'mast'" in message
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before  # nothing touched


def test_speed_switches_may_change_on_resume(pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    pretrain(_recipe("run.epochs=1"), out, data_root=pool, progress=False)
    pretrain(
        _recipe(
            "run.epochs=2",
            "augment.where=workers",
            "run.channels_last=true",
            "data.pin_memory=false",
            "data.persistent_workers=false",
        ),
        out,
        data_root=pool,
        resume=True,
        progress=False,
    )
    assert load_checkpoint(out / "final.pt")["meta"]["step"] == 4
