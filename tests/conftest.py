"""Shared test fixtures. Tests run on CPU with tiny models and data."""

from __future__ import annotations

import os

import pytest
import torch

# Two cores on the CI machine: keep intra-op threads low so parallel work does not thrash.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic suite (size="test"), generated once per session."""
    from mast_bench.data.synthetic.suite import make_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic(root, seed=0, size="test", overwrite=True)
    return root
