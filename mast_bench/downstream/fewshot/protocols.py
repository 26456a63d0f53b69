"""Few-shot protocols: episode shape, class-size rule, preprocessing and default head of each.

``ericsson``
    Ericsson et al. 2021 (ssl-transfer ``few_shot.py`` on CD-FSL's data managers): 5-way, K ∈ {5, 20, 50},
    15 queries per class, 600 episodes, prototypes with squared Euclidean distance; images resized to a
    257 × 257 square (int(1.15 · 224), bilinear, CD-FSL's ``Scale``) then centre-cropped to 224. Episodes
    come from every split pooled; classes without images are removed. It has no rule for a class smaller
    than K + Q (its data loader would return a short batch), so such a pool is refused.
``augself``
    AugSelf (Lee et al. 2021, ``transfer_few_shot.py``): 5-way, K ∈ {1, 5}, 16 queries per class, 2000
    episodes, per-episode scikit-learn ``LogisticRegression(solver="liblinear")``; preprocessing as its
    linear protocol (96 px for small-stem STL-10 models, 224 px otherwise). Classes with ≤ K images are
    dropped; a class with fewer than K + Q images gives K shots and draws its Q queries with replacement
    from its other images.
``synthetic-fewshot``
    The embedded synthetic pool at its native size, AugSelf's episode shape and class rule, 600 episodes.

Both papers report mean accuracy ± 1.96 · std / √episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torchvision import transforms
from torchvision.transforms import InterpolationMode

from mast_bench.downstream.protocols import Preprocessing, get_protocol
from mast_bench.registry import UnknownNameError

#: Ericsson's few-shot resize: a square of int(1.15 × 224) = 257 px, then a 224 px centre crop (CD-FSL).
ERICSSON_SQUARE, ERICSSON_CROP = 257, 224


@dataclass(frozen=True)
class SquarePreprocessing(Preprocessing):
    """Resize to a ``resize × resize`` square (aspect ratio not kept), centre crop, normalise."""

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "square": True}

    def transform(self) -> transforms.Compose:
        if self.resize is None or self.crop is None:
            raise ValueError("a square resize needs both a size and a crop")
        return transforms.Compose(
            [
                transforms.Resize((self.resize, self.resize), interpolation=InterpolationMode(self.interpolation)),
                transforms.CenterCrop(self.crop),
                transforms.ToTensor(),
                transforms.Normalize(self.mean, self.std),
            ]
        )


@dataclass(frozen=True)
class FewShotProtocol:
    """One named few-shot protocol.

    Attributes:
        name, version: written into records; bump ``version`` whenever the computation changes.
        ways, shots, queries, episodes: the default episode shape (shots: every K evaluated).
        head: the protocol's own head (others may be run on the same episodes).
        class_rule: ``"refuse"`` (no rule for classes smaller than K + Q: refused) or ``"augself"``
            (drop classes with ≤ K images; queries with replacement below K + Q).
        images: ``"square224"`` (Ericsson), ``"linear-augself"`` (the AugSelf linear preprocessing) or
            ``"native"`` (no resize).
        description: one line for help texts.
    """

    name: str
    version: str
    ways: int
    shots: tuple[int, ...]
    queries: int
    episodes: int
    head: str
    class_rule: Literal["refuse", "augself"]
    images: Literal["square224", "linear-augself", "native"]
    description: str = ""

    def preprocessing(self, spec: Any) -> Preprocessing:
        """The evaluation transform for a backbone with metadata ``spec`` (its own mean/std)."""
        mean, std = tuple(float(v) for v in spec.mean), tuple(float(v) for v in spec.std)
        if self.images == "square224":
            return SquarePreprocessing(ERICSSON_SQUARE, ERICSSON_CROP, "bilinear", mean, std)
        if self.images == "linear-augself":
            return get_protocol("augself").preprocessing(spec)
        return Preprocessing(None, None, "bicubic", mean, std)


FEWSHOT_PROTOCOLS: dict[str, FewShotProtocol] = {
    p.name: p
    for p in (
        FewShotProtocol("ericsson", "1", 5, (5, 20, 50), 15, 600, "protonet", "refuse", "square224",
                        "Ericsson et al. 2021: 257² resize, 224 crop, prototypes, 15 queries, 600 episodes"),
        FewShotProtocol("augself", "1", 5, (1, 5), 16, 2000, "logreg", "augself", "linear-augself",
                        "AugSelf: liblinear logistic regression per episode, 16 queries, 2000 episodes"),
        FewShotProtocol("synthetic-fewshot", "1", 5, (1, 5), 16, 600, "logreg", "augself", "native",
                        "synthetic pool at native size, AugSelf's episode shape and class rule, 600 episodes"),
    )
}  # fmt: skip


def get_fewshot_protocol(name: str) -> FewShotProtocol:
    """Look up a few-shot protocol.

    Raises:
        UnknownNameError: the name is not defined (message lists the valid names).
    """
    if name not in FEWSHOT_PROTOCOLS:
        raise UnknownNameError(
            f"unknown few-shot protocol {name!r}. Valid few-shot protocols: {', '.join(sorted(FEWSHOT_PROTOCOLS))}"
        )
    return FEWSHOT_PROTOCOLS[name]
