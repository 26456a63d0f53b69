"""End-to-end linear evaluation: selection hygiene, records, caching, refusals, the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from downstream_fixtures import count_forwards, one_thread, register_fake, tiny_backbone, tree
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mast_bench.cli import main
from mast_bench.downstream import evaluate_linear
from mast_bench.downstream import linear as linear_mod
from mast_bench.downstream.contract import Evaluator
from mast_bench.downstream.features import Features, extract_features
from mast_bench.downstream.linear import select_and_refit
from mast_bench.downstream.protocols import PROTOCOLS, WD_GRID
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import EVALUATORS
from mast_bench.results.records import read_record

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
BLOBS, NOVAL, MULTI = "test-linear-blobs", "test-linear-noval", "test-linear-multilabel"


@pytest.fixture(scope="module", autouse=True)
def _fakes() -> None:
    register_fake(BLOBS, {"train": 60, "val": 45, "test": 150})
    register_fake(NOVAL, {"train": 30, "test": 15}, val_source="none")
    register_fake(MULTI, {"train": 60, "val": 30, "test": 60}, k=4, metric="voc07_map", multilabel=True)


def _run(tmp_path, dataset=BLOBS, protocol="synthetic-linear", backbone=None, **kw):
    (tmp_path / "data").mkdir(exist_ok=True)
    return evaluate_linear(
        backbone or tiny_backbone(), dataset, tmp_path / "data", protocol, tmp_path / "records", "tiny",
        cache_dir=tmp_path / "cache", progress=False, **kw,
    )


def test_record_reports_a_test_value_selected_on_val(tmp_path) -> None:
    backbone = tiny_backbone()
    [rec] = _run(tmp_path, backbone=backbone)
    assert (rec.task, rec.dataset, rec.protocol, rec.protocol_version) == ("linear", BLOBS, "synthetic-linear", "1")
    assert (rec.metric, rec.split, rec.selected_on, rec.seeds) == ("top1", "test", "val", (0,))
    assert rec.checkpoint_sha256 == backbone.source_sha256 and rec.backbone == "resnet_tiny"
    assert set(rec.selected) == {"C"} and rec.wall_time_s > 0 and rec.device == "cpu"
    assert rec.extra["grid_wd"] == list(WD_GRID) and len(rec.extra["val_scores"]) == 45
    assert (rec.extra["n_train"], rec.extra["n_val"], rec.extra["n_test"]) == (60, 45, 150)
    # The selected C is the first grid value (smallest wd) with the best val score.
    best = max(rec.extra["val_scores"])
    assert rec.selected["C"] == pytest.approx(1 / WD_GRID[rec.extra["val_scores"].index(best)])
    assert rec.value > 60  # 3 colour classes: far above the 33 % chance level
    # The file on disk is the returned record.
    [path] = [p for p in tree(tmp_path / "records")]
    assert read_record(tmp_path / "records" / path) == rec

    # Independent check of the reported number: scikit-learn refitted on train+val at the selected C.
    pre = PROTOCOLS["synthetic-linear"].preprocessing(backbone.spec)
    f = {s: extract_features(backbone, BLOBS, s, tmp_path / "data", pre, cache_dir=tmp_path / "cache", progress=False)
         for s in ("train", "val", "test")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = LogisticRegression(C=rec.selected["C"], tol=1e-8, max_iter=10000).fit(
            torch.cat([f["train"].x, f["val"].x]).numpy(), torch.cat([f["train"].y, f["val"].y]).numpy()
        )
    assert abs(100 * sk.score(f["test"].x.numpy(), f["test"].y.numpy()) - rec.value) <= 100 / 150 + 1e-9


def test_selection_never_looks_at_the_test_split() -> None:
    g = torch.Generator().manual_seed(0)

    def feats(n: int, split: str) -> Features:
        y = torch.arange(n) % 3
        return Features(torch.randn(n, 6, generator=g) + 1.5 * torch.nn.functional.one_hot(y, 6), y, "x", split)

    train, val, test = feats(60, "train"), feats(30, "val"), feats(30, "test")
    shuffled = Features(test.x, test.y[torch.randperm(30, generator=g)], "x", "test")
    a = select_and_refit(PROTOCOLS["ericsson"], train, val, test, num_classes=3, metric="top1")
    b = select_and_refit(PROTOCOLS["ericsson"], train, val, shuffled, num_classes=3, metric="top1")
    assert a.selected == b.selected and a.val_scores == b.val_scores
    assert a.value != b.value  # the test labels only change the reported number


def test_second_evaluation_runs_no_forward_pass_and_redo_recomputes_the_features(tmp_path) -> None:
    backbone = tiny_backbone()
    lines: list[str] = []
    with count_forwards(backbone.model) as calls:
        [first] = _run(tmp_path, backbone=backbone)
        n_first = calls[0]
        # Another records folder: the cell is computed again, from the cached features of the untouched copy.
        [again] = evaluate_linear(backbone, BLOBS, tmp_path / "data", "synthetic-linear", tmp_path / "other", "tiny",
                                  cache_dir=tmp_path / "cache", progress=False, echo=lines.append)
        n_again = calls[0]
        [redone] = _run(tmp_path, backbone=backbone, redo=True)  # --redo recomputes the features too
    assert n_first > 0 and n_again == n_first and calls[0] == 2 * n_first
    assert again.extra["features_cached"] and not first.extra["features_cached"]
    assert not redone.extra["features_cached"]
    assert again.value == first.value == redone.value and again.selected == first.selected
    assert sum(line.startswith(f"features {BLOBS}/") and "from the cache" in line for line in lines) == 3


def test_existing_record_is_returned_without_work(tmp_path) -> None:
    backbone = tiny_backbone()
    [first] = _run(tmp_path, backbone=backbone)
    builds = len(linear_mod.DATASETS.get(BLOBS).loader.builds)
    with count_forwards(backbone.model) as calls:
        [second] = _run(tmp_path, backbone=backbone)
    assert second == first and calls[0] == 0
    assert len(linear_mod.DATASETS.get(BLOBS).loader.builds) == builds  # the data was not even opened


def test_dataset_without_validation_split_is_refused_before_any_work(tmp_path) -> None:
    with pytest.raises(ProtocolError) as err:
        _run(tmp_path, dataset=NOVAL)
    msg = str(err.value)
    assert "protocol 'synthetic-linear'" in msg and f"dataset {NOVAL!r} has none" in msg
    assert tree(tmp_path / "records") == [] and tree(tmp_path / "cache") == []


def test_features_disagreeing_with_labels_leave_no_record(tmp_path, monkeypatch) -> None:
    real = linear_mod.request_features

    def broken(request, pre, split, *a, **kw):
        f = real(request, pre, split, *a, **kw)
        return Features(f.x, f.y[:-1], f.dataset, split) if split == "val" else f

    monkeypatch.setattr(linear_mod, "request_features", broken)
    with pytest.raises(DatasetError, match=f"features of {BLOBS}/val disagree with its labels: 45 feature rows but 44"):
        _run(tmp_path)
    assert tree(tmp_path / "records") == []


def test_multilabel_dataset_uses_one_binary_classifier_per_class_and_map(tmp_path) -> None:
    [rec] = _run(tmp_path, dataset=MULTI)
    assert rec.metric == "voc07_map" and 50 < rec.value <= 100
    with pytest.raises(ProtocolError, match="defines no multi-label classifier"):
        _run(tmp_path, dataset=MULTI, protocol="augself")
    with pytest.raises(ProtocolError, match="is a knn protocol"):
        _run(tmp_path, protocol="knn")


def test_augself_protocol_records_the_selected_weight_decay(tmp_path) -> None:
    """The published settings end to end: all 45 weight decays, up to 5000 L-BFGS iterations each (~15 s)."""
    [rec] = _run(tmp_path, protocol="augself")
    assert rec.protocol == "augself" and set(rec.selected) == {"wd"} and rec.selected_on == "val"
    assert rec.extra["grid_wd"] == list(WD_GRID) and len(rec.extra["n_iter"]) == 45
    assert max(rec.extra["n_iter"]) == 5000  # the published iteration cap is the one applied
    val = rec.extra["val_scores"]
    assert len(val) == 45 and min(val) < max(val)  # strong decay hurts: the selection has something to choose
    # The selected wd is the smallest one reaching the best val score, as AugSelf's upward walk keeps it.
    assert rec.selected["wd"] == WD_GRID[val.index(max(val))] == rec.extra["selected_wd"]
    assert rec.value > 90  # the refit at the selected wd separates the blobs on test
    assert rec.extra["preprocessing"]["resize"] == 96  # small-stem backbone: AugSelf's STL-10 resolution


def test_published_protocol_constants() -> None:
    for name in ("ericsson", "augself", "synthetic-linear"):
        assert PROTOCOLS[name].grid == tuple(np.logspace(-6, 5, 45))
    aug = PROTOCOLS["augself"]
    assert (aug.augself_max_iter, aug.augself_tolerance_grad, aug.val_rule) == (5000, 1e-10, "augself")
    assert PROTOCOLS["ericsson"].image_size == 224 and PROTOCOLS["synthetic-linear"].image_size == 0


def test_official_val_split_of_a_real_loader(tmp_path) -> None:
    from data_fixtures import make_dtd

    root = make_dtd(tmp_path / "dtd", per_split=4)
    [rec] = evaluate_linear(tiny_backbone(), "dtd", root, "synthetic-linear", tmp_path / "records", "tiny",
                            verify=False, cache_dir=tmp_path / "cache", progress=False)
    assert rec.extra["val_split"]["source"] == "official"
    assert (rec.extra["n_train"], rec.extra["n_val"], rec.extra["n_test"]) == (12, 12, 12)


def test_evaluators_are_registered() -> None:
    assert {"linear", "knn", "imagenet-linear", "semisup"} <= set(EVALUATORS.names())
    assert isinstance(EVALUATORS.get("linear"), linear_mod.LinearEvaluator)
    assert all(isinstance(EVALUATORS.get(n), Evaluator) for n in ("linear", "knn", "imagenet-linear", "semisup"))


def test_cli_linear_writes_a_record_and_prints_it(tmp_path, monkeypatch) -> None:
    from mast_bench.cli import evaluate_cmd

    backbone = tiny_backbone()
    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: backbone)
    weights = tmp_path / "final.pt"
    weights.write_bytes(b"x")
    (tmp_path / "data").mkdir()
    args = ["evaluate", "linear", "--weights", str(weights), "--dataset", BLOBS, "--data-root", str(tmp_path / "data"),
            "--protocol", "synthetic-linear", "--out", str(tmp_path / "records"), "--cache-dir", str(tmp_path / "c"),
            "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [name] = tree(tmp_path / "records")
    assert f"{BLOBS} synthetic-linear top1 = " in result.output and name in result.output
    assert json.loads((tmp_path / "records" / name).read_text())["model"] == tmp_path.name  # final.pt → its folder

    bad = CliRunner().invoke(main, [*args[:5], NOVAL, *args[6:]])
    assert bad.exit_code == 2
    assert f"Error: protocol 'synthetic-linear' selects its regularisation on a validation split, but dataset " \
           f"{NOVAL!r} has none" in bad.output
    assert tree(tmp_path / "records") == [name]


def test_cli_refuses_an_unavailable_device(tmp_path, monkeypatch) -> None:
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(main, ["evaluate", "linear", "--weights", str(tmp_path / "w.pt"), "--dataset", BLOBS,
                                       "--data-root", str(tmp_path), "--device", "cuda", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no CUDA device is available" in result.output
    assert not (tmp_path / "r").exists() or tree(tmp_path / "r") == []


def test_precision_is_validated(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"precision must be one of \['float32', 'float64'\], got 'float16'"):
        _run(tmp_path, precision="float16")
    # Refused before any work: no record, no cached features.
    assert tree(tmp_path / "records") == [] and tree(tmp_path / "cache") == []


def test_per_class_scores_agree_with_the_reported_metric(tmp_path) -> None:
    [rec] = _run(tmp_path)
    per = rec.extra["per_class"]
    assert per["score"] == "recall" and per["support"] == [50, 50, 50]
    assert sum(per["values"]) / 3 == pytest.approx(rec.value)  # equal class sizes: top-1 is the mean recall
    [multi] = _run(tmp_path, dataset=MULTI)
    per = multi.extra["per_class"]
    assert per["score"] == "ap11" and len(per["values"]) == 4
    assert sum(per["values"]) / 4 == pytest.approx(multi.value)  # VOC07 mAP is the mean of the class APs
    assert rec.extra["data_verified"] is True and rec.method == ""  # a test model: no method recorded
