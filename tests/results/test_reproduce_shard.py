"""``reproduce --shard I/N``: N shards run each missing request of a plan once, even when started at different times."""

from __future__ import annotations

from pathlib import Path

import pytest

from mast_bench.downstream.shard import Shard
from mast_bench.results import reproduce as reproduce_mod
from mast_bench.results.layouts import load_layout
from mast_bench.results.reproduce import Job, Plan, Weights, job_key

LAYOUT = """\
title: shards
source: test
defaults: {task: linear, protocol: synthetic-linear, metric: top1, split: test, evaluator: linear}
columns:
  - {label: a, dataset: synthetic-shape, data_folder: "."}
  - {label: b, dataset: synthetic-colour, data_folder: "."}
  - {label: c, dataset: synthetic-orientation, data_folder: "."}
  - {label: d, dataset: synthetic-position, data_folder: "."}
  - {label: e, dataset: synthetic-texture, data_folder: "."}
"""


def _plan(tmp_path: Path, done: set[str] = frozenset()) -> Plan:
    """A plan of 3 checkpoints x 5 columns, without the jobs named in ``done`` (as a later planning would)."""
    path = tmp_path / "shards.yaml"
    path.write_text(LAYOUT)
    layout = load_layout(path)
    weights = [Weights(f"m{i}", tmp_path / f"m{i}.pt", f"{i}" * 64) for i in range(3)]
    # a fixed data root (the jobs never read it): job keys, and so the shard split, do not depend on tmp_path
    jobs = [Job(w, c, Path("/data/synthetic"), [c]) for w in weights for c in layout.cell_columns]
    return Plan(layout, weights, tmp_path / "records", [], [j for j in jobs if job_key(j) not in done])


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which jobs run instead of running them."""
    import mast_bench.downstream.contract as contract

    names: list[str] = []
    monkeypatch.setattr(reproduce_mod, "build_request", lambda job, **kw: (None, job))

    def execute(evaluator, job, records, echo=None):
        names.append(job_key(job))
        return []

    monkeypatch.setattr(contract, "execute", execute)
    return names


def test_shards_run_every_missing_request_once(tmp_path: Path, ran: list[str]) -> None:
    whole = _plan(tmp_path)
    assert reproduce_mod.run_plan(whole) == []
    everything = list(ran)
    assert len(everything) == 15 == len(set(everything))
    ran.clear()
    # shard 0 runs first; shards 1 and 2 plan later, when shard 0's cells exist and the plan is shorter
    reproduce_mod.run_plan(_plan(tmp_path), shard=Shard(0, 3))
    first = set(ran)
    for i in (1, 2):
        reproduce_mod.run_plan(_plan(tmp_path, done=first), shard=Shard(i, 3))
    assert sorted(ran) == sorted(everything) and len(ran) == len(set(ran))
    assert 0 < len(first) < 15  # the first shard did part of the work, not all or nothing
