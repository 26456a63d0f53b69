"""Named evaluation protocols: preprocessing, classifier variant, grid, metric and version.

A protocol name and version go into every result record, so a number can always be traced to
the exact computation that produced it. Bump ``version`` whenever a protocol's computation
changes. Facts come from the papers named on each protocol (collected in ``docs/protocols.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from mast_bench.errors import ProtocolError
from mast_bench.registry import UnknownNameError

#: Weight-decay grid of both published linear protocols: logspace(-6, 5, 45) (Ericsson et al. 2021; AugSelf).
WD_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-6, 5, 45))


@dataclass(frozen=True)
class Preprocessing:
    """Deterministic evaluation transform: optional short-side resize and centre crop, then normalisation.

    Attributes:
        resize: short side after resizing (``None``: keep the native size).
        crop: side of the centre crop (``None``: no crop).
        interpolation: resize interpolation (``bicubic`` in both linear protocols).
        mean, std: per-channel normalisation (the backbone's own, from its metadata).
    """

    resize: int | None
    crop: int | None
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "resize": self.resize,
            "crop": self.crop,
            "interpolation": self.interpolation,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    def transform(self) -> transforms.Compose:
        """PIL image → normalised ``(3, H, W)`` float tensor."""
        steps: list[Any] = []
        if self.resize is not None:
            steps.append(transforms.Resize(self.resize, interpolation=InterpolationMode(self.interpolation)))
        if self.crop is not None:
            steps.append(transforms.CenterCrop(self.crop))
        steps += [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        return transforms.Compose(steps)


@dataclass(frozen=True)
class Protocol:
    """One named evaluation protocol.

    Attributes:
        name: registry name, written into records.
        version: bumped whenever the computation changes.
        task: ``linear`` or ``knn``.
        classifier: ``sklearn`` (scikit-learn's LogisticRegression objective, C = 1/wd) or ``augself``
            (summed CE + wd·‖θ‖², torch L-BFGS); unused for kNN.
        grid: weight decays tried, in the order the reference implementation visits them.
        image_size: side of the centre crop after a short-side resize to the same size; ``0`` = native size;
            ``"stem"``: 96 for small-stem (STL-10-style) backbones, 224 otherwise (AugSelf).
        rtol, max_iter: stopping rule of the ``sklearn`` classifier (relative distance to the optimum, see
            ``LogisticProbe.fit``) and its iteration cap.
        augself_max_iter, augself_tolerance_grad: AugSelf's L-BFGS settings.
        ks, temperature: kNN neighbour counts and softmax temperature.
        val_rule: whose validation-split convention the protocol follows where a dataset ships none
            (``DatasetInfo.val_splits``, see ``mast_bench.data.splits.seeded``).
        description: one line for help texts.
    """

    name: str
    version: str
    task: Literal["linear", "knn"]
    classifier: Literal["sklearn", "augself", "none"] = "none"
    grid: tuple[float, ...] = WD_GRID
    image_size: int | Literal["stem"] = 224
    rtol: float = 1e-4
    max_iter: int = 1000
    augself_max_iter: int = 5000
    augself_tolerance_grad: float = 1e-10
    ks: tuple[int, ...] = (10, 20, 100, 200)
    temperature: float = 0.07
    val_rule: Literal["ericsson", "augself"] = "ericsson"
    description: str = ""

    @property
    def selected_name(self) -> str:
        """The hyperparameter a record reports as selected: ``C`` (scikit-learn convention) or ``wd``."""
        return "C" if self.classifier == "sklearn" else "wd"

    def preprocessing(self, spec: Any) -> Preprocessing:
        """The transform for a backbone with metadata ``spec`` (a ``BackboneSpec``): its own mean/std."""
        size = self.image_size
        if size == "stem":
            # AugSelf evaluates STL-10-pretrained (small-stem) models at 96 px, ImageNet models at 224 px.
            size = 96 if getattr(spec, "stem", "imagenet") == "small" else 224
        mean, std = tuple(float(v) for v in spec.mean), tuple(float(v) for v in spec.std)
        if size == 0:
            return Preprocessing(None, None, "bicubic", mean, std)
        return Preprocessing(int(size), int(size), "bicubic", mean, std)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "task": self.task, "classifier": self.classifier}


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            # "2": VOC07 mAP as Ericsson et al.'s voc_eval_cls computes it (metrics.voc07_map); "1" used the devkit's.
            "ericsson", "2", "linear", "sklearn", image_size=224,
            description="Ericsson et al. 2021: 224 px bicubic, multinomial logistic regression (C = 1/wd), "
            "C chosen on val over logspace(-6, 5, 45), refit on train+val",
        ),
        Protocol(
            "augself", "1", "linear", "augself", image_size="stem", val_rule="augself",
            description="AugSelf (Lee et al. 2021): linear layer by L-BFGS on summed CE + wd·‖θ‖², "
            "wd chosen on val over logspace(-6, 5, 45), refit on train+val",
        ),
        Protocol(
            "synthetic-linear", "1", "linear", "sklearn", image_size=0,
            description="synthetic suite: native 32 px, the ericsson classifier and selection",
        ),
        Protocol("knn", "2", "knn", image_size=224, description="weighted kNN on L2-normalised 224 px features"),
        Protocol("synthetic-knn", "1", "knn", image_size=0, description="weighted kNN, native-size images"),
    )
}


def get_protocol(name: str, task: str | None = None) -> Protocol:
    """Look up a protocol by name (and check it belongs to ``task``).

    Raises:
        UnknownNameError: the name is not defined (message lists the valid names).
        ProtocolError: the protocol is for another task.
    """
    if name not in PROTOCOLS:
        valid = sorted(n for n, p in PROTOCOLS.items() if task is None or p.task == task)
        raise UnknownNameError(f"unknown protocol {name!r}. Valid protocols: {', '.join(valid)}")
    proto = PROTOCOLS[name]
    if task is not None and proto.task != task:
        valid = sorted(n for n, p in PROTOCOLS.items() if p.task == task)
        raise ProtocolError(f"protocol {name!r} is a {proto.task} protocol; {task} protocols: {', '.join(valid)}")
    return proto
