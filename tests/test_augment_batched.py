"""The split pipeline (geometry in workers, photometry batched on the device) equals the per-image pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image

from mast_bench.augment import (
    FAMILIES,
    IDENTITY_PARAMS,
    PARAM_LAYOUT,
    MultiViewAugment,
    ViewParams,
    apply_view,
    view_specs,
)
from mast_bench.augment_batched import (
    EQUALITY_ATOL,
    BatchedPhotometric,
    SplitViewAugment,
    blur,
    build_augment,
)
from mast_bench.config import AugmentConfig

N_IMAGES = 48  # enough that every family is drawn on and off in both views of both pipelines


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    # non-square sources of varied sizes, plus flat regions (grey and saturated) where hue and contrast
    # meet their special cases (max == min, zero chroma)
    out = []
    for i in range(N_IMAGES):
        h, w = int(rng.integers(24, 48)), int(rng.integers(24, 48))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        a[: h // 3, : w // 3] = 128 if i % 2 else (255, 0, 0)
        out.append(Image.fromarray(a))
    return out


def _both(cfg: AugmentConfig, images: list[Image.Image]):
    """Per-image views and batched views of the same seeded draws, in [0, 1] pixel units."""
    per_image, split, stage = MultiViewAugment(cfg), SplitViewAugment(cfg), BatchedPhotometric(cfg)
    ref, raw, params = ([], []), ([], []), ([], [])
    for i, img in enumerate(images):
        views, ps = per_image(img, torch.Generator().manual_seed(i))
        u, qs = split(img, torch.Generator().manual_seed(i))
        for k in range(2):
            assert torch.equal(ps[k], qs[k])  # the same draw, recorded identically
            assert u[k].dtype == torch.uint8 and u[k].shape == (3, cfg.size, cfg.size)
            ref[k].append(views[k])
            raw[k].append(u[k])
            params[k].append(qs[k])
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    out = []
    for k in range(2):
        p = torch.stack(params[k])
        batched = stage(torch.stack(raw[k]), p)
        out.append((torch.stack(ref[k]) * std, batched * std, p))
    return out


@pytest.mark.parametrize("pipeline", ["vicreg", "augself"])
@pytest.mark.parametrize("family", [*FAMILIES, "all"])
def test_batched_views_equal_per_image_views(images: list[Image.Image], pipeline: str, family: str) -> None:
    families = FAMILIES if family == "all" else (family,)
    cfg = AugmentConfig(pipeline=pipeline, size=24, families=families)
    applied = 0
    for ref, batched, p in _both(cfg, images):
        torch.testing.assert_close(batched, ref, rtol=0, atol=EQUALITY_ATOL)
        if family in ("color_jitter", "all"):
            applied += int(
                (p[:, PARAM_LAYOUT["color_jitter"]][:, :4] != torch.tensor([1.0, 1.0, 1.0, 0.0])).any(1).sum()
            )
        elif family in ("grayscale", "solarize", "flip"):
            applied += int(p[:, PARAM_LAYOUT[family]].sum())
        elif family == "blur":
            applied += int((p[:, PARAM_LAYOUT["blur"]] > 0).sum())
        else:
            applied += 1
    never = pipeline == "augself" and family == "solarize"  # AugSelf's pipeline has no solarisation
    assert (applied == 0) if never else (applied > 0)  # the family was drawn on at least once


def test_batched_solarize_and_blur_are_actually_applied(images: list[Image.Image]) -> None:
    """Guard against an equality test that passes because neither side did anything."""
    cfg = AugmentConfig(pipeline="vicreg", size=24, families=("blur", "solarize"))
    _, (_, b2, p2) = _both(cfg, images)
    geometric = BatchedPhotometric(AugmentConfig(pipeline="vicreg", size=24, families=()))
    split = SplitViewAugment(cfg)
    u = torch.stack([split(img, torch.Generator().manual_seed(i))[0][1] for i, img in enumerate(images)])
    plain = geometric(u, IDENTITY_PARAMS.expand_as(p2)) * torch.tensor(cfg.std).view(1, 3, 1, 1)
    changed = (b2 - plain).abs().amax(dim=(1, 2, 3)) > 0.01
    touched = (p2[:, PARAM_LAYOUT["blur"]].squeeze(1) > 0) | (p2[:, PARAM_LAYOUT["solarize"]].squeeze(1) > 0)
    assert touched.any() and torch.equal(changed, touched)


def test_per_sample_blur_matches_torchvision_for_each_sigma() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 20, 17, generator=g)
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.7, 2.0])
    out = blur(x, sigma, 7)
    for i in range(5):
        ref = F.gaussian_blur(x[i], [7, 7], [float(sigma[i])] * 2)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-6)


def _jitter_only(jitter: tuple[float, float, float, float], order: tuple[int, ...]) -> ViewParams:
    """A full-frame 16-pixel view, unflipped, with colour jitter only (no grayscale, blur or solarize)."""
    return ViewParams(
        crop=(0, 0, 16, 16),
        source_hw=(16, 16),
        flip=False,
        jitter=jitter,
        order=order,
        grayscale=False,
        sigma=0.0,
        solarize=False,
    )


def _batched_matches_per_image(seed: int, ps: list[ViewParams]) -> torch.Tensor:
    """One random image under each of ``ps``: the batched stage equals the per-image reference; returns that."""
    cfg = AugmentConfig(size=16)
    spec = view_specs(cfg)[0]
    img = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, 16, 16), dtype=np.uint8))
    ref = torch.stack([apply_view(img, p, spec, 16, cfg.mean, cfg.std) for p in ps])
    out = BatchedPhotometric(cfg)(img.expand(len(ps), -1, -1, -1), torch.stack([p.to_vector() for p in ps]))
    torch.testing.assert_close(out, ref, rtol=0, atol=EQUALITY_ATOL / min(cfg.std))
    return ref


def test_jitter_order_is_each_samples_own() -> None:
    """Brightness then contrast differs from contrast then brightness; each sample follows its recorded order."""
    orders = [(0, 1, 2, 3), (1, 0, 2, 3), (3, 2, 1, 0)]
    ref = _batched_matches_per_image(1, [_jitter_only((1.35, 0.65, 1.2, 0.08), o) for o in orders])
    assert (ref[0] - ref[1]).abs().max() > 0.05  # the orders really give different images


def test_where_selects_the_pipeline() -> None:
    t, stage = build_augment(AugmentConfig(where="workers"))
    assert isinstance(t, MultiViewAugment) and stage is None
    t, stage = build_augment(AugmentConfig(where="device"))
    assert isinstance(t, SplitViewAugment) and isinstance(stage, BatchedPhotometric)


def test_stage_rejects_mismatched_shapes() -> None:
    stage = BatchedPhotometric(AugmentConfig(size=8))
    with pytest.raises(ValueError, match=r"expected views \(B, 3, S, S\) and parameters \(B, 16\), got \(2, 3, 8, 8\)"):
        stage(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(3, 16))


def test_an_identity_factor_inside_a_run_of_one_order_is_skipped_for_that_sample_only() -> None:
    """Per-image jitter skips an op whose factor is exactly the identity; inside a run of one order the batched
    stage then applies that op to the other samples only, each with its own factor (a misaligned factor would
    be off by ~0.1)."""
    jitters = [(1.2, 0.8, 1.1, 0.05), (1.0, 0.8, 1.1, 0.0), (1.3, 1.0, 0.9, -0.05)]
    _batched_matches_per_image(2, [_jitter_only(j, (3, 0, 1, 2)) for j in jitters])


def test_batched_views_equal_per_image_views_with_the_synthetic_recipes_strengths(images: list[Image.Image]) -> None:
    """Full-circle hue jitter, σ 1.5–2.5 and a 9-px kernel (pretrain/*_tiny_*.yaml) agree across the two paths."""
    cfg = AugmentConfig(size=24, crop_scale=(0.3, 1.0), jitter=(0.4, 0.4, 0.2, 0.5), blur_sigma=(1.5, 2.5),
                        blur_kernel=9)  # fmt: skip
    big_hue = 0
    for ref, batched, p in _both(cfg, images):
        torch.testing.assert_close(batched, ref, rtol=0, atol=EQUALITY_ATOL)
        big_hue += int((p[:, PARAM_LAYOUT["color_jitter"]][:, 3].abs() > 0.1).sum())
    assert big_hue > 0
