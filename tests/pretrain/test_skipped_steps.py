"""Non-finite gradients with a finite loss: skipped steps are logged, a run of them stops training.

The failure this guards against: NaN gradients (e.g. 0·∞ in a backward pass) under fp16 and the GradScaler
make every optimiser step a skipped one, the loss stays constant and the scale halves forever, silently.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from fixtures.recipes import tiny_recipe
from fixtures.threads import one_thread

from mast_bench.augment import IDENTITY_PARAMS, PARAM_DIM
from mast_bench.config import load_recipe
from mast_bench.errors import TrainingError
from mast_bench.methods import mast as mast_module
from mast_bench.methods.mast import MAST
from mast_bench.pretrain import run as run_module
from mast_bench.pretrain.checkpoint import load_checkpoint
from mast_bench.pretrain.device import Precision
from mast_bench.pretrain.logbook import read_log
from mast_bench.pretrain.loop import MAX_SKIPPED_IN_A_ROW, train_step
from mast_bench.pretrain.optimizer import build_optimizer
from mast_bench.pretrain.run import pretrain

TINY = tiny_recipe("skip-test", "synthetic-pool", method="mast", batch_size=16)


_one_thread = pytest.fixture(autouse=True)(one_thread)


def _poison_mask_gradients(monkeypatch: pytest.MonkeyPatch, bad_calls: set[int] | None) -> list[int]:
    """Make the mask logits' gradient NaN on the given forward calls (1-based; ``None``: from call 4 on)."""
    real, calls = mast_module.width_scaled_grad, []

    def poisoned(logits: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        out = real(logits)
        if (bad_calls is None and len(calls) >= 4) or (bad_calls is not None and len(calls) in bad_calls):
            out.register_hook(lambda g: g * float("nan"))
        return out

    monkeypatch.setattr(mast_module, "width_scaled_grad", poisoned)
    return calls


def _cpu_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16 autocast and a GradScaler on the CPU, as a CUDA fp16 run gets them."""

    def fp16(precision: str, device: torch.device) -> Precision:
        return Precision(lambda: torch.autocast("cpu", dtype=torch.float16), torch.amp.GradScaler("cpu"), "fp16")

    monkeypatch.setattr(run_module, "setup_precision", fp16)


def test_a_few_skipped_steps_are_logged_and_training_goes_on(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison_mask_gradients(monkeypatch, {4, 5})
    out = tmp_path / "run"
    final = pretrain(load_recipe(TINY), out, data_root=synthetic_root, progress=False)
    rows = read_log(out / "log.jsonl")
    skips = [r for r in rows if r["event"] == "skip"]
    assert [(r["step"], r["in_a_row"], r["nonfinite"]) for r in skips] == [
        (4, 1, ["mask_logits"]),
        (5, 2, ["mask_logits"]),
    ]
    assert [r["skipped_steps"] for r in rows if r["event"] == "step"] == [0, 0, 0, 1, 2, 2]
    assert [r["skipped_steps"] for r in rows if r["event"] == "epoch"] == [0, 2]
    ckpt = load_checkpoint(final)
    assert ckpt["meta"]["step"] == 6 and torch.isfinite(ckpt["method_state"]["mask_logits"]).all()


def test_too_many_skipped_steps_in_a_row_stop_and_keep_the_last_good_checkpoint(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison_mask_gradients(monkeypatch, None)  # every step from the 4th on
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as exc:
        pretrain(load_recipe(TINY, ["run.epochs=5"]), out, data_root=synthetic_root, progress=False)
    msg = str(exc.value)
    last = 3 + MAX_SKIPPED_IN_A_ROW + 1  # steps 4..12 skipped: 9 in a row
    assert msg.startswith(
        f"optimiser step skipped {MAX_SKIPPED_IN_A_ROW + 1} times in a row (steps 4 to {last}, "
        "epoch 4): non-finite gradients in mask_logits with a finite loss (loss="
    )
    assert msg.endswith(
        f"stopped without saving; last good checkpoint kept at {out / 'checkpoint.pt'} (epoch 3, step 9)"
    )
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "log.jsonl", "recipe.yaml"]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert (ckpt["meta"]["epoch"], ckpt["meta"]["step"]) == (3, 9)
    assert all(torch.isfinite(v).all() for v in ckpt["method_state"].values() if v.is_floating_point())
    rows = read_log(out / "log.jsonl")
    assert [r["step"] for r in rows if r["event"] == "skip"] == list(range(4, last + 1))
    assert rows[-1] == {"event": "stop", "epoch": 4, "step": last, "message": msg}


def test_fp16_grad_scaler_skips_are_counted_and_a_run_of_them_stops(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GradScaler path end to end (CPU autocast + CPU GradScaler stand in for CUDA's)."""
    _cpu_fp16(monkeypatch)
    _poison_mask_gradients(monkeypatch, None)
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as exc:
        pretrain(load_recipe(TINY, ["run.epochs=5"]), out, data_root=synthetic_root, progress=False)
    # Before the fix the loop only checked the loss: each step was skipped by the scaler and nothing was said.
    skips = [r for r in read_log(out / "log.jsonl") if r["event"] == "skip"]
    assert len(skips) == MAX_SKIPPED_IN_A_ROW + 1
    scales = [r["scale"] for r in skips]
    assert scales == [65536.0 / 2 ** (i + 1) for i in range(len(skips))]  # halved by every skipped step
    assert f"gradient scale now {scales[-1]:g}; stopped without saving" in str(exc.value)
    assert "non-finite gradients in mask_logits" in str(exc.value)


def _batch(n: int = 8):
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(n, 3, 16, 16, generator=g), torch.randn(n, 3, 16, 16, generator=g)
    p1 = IDENTITY_PARAMS + 0.3 * torch.rand(n, PARAM_DIM, generator=g)
    p2 = IDENTITY_PARAMS + 0.3 * torch.rand(n, PARAM_DIM, generator=g)
    return [x1, x2], [p1, p2]


@pytest.mark.parametrize("logit", [-19.5, -30.0, -100.0, 30.0])
def test_fp16_steps_at_saturated_masks_are_taken(logit: float) -> None:
    """Every mask logit saturated (where the old coverage term's backward was 0·∞ = NaN): the step is taken."""
    recipe = load_recipe(TINY)
    torch.manual_seed(0)
    method = MAST(recipe)
    with torch.no_grad():
        method.mask_logits.fill_(logit)
    opt = build_optimizer(method, recipe.optim)
    for g in opt.param_groups:
        g["lr"] = 0.1
    precision = Precision(lambda: torch.autocast("cpu", dtype=torch.float16), torch.amp.GradScaler("cpu"), "fp16")
    views, params = _batch()
    outcomes = []
    while not (outcomes and outcomes[-1].stepped):
        # The scaler's first steps may overflow in the fp16 backbone (scale 65536 is calibrated down by
        # halving); the mask logits' gradients, computed in float32, must never be the non-finite ones.
        _, outcome = train_step(method, opt, precision, views, params, torch.device("cpu"))
        outcomes.append(outcome)
        assert outcome.loss_finite and "mask_logits" not in outcome.nonfinite, outcome
        assert len(outcomes) <= MAX_SKIPPED_IN_A_ROW
    assert torch.isfinite(method.mask_logits).all()
    if logit < 0:  # at +30 the sigmoid's slope (1e-13) leaves float32 logits where they are
        assert not torch.equal(method.mask_logits.detach(), torch.full_like(method.mask_logits, logit))
    # And in float32 without a scaler.
    fp32 = Precision(contextlib.nullcontext, None, "fp32")
    _, outcome = train_step(method, opt, fp32, views, params, torch.device("cpu"))
    assert outcome.stepped and outcome.nonfinite == () and outcome.scale is None
