"""Transfer evaluation on frozen or fine-tuned backbones: features, linear probes, kNN, ImageNet.

Importing this package registers the evaluators (``linear``, ``knn``, ``imagenet-linear``, ``semisup``)
in :data:`mast_bench.registry.EVALUATORS`.
"""

from mast_bench.downstream import imagenet, knn, linear  # noqa: F401  (register evaluators)
from mast_bench.downstream.linear import evaluate_linear

__all__ = ["evaluate_linear"]
