"""Suite files and the matrix runner: strict loading, skipping, failures that do not stop the run, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from downstream_fixtures import count_forwards, one_thread, register_fake, tiny_backbone, tree

from mast_bench.cli import main
from mast_bench.config import ConfigError
from mast_bench.data.synthetic.suite import SYNTHETIC_TASKS
from mast_bench.downstream.suite import cells, load_suite, run_suite, summarise

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
REPO = Path(__file__).resolve().parents[2]
GOOD, NOVAL = "test-suite-blobs", "test-suite-noval"


@pytest.fixture(scope="module", autouse=True)
def _fakes() -> None:
    register_fake(GOOD, {"train": 30, "val": 15, "test": 15})
    register_fake(NOVAL, {"train": 30, "test": 15}, val_source="none")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


SUITE = f"""
name: mini
groups:
  - evaluator: linear
    protocol: synthetic-linear
    folder: "."
    datasets: [{NOVAL}, {GOOD}]
  - evaluator: knn
    protocol: synthetic-knn
    folder: "."
    datasets: [{GOOD}]
"""


@pytest.mark.parametrize("name", ["transfer_ericsson", "transfer_augself", "synthetic"])
def test_shipped_suites_load_and_name_registered_datasets(name: str) -> None:
    suite = load_suite(REPO / "downstream" / f"{name}.yaml")
    assert cells(suite)
    if name == "synthetic":
        assert {d for _, d in cells(suite)} == set(SYNTHETIC_TASKS)
    if name == "transfer_ericsson":
        assert len([g for g, _ in cells(suite) if g.evaluator == "linear"]) == 11
        assert all(g.protocol == "ericsson" for g, _ in cells(suite))


def test_unknown_key_names_the_key_and_the_closest_one(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'groups\[0\].dataset'; did you mean 'datasets'\?"):
        load_suite(_write(tmp_path, "name: x\ngroups:\n  - dataset: [cifar10]\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups:\n  - datasets: [cifar11]\n", r"unknown dataset 'cifar11' \(closest: 'cifar10'\)"),
        ("groups:\n  - evaluator: linar\n    datasets: [cifar10]\n",
         r"unknown evaluator 'linar' \(closest: 'linear'\)"),
        ("groups:\n  - evaluator: knn\n    protocol: ericsson\n    datasets: [cifar10]\n",
         r"'ericsson' is not a knn protocol"),
        ("groups:\n  - protocol: ericsson\n", "list at least one dataset"),
        ("name: empty\n", "the suite has no groups"),
    ],
)
def test_bad_suites_are_refused_with_the_place_and_a_hint(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_suite(_write(tmp_path, text))


def test_runner_continues_past_a_failed_cell_and_skips_existing_ones(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, SUITE))
    backbone = tiny_backbone()
    kw = {"cache_dir": tmp_path / "cache", "progress": False}
    first = run_suite(suite, backbone, tmp_path, tmp_path / "rec", "tiny", **kw)
    knn = [f"{GOOD} synthetic-knn-k{k} top1" for k in (10, 20, 100, 200)]
    assert [(o.name, o.status) for o in first] == [
        (f"linear/synthetic-linear/{NOVAL}", "failed"), (f"{GOOD} synthetic-linear top1", "done"),
        *((n, "done") for n in knn[:2]), *((n, "omitted") for n in knn[2:]),  # a 45-image bank
    ]
    assert "ProtocolError" in first[0].error and NOVAL in first[0].error
    assert sum(f.endswith(".record.json") for f in tree(tmp_path / "rec")) == 1 + 2  # one linear, two kNN records
    text = summarise(first)
    assert text.startswith("6 cells: 3 done, 0 skipped (records exist), 2 omitted, 1 failed")
    assert f"FAILED linear/synthetic-linear/{NOVAL}: ProtocolError" in text

    lines: list[str] = []
    with count_forwards(backbone.model) as calls:
        second = run_suite(suite, backbone, tmp_path, tmp_path / "rec", "tiny", echo=lines.append, **kw)
    assert [o.status for o in second] == ["failed", "skipped", "skipped", "skipped", "omitted", "omitted"]
    assert calls[0] == 0  # the omitted cells are reported from their notes
    assert f"{GOOD} synthetic-linear top1: skipped (record exists; --redo to recompute) -> " in "\n".join(lines)
    redo = run_suite(suite, backbone, tmp_path, tmp_path / "rec", "tiny", redo=True, **kw)
    assert [o.status for o in redo] == ["failed", "done", "done", "done", "omitted", "omitted"]


def test_cli_suite_summarises_and_exits_nonzero_on_failures(tmp_path, monkeypatch) -> None:
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    suite = _write(tmp_path, SUITE)
    args = ["evaluate", "suite", "--weights", str(tmp_path / "m.pt"), "--suite", str(suite), "--data-root",
            str(tmp_path), "--out", str(tmp_path / "rec"), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "6 cells: 3 done, 0 skipped (records exist), 2 omitted, 1 failed" in result.output
    assert f"{GOOD} synthetic-linear top1 = " in result.output

    bad = CliRunner().invoke(main, [*args[:5], str(tmp_path / "missing.yaml"), *args[6:]])
    assert bad.exit_code == 2 and "does not exist" in bad.output
