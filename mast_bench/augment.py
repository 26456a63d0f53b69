"""Two-view augmentations that record the parameters each view was drawn with.

Every view is produced by drawing its parameters first (with an optional ``torch.Generator``)
and then applying ``torchvision.transforms.v2.functional`` ops with exactly those parameters,
so the returned parameter vector describes what was done to the image. Families switched off
in ``AugmentConfig.families`` are never applied and record their identity value.

Pipelines:
    ``vicreg``: VICReg's asymmetric views (Bardes et al., ICLR 2022, ``augmentations.py``):
        RandomResizedCrop (bicubic), flip 0.5, colour jitter (0.4, 0.4, 0.2, 0.1) p 0.8 in random
        order, grayscale 0.2, Gaussian blur σ∈[0.1, 2] with p 1.0 / 0.1, solarise p 0.0 / 0.2.
    ``augself``: AugSelf's STL-10 views (Lee et al., NeurIPS 2021; github.com/hankook/AugSelf
        ``datasets.py``/``transforms.py``): RandomResizedCrop (bilinear, scale 0.2–1 set by the recipe),
        flip 0.5, jitter (0.4, 0.4, 0.4, 0.1) p 0.8 in random order, grayscale 0.2, Gaussian blur
        (kernel 9 at 96 px) σ∈[0.1, 2] with p 0.5, no solarisation; the same for both views.

Parameter vector (``PARAM_DIM`` = 16, slices in ``PARAM_LAYOUT``): crop box ``x0, y0, w, h`` as fractions
of the source image; flip flag; jitter factors brightness, contrast, saturation, hue, then the
application order (op indices 0..3 = b, c, s, h, in the order applied); grayscale flag; blur σ
(0 when not applied); solarise flag.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from mast_bench.config import AugmentConfig, ConfigError

FAMILIES: tuple[str, ...] = ("crop", "flip", "color_jitter", "grayscale", "blur", "solarize")
PARAM_LAYOUT: dict[str, slice] = {
    "crop": slice(0, 4),
    "flip": slice(4, 5),
    "color_jitter": slice(5, 13),
    "grayscale": slice(13, 14),
    "blur": slice(14, 15),
    "solarize": slice(15, 16),
}
PARAM_DIM: int = 16
JITTER_FACTORS = slice(5, 9)
JITTER_ORDER = slice(9, 13)
#: The parameter vector of an untouched view (whole image, no flip, unit jitter factors in order 0..3, ...).
IDENTITY_PARAMS = torch.tensor([0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 2, 3, 0, 0, 0], dtype=torch.float32)


@dataclass(frozen=True)
class ViewSpec:
    """Probabilities and ranges of one view's pipeline."""

    families: frozenset[str]
    scale: tuple[float, float]
    interpolation: InterpolationMode
    jitter: tuple[float, float, float, float]
    blur_p: float
    solarize_p: float
    blur_kernel: int
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)


@dataclass(frozen=True)
class ViewParams:
    """What was done to one view. The crop is in pixels of the source image (``height × width``)."""

    crop: tuple[int, int, int, int]  # top, left, height, width
    source_hw: tuple[int, int]
    flip: bool
    jitter: tuple[float, float, float, float]  # brightness, contrast, saturation, hue factors
    order: tuple[int, int, int, int]
    grayscale: bool
    sigma: float
    solarize: bool

    def to_vector(self) -> torch.Tensor:
        """The fixed-layout parameter vector ``(PARAM_DIM,)`` (see the module docstring)."""
        top, left, h, w = self.crop
        H, W = self.source_hw
        values = [left / W, top / H, w / W, h / H, float(self.flip), *self.jitter, *self.order,
                  float(self.grayscale), self.sigma, float(self.solarize)]
        return torch.tensor(values, dtype=torch.float32)


def blur_kernel_size(size: int) -> int:
    """Odd kernel of ~10 % of the image side (SimCLR's rule: 23 px at 224, 9 at 96, 3 at 32)."""
    k = max(3, int(0.1 * size))
    return k if k % 2 else k + 1


def view_blur_kernel(cfg: AugmentConfig) -> int:
    """The blur kernel side of ``cfg``: ``augment.blur_kernel`` if set, else :func:`blur_kernel_size`."""
    return int(cfg.blur_kernel) or blur_kernel_size(cfg.size)


def validate_families(families: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Check ``augment.families``; raise :class:`ConfigError` naming any unknown or repeated family."""
    for name in families:
        if name not in FAMILIES:
            prefix = [f for f in FAMILIES if f.startswith(str(name)[:4].lower())]  # colour → color_jitter
            close = prefix or difflib.get_close_matches(str(name), FAMILIES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"augment.families: unknown augmentation family {name!r}{hint}; valid families: {', '.join(FAMILIES)}"
            )
    if len(set(families)) != len(families):
        raise ConfigError(f"augment.families: a family is listed twice in {list(families)}")
    return frozenset(families)


def view_specs(cfg: AugmentConfig) -> tuple[ViewSpec, ViewSpec]:
    """The two views' specs for ``cfg.pipeline`` (validates the config)."""
    fams = validate_families(cfg.families)
    lo, hi = cfg.crop_scale
    if not 0.0 < lo <= hi <= 1.0:
        raise ConfigError(f"augment.crop_scale: need 0 < min <= max <= 1, got {list(cfg.crop_scale)}")
    if cfg.size < 8:
        raise ConfigError(f"augment.size: need at least 8 px, got {cfg.size}")
    if any(s <= 0 for s in cfg.std):
        raise ConfigError(f"augment.std: every entry must be positive, got {list(cfg.std)}")
    if cfg.jitter is not None:
        b, c, s, h = cfg.jitter
        if min(b, c, s) < 0 or not 0.0 <= h <= 0.5:
            raise ConfigError(
                "augment.jitter: need brightness, contrast, saturation >= 0 and 0 <= hue <= 0.5, "
                f"got {list(cfg.jitter)}"
            )
    if cfg.blur_kernel < 0 or (cfg.blur_kernel and cfg.blur_kernel % 2 == 0):
        raise ConfigError(f"augment.blur_kernel: need an odd number of pixels or 0 (automatic), got {cfg.blur_kernel}")
    if not 0.0 < cfg.blur_sigma[0] <= cfg.blur_sigma[1]:
        raise ConfigError(f"augment.blur_sigma: need 0 < min <= max, got {list(cfg.blur_sigma)}")
    k = view_blur_kernel(cfg)
    scale = (float(lo), float(hi))
    sigma = (float(cfg.blur_sigma[0]), float(cfg.blur_sigma[1]))
    if cfg.pipeline == "vicreg":
        common = dict(families=fams, scale=scale, interpolation=InterpolationMode.BICUBIC,
                      jitter=tuple(cfg.jitter or (0.4, 0.4, 0.2, 0.1)), blur_kernel=k, blur_sigma=sigma)
        return ViewSpec(blur_p=1.0, solarize_p=0.0, **common), ViewSpec(blur_p=0.1, solarize_p=0.2, **common)
    if cfg.pipeline == "augself":
        spec = ViewSpec(families=fams, scale=scale, interpolation=InterpolationMode.BILINEAR,
                        jitter=tuple(cfg.jitter or (0.4, 0.4, 0.4, 0.1)), blur_p=0.5, solarize_p=0.0, blur_kernel=k,
                        blur_sigma=sigma)
        return spec, spec
    raise ConfigError(f"augment.pipeline: unknown pipeline {cfg.pipeline!r}; valid pipelines: vicreg, augself")


def _rand(g: torch.Generator | None) -> float:
    return float(torch.rand((), generator=g))


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return lo + (hi - lo) * _rand(g)


def _sample_crop(H: int, W: int, spec: ViewSpec, g: torch.Generator | None) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params`` with an explicit generator; ``(top, left, h, w)``."""
    area = H * W
    log_ratio = (math.log(spec.ratio[0]), math.log(spec.ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(spec.scale[0], spec.scale[1], g)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], g))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= W and 0 < h <= H:
            top = int(torch.randint(0, H - h + 1, (), generator=g))
            left = int(torch.randint(0, W - w + 1, (), generator=g))
            return top, left, h, w
    in_ratio = W / H  # fallback: central crop clamped to the ratio range (as torchvision)
    if in_ratio < spec.ratio[0]:
        w, h = W, round(W / spec.ratio[0])
    elif in_ratio > spec.ratio[1]:
        h, w = H, round(H * spec.ratio[1])
    else:
        w, h = W, H
    return (H - h) // 2, (W - w) // 2, h, w


def sample_view_params(spec: ViewSpec, height: int, width: int, generator: torch.Generator | None = None) -> ViewParams:
    """Draw one view's parameters for a ``height × width`` source image.

    Every family's randomness is drawn whether or not it is enabled, so switching a family off
    leaves the other families' parameters unchanged for the same generator state.
    """
    g, on = generator, spec.families
    crop = _sample_crop(height, width, spec, g)
    flip = _rand(g) < spec.flip_p
    apply_jitter = _rand(g) < spec.jitter_p
    order = tuple(int(i) for i in torch.randperm(4, generator=g))
    b, c, s, h = spec.jitter
    factors = (_uniform(max(0.0, 1 - b), 1 + b, g), _uniform(max(0.0, 1 - c), 1 + c, g),
               _uniform(max(0.0, 1 - s), 1 + s, g), _uniform(-h, h, g))
    gray = _rand(g) < spec.grayscale_p
    apply_blur = _rand(g) < spec.blur_p
    sigma = _uniform(*spec.blur_sigma, g)
    solar = _rand(g) < spec.solarize_p
    jitter_on = apply_jitter and "color_jitter" in on
    return ViewParams(
        crop=crop if "crop" in on else (0, 0, height, width),
        source_hw=(height, width),
        flip=flip and "flip" in on,
        jitter=factors if jitter_on else (1.0, 1.0, 1.0, 0.0),
        order=order if jitter_on else (0, 1, 2, 3),  # type: ignore[arg-type]
        grayscale=gray and "grayscale" in on,
        sigma=sigma if apply_blur and "blur" in on else 0.0,
        solarize=solar and "solarize" in on,
    )


_JITTER_OPS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
_JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)


def apply_color_jitter(x: torch.Tensor, factors: tuple[float, ...], order: tuple[int, ...]) -> torch.Tensor:
    """Apply brightness/contrast/saturation/hue ``factors`` in ``order`` to a float image ``(3, H, W)``."""
    for i in order:
        if factors[i] != _JITTER_IDENTITY[i]:
            x = _JITTER_OPS[i](x, factors[i])
    return x


def apply_geometry(img: torch.Tensor, p: ViewParams, spec: ViewSpec, size: int) -> torch.Tensor:
    """Crop-and-resize then flip a uint8 image ``(3, H, W)``; returns a uint8 view ``(3, size, size)``.

    The part of a view that needs the full-resolution source; the split pipeline runs it in the
    DataLoader workers and everything after it batched on the training device
    (:mod:`mast_bench.augment_batched`).
    """
    top, left, h, w = p.crop
    x = F.resized_crop(img, top, left, h, w, [size, size], interpolation=spec.interpolation, antialias=True)
    return F.horizontal_flip(x) if p.flip else x


def apply_photometric(
    x: torch.Tensor, p: ViewParams, spec: ViewSpec, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """Jitter, grayscale, blur, solarise and normalise a uint8 view ``(3, S, S)`` → float ``(3, S, S)``."""
    x = F.to_dtype(x, torch.float32, scale=True)
    x = apply_color_jitter(x, p.jitter, p.order)
    if p.grayscale:
        x = F.rgb_to_grayscale(x, num_output_channels=3)
    if p.sigma > 0:
        x = F.gaussian_blur(x, [spec.blur_kernel, spec.blur_kernel], [p.sigma, p.sigma])
    if p.solarize:
        x = F.solarize(x, threshold=0.5)  # PIL's ImageOps.solarize threshold 128 of 255
    return F.normalize(x, list(mean), list(std))


def apply_view(
    img: torch.Tensor, p: ViewParams, spec: ViewSpec, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """Produce a view from a uint8 image ``(3, H, W)``; returns a normalised float view ``(3, size, size)``.

    Order as VICReg's pipeline: crop+resize, flip, jitter, grayscale, blur, solarise, normalise.
    """
    return apply_photometric(apply_geometry(img, p, spec, size), p, spec, mean, std)


def to_uint8_image(img: Any) -> torch.Tensor:
    """PIL image (any mode) or uint8 tensor ``(3, H, W)`` → uint8 RGB tensor ``(3, H, W)``."""
    if isinstance(img, torch.Tensor):
        if img.dtype != torch.uint8 or img.ndim != 3 or img.shape[0] != 3:
            raise ValueError(f"expected a uint8 tensor of shape (3, H, W), got {img.dtype} {tuple(img.shape)}")
        return img
    if img.mode != "RGB":
        img = img.convert("RGB")
    return F.pil_to_tensor(img)


class MultiViewAugment:
    """Callable producing two augmented views of an image and their parameter vectors.

    ``aug(img) -> ((x1, x2), (p1, p2))`` with ``x: (3, size, size)`` float, ``p: (PARAM_DIM,)``.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.specs = view_specs(cfg)

    def sample(self, img: Any, generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[ViewParams]]:
        """Draw both views' parameters; returns the uint8 source image and the :class:`ViewParams`."""
        x = to_uint8_image(img)
        H, W = int(x.shape[1]), int(x.shape[2])
        return x, [sample_view_params(spec, H, W, generator) for spec in self.specs]

    def __call__(
        self, img: Any, generator: torch.Generator | None = None
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        x, params = self.sample(img, generator)
        views = tuple(
            apply_view(x, p, spec, self.cfg.size, self.cfg.mean, self.cfg.std)
            for p, spec in zip(params, self.specs, strict=True)
        )
        return views, tuple(p.to_vector() for p in params)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"MultiViewAugment(pipeline={self.cfg.pipeline!r}, size={self.cfg.size}, families={self.cfg.families})"


def build_multiview(cfg: AugmentConfig) -> MultiViewAugment:
    """Build the two-view augmentation for a recipe's ``augment`` section (raises ConfigError if invalid)."""
    return MultiViewAugment(cfg)
