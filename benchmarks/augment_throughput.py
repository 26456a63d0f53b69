"""Images per second of the whole two-view augmentation: per-image pipeline against the split pipeline.

Baseline (``augment.where: workers``): :class:`~mast_bench.augment.MultiViewAugment`, every family per
image, as the DataLoader workers run it, then the batch is stacked. Ours (``augment.where: device``):
:class:`~mast_bench.augment_batched.SplitViewAugment` per image (crop, resize, flip, uint8), stacked,
then :class:`~mast_bench.augment_batched.BatchedPhotometric` on the batch of each view. Both run in this
process on the same decoded uint8 sources with the same seeds, hence the same drawn parameters (checked);
decoding is left out (it is the same work in both). The two alternate repetition by repetition, so load
drifts on a shared machine hit both; the figure of merit is the ratio of the medians. On a CPU the clock
is the process's CPU time (one intra-op thread by default): on a shared, loaded machine wall-clock
batches vary several-fold with other users' load, the CPU time they consume far less. Wall-clock
medians are printed too; with ``--device cuda`` the clock is wall time with synchronisation.

Defaults follow ``pretrain/vicreg_r50_imagenet.yaml`` (VICReg pipeline, 224 px) on ImageNet-sized sources
(500 × 375) with one intra-op thread, i.e. what one DataLoader worker has.

    .venv/bin/python benchmarks/augment_throughput.py [--batch 64] [--size 224] [--pipeline vicreg]
        [--source 375x500] [--reps 5] [--threads 1] [--device cpu]

The last line is always ``augment_throughput: per-image <img/s>, batched <img/s>, ratio <x>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mast_bench.augment import MultiViewAugment
from mast_bench.augment_batched import BatchedPhotometric, SplitViewAugment
from mast_bench.config import AugmentConfig


def _sources(n: int, h: int, w: int) -> list[torch.Tensor]:
    """Smooth random images with texture (not pure noise), uint8 ``(3, h, w)``."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, h // 16 + 1, w // 16 + 1, generator=g)
    smooth = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    noise = 0.1 * torch.rand(n, 3, h, w, generator=g)
    return list(((smooth + noise).clamp(0, 1) * 255).to(torch.uint8))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_image(aug: MultiViewAugment, images: list[torch.Tensor], device: torch.device):
    views, params = ([], []), ([], [])
    for i, img in enumerate(images):
        (v1, v2), (p1, p2) = aug(img, torch.Generator().manual_seed(i))
        views[0].append(v1), views[1].append(v2), params[0].append(p1), params[1].append(p2)
    out = [torch.stack(v).to(device) for v in views]
    _sync(device)
    return out, [torch.stack(p) for p in params]


def batched(split: SplitViewAugment, stage: BatchedPhotometric, images: list[torch.Tensor], device: torch.device):
    views, params = ([], []), ([], [])
    for i, img in enumerate(images):
        (u1, u2), (p1, p2) = split(img, torch.Generator().manual_seed(i))
        views[0].append(u1), views[1].append(u2), params[0].append(p1), params[1].append(p2)
    ps = [torch.stack(p) for p in params]
    out = [stage(torch.stack(v).to(device), p.to(device)) for v, p in zip(views, ps, strict=True)]
    _sync(device)
    return out, ps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--pipeline", choices=["vicreg", "augself"], default="vicreg")
    ap.add_argument("--source", default="375x500", help="source image HxW")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="where the batched stage runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    h, w = (int(v) for v in args.source.split("x"))
    cfg = AugmentConfig(pipeline=args.pipeline, size=args.size)
    aug, split, stage = MultiViewAugment(cfg), SplitViewAugment(cfg), BatchedPhotometric(cfg)
    images = _sources(args.batch, h, w)

    (ref, ref_p), (out, out_p) = per_image(aug, images, device), batched(split, stage, images, device)  # warm-up
    assert all(torch.equal(a, b) for a, b in zip(ref_p, out_p, strict=True)), "the two pipelines drew differently"
    diff = max(float((a.cpu() - b.cpu()).abs().max()) for a, b in zip(ref, out, strict=True))
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times: dict[str, list[float]] = {"per-image": [], "batched": []}
    walls: dict[str, list[float]] = {"per-image": [], "batched": []}
    for rep in range(args.reps):
        order = ("per-image", "batched") if rep % 2 == 0 else ("batched", "per-image")
        for name in order:
            t0, w0 = clock(), time.perf_counter()
            if name == "per-image":
                per_image(aug, images, device)
            else:
                batched(split, stage, images, device)
            times[name].append(clock() - t0)
            walls[name].append(time.perf_counter() - w0)
    rate = {k: args.batch / statistics.median(v) for k, v in times.items()}
    print(
        f"config: pipeline {args.pipeline}, {args.size} px views from {h}x{w} sources, batch {args.batch}, "
        f"{args.reps} reps, {args.threads} thread(s), batched stage on {device}, clock "
        f"{'wall' if device.type == 'cuda' else 'process CPU'}, torch {torch.__version__}"
    )
    for k, v in times.items():
        print(
            f"  {k:9s} median {statistics.median(v) * 1000:8.1f} ms per batch (min {min(v) * 1000:.1f}, "
            f"max {max(v) * 1000:.1f}); wall median {statistics.median(walls[k]) * 1000:.1f} ms"
        )
    print(f"  largest difference between the two pipelines' normalised views: {diff:.2e}")
    ratio = rate["batched"] / rate["per-image"]
    print(f"augment_throughput: per-image {rate['per-image']:.1f}, batched {rate['batched']:.1f}, ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
