"""Datasets: readers of the official files of real datasets, the embedded synthetic suite, splits, checks.

Sub-packages, one concern each:

- :mod:`mast_bench.data.readers`: one module per real dataset, each registered the same way;
- :mod:`mast_bench.data.synthetic`: the seeded synthetic invariance suite (generator and its readers);
- :mod:`mast_bench.data.splits`: pure seeded validation splits and the committed split files;
- :mod:`mast_bench.data.verify`: listing a copy and checking it against the official numbers.

Shared by all of them: :mod:`mast_bench.data.base` (the typed :class:`~mast_bench.data.base.DatasetInfo`),
:mod:`mast_bench.data.register` (:func:`~mast_bench.data.register.register_reader`, the one way a reader
is registered) and :mod:`mast_bench.data.images` (the one way an image file is opened).

Importing this package fills :data:`mast_bench.registry.DATASETS` (see :func:`mast_bench.registry.load_all`).
"""

from mast_bench.data import readers, synthetic  # noqa: F401  (register datasets)
