"""Typed, strict YAML → frozen dataclass configuration.

A recipe is a YAML mapping whose sections mirror :class:`Recipe`. Loading rejects any key
that is not a field (naming the key, its dotted path, the file, and the closest valid key),
checks every value against the field's type, and returns frozen dataclasses (lists become
tuples). ``--set section.key=value`` overrides go through the same checks.

Defaults live here and only here; recipes state what differs.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A recipe or override that does not fit the schema."""


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and projector."""

    backbone: str = "resnet_tiny"
    #: "imagenet": 7x7/2 conv + max-pool (torchvision); "small": 3x3/1 conv, no max-pool (32–96 px images).
    stem: Literal["imagenet", "small"] = "imagenet"
    #: Stage widths for ``resnet_tiny`` (ignored by the torchvision ResNets, whose widths are fixed).
    widths: tuple[int, ...] = (16, 32, 64, 128)
    #: Projector layer sizes after the backbone feature; VICReg R50 uses 8192-8192-8192.
    projector: tuple[int, ...] = (256, 256, 256)


@dataclass(frozen=True)
class MastConfig:
    """MAST-specific switches (docs/method.md). Every part can be turned off for ablation."""

    masks: bool = True
    #: Initial mask logit; sigmoid(0.0) = 0.5 for every dimension.
    mask_init: float = 0.0
    uncertainty: bool = True
    #: Feed the two views' embeddings (detached) to the uncertainty head besides the augmentation parameters.
    uncertainty_features: bool = False
    uncertainty_hidden: int = 64
    invariance_coeff: float = 25.0
    sparsity_coeff: float = 0.1
    coverage_coeff: float = 1.0
    mass_floor: float = 0.05
    mass_floor_coeff: float = 1.0
    aware: bool = False
    aware_coeff: float = 1.0
    #: Which families' parameters subspace k's uncertainty sees: every other family ("others"), only its
    #: own ("own") or all ("all"); docs/method.md explains the default.
    uncertainty_inputs: Literal["others", "own", "all"] = "others"
    #: Predicted log-variances are squashed to ±bound, so per-pair weights exp(−s) stay within e^±bound.
    uncertainty_bound: float = 5.0
    #: "normalised": the encoder sees exp(−s)-weighted distances rescaled to mean 1 per subspace and the head
    #: learns s from the Gaussian likelihood; "nll": the plain d·exp(−s) + s term (docs/method.md).
    uncertainty_form: Literal["normalised", "nll"] = "normalised"
    #: Weight of the head's likelihood term in the "normalised" form; only the head receives its gradient.
    uncertainty_coeff: float = 1.0
    aware_hidden: int = 64


@dataclass(frozen=True)
class MethodConfig:
    name: str = "vicreg"
    sim_coeff: float = 25.0
    std_coeff: float = 25.0
    cov_coeff: float = 1.0
    mast: MastConfig = field(default_factory=MastConfig)


@dataclass(frozen=True)
class AugmentConfig:
    """Multi-view augmentation pipeline (parameters recorded per view)."""

    #: "vicreg": VICReg's asymmetric two-view pipeline; "augself": AugSelf's STL-10 pipeline.
    pipeline: Literal["vicreg", "augself"] = "vicreg"
    size: int = 32
    families: tuple[str, ...] = ("crop", "flip", "color_jitter", "grayscale", "blur", "solarize")
    crop_scale: tuple[float, float] = (0.08, 1.0)
    #: Colour-jitter strengths (brightness, contrast, saturation, hue) of both views; None keeps the pipeline's
    #: own (vicreg 0.4, 0.4, 0.2, 0.1; augself 0.4, 0.4, 0.4, 0.1). Hue 0.5 can turn any hue into any other.
    jitter: tuple[float, float, float, float] | None = None
    #: Gaussian-blur σ range in pixels (VICReg's 0.1–2) and kernel side (odd; 0: about 10 % of the image side,
    #: SimCLR's rule, 3 px at 32 px, where σ 2 is cut off at ±1 px).
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = 0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: Where the photometric families (jitter, grayscale, blur, solarise) run: "device": batched on the
    #: training device after the DataLoader workers decoded, cropped, resized and flipped each image;
    #: "workers": every family per image in the workers. Same drawn and recorded parameters either way
    #: (benchmarks/README.md: throughput; tests/test_augment_batched.py: equality tolerance).
    where: Literal["device", "workers"] = "device"


@dataclass(frozen=True)
class DataConfig:
    #: Dataset registry name of the pretraining images (labels, if any, are ignored).
    dataset: str = "synthetic-pool"
    root: str | None = None
    split: str = "train"
    workers: int = 0
    #: Page-locked host batches for asynchronous copies to CUDA (ignored on the CPU).
    pin_memory: bool = True
    #: Keep the DataLoader workers alive between epochs (saves their start-up and dataset re-open).
    persistent_workers: bool = True


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["lars", "sgd", "adamw"] = "lars"
    #: lr = base_lr × batch_size / 256 (VICReg).
    base_lr: float = 0.2
    weight_decay: float = 1e-6
    momentum: float = 0.9
    #: LARS trust coefficient η.
    eta: float = 0.001
    warmup_epochs: float = 10.0
    #: Cosine schedule ends at final_lr_ratio × peak lr.
    final_lr_ratio: float = 0.001
    #: Learning-rate multiplier for MAST's mask logits and uncertainty head (momentum SGD). docs/method.md §4:
    #: aux_lr_scale × peak lr near 0.2 learns the subspaces without letting batch noise drive the masks.
    aux_lr_scale: float = 1.0


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    epochs: int = 100
    batch_size: int = 256
    #: Stop after this many optimiser steps per epoch (0 = whole epoch); for smoke runs.
    max_steps_per_epoch: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    #: Save a checkpoint every N epochs and also every ``checkpoint_every_steps`` steps (0 = off).
    checkpoint_every: int = 1
    checkpoint_every_steps: int = 0
    log_every: int = 10
    #: Intra-op CPU threads of the training process (0 = torch's default). With data.workers > 0 on a
    #: small CPU, 1 keeps the trainer and the augmentation workers from competing for cores.
    threads: int = 0
    #: NHWC memory format for the model and its inputs (benchmarks/README.md: measured effect).
    channels_last: bool = False
    #: ``torch.compile`` the training model; where no compiler backend works the run falls back to eager
    #: mode with a warning that the log records.
    compile: bool = False
    #: TensorBoard event files in ``<out>/tensorboard`` (needs the ``tensorboard`` package).
    tensorboard: bool = False


@dataclass(frozen=True)
class Recipe:
    """A pretraining recipe."""

    name: str = "unnamed"
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


# --------------------------------------------------------------------------- strict loading


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return the frozen/normalised value."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for section {_type_name(tp)}, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin is Literal:
        options = get_args(tp)
        if value not in options:
            close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
            hint = f" (closest: {close[0]!r})" if close else ""
            raise ConfigError(f"{where}: {value!r} is not one of {list(options)}{hint}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} does not match {_type_name(tp)}")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected a list of {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return types.MappingProxyType(dict(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {where}")  # a schema bug, not user input


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and ill-typed values."""
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown key {path!r}{hint} (valid keys here: {', '.join(names)})")
        kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Plain (YAML/JSON-safe) representation of a config dataclass."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _set_path(tree: dict[str, Any], cls: type, dotted: str, value: Any, text: str) -> None:
    parts = dotted.split(".")
    node, node_cls = tree, cls
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(node_cls)]
        path = ".".join(parts[: i + 1])
        if part not in names:
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"--set {text}: unknown key {path!r}{hint} (valid keys here: {', '.join(names)})")
        ftype = _hints(node_cls)[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(ftype):
                raise ConfigError(f"--set {text}: {path!r} is a section; set one of its keys")
            node[part] = value
        else:
            if not dataclasses.is_dataclass(ftype):
                raise ConfigError(f"--set {text}: {path!r} is not a section")
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: {path!r} is not a section")
            node_cls = ftype


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.path=value``; the value is parsed as YAML (``0.1``, ``true``, ``[1, 2]``)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: cannot parse value: {exc}") from None
    return key, value


def load(
    cls: type[T], source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()
) -> T:
    """Load a config of type ``cls`` from a YAML file or mapping, then apply ``--set`` overrides.

    Raises:
        ConfigError: unknown or misspelt key (with the closest valid key), wrong type, bad YAML,
            or a missing file. Messages name the file and the dotted key path.
    """
    label = ""
    if source is None:
        tree: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        tree = _deep_copy(source)
    else:
        path = Path(source)
        label = f"{path}: "
        if not path.is_file():
            raise ConfigError(f"recipe file {str(path)!r} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{label}invalid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{label}the top level must be a mapping, got {type(loaded).__name__}")
        tree = _deep_copy(loaded)
    try:
        for text in overrides:
            key, value = parse_override(text)
            _set_path(tree, cls, key, value, text)
        return from_dict(cls, tree)
    except ConfigError as exc:
        raise ConfigError(f"{label}{exc}") from None


def _deep_copy(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in m.items()}


def load_recipe(source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()) -> Recipe:
    return load(Recipe, source, overrides)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)
