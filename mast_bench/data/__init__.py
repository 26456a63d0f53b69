"""Dataset registry: the synthetic invariance suite and loaders of the official files of real datasets."""

# Modules that register datasets (imported by mast_bench.registry.load_all).
from mast_bench.data import (  # noqa: F401
    aircraft,
    caltech101,
    cars,
    cifar,
    cub200,
    dogs,
    dtd,
    flowers102,
    folder,
    food101,
    imagefolder,
    imagenet,
    mit67,
    pets,
    stl10,
    sun397,
    synthetic,
    synthetic_datasets,
    voc07,
)
