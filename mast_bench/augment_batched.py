"""The split two-view augmentation: geometry per image in the workers, photometry batched on the device.

At ResNet-50 speed two 224-px views per image must be made thousands of times a second per GPU.
Per-image colour jitter, blur and solarisation in DataLoader workers is the classic bottleneck of
SSL pretraining; peers move it to the accelerator with DALI (solo-learn) or FFCV, which do not
return the parameters MAST needs. Here the split keeps the parameters exactly:

* :class:`SplitViewAugment` (DataLoader workers) draws both views' parameters with the same calls, in
  the same order, as :class:`~mast_bench.augment.MultiViewAugment` (so a seeded draw and the recorded
  vectors are unchanged), then only crops, resizes and flips; views leave the worker as uint8.
* :class:`BatchedPhotometric` (training device) reads the photometric parameters back from the
  recorded vectors ``(B, PARAM_DIM)`` and applies colour jitter (each sample's own factors, in its own
  order), grayscale, Gaussian blur (each sample's own σ) and solarisation to the batch, then normalises.

For the same recorded parameters the batched view equals the per-image view of
:func:`~mast_bench.augment.apply_view` up to float rounding: the ops follow
``torchvision.transforms.v2.functional`` formula by formula, except that the blur is applied as two
1-D passes (the 2-D kernel is their outer product), the hue rotation is the closed form of torchvision's
HSV round trip (:func:`_hue`), and factors pass through the float32 vector.
``tests/test_augment_batched.py`` bounds the difference (``EQUALITY_ATOL``) for every family.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as nnf

from mast_bench.augment import (
    JITTER_FACTORS,
    JITTER_ORDER,
    PARAM_DIM,
    PARAM_LAYOUT,
    MultiViewAugment,
    apply_geometry,
    view_blur_kernel,
)
from mast_bench.config import AugmentConfig

#: Largest absolute difference allowed between a batched and a per-image view in [0, 1] pixel units
#: (before normalisation): float32 rounding only. Measured worst case over 64 images × 2 views of every
#: family and both pipelines: 1.7e-6 (jitter's four ops in sequence); every op is continuous at its
#: thresholds (solarise at 0.5 maps 0.5 to 0.5, hue wraps around the colour circle), so rounding cannot flip
#: a pixel to a distant value.
EQUALITY_ATOL = 1e-5

_IDENTITY_FACTORS = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation, hue
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)`` of float RGB ``(N, 3, H, W)``."""
    r, g, b = x.unbind(dim=1)
    return (r * _GRAY_WEIGHTS[0] + g * _GRAY_WEIGHTS[1] + b * _GRAY_WEIGHTS[2]).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``ratio·a + (1 − ratio)·b`` clamped to [0, 1]; ``ratio`` is ``(N, 1, 1, 1)``."""
    return (a * ratio + b * (1.0 - ratio)).clamp_(0.0, 1.0)


_HSV_OFFSETS = (5.0, 3.0, 1.0)  # R, G, B: c = v − chroma·clamp(min(k, 4 − k), 0, 1), k = (offset + 6h) mod 6


def _hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of float RGB ``(N, 3, H, W)`` by ``f`` ``(N, 1, 1, 1)`` turns, keeping value and chroma.

    torchvision converts to HSV (Pillow's algorithm), adds ``f`` to the hue modulo 1 and converts back
    through a per-pixel table of six sectors. This is the same map in closed form: the hue in sextants
    from whichever channel is the maximum (red first, then green, as torchvision), and the inverse as
    ``max − chroma·ramp(k)`` per channel, which equals ``v·(1 − s·ramp)``. The values agree in exact
    arithmetic; the closed form avoids the gather and the HSV stack that dominated the batched jitter.
    """
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    # elementwise max/min of the three planes: a reduction over the channel dimension is several times slower
    maxc, minc = torch.maximum(torch.maximum(r, g), b), torch.minimum(torch.minimum(r, g), b)
    chroma = maxc - minc
    safe = torch.where(chroma == 0, torch.ones_like(chroma), chroma)  # grey pixels: any hue, chroma 0
    is_r, is_g = maxc == r, maxc == g
    num = torch.where(is_r, g - b, torch.where(is_g, b - r, r - g))
    base = torch.where(is_r, 6.0, torch.where(is_g, 8.0, 10.0))  # sextant offsets 0, 2, 4, plus one turn
    # hue in sextants, shifted by f turns; the "mod 6" of torchvision's two steps is taken once, below
    h6 = num.div_(safe).add_(base).add_(f * 6.0)
    offsets = torch.tensor(_HSV_OFFSETS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = (h6 + offsets).remainder_(6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc - chroma * ramp


def _brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * f).clamp_(0.0, 1.0)


def _contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), f)


def _saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x), f)


_JITTER_OPS = (_brightness, _contrast, _saturation, _hue)


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """1-D Gaussian kernels ``(N, size)`` for σ ``(N,)``, torchvision's formula (softmax of −x²/σ²)."""
    lim = (size - 1) / (2.0 * 2.0**0.5)
    x = torch.linspace(-lim, lim, steps=size, dtype=sigma.dtype, device=sigma.device)
    return torch.softmax((x / sigma[:, None]).pow(2).neg(), dim=1)


def blur(x: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Blur each image ``(N, 3, H, W)`` with its own σ ``(N,)``: reflect padding, separable kernel ``size``."""
    n, c, hh, ww = x.shape
    k = gaussian_kernels(sigma.to(x.dtype), size).repeat_interleave(c, dim=0)  # (N·C, size)
    pad = size // 2
    y = nnf.pad(x.reshape(1, n * c, hh, ww), [pad, pad, pad, pad], mode="reflect")
    y = nnf.conv2d(y, k[:, None, :, None], groups=n * c)  # vertical pass
    y = nnf.conv2d(y, k[:, None, None, :], groups=n * c)  # horizontal pass
    return y.reshape(n, c, hh, ww)


class BatchedPhotometric:
    """The photometric families of a batch of views, each sample with its recorded parameters.

    ``stage(x, params)``: ``x`` uint8 ``(B, 3, S, S)`` from :class:`SplitViewAugment`, ``params``
    ``(B, PARAM_DIM)`` → normalised float32 views ``(B, 3, S, S)`` on ``x``'s device. Deterministic
    (no random draw), so it leaves every generator, and exact resumption, untouched.
    """

    #: Pixels per pass on a CPU (8 views of 224 px). The ops are memory-bound elementwise passes; a chunk of
    #: this size keeps each pass's operands in the L2/L3 caches (measured: ~25 % less CPU time than a whole
    #: batch of 32 views of 224 px at once), while smaller views go in larger chunks so that per-call overhead
    #: stays small. Accelerators take the whole batch in one pass.
    cpu_chunk_pixels: int = 8 * 224 * 224

    def __init__(self, cfg: AugmentConfig) -> None:
        self.blur_kernel = view_blur_kernel(cfg)
        self.mean = torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or params.shape != (x.shape[0], PARAM_DIM):
            raise ValueError(
                f"expected views (B, 3, S, S) and parameters (B, {PARAM_DIM}), got {tuple(x.shape)} and "
                f"{tuple(params.shape)}"
            )
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        # Control flow (which op, which samples) is read from a host copy of the parameters, taken once, so an
        # accelerator never waits on a device-to-host sync per op; the pixel work stays on x's device.
        host = params.detach().to("cpu", torch.float32)
        # Samples with the same jitter order are made neighbours, so that jitter runs on contiguous slices
        # (one op per slice and position) instead of gathering and scattering each op's samples.
        sort = torch.argsort(_order_key(host), stable=True)
        dev_sort = sort.to(x.device)
        x = x.index_select(0, dev_sort)
        dev, host = params.to(x.device, torch.float32).index_select(0, dev_sort), host.index_select(0, sort)
        side = x.shape[-2] * x.shape[-1]
        n = max(1, self.cpu_chunk_pixels // side) if x.device.type == "cpu" else max(1, x.shape[0])
        for i in range(0, x.shape[0], n):
            out.index_copy_(0, dev_sort[i : i + n], self._views(x[i : i + n], dev[i : i + n], host[i : i + n]))
        return out

    def _views(self, x: torch.Tensor, p: torch.Tensor, host: torch.Tensor) -> torch.Tensor:
        """Views ``x`` with parameters ``p`` on its device and the same parameters ``host`` on the CPU."""
        x = x.to(torch.float32).mul_(1.0 / 255.0) if x.dtype == torch.uint8 else x.to(torch.float32, copy=True)
        x = self._jitter(x, p[:, JITTER_FACTORS], host[:, JITTER_FACTORS], host[:, JITTER_ORDER].round().long())
        x = self._where(x, host[:, PARAM_LAYOUT["grayscale"]].squeeze(1) > 0, lambda v: _gray(v).expand_as(v))
        on = host[:, PARAM_LAYOUT["blur"]].squeeze(1) > 0
        sigma = p[:, PARAM_LAYOUT["blur"]].squeeze(1)[on.to(x.device)]
        x = self._where(x, on, lambda v: blur(v, sigma, self.blur_kernel))
        x = self._where(
            x, host[:, PARAM_LAYOUT["solarize"]].squeeze(1) > 0, lambda v: torch.where(v >= 0.5, 1.0 - v, v)
        )
        return x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))

    @staticmethod
    def _where(x: torch.Tensor, sel: torch.Tensor, op: Any) -> torch.Tensor:
        """Apply ``op`` to the samples selected by the host mask ``sel`` only, writing them back into ``x``
        (which the stage owns)."""
        if not bool(sel.any()):
            return x
        if bool(sel.all()):
            return op(x)
        idx = sel.nonzero().squeeze(1).to(x.device)
        return x.index_copy_(0, idx, op(x.index_select(0, idx)))

    def _jitter(self, x: torch.Tensor, factors: torch.Tensor, host: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Colour jitter: sample i applies op ``order[i, j]`` at position j with factor ``factors[i, op]``.

        ``factors`` is on x's device, ``host`` the same factors on the CPU, ``order`` on the CPU. Runs of
        samples with the same order (made contiguous by the caller's sort) share each op call. An op whose
        factor is the identity is skipped, as in :func:`~mast_bench.augment.apply_color_jitter`.
        """
        active = host != torch.tensor(_IDENTITY_FACTORS)  # (B, 4)
        keys = _order_key_from(order, active).tolist()
        start = 0
        for end in range(1, len(keys) + 1):
            if end < len(keys) and keys[end] == keys[start]:
                continue
            if keys[start] >= 0:
                seg = x[start:end]
                for op_index in order[start].tolist():
                    on = active[start:end, op_index]
                    f = factors[start:end, op_index].view(-1, 1, 1, 1)
                    if bool(on.all()):
                        seg = _JITTER_OPS[op_index](seg, f)
                    elif bool(on.any()):  # an exactly-identity factor inside a run: skip it for that sample only
                        f_on = f[on.to(f.device)]
                        seg = self._where(seg.clone(), on, lambda v, f=f_on, op=_JITTER_OPS[op_index]: op(v, f))
                x[start:end] = seg
            start = end
        return x


def _order_key_from(order: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """One integer per sample naming its jitter order (base 4), or -1 when no jitter op applies."""
    key = order[:, 0] * 64 + order[:, 1] * 16 + order[:, 2] * 4 + order[:, 3]
    return torch.where(active.any(dim=1), key, torch.full_like(key, -1))


def _order_key(params: torch.Tensor) -> torch.Tensor:
    """:func:`_order_key_from` of parameter vectors ``(B, PARAM_DIM)``."""
    p = params.to(torch.float32)
    active = p[:, JITTER_FACTORS] != torch.tensor(_IDENTITY_FACTORS, device=p.device)
    return _order_key_from(p[:, JITTER_ORDER].round().long(), active)


class SplitViewAugment:
    """The worker half of the split pipeline: ``aug(img) -> ((u1, u2), (p1, p2))``.

    ``u: (3, size, size)`` uint8 (cropped, resized, flipped); ``p: (PARAM_DIM,)`` the full parameter
    vector of the view, drawn exactly as :class:`~mast_bench.augment.MultiViewAugment` draws it.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.full = MultiViewAugment(cfg)  # validates cfg; its draw is the one recorded
        self.cfg, self.specs = cfg, self.full.specs

    def __call__(
        self, img: Any, generator: torch.Generator | None = None
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        x, params = self.full.sample(img, generator)
        views = tuple(apply_geometry(x, p, spec, self.cfg.size) for p, spec in zip(params, self.specs, strict=True))
        return views, tuple(p.to_vector() for p in params)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"SplitViewAugment(pipeline={self.cfg.pipeline!r}, size={self.cfg.size}, families={self.cfg.families})"


def build_augment(cfg: AugmentConfig) -> tuple[Any, BatchedPhotometric | None]:
    """The workers' transform and the device stage for ``cfg.where``.

    Returns:
        ``(MultiViewAugment, None)`` for ``where="workers"``; ``(SplitViewAugment, BatchedPhotometric)``
        for ``where="device"``.
    Raises:
        ConfigError: invalid augmentation settings.
    """
    if cfg.where == "workers":
        return MultiViewAugment(cfg), None
    return SplitViewAugment(cfg), BatchedPhotometric(cfg)
