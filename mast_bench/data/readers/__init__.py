"""Readers of real datasets from their official on-disk files (never downloaded).

Each module describes one dataset and registers it in :data:`mast_bench.registry.DATASETS`.
"""

from mast_bench.data.readers import (  # noqa: F401  (register datasets)
    aircraft,
    caltech101,
    cars,
    chestx,
    cifar,
    cropdiseases,
    cub200,
    dogs,
    dtd,
    eurosat,
    fc100,
    flowers102,
    folder,
    food101,
    imagefolder,
    imagenet,
    isic2018,
    mit67,
    pets,
    plantdisease,
    stl10,
    sun397,
    voc07,
)
