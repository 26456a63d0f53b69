"""Images per second of the full pretraining step, with the data pipeline excluded and included, and peak memory.

One step is what the engine runs (:func:`mast_bench.pretrain.loop.train_step`): forward of both views,
the method's loss, backward, the recipe's optimiser step, under the recipe's precision. The model is
built from a recipe (default ``pretrain/vicreg_r50_imagenet.yaml``) with the switches given here:

* **data excluded**: the same two pre-augmented batches on the device every step (the model's speed);
* **data included**: batches from the engine's own loader (:class:`~mast_bench.pretrain.data.DeviceBatches`
  over DataLoader workers) on an in-memory pool of JPEG-encoded images (decoded per item, as a real
  dataset is), so decoding, augmentation (``--where``), transfer and the step all count.

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and the process's peak resident set on a CPU.
Throughput counts images (a step on batch B consumes B images, i.e. 2B views).

    .venv/bin/python benchmarks/pretrain_throughput.py [--recipe R.yaml] [--backbone resnet50] [--batch 256]
        [--size 224] [--precision fp16] [--channels-last/--no-channels-last] [--compile/--no-compile]
        [--where device|workers] [--workers 8] [--steps 20] [--warmup 5] [--device cuda] [--set KEY=VALUE ...]

The last line is always ``pretrain_throughput: <img/s> img/s, peak <MiB> MiB`` (data included).
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from mast_bench.augment_batched import build_augment
from mast_bench.config import Recipe, load_recipe
from mast_bench.pretrain.data import DeviceBatches, EpochBatchSampler, TwoViewDataset
from mast_bench.pretrain.device import maybe_compile, resolve_device, setup_precision
from mast_bench.pretrain.distributed import DistEnv
from mast_bench.pretrain.loop import train_step
from mast_bench.pretrain.optimizer import build_optimizer
from mast_bench.pretrain.schedule import set_lr
from mast_bench.registry import METHODS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = ROOT / "pretrain" / "vicreg_r50_imagenet.yaml"


class JpegPool(Dataset):
    """``n`` distinct smooth-plus-noise images kept as JPEG bytes, decoded per item; items ``(transform(img), -1)``."""

    def __init__(self, n: int, height: int, width: int, transform) -> None:
        rng = np.random.default_rng(0)
        self.blobs = []
        for _ in range(n):
            low = rng.random((height // 16 + 1, width // 16 + 1, 3))
            img = Image.fromarray((low * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
            noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-20, 21, (height, width, 3)), 0, 255)
            buf = io.BytesIO()
            Image.fromarray(noisy.astype(np.uint8)).save(buf, format="JPEG", quality=90)
            self.blobs.append(buf.getvalue())
        self.transform = transform

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, i: int):
        with Image.open(io.BytesIO(self.blobs[i])) as im:
            return self.transform(im.convert("RGB")), -1


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    overrides = [
        f"run.batch_size={args.batch}",
        f"augment.size={args.size}",
        f"run.precision={args.precision}",
        f"run.channels_last={str(args.channels_last).lower()}",
        f"run.compile={str(args.compile).lower()}",
        f"augment.where={args.where}",
        f"data.workers={args.workers}",
        f"run.device={args.device}",
    ]
    if args.backbone:
        overrides.append(f"model.backbone={args.backbone}")
    return load_recipe(args.recipe, [*overrides, *args.set])


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(model, optimizer, precision, batches, device, warmup: int, steps: int) -> tuple[float, float]:
    """Images per second over ``steps`` steps after ``warmup`` untimed ones: by wall clock and by this
    process's CPU time (the steadier figure on a shared CPU; meaningless with worker processes or a GPU)."""
    it = iter(batches)
    n_images = 0
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            n_images = 0
        views, params = next(it)
        out, ok = train_step(model, optimizer, precision, views, params, device)
        if not ok:
            raise RuntimeError(f"non-finite loss at benchmark step {i}: {float(out['loss'])}")
        n_images += views[0].shape[0]
    _sync(device)
    return n_images / (time.perf_counter() - t0), n_images / (time.process_time() - c0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE)
    ap.add_argument("--backbone", default="", help="override model.backbone (default: the recipe's)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp16")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--where", choices=["device", "workers"], default="device")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads of this process (0 = torch default)")
    ap.add_argument("--source", default="375x500", help="HxW of the JPEG pool's images")
    ap.add_argument("--pool", type=int, default=0, help="images in the pool (default: all steps, at most 4096)")
    ap.add_argument("--no-data", action="store_true", help="time only the data-excluded step")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="further recipe overrides")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = recipe_from_args(args)
    device = resolve_device(args.device)  # 'cuda' → 'cuda:0' (set_device needs an index)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    precision = setup_precision(recipe.run.precision, device)
    fmt = torch.channels_last if recipe.run.channels_last else torch.preserve_format
    method = METHODS.get(recipe.method.name)(recipe).to(device, memory_format=fmt)
    optimizer = build_optimizer(method, recipe.optim)
    set_lr(optimizer, 1e-4)  # a small, fixed lr: the benchmark must not diverge, and the lr does not change the cost
    model, compiled, warning = maybe_compile(method, recipe.run.compile, device)
    for note in (precision.warning, warning):
        if note:
            print(f"warning: {note}")
    b, s = recipe.run.batch_size, recipe.augment.size

    g = torch.Generator().manual_seed(0)
    in_fmt = torch.channels_last if recipe.run.channels_last else torch.contiguous_format
    fixed_views = [torch.randn(b, 3, s, s, generator=g).to(device).contiguous(memory_format=in_fmt) for _ in range(2)]
    transform, stage = build_augment(recipe.augment)
    params = [transform(Image.new("RGB", (s, s)), torch.Generator().manual_seed(i))[1][0] for i in range(b)]
    fixed_params = [torch.stack(params).to(device)] * 2

    def fixed():
        while True:
            yield fixed_views, fixed_params

    excluded, excluded_cpu = _timed(model, optimizer, precision, fixed(), device, args.warmup, args.steps)
    peak_excluded = _peak_mib(device)
    print(
        f"config: {recipe.model.backbone} ({recipe.method.name}, projector {list(recipe.model.projector)}), batch {b}, "
        f"{s} px, {precision.effective}, channels_last {recipe.run.channels_last}, compiled {compiled}, "
        f"augment.where {recipe.augment.where}, {recipe.data.workers} workers, device {device}, "
        f"torch {torch.__version__}" + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
    )
    cpu_note = f" (per CPU-second of this process: {excluded_cpu:.1f})" if device.type == "cpu" else ""
    print(f"  data excluded: {excluded:.1f} img/s{cpu_note}, peak {peak_excluded:.0f} MiB")
    if args.no_data:
        print(f"pretrain_throughput: {excluded:.1f} img/s, peak {peak_excluded:.0f} MiB")
        return

    h, w = (int(v) for v in args.source.split("x"))
    pool_n = args.pool or min(b * (args.warmup + args.steps), max(4096, 2 * b))  # epochs restart the loader
    pool = JpegPool(pool_n, h, w, transform)
    sampler = EpochBatchSampler(pool_n, b, 0, DistEnv(), 0)
    loader = DataLoader(
        TwoViewDataset(pool, 0),
        batch_sampler=sampler,
        num_workers=recipe.data.workers,
        pin_memory=recipe.data.pin_memory and device.type == "cuda",
        persistent_workers=recipe.data.persistent_workers and recipe.data.workers > 0,
        prefetch_factor=4 if recipe.data.workers > 0 else None,
    )
    batches = DeviceBatches(loader, device, stage, channels_last=recipe.run.channels_last)

    def endless():
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            yield from batches
            epoch += 1

    included, _ = _timed(model, optimizer, precision, endless(), device, args.warmup, args.steps)
    peak = _peak_mib(device)
    print(f"  data included: {included:.1f} img/s ({h}x{w} JPEG sources), peak {peak:.0f} MiB")
    print(f"pretrain_throughput: {included:.1f} img/s, peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
