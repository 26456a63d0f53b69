"""ImageNet linear evaluation and semi-supervised fine-tuning (VICReg's procedure: Bardes et al. 2022, §4.1 and
the ``evaluate.py`` of facebookresearch/vicreg).

* Linear: frozen backbone in eval mode; head ``Linear(D, 1000)`` with weights N(0, 0.01) and zero bias;
  SGD momentum 0.9, weight decay 1e-6, cosine schedule over 100 epochs, batch 256, head lr 0.02;
  train RandomResizedCrop 224 + flip; test resize 256, centre crop 224; top-1 and top-5.
* Semi-supervised: everything fine-tuned for 20 epochs, weight decay 0, cosine; 1 % labels: backbone
  lr 0.03, head lr 0.08; 10 %: backbone lr 0.01, head lr 0.1. The label subsets are the standard
  SimCLR image lists (one file name per line), supplied by the user.

Nothing is selected on the validation split: the final epoch is reported. A run with any setting
changed from the published recipe is recorded under ``<protocol>-custom`` so it can never be
mistaken for the published number.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from tqdm import tqdm

from mast_bench.downstream import metrics
from mast_bench.downstream.contract import Cell, EvalRequest, Evaluator, Omitted, execute, records_of
from mast_bench.downstream.valsplit import copy_num_classes
from mast_bench.errors import DatasetError, ProtocolError, TrainingError
from mast_bench.fileio import sha256_file
from mast_bench.registry import DATASETS, EVALUATORS
from mast_bench.results.records import ResultRecord


@dataclass(frozen=True)
class FinetuneRecipe:
    """One supervised training recipe on top of a pretrained backbone (``lr_backbone == 0``: frozen)."""

    name: str
    version: str
    epochs: int
    lr_head: float
    lr_backbone: float
    weight_decay: float
    batch_size: int = 256
    momentum: float = 0.9
    train_crop: int = 224
    test_resize: int = 256
    test_crop: int = 224
    head_init_std: float = 0.01


LINEAR_RECIPE = FinetuneRecipe("vicreg-linear", "1", epochs=100, lr_head=0.02, lr_backbone=0.0, weight_decay=1e-6)
SEMISUP_RECIPES = {
    1: FinetuneRecipe("vicreg-semisup-1pct", "1", epochs=20, lr_head=0.08, lr_backbone=0.03, weight_decay=0.0),
    10: FinetuneRecipe("vicreg-semisup-10pct", "1", epochs=20, lr_head=0.1, lr_backbone=0.01, weight_decay=0.0),
}


def read_subset(path: str | Path) -> list[str]:
    """File names of a label subset (SimCLR format: one image file name per line, blank lines ignored).

    Raises:
        FileNotFoundError / DatasetError: missing, empty, or with duplicate names.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"subset list {str(path)!r} does not exist")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"subset list {str(path)!r} is empty")
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise DatasetError(f"subset list {str(path)!r} repeats {len(dupes)} names, e.g. {dupes[:3]}")
    return names


def subset_by_names(dataset: Dataset[Any], names: list[str]) -> Subset[Any]:
    """The samples of ``dataset`` whose file name is in ``names`` (needs ImageFolder-style ``.samples``).

    Raises:
        DatasetError: the dataset has no file list, or some names are not in it.
    """
    samples = getattr(dataset, "samples", None) or getattr(dataset, "imgs", None)
    if samples is None:
        raise DatasetError(f"{type(dataset).__name__} exposes no .samples list, so a subset file cannot be applied")
    index = {Path(p).name: i for i, (p, _) in enumerate(samples)}
    missing = [n for n in names if Path(n).name not in index]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(names)} subset images are not in the training split, e.g. {missing[:3]}; "
            "is the subset list for this dataset?"
        )
    return Subset(dataset, [index[Path(n).name] for n in names])


def _transforms(recipe: FinetuneRecipe, spec: Any) -> tuple[transforms.Compose, transforms.Compose]:
    norm = transforms.Normalize(tuple(spec.mean), tuple(spec.std))
    train = transforms.Compose([
        transforms.RandomResizedCrop(recipe.train_crop), transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm,
    ])
    test = transforms.Compose([
        transforms.Resize(recipe.test_resize), transforms.CenterCrop(recipe.test_crop), transforms.ToTensor(), norm,
    ])
    return train, test


def train_and_evaluate(
    model: nn.Module,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
    recipe: FinetuneRecipe,
    num_classes: int,
    *,
    device: str = "cpu",
    seed: int = 0,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Train a linear head (and, if ``recipe.lr_backbone > 0``, the backbone), then score val once.

    Args:
        model: backbone mapping ``(N, 3, H, W)`` to ``(N, D)``; fine-tuning works on a copy.
        train_set, val_set: datasets yielding ``(image tensor, label)``.
        recipe: the schedule; num_classes: K.
        device, seed, workers, progress: execution.

    Returns:
        ``{"top1", "top5", "final_loss", "per_class"}`` (accuracies in percent; ``per_class`` as
        :func:`mast_bench.downstream.metrics.per_class`).
    """
    finetune = recipe.lr_backbone > 0
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = (copy.deepcopy(model).requires_grad_(True) if finetune else model).to(device)
    with torch.no_grad():
        feat_dim = getattr(model, "out_dim", None) or model.eval()(train_set[0][0][None].to(device)).shape[1]
    head = nn.Linear(feat_dim, num_classes).to(device)
    with torch.no_grad():
        head.weight.normal_(0.0, recipe.head_init_std, generator=gen)
        head.bias.zero_()
    groups = [{"params": head.parameters(), "lr": recipe.lr_head}]
    if finetune:
        groups.append({"params": model.parameters(), "lr": recipe.lr_backbone})
    opt = torch.optim.SGD(groups, lr=recipe.lr_head, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.epochs)  # stepped once per epoch (VICReg)
    loader = DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True, num_workers=workers, generator=gen)
    loss_fn = nn.CrossEntropyLoss()
    loss = torch.tensor(float("nan"))
    for epoch in tqdm(range(recipe.epochs), desc=recipe.name, disable=not progress):
        model.train(finetune)  # a frozen backbone stays in eval mode: its BN statistics must not move
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            with torch.set_grad_enabled(finetune):
                feats = model(images)
            loss = loss_fn(head(feats), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if not torch.isfinite(loss):
            raise TrainingError(f"{recipe.name}: the training loss became {float(loss.detach())} in epoch {epoch + 1}")
    model.eval()
    scores, targets = [], []
    with torch.inference_mode():
        for images, labels in DataLoader(val_set, batch_size=recipe.batch_size, num_workers=workers):
            scores.append(head(model(images.to(device))).float().cpu())
            targets.append(torch.as_tensor(labels))
    s, t = torch.cat(scores), torch.cat(targets)
    return {
        "top1": metrics.top1(s, t),
        "top5": metrics.topk(s, t, 5),
        "final_loss": float(loss.detach()),
        "per_class": metrics.per_class("top1", s, t),
    }


@dataclass(frozen=True)
class FinetuneOptions:
    """Options of the ImageNet linear and semi-supervised evaluators.

    Attributes:
        recipe: the schedule; any change from the published one records the protocol as ``<name>-custom``.
        seed: seeds the head's initialisation and the data order.
        percent: semi-supervised only: 1 or 10 (% of the labels; selects the published recipe).
        subset_file: semi-supervised only: a SimCLR-format list applied to ``train``; without it the
            dataset's own ``train-<percent>pct`` split is used (ImageNet: ``<root>/1percent.txt`` / ``10percent.txt``).
    """

    recipe: FinetuneRecipe = LINEAR_RECIPE
    seed: int = 0
    percent: int | None = None
    subset_file: Path | None = None


class _FinetuneEvaluator(Evaluator[FinetuneOptions]):
    """Top-1 and top-5 on the ``val`` split after training on (part of) ``train`` with a published recipe."""

    options_type = FinetuneOptions

    @abc.abstractmethod
    def _default(self, options: FinetuneOptions) -> FinetuneRecipe:
        """The published recipe these options select (a different ``options.recipe`` is recorded as custom)."""

    def _train_split(self, options: FinetuneOptions) -> str:
        return "train"

    def plan(self, request: EvalRequest[FinetuneOptions]) -> list[Cell]:
        opts = request.options
        default = self._default(opts)
        info = DATASETS.get(request.dataset)
        for split in (self._train_split(opts), "val"):
            if split not in info.splits:
                raise ProtocolError(
                    f"{opts.recipe.name} needs the {split!r} split; dataset {info.name!r} has {list(info.splits)}"
                )
        if opts.subset_file is not None:
            read_subset(opts.subset_file)  # a missing or malformed list fails before anything is skipped or run
        protocol = opts.recipe.name if opts.recipe == default else f"{opts.recipe.name}-custom"
        task = "finetune" if opts.recipe.lr_backbone else "linear"
        return [
            request.cell(task=task, protocol=protocol, protocol_version=opts.recipe.version, metric=m, split="val")
            for m in ("top1", "top5")
        ]

    def run(self, request: EvalRequest[FinetuneOptions], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        opts, root = request.options, request.data_root
        info = DATASETS.get(request.dataset)
        if root is None:
            raise DatasetError(f"dataset {info.name!r} needs --data-root (expected layout: {info.layout})")
        names = read_subset(opts.subset_file) if opts.subset_file is not None else None
        train_split = self._train_split(opts)
        train_tf, test_tf = _transforms(opts.recipe, request.weights.spec)
        train_set = info.build(root, train_split, train_tf, request.verify)
        if names is not None:
            train_set = subset_by_names(train_set, names)
        val_set = info.build(root, "val", test_tf, request.verify)
        num_classes = copy_num_classes(info, root, request.verify)
        result = train_and_evaluate(
            request.weights.model, train_set, val_set, opts.recipe, num_classes, device=request.device,
            seed=opts.seed, workers=request.workers, progress=request.progress,
        )
        extra: dict[str, Any] = {
            "recipe": dataclasses.asdict(opts.recipe), "train_split": train_split, "n_train": len(train_set),
            "n_val": len(val_set), "num_classes": num_classes, "final_train_loss": result["final_loss"],
            "data_verified": request.verify, "per_class": result["per_class"],
        }
        if opts.subset_file is not None:
            extra["subset_file"] = str(opts.subset_file)
            extra["subset_sha256"] = sha256_file(opts.subset_file)
        return [cell.fill(result[cell.skeleton.metric], seeds=(opts.seed,), selected_on="none", extra=extra)
                for cell in cells]


class ImagenetLinearEvaluator(_FinetuneEvaluator):
    """Linear evaluation with a frozen backbone (``LINEAR_RECIPE``)."""

    name = "imagenet-linear"

    def _default(self, options: FinetuneOptions) -> FinetuneRecipe:
        return LINEAR_RECIPE


class SemisupEvaluator(_FinetuneEvaluator):
    """Fine-tuning on 1 % or 10 % of the labels (``SEMISUP_RECIPES``)."""

    name = "semisup"

    def _default(self, options: FinetuneOptions) -> FinetuneRecipe:
        if options.percent not in SEMISUP_RECIPES:
            raise ProtocolError(
                f"semi-supervised evaluation is defined for 1 % and 10 % labels, got {options.percent} %"
            )
        return SEMISUP_RECIPES[options.percent]

    def _train_split(self, options: FinetuneOptions) -> str:
        return "train" if options.subset_file is not None else f"train-{options.percent}pct"


def _request(
    weights: Any, dataset: str, data_root: str | Path, options: FinetuneOptions, model_name: str, verify: bool,
    device: str, redo: bool, workers: int, progress: bool,
) -> EvalRequest[FinetuneOptions]:
    return EvalRequest(weights, model_name, dataset, Path(data_root), options.recipe.name, options, device=device,
                       verify=verify, redo=redo, progress=progress, workers=workers)


def evaluate_imagenet_linear(
    weights: Any, data_root: str | Path, out_dir: str | Path, model_name: str, *, dataset: str = "imagenet",
    recipe: FinetuneRecipe = LINEAR_RECIPE, verify: bool = True, device: str = "cpu", redo: bool = False,
    seed: int = 0, workers: int = 0, progress: bool = True, echo: Callable[[str], None] | None = None,
) -> list[ResultRecord]:
    """Linear evaluation with a frozen backbone; writes top-1 and top-5 records (split ``val``)."""
    request = _request(weights, dataset, data_root, FinetuneOptions(recipe, seed), model_name, verify, device, redo,
                       workers, progress)
    return records_of(execute(ImagenetLinearEvaluator(), request, out_dir, echo=echo))


def evaluate_semisup(
    weights: Any, data_root: str | Path, percent: int, out_dir: str | Path, model_name: str, *,
    subset_file: str | Path | None = None, dataset: str = "imagenet", recipe: FinetuneRecipe | None = None,
    verify: bool = True, device: str = "cpu", redo: bool = False, seed: int = 0, workers: int = 0,
    progress: bool = True, echo: Callable[[str], None] | None = None,
) -> list[ResultRecord]:
    """Fine-tune on the 1 % or 10 % label subset; writes top-1 and top-5 records (split ``val``).

    Args:
        percent: 1 or 10 (selects the published recipe).
        subset_file: a SimCLR-format list applied to the ``train`` split; without it the dataset's own
            ``train-<percent>pct`` split is used (ImageNet reads ``<root>/1percent.txt`` / ``10percent.txt``).
    """
    if percent not in SEMISUP_RECIPES:
        raise ProtocolError(f"semi-supervised evaluation is defined for 1 % and 10 % labels, got {percent} %")
    options = FinetuneOptions(recipe or SEMISUP_RECIPES[percent], seed, percent,
                              Path(subset_file) if subset_file is not None else None)
    request = _request(weights, dataset, data_root, options, model_name, verify, device, redo, workers, progress)
    return records_of(execute(SemisupEvaluator(), request, out_dir, echo=echo))


EVALUATORS.add("imagenet-linear", ImagenetLinearEvaluator())
EVALUATORS.add("semisup", SemisupEvaluator())
