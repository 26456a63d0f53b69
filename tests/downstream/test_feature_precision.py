"""bf16 feature extraction (opt-in) gives the probe accuracy of fp32 features, and is its own cache entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from downstream_fixtures import one_thread, register_fake, tiny_backbone

from mast_bench.downstream.features import extract_features
from mast_bench.downstream.probe import LogisticProbe
from mast_bench.downstream.protocols import Preprocessing

DATASET = "fake-precision"
K = 4

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, torch.Tensor]]:
    register_fake(DATASET, sizes={"train": 24, "test": 1000}, k=K)
    backbone = tiny_backbone()
    prep = Preprocessing(
        resize=None, crop=None, interpolation="bicubic", mean=backbone.spec.mean, std=backbone.spec.std
    )
    cache = tmp_path_factory.mktemp("cache")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for precision in ("fp32", "bf16"):
        out[precision] = {
            split: extract_features(
                backbone,
                DATASET,
                split,
                cache.parent,
                prep,
                device="cpu",
                cache_dir=cache,
                progress=False,
                precision=precision,
            )
            for split in ("train", "test")
        }
    return out


def _accuracy(train, test) -> float:
    probe = LogisticProbe(train.x, train.y, num_classes=K)
    fit = probe.fit(1.0)
    return float((fit.decision_function(test.x).argmax(1) == test.y).float().mean()) * 100


def test_bf16_features_give_the_same_probe_accuracy(features) -> None:
    fp32, bf16 = features["fp32"], features["bf16"]
    assert not torch.equal(fp32["test"].x, bf16["test"].x)  # bf16 really ran (features differ in low bits)
    assert bf16["test"].x.dtype == torch.float32  # stored as float32 whatever the compute precision
    rel = (bf16["test"].x - fp32["test"].x).norm() / fp32["test"].x.norm()
    assert rel < 0.02
    a32, a16 = _accuracy(fp32["train"], fp32["test"]), _accuracy(bf16["train"], bf16["test"])
    assert 40 < a32 < 99.5  # a fixture where accuracy can move (chance is 25 %)
    print(f"probe accuracy fp32 {a32:.2f}, bf16 {a16:.2f}, feature rel. difference {rel:.2e}")
    assert abs(a16 - a32) <= 0.2, (a32, a16)


def test_precisions_are_separate_cache_entries(features, tmp_path: Path) -> None:
    assert not features["fp32"]["test"].cached and not features["bf16"]["test"].cached  # bf16 did not reuse fp32


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="feature precision must be one of fp32, bf16, got 'fp16'"):
        extract_features(tiny_backbone(), DATASET, "test", Path("."), None, precision="fp16")


def test_cli_records_the_feature_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from mast_bench.cli import evaluate_cmd, main

    name = "fake-precision-cli"
    register_fake(name, {"train": 24, "val": 12, "test": 12})
    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: p\ngroups:\n  - evaluator: linear\n    protocol: synthetic-linear\n    folder: '.'\n"
        f"    datasets: [{name}]\n"
    )
    base = [
        "evaluate",
        "suite",
        "--weights",
        str(tmp_path / "m.pt"),
        "--suite",
        str(suite),
        "--data-root",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--device",
        "cpu",
    ]
    extras = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        result = CliRunner().invoke(main, [*base, "--out", str(out), "--feature-precision", precision])
        assert result.exit_code == 0, result.output
        [record] = [json.loads(p.read_text()) for p in out.glob("*.record.json")]
        extras[precision] = record["extra"]
    assert "feature_precision" not in extras["fp32"]  # the protocols' default: records unchanged
    assert extras["bf16"]["feature_precision"] == "bf16"
