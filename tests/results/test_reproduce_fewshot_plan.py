"""``reproduce`` on the synthetic table over a ``test``-size suite: the 5-shot cell, which no class of the pool
allows, is listed as ``cannot run`` with the few-shot rule's reason; the 1-shot cell runs."""

from __future__ import annotations

from fixtures.convert_sources import mast_bench_case, save

from mast_bench.results.layouts import load_layout
from mast_bench.results.reproduce import parse_weights, plan_reproduction

REASON = (
    "the pool of 'synthetic-fewshot' has 0 usable classes (none) under protocol 'synthetic-fewshot' with K = 5 "
    "(24 classes with <= 5 images dropped); few-shot episodes need at least 2 classes"
)


def test_synthetic_plan_blocks_the_5_shot_cell_with_the_reason(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "cache"))
    ckpt = save(mast_bench_case().ckpt, tmp_path / "mast.pt")
    [weights] = parse_weights([f"mast={ckpt}"])
    plan = plan_reproduction(load_layout("synthetic"), [weights], synthetic_root, tmp_path / "records")
    status = {c.column.key: (c.status, c.detail) for c in plan.cells}
    assert status["few-shot/1-shot"] == ("run", "")
    assert status["few-shot/5-shot"] == ("blocked", REASON)
    lines = plan.lines()
    assert f"  mast | few-shot/5-shot: cannot run: {REASON}" in lines
    assert not any("--shots 5" in line for line in lines)  # no command for a cell that cannot run
    assert not (tmp_path / "records").exists()  # planning writes no record
    assert not (tmp_path / "cache" / "features").exists()  # and computes no feature (only the weights are loaded)
