"""Transfer evaluation on frozen or fine-tuned backbones: features, linear probes, kNN, ImageNet.

Every evaluator implements the contract of :mod:`mast_bench.downstream.contract` (plan cells, skip the
done ones, run, write one record per cell). Importing this package registers the evaluators (``linear``,
``knn``, ``imagenet-linear``, ``semisup``, ``fewshot``) in :data:`mast_bench.registry.EVALUATORS` as
:class:`~mast_bench.downstream.contract.Evaluator` instances.
"""

from mast_bench.downstream import fewshot, imagenet, knn, linear  # noqa: F401  (register evaluators)
from mast_bench.downstream.linear import evaluate_linear

__all__ = ["evaluate_linear"]
