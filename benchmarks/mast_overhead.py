"""How much a MAST training step costs over a VICReg step with the same backbone, batch and data.

Both methods are built from ``pretrain/mast_r18_stl10.yaml`` (MAST; its VICReg twin differs only in
``method.name``), at a reduced image size and batch for a CPU: by default ResNet-18 at 64 px, batch 64.
One step = forward of both views, loss, backward, and the recipe's optimiser step (LARS). The two
methods alternate step by step (the order flips every repetition) on identical tensors, so drifts in
machine load hit both alike; the figure of merit is the ratio of the median step times.

On a CPU the default clock is the process's CPU time (``time.process_time``) with one intra-op
thread: on a shared machine wall-clock steps vary several-fold with other users' load, while the
CPU time a step consumes does not. Wall-clock medians are printed as well; on CUDA the clock is
wall time with device synchronisation.

    .venv/bin/python benchmarks/mast_overhead.py [--reps 12] [--size 64] [--batch 64] [--device cpu]

The last line is always ``mast_overhead: mast <ms> ms, vicreg <ms> ms, ratio <x>``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from mast_bench.augment import IDENTITY_PARAMS, PARAM_DIM, ViewSpec, sample_view_params, view_specs
from mast_bench.config import load_recipe
from mast_bench.pretrain.optimizer import build_optimizer
from mast_bench.registry import METHODS

RECIPE = Path(__file__).resolve().parent.parent / "pretrain" / "mast_r18_stl10.yaml"


def _params(specs: tuple[ViewSpec, ViewSpec], n: int, size: int, g: torch.Generator) -> list[torch.Tensor]:
    """Real augmentation parameter vectors ``(n, PARAM_DIM)`` for both views, drawn with the recipe's pipeline."""
    return [torch.stack([sample_view_params(spec, size, size, g).to_vector() for _ in range(n)]) for spec in specs]


def _loss_only(models: dict, batch: int, device: torch.device, clock: str, reps: int) -> dict[str, float]:
    """Median time of each method's loss (forward + backward) on fixed embeddings: where MAST's extras live."""
    d = models["mast"].embed_dim
    p = [torch.zeros(batch, PARAM_DIM, device=device) + IDENTITY_PARAMS.to(device) for _ in range(2)]
    z = [torch.randn(batch, d, device=device, requires_grad=True) for _ in range(2)]
    out = {}
    for name, model in models.items():
        times = []
        for _ in range(reps):
            _sync(device)
            t0 = time.process_time() if clock == "cpu" else time.perf_counter()
            model.compute_loss(z[0], z[1], p[0], p[1])["loss"].backward()
            _sync(device)
            times.append((time.process_time() if clock == "cpu" else time.perf_counter()) - t0)
        out[name] = statistics.median(times) * 1000
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=12, help="timed steps per method")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = leave as is)")
    ap.add_argument(
        "--clock",
        choices=("auto", "cpu", "wall"),
        default="auto",
        help="cpu: process CPU time (default on CPU); wall: elapsed time (default on CUDA)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = args.clock if args.clock != "auto" else ("wall" if device.type == "cuda" else "cpu")
    common = [f"augment.size={args.size}", f"run.batch_size={args.batch}", f"model.backbone={args.backbone}"]
    recipes = {"mast": load_recipe(RECIPE, common), "vicreg": load_recipe(RECIPE, [*common, "method.name=vicreg"])}
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(args.batch, 3, args.size, args.size, generator=g).to(device) for _ in range(2)]
    params = [p.to(device) for p in _params(view_specs(recipes["mast"].augment), args.batch, args.size, g)]
    models, optims = {}, {}
    for name, recipe in recipes.items():
        torch.manual_seed(0)
        models[name] = METHODS.get(name)(recipe).to(device).train()
        optims[name] = build_optimizer(models[name], recipe.optim)
        for group in optims[name].param_groups:
            group["lr"] = 1e-3 * group["lr_scale"]

    def step(name: str) -> tuple[float, float]:
        _sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        out = models[name](views, params)
        optims[name].zero_grad(set_to_none=True)
        out["loss"].backward()
        optims[name].step()
        _sync(device)
        return time.perf_counter() - w0, time.process_time() - c0

    for _ in range(args.warmup):
        for name in models:
            step(name)
    wall: dict[str, list[float]] = {name: [] for name in models}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    for rep in range(args.reps):
        order = list(models) if rep % 2 == 0 else list(models)[::-1]
        for name in order:
            w, c = step(name)
            wall[name].append(w * 1000)
            cpu[name].append(c * 1000)
    times = cpu if clock == "cpu" else wall
    med = {name: statistics.median(t) for name, t in times.items()}
    k, d = models["mast"].mask_logits.shape
    print(
        f"device {device}, threads {torch.get_num_threads()}, {args.backbone} at {args.size} px, batch {args.batch}, "
        f"projector {list(recipes['mast'].model.projector)}, K={k} masks over D={d}, {args.reps} interleaved steps each"
    )
    print(f"clock for the ratio: {clock} time")
    for name in models:
        for label, series in (("cpu", cpu[name]), ("wall", wall[name])):
            q = statistics.quantiles(series, n=4)
            print(
                f"  {name:7s} {label:4s} median {statistics.median(series):.1f} ms "
                f"(quartiles {q[0]:.1f} / {q[2]:.1f} ms)"
            )
    loss_ms = _loss_only(models, args.batch, device, clock, reps=max(20, args.reps))
    print(
        "  loss only (fixed embeddings, forward + backward): "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in loss_ms.items())
    )
    ratio = med["mast"] / med["vicreg"]
    print(f"mast_overhead: mast {med['mast']:.1f} ms, vicreg {med['vicreg']:.1f} ms, ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
