"""Weighted kNN: against scikit-learn's KNeighborsClassifier and a brute-force vote; records and caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from downstream_fixtures import count_forwards, one_thread, register_fake, tiny_backbone, tree
from sklearn.neighbors import KNeighborsClassifier

from mast_bench.downstream.knn import evaluate_knn, knn_scores
from mast_bench.errors import ProtocolError

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
BLOBS, MULTI = "test-knn-blobs", "test-knn-multilabel"
T = 0.07


@pytest.fixture(scope="module", autouse=True)
def _fakes() -> None:
    register_fake(BLOBS, {"train": 60, "val": 30, "test": 45})
    register_fake(MULTI, {"train": 30, "val": 15, "test": 15}, metric="voc07_map", multilabel=True)


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    bank = torch.randn(300, 8, generator=g)
    labels = torch.randint(0, 5, (300,), generator=g)
    bank += torch.nn.functional.one_hot(labels, 8).float()
    return bank, labels, torch.randn(40, 8, generator=g)


@pytest.mark.parametrize("k", [10, 20, 100, 200])
def test_predictions_match_sklearn_weighted_cosine_knn(k: int) -> None:
    bank, labels, queries = _data()
    scores = knn_scores(bank, labels, queries, 5, ks=(k,), temperature=T)[k]
    sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", weights=lambda d: np.exp((1.0 - d) / T))
    sk.fit(bank.numpy(), labels.numpy())
    assert np.array_equal(scores.argmax(1).numpy(), sk.predict(queries.numpy()))


def test_vote_weights_match_a_brute_force_computation() -> None:
    bank, labels, queries = _data(1)
    out = knn_scores(bank, labels, queries, 5, ks=(10, 20), temperature=T, chunk=7)  # several chunks
    b = bank / bank.norm(dim=1, keepdim=True)
    for i, q in enumerate(queries):
        sim = b @ (q / q.norm())
        for k in (10, 20):
            expected = torch.zeros(5, dtype=torch.float64)
            for j in sim.argsort(descending=True)[:k]:
                expected[labels[j]] += float(torch.exp(sim[j] / T))
            assert torch.allclose(out[k][i].double(), expected, rtol=1e-4)


def test_k_larger_than_the_bank_uses_every_sample() -> None:
    bank, labels, queries = _data()
    out = knn_scores(bank[:15], labels[:15], queries, 5, ks=(200,))
    assert torch.allclose(out[200].sum(1), (torch.nn.functional.normalize(queries, dim=1)
                          @ torch.nn.functional.normalize(bank[:15], dim=1).T / T).exp().sum(1), rtol=1e-4)


def test_evaluate_knn_writes_one_record_per_k_and_omits_k_beyond_the_bank(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    backbone = tiny_backbone()
    args = (backbone, BLOBS, tmp_path / "data", "synthetic-knn")
    kw = {"cache_dir": tmp_path / "cache", "progress": False}
    lines: list[str] = []
    with count_forwards(backbone.model) as calls:
        records = evaluate_knn(*args, tmp_path / "rec", "tiny", echo=lines.append, **kw)
        n = calls[0]
        again = evaluate_knn(*args, tmp_path / "rec2", "tiny", **kw)
    assert n > 0 and calls[0] == n  # cached features: no second forward pass
    # The bank (train 60 + val 30) has 90 images: k = 100 and 200 would vote with the whole bank.
    assert [r.protocol for r in records] == ["synthetic-knn-k10", "synthetic-knn-k20"]
    assert all(r.task == "knn" and r.split == "test" and r.selected == {} and r.selected_on == "none" for r in records)
    assert records[0].extra["bank"] == "train+val" and records[0].extra["n_bank"] == 90
    assert records[0].extra["omitted_k"] == [100, 200]
    assert records[0].value > 60 and [r.value for r in again] == [r.value for r in records]
    written = [f for f in tree(tmp_path / "rec") if f.endswith(".record.json")]
    assert written == sorted(r.key() + ".record.json" for r in records)
    assert sum(f.endswith(".omitted.json") for f in tree(tmp_path / "rec")) == 2  # the omissions are noted
    assert f"warning: the {BLOBS!r} kNN bank has 90 images; k=100, k=200 would exceed it: omitted" in lines
    assert f"{BLOBS} synthetic-knn-k200 top1: omitted (k=200 exceeds the 90-image bank)" in lines


def test_knn_per_class_scores_match_the_reported_value(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    [k10, _] = evaluate_knn(tiny_backbone(), BLOBS, tmp_path / "data", "synthetic-knn", tmp_path / "rec", "tiny",
                            cache_dir=tmp_path / "cache", progress=False)
    per = k10.extra["per_class"]
    assert per["score"] == "recall" and per["support"] == [15, 15, 15]
    # top-1 with equal class sizes is the mean of the per-class recalls
    assert sum(per["values"]) / 3 == pytest.approx(k10.value)


def test_multilabel_dataset_is_refused_without_files(tmp_path) -> None:
    with pytest.raises(ProtocolError, match=f"dataset {MULTI!r}"):
        evaluate_knn(tiny_backbone(), MULTI, tmp_path, "synthetic-knn", tmp_path / "rec", "tiny",
                     cache_dir=tmp_path / "cache", progress=False)
    assert tree(tmp_path / "rec") == [] and tree(tmp_path / "cache") == []


def test_bank_labels_must_match_features() -> None:
    with pytest.raises(ValueError, match="kNN bank features and labels disagree: 3 rows but 2 labels"):
        knn_scores(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), torch.zeros(1, 2), 2)


def test_cli_knn_prints_one_line_per_k(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from mast_bench.cli import evaluate_cmd, main

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    result = CliRunner().invoke(main, [
        "evaluate", "knn", "--weights", str(tmp_path / "m.pt"), "--dataset", BLOBS, "--data-root", str(tmp_path),
        "--protocol", "synthetic-knn", "--out", str(tmp_path / "rec"), "--cache-dir", str(tmp_path / "c"),
        "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(" = ")[0] for line in lines if " = " in line] == [
        f"{BLOBS} synthetic-knn-k{k} top1" for k in (10, 20)
    ]
    assert lines[-1] == "4 cells: 2 done, 0 skipped (records exist), 2 omitted, 0 failed"
