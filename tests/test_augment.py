"""The recorded parameters describe exactly what was done to each view."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
import torchvision.transforms.v2.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

from mast_bench.augment import (
    FAMILIES,
    IDENTITY_PARAMS,
    JITTER_FACTORS,
    JITTER_ORDER,
    PARAM_DIM,
    PARAM_LAYOUT,
    blur_kernel_size,
    build_multiview,
    sample_view_params,
)
from mast_bench.config import AugmentConfig, ConfigError

# Mean 0 / std 1 keeps views in [0, 1] so they can be compared with plain torchvision ops.
PLAIN = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
H, W, SIZE = 30, 40, 24  # non-square source so x/width and y/height cannot be confused


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


def _cfg(families: tuple[str, ...], pipeline: str = "vicreg") -> AugmentConfig:
    return AugmentConfig(pipeline=pipeline, size=SIZE, families=families, **PLAIN)


def _views(aug, img, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        views, params = aug(img, g)
        yield from zip(views, params, strict=True)


def _resized_whole(img: Image.Image, interpolation=InterpolationMode.BICUBIC) -> torch.Tensor:
    """The whole image resized with the pipeline's own uint8 resize (the geometric baseline of a view)."""
    x = TF.pil_to_tensor(img)
    return F.resize(x, [SIZE, SIZE], interpolation=interpolation, antialias=True).float() / 255


def test_layout_is_contiguous_and_covers_every_family() -> None:
    assert tuple(PARAM_LAYOUT) == FAMILIES
    covered = [i for s in PARAM_LAYOUT.values() for i in range(PARAM_DIM)[s]]
    assert covered == list(range(PARAM_DIM))
    assert IDENTITY_PARAMS.shape == (PARAM_DIM,)
    assert range(PARAM_DIM)[JITTER_FACTORS] == range(5, 9) and range(PARAM_DIM)[JITTER_ORDER] == range(9, 13)


@pytest.mark.parametrize(("pipeline", "interp", "pil"), [("vicreg", InterpolationMode.BICUBIC, Image.BICUBIC),
                                                          ("augself", InterpolationMode.BILINEAR, Image.BILINEAR)])
def test_recorded_crop_box_reproduces_the_view(image: Image.Image, pipeline: str, interp, pil) -> None:
    aug = build_multiview(_cfg(("crop",), pipeline))
    src = TF.pil_to_tensor(image)
    areas = []
    for view, p in _views(aug, image, 10):
        x0, y0, w, h = p[PARAM_LAYOUT["crop"]].tolist()
        left, top, cw, ch = round(x0 * W), round(y0 * H), round(w * W), round(h * H)
        same_op = F.resized_crop(src, top, left, ch, cw, [SIZE, SIZE], interpolation=interp, antialias=True)
        torch.testing.assert_close(view, same_op.float() / 255, rtol=0, atol=1e-6)
        # PIL crop + resize (VICReg's and AugSelf's own pipelines) differs only in border rounding;
        # a wrong box on this noise image would differ by ~0.3 on average.
        ref = np.array(image.crop((left, top, left + cw, top + ch)).resize((SIZE, SIZE), pil))
        pil_view = torch.from_numpy(ref).permute(2, 0, 1).float() / 255
        assert (view - pil_view).abs().mean() < 0.01
        assert left >= 0 and left + cw <= W and top >= 0 and top + ch <= H
        areas.append(w * h)
        assert torch.equal(p[4:], IDENTITY_PARAMS[4:])  # nothing else was done
    assert min(areas) < 0.9  # real crops, not the whole image


def test_flip_flag_matches_the_view(image: Image.Image) -> None:
    aug = build_multiview(_cfg(("flip",)))
    base = _resized_whole(image)
    flags = []
    for view, p in _views(aug, image, 12):
        flipped = bool(p[PARAM_LAYOUT["flip"]].item())
        flags.append(flipped)
        torch.testing.assert_close(view, TF.hflip(base) if flipped else base, rtol=0, atol=1e-6)
    assert set(flags) == {True, False}


def test_grayscale_flag_means_equal_channels(image: Image.Image) -> None:
    aug = build_multiview(_cfg(("grayscale",)))
    flags = []
    for view, p in _views(aug, image, 20):
        gray = bool(p[PARAM_LAYOUT["grayscale"]].item())
        flags.append(gray)
        channels_equal = torch.equal(view[0], view[1]) and torch.equal(view[1], view[2])
        assert channels_equal == gray
    assert set(flags) == {True, False}


def test_jitter_factors_and_order_reproduce_the_colour_transform(image: Image.Image) -> None:
    aug = build_multiview(_cfg(("color_jitter",)))
    base = _resized_whole(image)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    orders = set()
    for view, p in _views(aug, image, 12):
        factors = p[JITTER_FACTORS].tolist()
        order = [int(i) for i in p[JITTER_ORDER].tolist()]
        assert sorted(order) == [0, 1, 2, 3]
        ref = base
        for i in order:  # torchvision's (v1) functional ops as the reference
            ref = ops[i](ref, factors[i])
        torch.testing.assert_close(view, ref, rtol=0, atol=2e-6)
        if factors != [1.0, 1.0, 1.0, 0.0]:
            orders.add(tuple(order))
            assert 0.6 <= factors[0] <= 1.4 and 0.6 <= factors[1] <= 1.4  # VICReg's (0.4, 0.4, 0.2, 0.1)
            assert 0.8 <= factors[2] <= 1.2 and -0.1 <= factors[3] <= 0.1
    assert len(orders) >= 3  # the order is random, and recorded


def test_blur_sigma_and_solarize_flag_reproduce_the_view(image: Image.Image) -> None:
    aug = build_multiview(_cfg(("blur", "solarize")))
    base = _resized_whole(image)
    k = blur_kernel_size(SIZE)
    seen_solar = False
    for view, p in _views(aug, image, 20):
        sigma = p[PARAM_LAYOUT["blur"]].item()
        ref = TF.gaussian_blur(base, [k, k], [sigma, sigma]) if sigma > 0 else base
        if p[PARAM_LAYOUT["solarize"]].item():
            seen_solar = True
            ref = torch.where(ref >= 0.5, 1 - ref, ref)
        torch.testing.assert_close(view, ref, rtol=0, atol=1e-6)
    assert seen_solar


def test_blur_kernel_follows_image_size() -> None:
    assert [blur_kernel_size(s) for s in (224, 96, 32, 16)] == [23, 9, 3, 3]


def test_disabled_families_record_identity_and_do_nothing(image: Image.Image) -> None:
    aug = build_multiview(_cfg(()))
    base = _resized_whole(image)
    for view, p in _views(aug, image, 5):
        assert torch.equal(p, IDENTITY_PARAMS)
        torch.testing.assert_close(view, base, rtol=0, atol=1e-6)


@pytest.mark.parametrize("off", FAMILIES)
def test_switching_one_family_off_leaves_the_others_unchanged(off: str) -> None:
    full = build_multiview(AugmentConfig()).specs
    less = build_multiview(AugmentConfig(families=tuple(f for f in FAMILIES if f != off))).specs
    for seed in range(30):
        for spec_full, spec_less in zip(full, less, strict=True):
            a = sample_view_params(spec_full, H, W, torch.Generator().manual_seed(seed)).to_vector()
            b = sample_view_params(spec_less, H, W, torch.Generator().manual_seed(seed)).to_vector()
            assert torch.equal(b[PARAM_LAYOUT[off]], IDENTITY_PARAMS[PARAM_LAYOUT[off]])
            keep = torch.ones(PARAM_DIM, dtype=torch.bool)
            keep[PARAM_LAYOUT[off]] = False
            assert torch.equal(a[keep], b[keep])


def test_view_probabilities_follow_vicreg() -> None:
    v1, v2 = build_multiview(AugmentConfig()).specs
    g = torch.Generator().manual_seed(0)
    n = 2000
    rates = {}
    for name, spec in (("v1", v1), ("v2", v2)):
        ps = torch.stack([sample_view_params(spec, H, W, g).to_vector() for _ in range(n)])
        rates[name] = {
            "flip": ps[:, 4].mean().item(),
            "jitter": (ps[:, 5:9] != torch.tensor([1.0, 1.0, 1.0, 0.0])).any(1).float().mean().item(),
            "gray": ps[:, 13].mean().item(),
            "blur": (ps[:, 14] > 0).float().mean().item(),
            "solar": ps[:, 15].mean().item(),
        }
        sig = ps[:, 14][ps[:, 14] > 0]
        assert sig.min() >= 0.1 and sig.max() <= 2.0
    tol = 0.04  # > 4 binomial standard deviations at n = 2000
    for name, blur, solar in (("v1", 1.0, 0.0), ("v2", 0.1, 0.2)):
        r = rates[name]
        assert abs(r["flip"] - 0.5) < tol and abs(r["jitter"] - 0.8) < tol and abs(r["gray"] - 0.2) < tol
        assert abs(r["blur"] - blur) < tol and abs(r["solar"] - solar) < tol


def test_augself_pipeline_settings() -> None:
    cfg = AugmentConfig(pipeline="augself", size=96, crop_scale=(0.2, 1.0), mean=(0.43, 0.42, 0.39),
                        std=(0.27, 0.26, 0.27))
    s1, s2 = build_multiview(cfg).specs
    assert s1 == s2  # symmetric views
    assert s1.jitter == (0.4, 0.4, 0.4, 0.1) and s1.jitter_p == 0.8 and s1.grayscale_p == 0.2
    assert s1.blur_kernel == 9 and s1.blur_p == 0.5 and s1.solarize_p == 0.0
    assert s1.scale == (0.2, 1.0) and s1.interpolation == InterpolationMode.BILINEAR


def test_seeded_generator_is_deterministic(image: Image.Image) -> None:
    aug = build_multiview(AugmentConfig(size=SIZE))
    a = aug(image, torch.Generator().manual_seed(7))
    b = aug(image, torch.Generator().manual_seed(7))
    c = aug(image, torch.Generator().manual_seed(8))
    for x, y in zip(a[0] + a[1], b[0] + b[1], strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[1][0], c[1][0])
    assert a[0][0].shape == (3, SIZE, SIZE) and a[1][0].shape == (PARAM_DIM,)


def test_global_rng_path_is_seeded_by_torch(image: Image.Image) -> None:
    aug = build_multiview(AugmentConfig(size=SIZE))
    torch.manual_seed(3)
    a = aug(image)
    torch.manual_seed(3)
    b = aug(image)
    assert torch.equal(a[1][0], b[1][0]) and torch.equal(a[0][1], b[0][1])


def test_unknown_family_is_a_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError) as exc:
        build_multiview(AugmentConfig(families=("crop", "colour")))
    assert isinstance(exc.value, ValueError)
    assert str(exc.value) == (
        "augment.families: unknown augmentation family 'colour' (did you mean 'color_jitter'?); "
        "valid families: crop, flip, color_jitter, grayscale, blur, solarize"
    )


@pytest.mark.parametrize(("change", "message"), [
    ({"families": ("crop", "crop")}, "a family is listed twice"),
    ({"crop_scale": (0.5, 0.2)}, "augment.crop_scale: need 0 < min <= max <= 1"),
    ({"size": 4}, "augment.size: need at least 8 px"),
])
def test_other_invalid_settings(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_multiview(dataclasses.replace(AugmentConfig(), **change))


def test_grayscale_and_palette_images_are_converted(image: Image.Image) -> None:
    aug = build_multiview(AugmentConfig(size=SIZE))
    for mode in ("L", "P", "RGBA"):
        (x1, _), _ = aug(image.convert(mode), torch.Generator().manual_seed(0))
        assert x1.shape == (3, SIZE, SIZE)


@pytest.mark.parametrize(("change", "message"), [
    ({"jitter": (0.4, 0.4, 0.2, 0.7)},
     r"augment.jitter: need brightness, contrast, saturation >= 0 and 0 <= hue <= 0.5, got \[0.4, 0.4, 0.2, 0.7\]"),
    ({"jitter": (-0.1, 0.4, 0.2, 0.1)}, r"augment.jitter: need brightness, contrast, saturation >= 0"),
    ({"blur_kernel": 8}, r"augment.blur_kernel: need an odd number of pixels or 0 \(automatic\), got 8"),
    ({"blur_kernel": -3}, r"augment.blur_kernel: need an odd number of pixels or 0 \(automatic\), got -3"),
    ({"blur_sigma": (2.0, 1.0)}, r"augment.blur_sigma: need 0 < min <= max, got \[2.0, 1.0\]"),
    ({"blur_sigma": (0.0, 1.0)}, r"augment.blur_sigma: need 0 < min <= max"),
])
def test_invalid_strengths_are_config_errors(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_multiview(dataclasses.replace(AugmentConfig(), **change))


def test_recipe_strengths_reach_both_views_and_the_recorded_draws(image: Image.Image) -> None:
    """augment.jitter / blur_sigma / blur_kernel replace the pipeline's strengths in both views; the defaults keep
    VICReg's (checked above), and each view is still reproduced from its recorded parameters."""
    from mast_bench.augment import view_blur_kernel, view_specs

    cfg = dataclasses.replace(_cfg(("color_jitter", "blur")), jitter=(0.2, 0.3, 0.1, 0.5), blur_sigma=(1.5, 2.5),
                              blur_kernel=9)  # fmt: skip
    for spec in view_specs(cfg):
        assert (spec.jitter, spec.blur_sigma, spec.blur_kernel) == ((0.2, 0.3, 0.1, 0.5), (1.5, 2.5), 9)
    assert view_blur_kernel(cfg) == 9 and view_blur_kernel(AugmentConfig(size=32)) == blur_kernel_size(32) == 3
    aug = build_multiview(cfg)
    hues, sigmas = [], []
    for _view, p in _views(aug, image, 60):
        b, c, s, h = p[PARAM_LAYOUT["color_jitter"]][:4].tolist()
        sigma = p[PARAM_LAYOUT["blur"]].item()
        if [b, c, s, h] != [1.0, 1.0, 1.0, 0.0]:
            assert 0.8 <= b <= 1.2 and 0.7 <= c <= 1.3 and 0.9 <= s <= 1.1 and -0.5 <= h <= 0.5
            hues.append(h)
        if sigma > 0:
            assert 1.5 <= sigma <= 2.5
            sigmas.append(sigma)
    assert max(abs(h) for h in hues) > 0.2  # beyond VICReg's +-0.1: the whole colour circle is reachable
    assert sigmas


def test_wider_blur_kernel_is_what_the_view_gets(image: Image.Image) -> None:
    cfg = dataclasses.replace(_cfg(("blur",)), blur_sigma=(2.0, 2.0), blur_kernel=9)
    base = _resized_whole(image)
    for view, p in _views(build_multiview(cfg), image, 6):
        sigma = p[PARAM_LAYOUT["blur"]].item()
        ref = TF.gaussian_blur(base, [9, 9], [sigma, sigma]) if sigma > 0 else base
        torch.testing.assert_close(view, ref, rtol=0, atol=1e-6)
