"""Sharded suite evaluation: N shards together write exactly the records of one unsharded run, once each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from downstream_fixtures import one_thread, register_fake, tiny_backbone, tree

from mast_bench.cli import main
from mast_bench.config import ConfigError
from mast_bench.downstream.shard import WHOLE, Shard, parse_shard
from mast_bench.downstream.suite import cells, load_suite, run_suite

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
A, B, C = "test-shard-a", "test-shard-b", "test-shard-c"

SUITE = f"""
name: shard-mini
groups:
  - evaluator: linear
    protocol: synthetic-linear
    folder: "."
    datasets: [{A}, {B}, {C}]
  - evaluator: knn
    protocol: synthetic-knn
    folder: "."
    datasets: [{A}, {C}]
"""


@pytest.fixture(scope="module", autouse=True)
def _fakes() -> None:
    for name in (A, B, C):
        register_fake(name, {"train": 24, "val": 12, "test": 12})


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_shards_partition_any_list_exactly(n: int) -> None:
    items = list(range(23))
    parts = [Shard(i, n).select(items) for i in range(n)]
    assert sorted(x for p in parts for x in p) == items  # every item once
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert parse_shard(f"{n - 1}/{n}") == Shard(n - 1, n) and str(Shard(n - 1, n)) == f"{n - 1}/{n}"


def test_keyed_shards_partition_names_whatever_else_is_listed() -> None:
    names = [f"model-{m}/linear/dataset-{d}" for m in range(4) for d in range(6)]
    owners = {name: [i for i in range(3) if Shard(i, 3).owns_key(name)] for name in names}
    assert all(len(o) == 1 for o in owners.values())  # every name in exactly one shard
    later = names[5:]  # a shorter list (some cells done) keeps every remaining name in its shard
    assert {n: [i for i in range(3) if Shard(i, 3).owns_key(n)] for n in later} == {n: owners[n] for n in later}
    assert len({o[0] for o in owners.values()}) == 3  # all shards get work


def test_parse_shard_accepts_nothing_as_the_whole_matrix() -> None:
    assert parse_shard(None) == WHOLE == parse_shard("") == Shard(0, 1)
    assert WHOLE.select(["x", "y"]) == ["x", "y"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "4/4",
            "--shard: expected I/N with 0 <= I < N, got '4/4' (shards are numbered 0 .. N-1, like SLURM_ARRAY_TASK_ID)",
        ),
        (
            "1/0",
            "--shard: expected I/N with 0 <= I < N, got '1/0' (shards are numbered 0 .. N-1, like SLURM_ARRAY_TASK_ID)",
        ),
        ("two/4", "--shard: expected I/N with 0 <= I < N (e.g. 0/4), got 'two/4'"),
        ("-1/4", "--shard: expected I/N with 0 <= I < N (e.g. 0/4), got '-1/4'"),
    ],
)
def test_bad_shards_are_refused_with_the_form(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_shard(text)
    assert str(exc.value) == message


def _records(folder: Path) -> dict[str, dict]:
    """Record files by name, without the fields that differ between two runs of the same cell."""
    out = {}
    for name in tree(folder):
        if name.endswith(".record.json"):
            rec = json.loads((folder / name).read_text())
            for volatile in ("wall_time_s", "created", "time", "duration_s"):
                rec.pop(volatile, None)
            out[name] = rec
    return out


def test_shards_together_write_exactly_the_records_of_one_unsharded_run(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    backbone = tiny_backbone()
    kw = {"cache_dir": tmp_path / "cache", "progress": False}
    whole = run_suite(suite, backbone, tmp_path, tmp_path / "whole", "tiny", **kw)
    n = 3
    shard_outcomes = []
    for i in range(n):
        shard_outcomes.append(
            run_suite(suite, backbone, tmp_path, tmp_path / "sharded", "tiny", shard=Shard(i, n), **kw)
        )
    expected = _records(tmp_path / "whole")
    assert len(expected) >= len(cells(suite))  # every cell wrote at least one record
    got = _records(tmp_path / "sharded")
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name]["value"] == pytest.approx(expected[name]["value"], abs=1e-9), name
    # each record was written by exactly one shard (no cell ran twice)
    done = [o.name for outcomes in shard_outcomes for o in outcomes if o.status == "done"]
    assert sorted(done) == sorted(o.name for o in whole if o.status == "done")
    assert len(done) == len(set(done))
    # a re-run of a shard skips what it did
    again = run_suite(suite, backbone, tmp_path, tmp_path / "sharded", "tiny", shard=Shard(1, n), **kw)
    assert again and all(o.status in ("skipped", "omitted") for o in again)


def test_cli_suite_shard_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    args = [
        "evaluate",
        "suite",
        "--weights",
        str(tmp_path / "m.pt"),
        "--suite",
        str(path),
        "--data-root",
        str(tmp_path),
        "--out",
        str(tmp_path / "rec"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(main, [*args, "--shard", "1/2"])
    assert result.exit_code == 0, result.output
    assert "shard 1/2: 2 of 5 cells" in result.output
    before = tree(tmp_path / "rec")
    bad = CliRunner().invoke(main, [*args, "--shard", "2/2"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1] == (
        "Error: --shard: expected I/N with 0 <= I < N, got '2/2' (shards are numbered 0 .. N-1, like "
        "SLURM_ARRAY_TASK_ID)"
    )
    assert tree(tmp_path / "rec") == before  # the refused shard wrote nothing
