"""The embedded synthetic invariance suite: a seeded generator and the readers of what it writes.

:func:`mast_bench.data.synthetic.suite.make_synthetic` writes the suite; importing this package
registers its datasets (``synthetic-<task>``, the few-shot pool, the scenes).
"""

from mast_bench.data.synthetic import datasets, suite  # noqa: F401  (register datasets)
