"""The demo: output-folder policy, and the real chain end to end at a tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from fixtures.records import make_record

from mast_bench.cli import main
from mast_bench.data.synthetic.suite import SYNTHETIC_TASKS
from mast_bench.data.synthetic.supervised import SupervisedSettings
from mast_bench.demo import RANDOM_FLOOR, SUPERVISED, DemoPlan, demo_plan, run_demo
from mast_bench.demo_table import bootstrap_ci95
from mast_bench.fileio import OutputDirError, sha256_file
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
    return DemoPlan("test", full.vicreg_recipe, full.mast_recipe, TINY_OVERRIDES, SupervisedSettings(1, 16))


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
    assert models == {RANDOM_FLOOR, "vicreg", "mast", SUPERVISED}
    assert {(r.model, r.dataset) for r in records} == {(m, t) for m in models for t in SYNTHETIC_TASKS}
    assert all(0.0 <= r.value <= 100.0 and r.protocol == "synthetic-linear" for r in records)
    assert all(r.selected_on != "test" for r in records)
    floor = [r for r in records if r.model == RANDOM_FLOOR]
    assert all(r.checkpoint_sha256 == "" for r in floor)
    [reference] = list((out / "cache" / "supervised").glob("supervised-*.pt"))
    assert {r.checkpoint_sha256 for r in records if r.model == SUPERVISED} == {sha256_file(reference)}
    for r in records:  # every cell carries its seeded bootstrap interval, reproducible from the record
        low, high = bootstrap_ci95(r.value, r.extra["n_test"], seed=1)
        assert r.ci95 == pytest.approx((high - low) / 2, abs=1e-4) and r.extra["uncertainty"]["seed"] == 1
    assert {r.checkpoint_sha256 for r in records if r.model == "vicreg"} != {"f" * 64}
    assert len(result.records) == len(records)

    df = pd.read_csv(result.leaderboard, keep_default_na=False)
    assert len(df) == 4 * len(SYNTHETIC_TASKS)
    assert df["value"].between(0, 100).all()

    table = result.table.read_text()
    assert table == result.table_text
    header, _, *rows = table.splitlines()[:6]
    assert header.startswith("| model | shape |") and header.endswith("| mean |")
    assert [r.split(" | ")[0] for r in rows] == [f"| {RANDOM_FLOOR}", "| vicreg", "| mast", f"| {SUPERVISED}"]
    assert " ± " in rows[0] and "percentile bootstrap interval over the test images" in table
    assert f"- `{RANDOM_FLOOR}`: resnet_tiny (small stem, widths 16-32-64-128), randomly initialised (seed 1)" in table
    assert "- `vicreg`: recipe `vicreg_tiny_synthetic`, 1 epoch, at most 2 steps each of batch 16" in table

    assert result.figures and all(f.is_file() and f.stat().st_size > 0 for f in result.figures)
    assert any(f.suffix == ".png" for f in result.figures)

    summary = json.loads(result.summary.read_text())
    assert set(summary["timings_s"]) == {"suite", "pretrain_vicreg", "pretrain_mast", "supervised", "probe", "fewshot",
                                         "tables", "figure", "total"}
    fewshot = Path(summary["fewshot"]).read_text().splitlines()  # a few-shot row per model, on shared episodes
    models = [f"| {RANDOM_FLOOR}", "| vicreg", "| mast", f"| {SUPERVISED}"]
    assert [row.split(" | ")[0] for row in fewshot[2:6]] == models
    assert summary["plan"]["overrides"] == list(TINY_OVERRIDES)
    assert any(line.startswith("[1] generating the synthetic suite (test)") for line in lines)
    assert not list((out / "records").glob(f".*{RECORD_SUFFIX}*"))  # no temp files left
    assert any("supervised reference trained and cached in" in line for line in lines)

    lines.clear()  # a second run on the same folder reuses the cached supervised reference
    again = run_demo(out, overwrite=True, seed=1, progress=False, echo=lines.append, plan=tiny_plan())
    assert any("supervised reference loaded from" in line for line in lines)
    assert again.table_text.splitlines()[5] == result.table_text.splitlines()[5]  # same reference row


# ---------------------------------------------------------------- uncertainty and the bold rule


def test_bootstrap_interval_matches_the_binomial_and_is_seeded():
    from scipy.stats import binom

    from mast_bench.demo_table import bootstrap_ci95

    for acc, n in [(50.0, 600), (20.0, 300), (90.0, 800)]:
        low, high = bootstrap_ci95(acc, n, seed=3)
        assert (low, high) == bootstrap_ci95(acc, n, seed=3)
        # Resampling n outcomes of which k are correct: the accuracy is Binomial(n, k/n)/n exactly.
        ref_low, ref_high = (100.0 * binom.ppf(q, n, acc / 100.0) / n for q in (0.025, 0.975))
        assert abs(low - ref_low) <= 100.0 / n + 1e-9 and abs(high - ref_high) <= 100.0 / n + 1e-9
        assert low < acc < high
    assert bootstrap_ci95(100.0, 50) == (100.0, 100.0) and bootstrap_ci95(0.0, 50) == (0.0, 0.0)
    with pytest.raises(ValueError, match="need at least one test image"):
        bootstrap_ci95(50.0, 0)


def test_best_is_bold_only_when_its_lead_exceeds_the_noise():
    from mast_bench.demo_table import clear_best, render_table
    from mast_bench.results.tables import comparison_tables

    assert clear_best({"a": 60.0, "b": 50.0}, {"a": 4.0, "b": 4.0}) == "a"  # 10 > sqrt(32) ≈ 5.7
    assert clear_best({"a": 55.0, "b": 50.0}, {"a": 4.0, "b": 4.0}) is None  # 5 < 5.7: noise
    assert clear_best({"a": 55.0}, {"a": 1.0}) is None and clear_best({"a": 5.0, "b": float("nan")}, {}) is None

    rows = []
    values = {"random-init": (17.0, 50.0), "vicreg": (40.0, 52.0), "mast": (38.0, 49.0), "supervised": (60.0, 99.0)}
    for model, (shape, colour) in values.items():
        for dataset, value in (("synthetic-shape", shape), ("synthetic-colour", colour)):
            rows.append({"model": model, "task": "linear", "dataset": dataset, "protocol": "synthetic-linear",
                         "metric": "top1", "split": "test", "value": value, "std": None, "ci95": 3.0})
    datasets = ["synthetic-shape", "synthetic-colour"]
    [table] = comparison_tables(pd.DataFrame(rows), models=list(values), datasets=datasets)
    text = render_table(table, references=["supervised"])
    lines = text.splitlines()
    assert lines[0] == "| model | shape | colour | mean |"
    assert lines[2] == "| random-init | 17.0 ± 3.0 | 50.0 ± 3.0 | 33.5 ± 2.1 |"
    # vicreg leads random-init by 23 on shape (> 4.2) but mast by only 2; colour is within the noise everywhere.
    assert lines[3] == "| vicreg | 40.0 ± 3.0 | 52.0 ± 3.0 | 46.0 ± 2.1 |"
    assert "**" not in text
    assert lines[5] == "| supervised | 60.0 ± 3.0 | 99.0 ± 3.0 | 79.5 ± 2.1 |"  # a reference: never bold
    wide = [{**r, "value": r["value"] + (20.0 if r["model"] == "vicreg" else 0.0)} for r in rows]
    [table] = comparison_tables(pd.DataFrame(wide), models=list(values), datasets=datasets)
    lines = render_table(table, references=["supervised"]).splitlines()
    assert lines[3] == "| vicreg | **60.0 ± 3.0** | **72.0 ± 3.0** | **66.0 ± 2.1** |"
