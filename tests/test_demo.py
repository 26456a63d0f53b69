"""The demo: output-folder policy, and the real chain end to end at a tiny size."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from fixtures.records import make_record

from mast_bench.cli import main
from mast_bench.data.synthetic.suite import SYNTHETIC_TASKS
from mast_bench.demo import RANDOM_FLOOR, DemoPlan, demo_plan, run_demo
from mast_bench.fileio import OutputDirError
from mast_bench.results.records import RECORD_SUFFIX, iter_records, write_record

# One epoch of a few steps on the "test" suite: the chain, not the numbers, is under test here.
TINY_OVERRIDES = (
    "run.epochs=1",
    "run.max_steps_per_epoch=2",
    "run.batch_size=16",
    "optim.warmup_epochs=0.0",
    "data.workers=0",
)


def tiny_plan() -> DemoPlan:
    full = demo_plan(quick=False)
    return DemoPlan("test", full.vicreg_recipe, full.mast_recipe, TINY_OVERRIDES)


def test_plans_name_existing_recipes():
    for quick in (False, True):
        plan = demo_plan(quick)
        assert plan.vicreg_recipe.is_file() and plan.mast_recipe.is_file()
        assert plan.suite_size == ("quick" if quick else "demo")


def test_refuses_non_empty_folder_and_deletes_nothing(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    (out / "records").mkdir()
    old = write_record(out / "records", make_record(model="vicreg"))
    with pytest.raises(OutputDirError, match="choose another --out or pass --overwrite"):
        run_demo(out, echo=lambda _: None)
    result = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert result.exit_code == 2
    expected = f"Error: output folder {str(out)!r} already exists and holds other files (keep.txt, records)"
    assert expected in result.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "records"]
    assert (out / "keep.txt").read_text() == "precious"
    assert old.is_file()


@pytest.mark.slow
def test_tiny_chain_end_to_end(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    # A record of an earlier run in the same folder: it must not leak into this run's table.
    stale = write_record(out / "records", make_record(model="vicreg", checkpoint_sha256="f" * 64, value=99.0))
    lines: list[str] = []
    result = run_demo(out, overwrite=True, seed=1, progress=False, echo=lines.append, plan=tiny_plan())

    assert (out / "keep.txt").read_text() == "precious"  # --overwrite replaces, it does not clear
    assert not stale.exists()
    assert set(result.checkpoints) == {"vicreg", "mast"}
    assert all(p.is_file() for p in result.checkpoints.values())

    records = [r for _, r in iter_records(out / "records")]
    models = {r.model for r in records}
    assert models == {RANDOM_FLOOR, "vicreg", "mast"}
    assert {(r.model, r.dataset) for r in records} == {(m, t) for m in models for t in SYNTHETIC_TASKS}
    assert all(0.0 <= r.value <= 100.0 and r.protocol == "synthetic-linear" for r in records)
    assert all(r.selected_on != "test" for r in records)
    floor = [r for r in records if r.model == RANDOM_FLOOR]
    assert all(r.checkpoint_sha256 == "" for r in floor)
    assert {r.checkpoint_sha256 for r in records if r.model == "vicreg"} != {"f" * 64}
    assert len(result.records) == len(records)

    df = pd.read_csv(result.leaderboard, keep_default_na=False)
    assert len(df) == 3 * len(SYNTHETIC_TASKS)
    assert df["value"].between(0, 100).all()

    table = result.table.read_text()
    assert table == result.table_text
    header, _, *rows = table.splitlines()[:5]
    assert header.startswith("| model | shape |") and header.endswith("| mean |")
    assert [r.split(" | ")[0] for r in rows] == [f"| {RANDOM_FLOOR}", "| vicreg", "| mast"]
    assert f"- `{RANDOM_FLOOR}`: resnet_tiny (small stem, widths 16-32-64-128), randomly initialised (seed 1)" in table
    assert "- `vicreg`: recipe `vicreg_tiny_synthetic`, 1 epoch, at most 2 steps each of batch 16" in table

    assert result.figures and all(f.is_file() and f.stat().st_size > 0 for f in result.figures)
    assert any(f.suffix == ".png" for f in result.figures)

    summary = json.loads(result.summary.read_text())
    assert set(summary["timings_s"]) == {"suite", "pretrain_vicreg", "pretrain_mast", "probe", "tables", "figure",
                                         "total"}
    assert summary["plan"]["overrides"] == list(TINY_OVERRIDES)
    assert any(line.startswith("[1] generating the synthetic suite (test)") for line in lines)
    assert not list((out / "records").glob(f".*{RECORD_SUFFIX}*"))  # no temp files left
