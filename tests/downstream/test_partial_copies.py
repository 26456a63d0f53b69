"""Partial, unverified copies: a seeded split drawn from the copy by the protocol's rule, said and recorded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from data_fixtures import make_cifar10
from downstream_fixtures import one_thread, tiny_backbone, tree

from mast_bench.data.splits.seeded import ericsson_val_split, seeded_val_split
from mast_bench.downstream.linear import evaluate_linear
from mast_bench.downstream.protocols import PROTOCOLS, WD_GRID
from mast_bench.downstream.valsplit import DRAWN_FROM_COPY, plan_splits
from mast_bench.errors import DatasetError
from mast_bench.registry import DATASETS

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


def test_ericsson_rule_on_a_partial_unverified_copy(tmp_path) -> None:
    root = make_cifar10(tmp_path / "cifar", train_per_class=5, test_per_class=1)
    lines: list[str] = []
    [rec] = evaluate_linear(
        tiny_backbone(),
        "cifar10",
        root,
        "ericsson",
        tmp_path / "rec",
        "tiny",
        verify=False,
        cache_dir=tmp_path / "cache",
        progress=False,
        echo=lines.append,
    )
    assert lines[0] == (
        "warning: the ericsson validation split of 'cifar10' indexes the official 50000-image train split, but this "
        "unverified copy has 50; drawing a seeded 20% (seed 0) from the copy instead"
    )
    assert rec.extra["data_verified"] is False
    vs = rec.extra["val_split"]
    assert (vs["source"], vs["scheme"], vs["seed"]) == (DRAWN_FROM_COPY, "ericsson", 0)
    assert (vs["n_train"], vs["n_val"]) == (40, 10)
    assert (rec.extra["n_train"], rec.extra["n_val"], rec.extra["n_test"]) == (40, 10, 10)
    assert rec.selected_on == "val" and len(tree(tmp_path / "rec")) == 1


def test_augself_rule_keeps_the_committed_ratio_and_seed(tmp_path, monkeypatch) -> None:
    quick = dataclasses.replace(PROTOCOLS["augself"], grid=WD_GRID[::22], augself_max_iter=20)
    monkeypatch.setitem(PROTOCOLS, "augself", quick)
    root = make_cifar10(tmp_path / "cifar", train_per_class=5, test_per_class=1)
    [rec] = evaluate_linear(
        tiny_backbone(),
        "cifar10",
        root,
        "augself",
        tmp_path / "rec",
        "tiny",
        verify=False,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    vs = rec.extra["val_split"]
    # CIFAR-10's AugSelf split is random_split(45000/5000, seed 43): 10 % of this 50-image copy, same seed.
    assert (vs["source"], vs["scheme"], vs["seed"], vs["n_train"], vs["n_val"]) == (
        DRAWN_FROM_COPY,
        "random_split",
        43,
        45,
        5,
    )


def test_drawn_split_is_the_protocols_own_rule_applied_to_the_copy() -> None:
    info = DATASETS.get("cifar10")
    plan = plan_splits(PROTOCOLS["ericsson"], info, "unused", "unused", False, n_train=lambda: 50)
    train, val = ericsson_val_split(50, 0)
    assert np.array_equal(plan.train_indices, train) and np.array_equal(plan.val_indices, val)
    plan = plan_splits(PROTOCOLS["augself"], info, "unused", "unused", False, n_train=lambda: 50)
    train, val = seeded_val_split(45, 5, 43)
    assert np.array_equal(plan.train_indices, train) and np.array_equal(plan.val_indices, val)
    assert set(plan.train_indices) | set(plan.val_indices) == set(range(50))


def test_a_verified_partial_copy_is_still_refused_with_the_way_forward() -> None:
    info = DATASETS.get("cifar10")
    with pytest.raises(DatasetError) as err:
        plan_splits(PROTOCOLS["ericsson"], info, "unused", "unused", True, n_train=lambda: 50)
    assert str(err.value) == (
        "the ericsson validation split of 'cifar10' indexes the official 50000-image train split, but this copy has 50 "
        "images; evaluate a complete copy, or pass --no-verify to draw the split from this copy instead"
    )


def test_a_complete_copy_uses_the_committed_split() -> None:
    info = DATASETS.get("cifar10")
    plan = plan_splits(PROTOCOLS["augself"], info, "unused", "unused", False, n_train=lambda: 50000)
    assert plan.describe["source"] == "committed" and len(plan.val_indices) == 5000
