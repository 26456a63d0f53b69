"""MAST analyses: overlap metrics against scikit-learn, figure/CSV outputs, and the bad-input paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from fixtures.threads import one_thread
from sklearn.metrics import jaccard_score

from mast_bench.analysis import analyze, mask_overlap_figure
from mast_bench.analysis.masks import heatmap_table, iou_matrix, overlap_table, soft_overlap, sort_dimensions
from mast_bench.analysis.uncertainty import STRENGTH, pair_strengths
from mast_bench.augment import IDENTITY_PARAMS, PARAM_LAYOUT
from mast_bench.cli import main
from mast_bench.config import load_recipe
from mast_bench.errors import CheckpointError, DatasetError
from mast_bench.fileio import OutputDirError
from mast_bench.methods.mast import MAST
from mast_bench.methods.vicreg import VICReg
from mast_bench.pretrain.checkpoint import make_checkpoint, save_checkpoint

TINY = {
    "name": "analysis-test",
    "model": {"backbone": "resnet_tiny", "stem": "small", "widths": [4, 8, 8, 8], "projector": [16, 12]},
    "method": {"name": "mast"},
    "augment": {"size": 16, "families": ["crop", "color_jitter", "blur"]},
    "data": {"dataset": "synthetic-pool"},
    "run": {"batch_size": 8, "device": "cpu"},
}
#: Hand-set mask logits for 3 families over D = 12: crop owns 0-3, jitter 4-7, blur 8-11; jitter and blur
#: share dimension 7 and 8; crop has a soft tail.
LOGITS = torch.full((3, 12), -4.0)
LOGITS[0, 0:4] = 4.0
LOGITS[1, 4:9] = 4.0
LOGITS[2, 7:12] = 3.0
LOGITS[0, 11] = 0.5


_one_thread = pytest.fixture(autouse=True)(one_thread)


def _save(method, recipe, path: Path) -> Path:
    return save_checkpoint(path, make_checkpoint(method, recipe, epoch=1, step=3, complete=True))


@pytest.fixture
def mast_ckpt(tmp_path: Path, synthetic_root: Path) -> Path:
    recipe = load_recipe(TINY, [f"data.root={synthetic_root}"])
    model = MAST(recipe)
    with torch.no_grad():
        model.mask_logits.copy_(LOGITS)
        model.uncertainty_head.w2.normal_()  # a head that responds to its inputs
    return _save(model, recipe, tmp_path / "mast.pt")


def test_iou_matches_scikit_learn_jaccard_and_soft_overlap_formula() -> None:
    masks = torch.rand(5, 40, generator=torch.Generator().manual_seed(0))
    iou = iou_matrix(masks)
    hard = (masks > 0.5).numpy()
    for a in range(5):
        for b in range(5):
            assert iou[a, b].item() == pytest.approx(jaccard_score(hard[a], hard[b]))
    soft = soft_overlap(masks)
    m = masks.double().numpy()
    ref = np.minimum(m[1], m[3]).sum() / np.maximum(m[1], m[3]).sum()
    assert soft[1, 3].item() == pytest.approx(ref) and soft[3, 1].item() == pytest.approx(ref)
    assert torch.allclose(torch.diagonal(soft), torch.ones(5, dtype=torch.float64))
    empty = torch.zeros(2, 4)
    assert math.isnan(iou_matrix(empty)[0, 1].item())  # undefined for two empty masks, not 0 or 1


def test_share_overlap_is_the_soft_overlap_of_each_dimensions_split() -> None:
    masks = torch.rand(4, 30, generator=torch.Generator().manual_seed(1))
    shares = (masks / masks.sum(dim=0)).double().numpy()
    table = overlap_table(masks, ("crop", "flip", "blur", "solarize")).set_index(["family_a", "family_b"])
    ref = np.minimum(shares[1], shares[2]).sum() / np.maximum(shares[1], shares[2]).sum()
    assert table.loc[("flip", "blur"), "share_overlap"] == pytest.approx(ref)
    assert table.loc[("crop", "crop"), "share_overlap"] == 1.0
    # Scaling every mask at a dimension by the same factor changes the memberships, not the shares.
    scaled = overlap_table(masks * 0.5, ("crop", "flip", "blur", "solarize")).set_index(["family_a", "family_b"])
    np.testing.assert_allclose(scaled["share_overlap"], table["share_overlap"])
    # Equal memberships everywhere: every pair of subspaces weighs every dimension alike.
    equal = overlap_table(torch.full((3, 5), 0.3), ("crop", "flip", "blur"))
    np.testing.assert_allclose(equal["share_overlap"], 1.0)


def test_dimensions_sorted_by_dominant_subspace_then_strength() -> None:
    masks = torch.tensor([[0.9, 0.1, 0.6, 0.2], [0.1, 0.8, 0.3, 0.95]])
    order, dominant = sort_dimensions(masks)
    assert dominant.tolist() == [0, 1, 0, 1]
    assert order.tolist() == [0, 2, 3, 1]
    table = heatmap_table(masks, ("crop", "blur"))
    assert table["dominant"].tolist() == ["crop", "crop", "blur", "blur"]
    assert table["crop"].tolist() == pytest.approx([0.9, 0.6, 0.2, 0.1])


def test_pair_strengths_measure_how_the_two_views_differ() -> None:
    p1 = IDENTITY_PARAMS.repeat(2, 1)
    p2 = p1.clone()
    crop = PARAM_LAYOUT["crop"]
    p1[1, crop] = torch.tensor([0.0, 0.0, 0.5, 1.0])  # left half
    p2[1, crop] = torch.tensor([0.25, 0.0, 0.5, 1.0])  # overlaps it by a quarter of the image
    p2[1, PARAM_LAYOUT["blur"]] = 1.5
    p2[1, PARAM_LAYOUT["flip"]] = 1.0
    s = pair_strengths(p1, p2)
    assert (s.loc[0, [col for col, _ in STRENGTH.values()]] == 0).all()  # identical views
    assert s.loc[1, "crop_disagreement"] == pytest.approx(1 - 0.25 / 0.75)
    assert s.loc[1, "blur_sigma_difference"] == pytest.approx(1.5) and s.loc[1, "flip_differs"] == 1
    assert s.loc[1, "crop_area_1"] == pytest.approx(0.5)


@pytest.mark.slow
def test_analyze_writes_figures_and_the_csvs_behind_them(mast_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    result = analyze(mast_ckpt, out, pairs=16, progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "analysis.json",
        "mask_heatmap.csv",
        "mask_heatmap.png",
        "mask_overlap.csv",
        "mask_overlap.png",
        "uncertainty_correlation.csv",
        "uncertainty_pairs.csv",
        "uncertainty_vs_strength.png",
    ]
    assert sorted(p.name for p in result.files) == names and result.notes == []
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    masks = torch.sigmoid(LOGITS).double()
    heat = pd.read_csv(out / "mask_heatmap.csv")
    assert heat["dominant"].tolist()[:4] == ["crop"] * 4 and sorted(heat["dimension"]) == list(range(12))
    for fam, k in (("crop", 0), ("color_jitter", 1), ("blur", 2)):
        np.testing.assert_allclose(heat[fam].to_numpy(), masks[k, heat["dimension"].to_numpy()].numpy(), rtol=1e-5)
    overlap = pd.read_csv(out / "mask_overlap.csv").set_index(["family_a", "family_b"])
    # Hard masks: crop {0..3, 11} (sigmoid(0.5) > 0.5), jitter {4..8}, blur {7..11}.
    assert overlap.loc[("color_jitter", "blur"), "iou"] == pytest.approx(2 / 8)
    assert overlap.loc[("crop", "blur"), "iou"] == pytest.approx(1 / 9)
    assert overlap.loc[("crop", "color_jitter"), "iou"] == 0
    assert overlap.loc[("crop", "blur"), "soft_overlap"] == pytest.approx(soft_overlap(masks)[0, 2].item(), rel=1e-5)
    pairs = pd.read_csv(out / "uncertainty_pairs.csv")
    assert len(pairs) == 16 * 3 and set(pairs["subspace"]) == {"crop", "color_jitter", "blur"}
    assert np.isfinite(pairs["log_var"]).all() and (pairs["distance"] >= 0).all()
    corr = pd.read_csv(out / "uncertainty_correlation.csv")
    assert len(corr) == 9 and set(corr["strength"]) == {"crop_disagreement", "jitter_distance", "blur_sigma_difference"}
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["families"] == ["crop", "color_jitter", "blur"] and summary["pairs"] == 16
    # Same seed ⇒ same pairs and predictions.
    again = analyze(mast_ckpt, tmp_path / "again", pairs=16, progress=False)
    assert (again.out / "uncertainty_pairs.csv").read_bytes() == (out / "uncertainty_pairs.csv").read_bytes()


def test_the_uncertainty_head_with_other_families_inputs_ignores_its_own_family(mast_ckpt: Path, tmp_path: Path):
    """Default inputs "others": subspace k's prediction cannot depend on family k's strength, so within
    the table, pairs are predicted from the other families only (checked through the model directly)."""
    from mast_bench.pretrain.checkpoint import load_checkpoint, restore_method

    ckpt = load_checkpoint(mast_ckpt)
    model = MAST(load_recipe(ckpt["meta"]["recipe"]))
    restore_method(model, ckpt)
    p = IDENTITY_PARAMS.repeat(4, 1)
    q = p.clone()
    q[:, PARAM_LAYOUT["blur"]] = torch.tensor([[0.5], [1.0], [1.5], [2.0]])
    z = torch.zeros(4, 12)
    s_p, s_q = model.log_variances(z, z, p, p), model.log_variances(z, z, q, p)
    assert torch.equal(s_p[:, 2], s_q[:, 2])  # blur's own subspace: unchanged
    assert not torch.equal(s_p[:, :2], s_q[:, :2])  # the others see blur's strength


def test_vicreg_checkpoint_is_refused_and_nothing_is_written(tmp_path: Path, synthetic_root: Path) -> None:
    recipe = load_recipe(TINY, ["method.name=vicreg"])
    ckpt = _save(VICReg(recipe), recipe, tmp_path / "vicreg.pt")
    out = tmp_path / "analysis"
    with pytest.raises(
        CheckpointError,
        match=r"has no augmentation masks to analyse \(method 'vicreg', which learns "
        r"no augmentation masks\); give a checkpoint pretrained with method 'mast'",
    ):
        analyze(ckpt, out, data_root=synthetic_root, progress=False)
    assert not out.exists()
    result = CliRunner().invoke(main, ["analyze", str(ckpt), "--out", str(out)])
    assert result.exit_code == 2 and "Error: " in result.output and "has no augmentation masks" in result.output
    assert not out.exists()
    with pytest.raises(CheckpointError, match="has no augmentation masks"):
        mask_overlap_figure(ckpt, out)
    masks_off = load_recipe(TINY, ["method.mast.masks=false", "method.mast.uncertainty=false"])
    ckpt_off = _save(MAST(masks_off), masks_off, tmp_path / "off.pt")
    with pytest.raises(CheckpointError, match=r"\(MAST trained with method.mast.masks: false\)"):
        analyze(ckpt_off, out, progress=False)


@pytest.mark.slow
def test_bad_data_root_and_occupied_out_dir_lose_nothing(mast_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    with pytest.raises(DatasetError, match="does not exist"):
        analyze(mast_ckpt, out, data_root=tmp_path / "nowhere", progress=False)
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputDirError, match="already exists and holds other files"):
        analyze(mast_ckpt, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    analyze(mast_ckpt, out, pairs=4, overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "keep me" and (out / "mask_overlap.png").is_file()


def test_masks_only_checkpoint_skips_uncertainty_with_a_note(tmp_path: Path) -> None:
    recipe = load_recipe(TINY, ["method.mast.uncertainty=false"])
    ckpt = _save(MAST(recipe), recipe, tmp_path / "masks.pt")
    result = CliRunner().invoke(main, ["analyze", str(ckpt), "--out", str(tmp_path / "a"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "note: uncertainty vs strength skipped" in result.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "analysis.json",
        "mask_heatmap.csv",
        "mask_heatmap.png",
        "mask_overlap.csv",
        "mask_overlap.png",
    ]


def test_demo_overlap_figure(mast_ckpt: Path, tmp_path: Path) -> None:
    files = mask_overlap_figure(mast_ckpt, tmp_path / "fig")
    assert [p.name for p in files] == ["mask_overlap.png", "mask_overlap.csv"]
    table = pd.read_csv(files[1])
    assert len(table) == 9
    pd.testing.assert_frame_equal(
        table, overlap_table(torch.sigmoid(LOGITS), ("crop", "color_jitter", "blur")), check_exact=False, rtol=1e-5
    )


# --------------------------------------------------------------------------- ablation


def test_ablation_summary_means_and_sample_std_over_seeds() -> None:
    from mast_bench.analysis.ablation import render_markdown, summarise

    rows = [
        {"variant": v, "seed": s, "task": t, "value": val}
        for v, base in (("vicreg", 50.0), ("masks", 60.0))
        for s in (0, 1, 2)
        for t, val in (("synthetic-a", base + s), ("synthetic-b", base - 2 * s))
    ]
    summary = summarise(pd.DataFrame(rows), ["vicreg", "masks"], ["synthetic-a", "synthetic-b"])
    row = summary.set_index("variant").loc["masks"]
    assert row["synthetic-a_mean"] == pytest.approx(61.0) and row["synthetic-a_std"] == pytest.approx(1.0)
    assert row["synthetic-b_mean"] == pytest.approx(58.0) and row["synthetic-b_std"] == pytest.approx(2.0)
    # Mean over tasks per run: (60+s + 60−2s)/2 = 60 − s/2 → mean 59.5, std 0.5.
    assert row["mean_mean"] == pytest.approx(59.5) and row["mean_std"] == pytest.approx(0.5)
    text = render_markdown(summary, ["synthetic-a", "synthetic-b"], "settings line")
    assert "| variant | a | b | mean over tasks |" in text
    assert "| masks | **61.0 ± 1.0** | **58.0 ± 2.0** | **59.5 ± 0.5** |" in text
    assert "| vicreg | 51.0 ± 1.0 | 48.0 ± 2.0 | 49.5 ± 0.5 |" in text and text.endswith("settings line\n")


def test_ablation_variants_differ_only_in_their_switches() -> None:
    from mast_bench.analysis.ablation import VARIANTS, variant_recipe
    from mast_bench.config import to_dict

    recipes = {v: to_dict(variant_recipe(variant_recipe.__globals__["DEFAULT_RECIPE"], v, 1)) for v in VARIANTS}
    for r in recipes.values():
        assert (
            r["run"]["seed"] == 1
            and r["model"] == recipes["masks"]["model"]
            and r["optim"] == recipes["masks"]["optim"]
        )
    assert recipes["vicreg"]["method"]["name"] == "vicreg"
    mast = ["masks", "masks+uncertainty", "masks+uncertainty+aware"]
    assert all(recipes[v]["method"]["name"] == "mast" and recipes[v]["method"]["mast"]["masks"] for v in mast)
    assert [recipes[v]["method"]["mast"]["uncertainty"] for v in mast] == [False, True, True]
    assert [recipes[v]["method"]["mast"]["aware"] for v in mast] == [False, False, True]
    with pytest.raises(ValueError, match="unknown ablation variant 'masks-only'; valid: random-init, vicreg, masks"):
        variant_recipe(variant_recipe.__globals__["DEFAULT_RECIPE"], "masks-only", 0)
    result = CliRunner().invoke(main, ["ablation", "--out", "unused", "--variants", "vicreg,nope"])
    assert result.exit_code == 2 and "unknown variant(s) ['nope']" in result.output
    assert not Path("unused").exists()
