"""The MAST method module: VICReg parity, gradients, state, and its bad-input paths end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fixtures.recipes import tiny_recipe
from fixtures.threads import one_thread

from mast_bench.augment import IDENTITY_PARAMS, PARAM_DIM
from mast_bench.config import ConfigError, load_recipe
from mast_bench.errors import CheckpointError, TrainingError
from mast_bench.fileio import sha256_file
from mast_bench.methods.mast import MAST, width_scaled_grad
from mast_bench.methods.mast_heads import UncertaintyHead
from mast_bench.methods.vicreg import VICReg
from mast_bench.pretrain.checkpoint import load_checkpoint, restore_method
from mast_bench.pretrain.logbook import read_log
from mast_bench.pretrain.run import pretrain
from mast_bench.registry import METHODS

TINY = tiny_recipe("mast-test", "synthetic-pool", method="mast", batch_size=16)
OFF = ("method.mast.masks=false", "method.mast.uncertainty=false")


_one_thread = pytest.fixture(autouse=True)(one_thread)


def _recipe(*overrides: str):
    return load_recipe(TINY, overrides)


def _batch(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(n, 3, 16, 16, generator=g), torch.randn(n, 3, 16, 16, generator=g)
    p1 = IDENTITY_PARAMS + 0.3 * torch.rand(n, PARAM_DIM, generator=g)
    p2 = IDENTITY_PARAMS + 0.3 * torch.rand(n, PARAM_DIM, generator=g)
    return (x1, x2), (p1, p2)


def test_registered_and_built_from_a_recipe() -> None:
    m = METHODS.get("mast")(_recipe())
    assert isinstance(m, MAST) and m.families == ("crop", "flip", "color_jitter", "grayscale", "blur", "solarize")
    assert m.mask_logits.shape == (6, 16) and torch.all(m.masks() == 0.5)
    assert set(m.method_state_dict()) == {
        "mask_logits",
        "family_index",
        "uncertainty_head.w1",
        "uncertainty_head.b1",
        "uncertainty_head.w2",
        "uncertainty_head.b2",
    }
    assert {id(p) for p in m.aux_parameters()} == {id(m.mask_logits), *(id(p) for p in m.uncertainty_head.parameters())}


def test_masks_off_is_vicreg_bit_for_bit_on_the_same_batch() -> None:
    views, params = _batch()
    torch.manual_seed(0)
    mast = MAST(_recipe(*OFF))
    torch.manual_seed(0)
    vicreg = VICReg(_recipe("method.name=vicreg"))
    ours, ref = mast(views, params), vicreg(views, params)
    assert ours.keys() == ref.keys()
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key
    ours["loss"].backward()
    ref["loss"].backward()
    for (name, a), (_, b) in zip(mast.backbone.named_parameters(), vicreg.backbone.named_parameters()):
        assert torch.equal(a.grad, b.grad), name


def test_uncertainty_starts_neutral_and_gradients_reach_masks_and_heads() -> None:
    views, params = _batch()
    torch.manual_seed(0)
    plain = MAST(_recipe("method.mast.uncertainty=false"))
    torch.manual_seed(0)
    full = MAST(_recipe("method.mast.aware=true"))
    a, b = plain(views, params), full(views, params)
    torch.testing.assert_close(a["invariance"], b["invariance"])  # s = 0 at initialisation: weights all 1
    b["loss"].backward()
    assert full.mask_logits.grad.abs().sum() > 0
    head = full.uncertainty_head
    assert head.w2.grad.abs().sum() > 0 and head.b2.grad.abs().sum() > 0
    assert full.aware_head.w2.grad.abs().sum() > 0 and full.aware_head.b2.grad.abs().sum() > 0
    # The first layers learn once the zero-initialised output layers have moved.
    with torch.no_grad():
        head.w2.fill_(0.1)
        full.aware_head.w2.fill_(0.1)
    full.zero_grad()
    full(views, params)["loss"].backward()
    assert head.w1.grad.abs().sum() > 0 and full.aware_head.w1.grad.abs().sum() > 0


def test_uncertainty_inputs_exclude_or_keep_the_subspaces_own_family() -> None:
    slices = [slice(0, 2), slice(2, 3), slice(3, 4)]
    p = torch.rand(5, 4)
    for inputs, changes in (("others", [False, True, True]), ("own", [True, False, False]), ("all", [True] * 3)):
        torch.manual_seed(0)
        head = UncertaintyHead(slices, hidden=8, inputs=inputs)
        with torch.no_grad():
            head.w2.normal_()
        q = p.clone()
        q[:, 0:2] += 1.0  # change family 0's parameters only
        moved = (head(p, p) - head(q, q)).abs().amax(dim=0) > 1e-6
        assert moved.tolist() == changes, inputs


def test_width_scaled_grad_is_exact_forward_and_scales_the_gradient() -> None:
    logits = torch.randn(3, 40, requires_grad=True)
    out = width_scaled_grad(logits)
    assert torch.equal(out, logits)
    out.sum().backward()
    assert torch.equal(logits.grad, torch.full_like(logits, 40.0))


def test_bad_parameters_shape_is_a_clear_error() -> None:
    views, (p1, p2) = _batch()
    with pytest.raises(
        ValueError, match=rf"expected augmentation parameters of shape \(8, {PARAM_DIM}\), got \(8, 3\)"
    ):
        MAST(_recipe())(views, (p1[:, :3], p2))


def test_a_share_floor_that_cannot_be_met_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"method\.mast\.mass_floor \(0\.3\) must be below 1/K = 0\.25 for K = 4"):
        MAST(_recipe("method.mast.mass_floor=0.3", "augment.families=[crop, flip, blur, solarize]"))
    four = "augment.families=[crop, flip, blur, solarize]"
    MAST(_recipe("method.mast.mass_floor=0.3", "method.mast.mass_floor_coeff=0", four))  # the floor is off: fine


def test_uncertainty_without_masks_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"method\.mast\.uncertainty acts per subspace and needs method\.mast\.masks: true"
    ):
        MAST(_recipe("method.mast.masks=false"))


def test_unknown_family_is_refused_before_anything_is_written(tmp_path: Path, synthetic_root: Path) -> None:
    bad = _recipe("augment.families=[crop, flip, blurr]")
    with pytest.raises(
        ConfigError,
        match=r"unknown augmentation family 'blurr' \(did you mean 'blur'\?\); valid "
        r"families: crop, flip, color_jitter, grayscale, blur, solarize",
    ):
        MAST(bad)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="unknown augmentation family 'blurr'"):
        pretrain(bad, out, data_root=synthetic_root, progress=False)
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"augment\.families is empty; MAST needs at least one"):
        MAST(_recipe("augment.families=[]"))


def test_mask_count_mismatch_names_both_counts() -> None:
    six = MAST(_recipe())
    five = MAST(_recipe("augment.families=[crop, flip, color_jitter, grayscale, blur]"))
    state = six.method_state_dict()
    before = {k: v.clone() for k, v in five.method_state_dict().items()}
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint has 6 augmentation masks \(crop, flip, color_jitter, "
        r"grayscale, blur, solarize\) but the recipe enables 5 augmentation "
        r"families \(crop, flip, color_jitter, grayscale, blur\)",
    ):
        five.load_method_state_dict(state)
    after = five.method_state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing was half-loaded
    reordered = MAST(_recipe("augment.families=[flip, crop, color_jitter, grayscale, blur, solarize]"))
    with pytest.raises(CheckpointError, match=r"masks are for \(crop, flip, .*\) but the recipe enables \(flip, crop"):
        reordered.load_method_state_dict(state)
    # Without the family record (a hand-made state), the logits' row count is still checked.
    state.pop("family_index")
    with pytest.raises(CheckpointError, match="checkpoint has 6 augmentation masks but the recipe enables 5"):
        five.load_method_state_dict(state)


def test_checkpoint_round_trip_and_mismatch_through_restore(tmp_path: Path, synthetic_root: Path) -> None:
    out = tmp_path / "run"
    final = pretrain(_recipe("run.epochs=1"), out, data_root=synthetic_root, progress=False)
    ckpt = load_checkpoint(final)
    assert ckpt["meta"]["method"] == "mast" and ckpt["method_state"]["family_index"].tolist() == [0, 1, 2, 3, 4, 5]
    model = MAST(_recipe())
    restore_method(model, ckpt)
    assert torch.equal(model.mask_logits.detach(), ckpt["method_state"]["mask_logits"])
    assert not torch.equal(ckpt["method_state"]["mask_logits"], torch.zeros(6, 16))  # the masks were trained
    digest = sha256_file(final)
    five = MAST(_recipe("augment.families=[crop, flip, color_jitter, grayscale, blur]"))
    with pytest.raises(CheckpointError, match=r"has 6 augmentation masks .* enables 5 augmentation families"):
        restore_method(five, ckpt)
    assert sha256_file(final) == digest


def test_nan_in_the_uncertainty_head_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = UncertaintyHead.forward, []

    def poisoned(self, *args, **kwargs):
        calls.append(1)
        out = real(self, *args, **kwargs)
        return out * float("nan") if len(calls) == 4 else out  # first step of epoch 2 (3 steps per epoch)

    monkeypatch.setattr(UncertaintyHead, "forward", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as exc:
        pretrain(_recipe(), out, data_root=synthetic_root, progress=False)
    msg = str(exc.value)
    assert msg.startswith("non-finite loss at epoch 2 step 4 (loss=nan")
    assert "logvar=nan" in msg and "uncertainty_nll=nan" in msg
    assert msg.endswith(f"last good checkpoint kept at {out / 'checkpoint.pt'} (epoch 1, step 3)")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "log.jsonl", "recipe.yaml"]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert (ckpt["meta"]["epoch"], ckpt["meta"]["step"]) == (1, 3)
    assert all(torch.isfinite(v).all() for v in ckpt["method_state"].values() if v.is_floating_point())
    assert read_log(out / "log.jsonl")[-1]["event"] == "stop"


def test_uncertainty_features_feed_the_detached_pair_embedding() -> None:
    views, params = _batch()
    m = MAST(_recipe("method.mast.uncertainty_features=true"))
    assert m.uncertainty_head.w1.shape == (6, 2 * 16 + 16, 64)  # both views' 16 parameters + D = 16 features
    with torch.no_grad():
        m.uncertainty_head.w2.normal_()
    z = torch.randn(8, 16, requires_grad=True)
    s = m.log_variances(z, z, *params)
    assert not torch.equal(s, m.log_variances(z + 1, z + 1, *params))  # depends on the embeddings ...
    s.sum().backward()
    assert z.grad is None  # ... but never trains them
    m(views, params)["loss"].backward()


def test_awareness_targets_are_each_familys_parameter_differences() -> None:
    m = MAST(_recipe("method.mast.aware=true", "augment.families=[crop, color_jitter, blur]"))
    p1, p2 = torch.rand(4, PARAM_DIM), torch.rand(4, PARAM_DIM)
    target = m.aware_head.target(p1, p2)
    valid = m.aware_head.valid
    assert valid.sum(dim=1).tolist() == [4, 4, 1]  # crop box, four jitter factors (not the order), blur sigma
    torch.testing.assert_close(target[:, 0, :4], (p1 - p2)[:, 0:4])
    torch.testing.assert_close(target[:, 1, :4], (p1 - p2)[:, 5:9])
    torch.testing.assert_close(target[:, 2, 0], (p1 - p2)[:, 14])


@pytest.mark.parametrize("setting", ["r50_imagenet", "r18_stl10", "tiny_synthetic", "tiny_quick"])
def test_mast_recipes_differ_from_their_vicreg_twins_only_in_the_method(setting: str) -> None:
    from mast_bench.config import to_dict
    from mast_bench.pretrain.resume import recipe_differences

    root = Path(__file__).resolve().parents[2] / "pretrain"
    mast, vicreg = load_recipe(root / f"mast_{setting}.yaml"), load_recipe(root / f"vicreg_{setting}.yaml")
    diffs = {d.split(":")[0] for d in recipe_differences(to_dict(vicreg), mast)}
    allowed = {"method.name", "optim.aux_lr_scale"} | {f"method.mast.{k}" for k in to_dict(mast.method.mast)}
    if setting == "r18_stl10":  # AugSelf's pipeline never solarises: no subspace for it
        allowed.add("augment.families")
    assert diffs <= allowed, diffs - allowed
    assert mast.method.name == "mast" and (mast.model, mast.run) == (vicreg.model, vicreg.run)
    MAST(load_recipe(root / f"mast_{setting}.yaml", ["model.backbone=resnet_tiny", "model.projector=[8, 8]"]))
