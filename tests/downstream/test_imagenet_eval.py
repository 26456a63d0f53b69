"""ImageNet linear evaluation and semi-supervised fine-tuning on tiny fixtures (the recipes, not their numbers)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from downstream_fixtures import one_thread, register_fake, tiny_backbone, tree

from mast_bench.downstream.imagenet import (
    LINEAR_RECIPE,
    SEMISUP_RECIPES,
    evaluate_imagenet_linear,
    evaluate_semisup,
    train_and_evaluate,
)
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
FAKE = "test-imagenet-blobs"
TINY = {"batch_size": 16, "train_crop": 16, "test_resize": 16, "test_crop": 16}


@pytest.fixture(scope="module", autouse=True)
def _fake() -> None:
    register_fake(FAKE, {"train": 48, "val": 24}, val_source="none")


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_published_recipes() -> None:
    r = LINEAR_RECIPE
    assert (r.epochs, r.batch_size, r.lr_head, r.lr_backbone, r.weight_decay) == (100, 256, 0.02, 0.0, 1e-6)
    assert r.momentum == 0.9
    assert (r.train_crop, r.test_resize, r.test_crop, r.head_init_std) == (224, 256, 224, 0.01)
    one, ten = SEMISUP_RECIPES[1], SEMISUP_RECIPES[10]
    assert (one.epochs, one.lr_backbone, one.lr_head, one.weight_decay) == (20, 0.03, 0.08, 0.0)
    assert (ten.epochs, ten.lr_backbone, ten.lr_head, ten.weight_decay) == (20, 0.01, 0.1, 0.0)


def test_linear_keeps_the_backbone_frozen_and_reports_the_final_epoch(tmp_path, monkeypatch) -> None:
    import downstream_fixtures
    import numpy as np
    from sklearn.metrics import top_k_accuracy_score

    from mast_bench.downstream import metrics

    # Eight classes (eight colours), so that top-5 is not "every class" and the two records are distinct numbers.
    rng = np.random.default_rng(0)
    monkeypatch.setattr(downstream_fixtures, "COLOURS", rng.uniform(30, 225, size=(8, 3)))
    many = register_fake("test-imagenet-blobs-8", {"train": 64, "val": 48}, k=8, val_source="none").name
    seen, real_topk = [], metrics.topk
    monkeypatch.setattr(metrics, "topk", lambda s, t, k: seen.append((s.clone(), t.clone(), k)) or real_topk(s, t, k))
    backbone = tiny_backbone()
    before = _state(backbone.model)
    recipe = dataclasses.replace(LINEAR_RECIPE, epochs=2, **TINY)
    records = evaluate_imagenet_linear(backbone, tmp_path, tmp_path / "rec", "tiny", dataset=many, recipe=recipe,
                                       progress=False)
    assert [r.metric for r in records] == ["top1", "top5"]
    assert all(r.protocol == "vicreg-linear-custom" and r.split == "val" and r.selected_on == "none" for r in records)
    assert records[0].extra["recipe"]["epochs"] == 2
    # top-5 is scikit-learn's on the head's validation scores over all 8 classes, and top-1 is never above it.
    [(scores, targets, k)] = seen
    assert k == 5 and tuple(scores.shape) == (48, 8)
    ref = 100 * top_k_accuracy_score(targets.numpy(), scores.numpy(), k=5, labels=list(range(8)))
    assert records[1].value == pytest.approx(ref)
    assert records[0].value <= records[1].value
    assert records[0].value == pytest.approx(100 * float((scores.argmax(1) == targets).float().mean()))
    per = records[0].extra["per_class"]
    assert per["score"] == "recall" and len(per["values"]) == 8 and sum(per["support"]) == records[0].extra["n_val"]
    after = backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics untouched
    assert len(tree(tmp_path / "rec")) == 2


def test_head_learns_a_separable_task() -> None:
    backbone = tiny_backbone()
    info = DATASETS.get(FAKE)
    recipe = dataclasses.replace(LINEAR_RECIPE, epochs=8, lr_head=0.5, **TINY)
    from mast_bench.downstream.imagenet import _transforms

    _, test_tf = _transforms(recipe, backbone.spec)
    out = train_and_evaluate(backbone.model, info.build("/", "train", test_tf), info.build("/", "val", test_tf),
                             recipe, 3, progress=False)
    assert out["top1"] > 60 and out["final_loss"] < 1.0  # chance is 33 %, initial loss log(3) = 1.1


def test_semisup_fine_tunes_a_copy_on_the_listed_subset(tmp_path) -> None:
    backbone = tiny_backbone()
    before = _state(backbone.model)
    subset = tmp_path / "1percent.txt"
    subset.write_text("\n".join(f"img_{i:04d}.png" for i in range(0, 48, 2)) + "\n")
    recipe = dataclasses.replace(SEMISUP_RECIPES[1], epochs=1, **TINY)
    records = evaluate_semisup(backbone, tmp_path, 1, tmp_path / "rec", "tiny", subset_file=subset, dataset=FAKE,
                               recipe=recipe, progress=False)
    assert records[0].protocol == "vicreg-semisup-1pct-custom" and records[0].task == "finetune"
    assert records[0].extra["n_train"] == 24 and len(records[0].extra["subset_sha256"]) == 64
    after = backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the caller's backbone is not modified


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["img_0000.png", "nope_1.png", "nope_2.png"], r"2 of 3 subset images are not in the training split"),
        (["img_0000.png", "img_0000.png"], r"repeats 1 names"),
        ([], r"is empty"),
    ],
)
def test_bad_subset_lists_are_refused_without_records(tmp_path, lines: list[str], message: str) -> None:
    subset = tmp_path / "subset.txt"
    subset.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=message):
        evaluate_semisup(tiny_backbone(), tmp_path, 10, tmp_path / "rec", "tiny", subset_file=subset, dataset=FAKE,
                         progress=False)
    assert tree(tmp_path / "rec") == []


def test_only_the_published_label_fractions(tmp_path) -> None:
    with pytest.raises(ProtocolError, match="defined for 1 % and 10 % labels, got 5 %"):
        evaluate_semisup(tiny_backbone(), tmp_path, 5, tmp_path / "rec", "tiny", dataset=FAKE)
    with pytest.raises(ProtocolError, match="needs the 'train-1pct' split"):
        evaluate_semisup(tiny_backbone(), tmp_path, 1, tmp_path / "rec", "tiny", dataset=FAKE)


def test_imagenet_loader_subset_split(tmp_path) -> None:
    from data_fixtures import make_imagenet

    root = make_imagenet(tmp_path / "imagenet", train_per_class=3, val_per_class=2)
    recipe = dataclasses.replace(SEMISUP_RECIPES[10], epochs=1, **TINY)
    records = evaluate_semisup(tiny_backbone(), root, 10, tmp_path / "rec", "tiny", recipe=recipe, verify=False,
                               progress=False)
    assert records[0].dataset == "imagenet" and records[0].extra["train_split"] == "train-10pct"
    assert records[0].extra["n_train"] == 6 and records[0].extra["n_val"] == 6


def test_cli_imagenet_linear_and_semisup(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from mast_bench.cli import evaluate_cmd, main

    small = register_fake("test-imagenet-cli", {"train": 6, "val": 3}, val_source="none").name
    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    common = ["--weights", str(tmp_path / "m.pt"), "--data-root", str(tmp_path), "--dataset", small, "--epochs", "1",
              "--batch-size", "24", "--workers", "0", "--out", str(tmp_path / "rec"), "--no-progress"]
    result = CliRunner().invoke(main, ["evaluate", "imagenet-linear", *common])
    assert result.exit_code == 0, result.output
    assert f"{small} vicreg-linear-custom top1 = " in result.output and "top5 = 100.00" in result.output
    subset = tmp_path / "10percent.txt"
    subset.write_text("img_0000.png\nimg_0001.png\nimg_0002.png\n")
    result = CliRunner().invoke(main, ["evaluate", "semisup", *common, "--percent", "10", "--subset", str(subset)])
    assert result.exit_code == 0, result.output
    assert f"{small} vicreg-semisup-10pct-custom top1 = " in result.output
    bad = CliRunner().invoke(main, ["evaluate", "semisup", *common, "--percent", "10", "--subset", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "Error: subset list" in bad.output and "does not exist" in bad.output
