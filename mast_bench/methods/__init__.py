"""methods."""

from mast_bench.methods import mast, vicreg  # noqa: F401  (register "mast" and "vicreg")
