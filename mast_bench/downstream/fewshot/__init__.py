"""Few-shot transfer: seeded, replayable episode manifests shared by every head, batched heads.

* :mod:`.episodes`: the labelled pool, seeded episode draws, the class rules, refusing a foreign pool;
* :mod:`.manifest`: manifests on disk (written atomically, read back checked);
* :mod:`.heads`: prototypes (squared Euclidean, cosine), liblinear-equivalent logistic regression and
  closed-form ridge regression, each solving many episodes at once;
* :mod:`.protocols`: the Ericsson and AugSelf protocols (and the synthetic pool's);
* :mod:`.pool`: which splits are pooled, and the pooled features through the feature cache;
* :mod:`.scoring`: a head over a manifest's episodes, and the mean ± 95 % interval;
* :mod:`.evaluator`: the ``fewshot`` evaluator (one record per head and K), registered on import.
"""

from mast_bench.downstream.fewshot import evaluator  # noqa: F401  (registers the "fewshot" evaluator)
from mast_bench.downstream.fewshot.evaluator import FewShotEvaluator, FewShotOptions

__all__ = ["FewShotEvaluator", "FewShotOptions"]
