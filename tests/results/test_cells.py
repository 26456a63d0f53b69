"""Cells: seeds aggregated (mean ± sample std, n), conflicts kept visible, measured − published arithmetic."""

from __future__ import annotations

import math
import statistics
import warnings

import pytest
from fixtures.records import make_record

from mast_bench.results.cells import CellValue, aggregate, difference, mean_cell
from mast_bench.results.layouts import load_layout
from mast_bench.results.leaderboard import ConflictingRecordsWarning, build_leaderboard
from mast_bench.results.paper import build_table
from mast_bench.results.records import write_record
from mast_bench.results.references import Reference
from mast_bench.results.render import cell_text, to_markdown

SHA = "ab" * 32


def _board(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_leaderboard(root, None)


def test_single_record_keeps_its_own_uncertainty(tmp_path):
    write_record(tmp_path, make_record(value=55.0, std=0.25, seeds=(0, 1, 2, 3, 4)))
    cell = aggregate(_board(tmp_path))
    assert (cell.status, cell.value, cell.error, cell.error_kind, cell.n) == ("value", 55.0, 0.25, "std", 5)
    write_record(tmp_path / "b", make_record(model="b", value=60.0, ci95=1.5))
    df = _board(tmp_path)
    cell = aggregate(df[df.model == "b"])
    assert (cell.value, cell.error, cell.error_kind, cell.n) == (60.0, 1.5, "ci95", 1)


def test_a_std_without_two_seeds_is_not_shown_as_a_seed_spread(tmp_path):
    # A one-seed detection aggregate (std 0.0) and a few-shot record (std over episodes, ci95 of the mean).
    write_record(tmp_path / "a", make_record(model="a", value=21.6, std=0.0, seeds=(0,)))
    write_record(tmp_path / "b", make_record(model="b", value=19.2, std=9.0, ci95=0.72, seeds=(0,)))
    df = _board(tmp_path)
    a, b = aggregate(df[df.model == "a"]), aggregate(df[df.model == "b"])
    assert (a.value, math.isnan(a.error), a.error_kind, a.n) == (21.6, True, "", 1)
    assert (b.value, b.error, b.error_kind, b.n) == (19.2, 0.72, "ci95", 1)


def test_disjoint_seeds_of_one_cell_are_runs(tmp_path):
    values = [70.0, 71.5, 69.25]
    for seed, value in enumerate(values):
        write_record(tmp_path / f"s{seed}", make_record(value=value, seeds=(seed,)))
    df = _board(tmp_path)
    assert len(df) == 3 and (df.conflict == 0).all()
    cell = aggregate(df)
    assert cell.status == "value" and cell.n == 3 and cell.error_kind == "std"
    assert cell.value == pytest.approx(statistics.mean(values), abs=1e-12)
    assert cell.error == pytest.approx(statistics.stdev(values), abs=1e-12)  # sample std (n - 1)
    assert sorted(cell.values) == sorted(values)
    assert len(cell.provenance) == 3


@pytest.mark.filterwarnings("ignore::mast_bench.results.leaderboard.DuplicateRecordWarning")
def test_conflict_keeps_both_and_says_so(tmp_path):
    write_record(tmp_path / "a", make_record(value=70.1, created="2026-01-01T00:00:00+00:00"))
    write_record(tmp_path / "b", make_record(value=70.4, created="2026-01-02T00:00:00+00:00"))
    write_record(tmp_path / "c", make_record(value=70.4, created="2025-01-02T00:00:00+00:00"))  # a true duplicate
    with pytest.warns(ConflictingRecordsWarning, match=r"1 cell\(s\) have records that disagree; all are kept"):
        df = build_leaderboard(tmp_path, None)
    assert sorted(df.value) == [70.1, 70.4]  # both stay; the older copy of 70.4 is the only one dropped
    assert list(df.conflict) == [2, 2]
    [con] = df.attrs["conflicts"]
    assert sorted(con["records"])[0].startswith("a/") and sorted(con["values"]) == [70.1, 70.4]
    [dup] = df.attrs["duplicates"]
    assert dup["ignored"][0].startswith("c/")
    cell = aggregate(df)
    assert cell.status == "conflict" and sorted(cell.values) == [70.1, 70.4] and math.isnan(cell.value)
    table = build_table(load_layout("synthetic"), df)
    [row] = table.rows
    assert cell_text(table, row, table.layout.columns[0]) == "70.1 / 70.4 (conflict)"
    assert cell_text(table, row, table.layout.columns[-1]) == "–"  # a mean over a conflict is not taken
    assert "| vicreg-tiny | 70.1 / 70.4 (conflict) | – |" in to_markdown(table)


def test_mean_cell_needs_every_cell():
    a, b = CellValue("value", 10.0, n=1), CellValue("value", 13.0, n=1)
    assert mean_cell([a, b]).value == 11.5
    assert mean_cell([a, CellValue("missing")]).status == "missing"
    assert mean_cell([a, CellValue("conflict", values=(1.0, 2.0))]).status == "missing"


@pytest.mark.parametrize(
    ("measured", "published", "spread", "delta", "flag"),
    [
        (57.3, 57.0, 0.2, 0.3, True),
        (57.1, 57.0, 0.2, 0.1, False),
        (56.8, 57.0, 0.2, -0.2, False),  # exactly the spread is not beyond it
        (63.0, 63.6, 0.4, -0.6, True),
        (70.0, 73.2, None, -3.2, False),  # no known spread: never flagged
    ],
)
def test_difference_arithmetic(measured, published, spread, delta, flag):
    cell, flagged = difference(CellValue("value", measured, n=1), CellValue("value", published, n=1), spread)
    assert cell.value == pytest.approx(delta, abs=1e-9) and flagged is flag


def test_reference_rows_and_deltas_in_a_table(tmp_path):
    for metric, value in (("box_AP50", 82.9), ("box_AP", 57.3), ("box_AP75", 63.5)):
        write_record(
            tmp_path,
            make_record(
                model="moco-v2-200ep",
                task="detection",
                dataset="voc07+12",
                protocol="voc0712-c4",
                metric=metric,
                split="voc2007-test",
                value=value,
                std=0.1,
                seeds=(0, 1, 2, 3, 4),
                selected={},
                selected_on="",
                checkpoint_sha256=SHA,
            ),
        )
    refs = [
        Reference(
            "moco-v2-200ep",
            "MoCo v2 200 ep",
            "detection",
            "voc07+12",
            "voc0712-c4",
            m,
            "voc2007-test",
            v,
            "MoCo",
            "detection/README.md",
            "MoCo v2 200ep",
        )
        for m, v in (("box_AP50", 82.4), ("box_AP", 57.0), ("box_AP75", 63.6))
    ]
    table = build_table(load_layout("voc-detection"), _board(tmp_path), refs)
    measured, published, delta = table.rows
    assert (measured.kind, published.kind, delta.kind) == ("measured", "reference", "delta")
    assert published.parent == delta.parent == "moco-v2-200ep"
    cols = table.layout.columns
    assert [delta.cells[c.key].value for c in cols] == pytest.approx([0.5, 0.3, -0.1], abs=1e-9)
    assert delta.flags == {"AP50", "AP"}  # AP75 differs by 0.1 < 0.4
    assert [cell_text(table, delta, c) for c in cols] == ["+0.5 ⚠", "+0.3 ⚠", "-0.1"]
    assert [cell_text(table, measured, c) for c in cols] == ["82.9 ± 0.1 (n=5)", "57.3 ± 0.1 (n=5)", "63.5 ± 0.1 (n=5)"]
