"""Class folders under train/ (and val/, test/) work with every evaluator; kNN needs no validation split."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from data_fixtures import make_imagefolder
from downstream_fixtures import evaluate_args, one_thread, tiny_backbone, tree

from mast_bench.cli import main
from mast_bench.downstream.imagenet import LINEAR_RECIPE, SEMISUP_RECIPES, evaluate_imagenet_linear, evaluate_semisup
from mast_bench.downstream.knn import evaluate_knn
from mast_bench.downstream.linear import evaluate_linear

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
CLASSES = ("cat", "dog", "owl")
TINY = {"epochs": 1, "batch_size": 8, "train_crop": 8, "test_resize": 8, "test_crop": 8}


def _evaluate(evaluate, root, protocol: str, tmp_path) -> list:
    """``evaluate`` (:func:`evaluate_linear` or :func:`evaluate_knn`) of a tiny backbone on the copy at ``root``."""
    return evaluate(
        tiny_backbone(),
        "imagefolder",
        root,
        protocol,
        tmp_path / "rec",
        "tiny",
        cache_dir=tmp_path / "cache",
        progress=False,
    )


def _copy(tmp_path, val: int = 0):
    sizes = {"train": 5, "test": 2, **({"val": val} if val else {})}
    return make_imagefolder(tmp_path / "folder", CLASSES, sizes)


def test_linear_without_val_draws_a_seeded_split_from_train(tmp_path) -> None:
    root = _copy(tmp_path)
    [rec] = _evaluate(evaluate_linear, root, "synthetic-linear", tmp_path)
    assert rec.extra["num_classes"] == 3 and rec.extra["val_split"]["source"] == "generated"
    assert (rec.extra["n_train"], rec.extra["n_val"], rec.extra["n_test"]) == (12, 3, 6)
    assert len(rec.extra["per_class"]["values"]) == 3 and rec.extra["data_verified"] is True
    assert any(p.startswith("splits/") for p in tree(tmp_path / "rec"))  # the drawn split is kept with the records


def test_linear_with_val_uses_it(tmp_path) -> None:
    root = _copy(tmp_path, val=2)
    [rec] = _evaluate(evaluate_linear, root, "synthetic-linear", tmp_path)
    assert rec.extra["val_split"]["source"] == "official" and rec.extra["n_val"] == 6


@pytest.mark.parametrize(("val", "bank", "ks"), [(0, "train", [10]), (2, "train+val", [10, 20])])
def test_knn_with_or_without_val(tmp_path, val: int, bank: str, ks: list[int]) -> None:
    root = _copy(tmp_path, val=val)
    records = _evaluate(evaluate_knn, root, "synthetic-knn", tmp_path)
    assert [r.protocol for r in records] == [f"synthetic-knn-k{k}" for k in ks]  # banks of 15 / 21 images
    assert records[0].extra["bank"] == bank and records[0].extra["n_bank"] == 15 + 3 * val


def test_knn_without_val_uses_the_train_bank(tmp_path) -> None:
    root = make_imagefolder(tmp_path / "folder", CLASSES, {"train": 7, "test": 2})
    [rec, _] = _evaluate(evaluate_knn, root, "synthetic-knn", tmp_path)
    assert rec.protocol == "synthetic-knn-k10" and rec.extra["bank"] == "train" and rec.extra["n_bank"] == 21
    assert 0 <= rec.value <= 100 and rec.extra["num_classes"] == 3


def test_imagenet_linear_and_semisup_on_class_folders(tmp_path) -> None:
    root = _copy(tmp_path, val=2)
    recs = evaluate_imagenet_linear(
        tiny_backbone(),
        root,
        tmp_path / "rec",
        "tiny",
        dataset="imagefolder",
        recipe=dataclasses.replace(LINEAR_RECIPE, **TINY),
        progress=False,
    )
    assert [r.metric for r in recs] == ["top1", "top5"] and recs[0].extra["num_classes"] == 3
    assert recs[1].value == 100.0  # 3 classes: the true one is always among the best 5
    subset = tmp_path / "subset.txt"
    subset.write_text("cat_0.png\ndog_0.png\nowl_0.png\n")
    recs = evaluate_semisup(
        tiny_backbone(),
        root,
        1,
        tmp_path / "rec",
        "tiny",
        dataset="imagefolder",
        subset_file=subset,
        recipe=dataclasses.replace(SEMISUP_RECIPES[1], **TINY),
        progress=False,
    )
    assert recs[0].extra["n_train"] == 3 and recs[0].task == "finetune"


def test_cli_linear_on_imagefolder(tmp_path, monkeypatch) -> None:
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    root = _copy(tmp_path)
    result = CliRunner().invoke(
        main, [*evaluate_args("linear", "imagefolder", "synthetic-linear", tmp_path), "--data-root", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert "imagefolder synthetic-linear top1 = " in result.output
