"""`--bootstrap N`: a seeded test-set percentile-bootstrap 95 % interval of a cell's own metric, on request only.

The reference is a direct NumPy bootstrap over the same test predictions (the draw ``rng.integers(0, N, (B, N))``
of ``numpy.random.default_rng(seed)``; top-1, mean per-class recall and scikit-learn-based VOC07 11-point mAP
written out here, not taken from ``mast_bench.downstream.metrics``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from downstream_fixtures import Blobs, evaluate_args, one_thread, tiny_backbone, tree
from sklearn.metrics import precision_recall_curve

from mast_bench.cli import main
from mast_bench.data.base import DatasetInfo
from mast_bench.downstream import knn as knn_module
from mast_bench.downstream import linear as linear_module
from mast_bench.downstream.contract import SKIP_MESSAGE
from mast_bench.downstream.knn import KnnOptions, evaluate_knn
from mast_bench.downstream.linear import LinearOptions, evaluate_linear
from mast_bench.downstream.suite import SuiteConfig, SuiteGroup, run_suite
from mast_bench.registry import DATASETS

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
TOP1, MPC, VOC = "test-bootci-top1", "test-bootci-mpc", "test-bootci-voc"
SIZES = {"train": 45, "val": 24, "test": 60}
TOO_FEW = "--bootstrap must be 0 (none) or at least 2 resamples"


def _noisy(multilabel: bool):
    def loader(root, split, transform, verify):
        ds = Blobs(split, SIZES[split], 3, transform, multilabel)
        if split == "test":  # every 4th test target wrong: a metric well inside (0, 100), so the interval has width
            for i in range(0, len(ds.targets), 4):
                t = ds.targets[i]
                ds.targets[i] = t.roll(1) if multilabel else (t + 1) % 3
        return ds

    return loader


@pytest.fixture(scope="module", autouse=True)
def _fakes() -> None:
    for name, metric, multilabel in ((TOP1, "top1", False), (MPC, "mean_per_class", False), (VOC, "voc07_map", True)):
        if name not in DATASETS:
            DATASETS.add(name, DatasetInfo(
                name=name, num_classes=3, splits=tuple(SIZES), metric=metric, val_source="official",
                layout="<root>/ (in memory)", loader=_noisy(multilabel), multilabel=multilabel,
            ))  # fmt: skip


# ------------------------------------------------------------------ the reference: a direct NumPy bootstrap


def _ap11(scores: np.ndarray, positive: np.ndarray) -> float:
    """ssl-transfer's ``voc_eval_cls``: sklearn's PR curve, max precision at recall >= t, t in linspace(0, 1, 11)."""
    precision, recall, _ = precision_recall_curve(positive, scores)
    return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in np.linspace(0, 1, 11)]))


def _reference_metric(metric: str, s: np.ndarray, t: np.ndarray) -> float:
    if metric == "top1":
        return 100.0 * float(np.mean(s.argmax(1) == t))
    if metric == "mean_per_class":
        pred = s.argmax(1)
        return 100.0 * float(np.mean([np.mean(pred[t == c] == c) for c in np.unique(t)]))
    return 100.0 * float(np.mean([_ap11(s[:, k], t[:, k] > 0.5) for k in range(t.shape[1]) if (t[:, k] > 0.5).any()]))


def _reference_interval(metric: str, scores, target, resamples: int, seed: int) -> tuple[float, float]:
    s, t = np.asarray(scores, dtype=np.float64), np.asarray(target)
    idx = np.random.default_rng(seed).integers(0, len(t), (resamples, len(t)))
    values = [_reference_metric(metric, s[rows], t[rows]) for rows in idx]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _spy(monkeypatch, module) -> list[tuple]:
    """Record what the evaluator hands to the bootstrap: (metric, scores, target, resamples, seed)."""
    seen: list[tuple] = []
    real = module.add_test_ci

    def spy(record, metric, scores, target, *, resamples, seed):
        seen.append((metric, torch.as_tensor(scores).numpy().copy(), torch.as_tensor(target).numpy().copy(),
                     resamples, seed))  # fmt: skip
        return real(record, metric, scores, target, resamples=resamples, seed=seed)

    monkeypatch.setattr(module, "add_test_ci", spy)
    return seen


def _linear(tmp_path, dataset=TOP1, **kw):
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    [rec] = evaluate_linear(
        tiny_backbone(), dataset, tmp_path / "data", "synthetic-linear", tmp_path / "records", "tiny",
        cache_dir=tmp_path / "cache", progress=False, **kw,
    )  # fmt: skip
    return rec


# ------------------------------------------------------------------ the interval


@pytest.mark.parametrize(("dataset", "metric"), [(TOP1, "top1"), (MPC, "mean_per_class"), (VOC, "voc07_map")])
def test_linear_interval_is_a_numpy_percentile_bootstrap_of_the_test_predictions(tmp_path, monkeypatch, dataset,
                                                                                   metric) -> None:  # fmt: skip
    seen = _spy(monkeypatch, linear_module)
    rec = _linear(tmp_path, dataset, bootstrap=200, bootstrap_seed=7)
    [(got_metric, scores, target, resamples, seed)] = seen
    assert (got_metric, resamples, seed, len(target)) == (metric, 200, 7, SIZES["test"])
    assert _reference_metric(metric, scores, target) == pytest.approx(rec.value, abs=1e-9)  # the scored predictions
    low, high = _reference_interval(metric, scores, target, 200, 7)
    assert rec.extra["bootstrap"] == {"n": 200, "seed": 7, "method": "percentile", "low": pytest.approx(low, abs=1e-9),
                                      "high": pytest.approx(high, abs=1e-9)}  # fmt: skip
    assert rec.ci95 == pytest.approx((high - low) / 2, abs=1e-9) and rec.ci95 > 0
    assert low <= rec.value <= high and 0 < rec.value < 100


def test_knn_interval_per_k_is_the_numpy_bootstrap_of_that_k(tmp_path, monkeypatch) -> None:
    seen = _spy(monkeypatch, knn_module)
    (tmp_path / "data").mkdir()
    records = evaluate_knn(
        tiny_backbone(),
        TOP1,
        tmp_path / "data",
        "synthetic-knn",
        tmp_path / "records",
        "tiny",
        cache_dir=tmp_path / "cache",
        progress=False,
        bootstrap=150,
        bootstrap_seed=2,
    )
    assert len(records) == len(seen) == 2  # k = 10, 20 (100 and 200 exceed the 69-image bank: omitted)
    for rec, (metric, scores, target, resamples, seed) in zip(records, seen, strict=True):
        assert (metric, resamples, seed) == ("top1", 150, 2)
        assert _reference_metric(metric, scores, target) == pytest.approx(rec.value, abs=1e-9)
        low, high = _reference_interval(metric, scores, target, 150, 2)
        assert (rec.extra["bootstrap"]["low"], rec.extra["bootstrap"]["high"]) == pytest.approx((low, high), abs=1e-9)
        assert rec.ci95 == pytest.approx((high - low) / 2, abs=1e-9)


def test_seeded_reproducible_and_selects_nothing(tmp_path) -> None:
    plain = _linear(tmp_path / "a")
    a = _linear(tmp_path / "b", bootstrap=300, bootstrap_seed=1)
    b = _linear(tmp_path / "c", bootstrap=300, bootstrap_seed=1)
    c = _linear(tmp_path / "d", bootstrap=300, bootstrap_seed=2)
    assert (a.ci95, a.extra["bootstrap"]) == (b.ci95, b.extra["bootstrap"])
    assert (a.extra["bootstrap"]["low"], a.extra["bootstrap"]["high"]) != (c.extra["bootstrap"]["low"],
                                                                          c.extra["bootstrap"]["high"])  # fmt: skip
    # The validation choice, the test value and the record's identity are those of the run without it.
    for rec in (a, c):
        assert (rec.value, rec.selected, rec.selected_on, rec.extra["val_scores"], rec.key()) == (
            plain.value,
            plain.selected,
            plain.selected_on,
            plain.extra["val_scores"],
            plain.key(),
        )


def test_no_interval_unless_asked(tmp_path) -> None:
    rec = _linear(tmp_path, bootstrap=0)
    assert rec.ci95 is None and "bootstrap" not in rec.extra
    assert KnnOptions().bootstrap == 0 and LinearOptions().bootstrap == 0


def test_suite_gives_linear_and_knn_cells_the_interval(tmp_path) -> None:
    suite = SuiteConfig(groups=(SuiteGroup("linear", "synthetic-linear", ".", (TOP1,)),
                                SuiteGroup("knn", "synthetic-knn", ".", (TOP1,))))  # fmt: skip
    outcomes = run_suite(suite, tiny_backbone(), tmp_path, tmp_path / "records", "tiny", cache_dir=tmp_path / "cache",
                         progress=False, bootstrap=100, bootstrap_seed=4)  # fmt: skip
    done = [o.record for o in outcomes if o.status == "done"]
    assert len(done) == 3 and all(r.extra["bootstrap"]["n"] == 100 and r.extra["bootstrap"]["seed"] == 4 for r in done)
    assert all(r.ci95 is not None for r in done)


# ------------------------------------------------------------------ the command line


def _cli(tmp_path, monkeypatch, task, protocol, *extra):
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    (tmp_path / "data").mkdir(exist_ok=True)
    args = [*evaluate_args(task, TOP1, protocol, tmp_path), "--data-root", str(tmp_path / "data"), *extra]
    return CliRunner().invoke(main, args)


def _records(tmp_path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((tmp_path / "rec").glob("*.record.json"))}


def test_cli_flag_reaches_the_record_without_changing_its_file(tmp_path, monkeypatch) -> None:
    first = _cli(tmp_path, monkeypatch, "linear", "synthetic-linear")
    assert first.exit_code == 0, first.output
    [(name, plain)] = _records(tmp_path).items()
    assert plain["ci95"] is None
    # The option is not part of the cell's identity: the record exists, so it is kept as it is.
    kept = _cli(tmp_path, monkeypatch, "linear", "synthetic-linear", "--bootstrap", "50")
    assert kept.exit_code == 0 and f": {SKIP_MESSAGE} -> " in kept.output
    assert _records(tmp_path) == {name: plain}
    redo = _cli(tmp_path, monkeypatch, "linear", "synthetic-linear", "--bootstrap", "50", "--bootstrap-seed", "3",
                "--redo")  # fmt: skip
    assert redo.exit_code == 0, redo.output
    [(again, rec)] = _records(tmp_path).items()
    assert again == name and rec["value"] == plain["value"] and rec["selected"] == plain["selected"]
    assert rec["extra"]["bootstrap"]["n"] == 50 and rec["extra"]["bootstrap"]["seed"] == 3 and rec["ci95"] > 0


def test_cli_knn_flag_reaches_every_record(tmp_path, monkeypatch) -> None:
    result = _cli(tmp_path, monkeypatch, "knn", "synthetic-knn", "--bootstrap", "40")
    assert result.exit_code == 0, result.output
    records = _records(tmp_path).values()
    assert len(records) == 2 and all(r["extra"]["bootstrap"] == {**r["extra"]["bootstrap"], "n": 40, "seed": 0}
                                     for r in records)  # fmt: skip


@pytest.mark.parametrize(
    ("task", "protocol", "flags", "message"),
    [
        ("linear", "synthetic-linear", ["--bootstrap", "-1"], f"{TOO_FEW}, got -1"),
        ("knn", "synthetic-knn", ["--bootstrap", "-5"], f"{TOO_FEW}, got -5"),
        ("linear", "synthetic-linear", ["--bootstrap", "1"], f"{TOO_FEW}, got 1"),
        ("linear", "synthetic-linear", ["--bootstrap", "10", "--bootstrap-seed", "-2"],
         "--bootstrap-seed must be >= 0, got -2"),
    ],
)  # fmt: skip
def test_cli_bad_resamples_is_a_one_line_error_before_any_work(tmp_path, monkeypatch, task, protocol, flags,
                                                                message) -> None:  # fmt: skip
    result = _cli(tmp_path, monkeypatch, task, protocol, *flags)
    assert result.exit_code == 2 and result.output == f"Error: {message}\n"
    assert tree(tmp_path / "rec") == [] and tree(tmp_path / "c") == []


def test_cli_suite_refuses_a_negative_count(tmp_path, monkeypatch) -> None:
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    suite = tmp_path / "s.yaml"
    suite.write_text(f"groups:\n  - evaluator: linear\n    protocol: synthetic-linear\n    datasets: [{TOP1}]\n")
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "suite",
            "--weights",
            str(tmp_path / "w.pt"),
            "--suite",
            str(suite),
            "--data-root",
            str(tmp_path),
            "--out",
            str(tmp_path / "rec"),
            "--bootstrap",
            "-3",
        ],
    )
    assert (
        result.exit_code == 2
        and result.output == "Error: --bootstrap must be 0 (none) or at least 2 resamples, got -3\n"
    )
    assert tree(tmp_path / "rec") == []


def test_options_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match=r"^bootstrap must be 0 \(none\) or at least 2 resamples, got -1$"):
        LinearOptions(bootstrap=-1)
    with pytest.raises(ValueError, match=r"^bootstrap-seed must be >= 0, got -1$"):
        KnnOptions(bootstrap=10, bootstrap_seed=-1)
