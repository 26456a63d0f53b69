"""Leaderboard aggregation: rows, order, duplicates, malformed input, the CSV and the CLI."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from click.testing import CliRunner
from fixtures.records import make_record

from mast_bench.cli import main
from mast_bench.errors import RecordError
from mast_bench.results.leaderboard import (
    LEADERBOARD_COLUMNS,
    ConflictingRecordsWarning,
    DuplicateRecordWarning,
    build_leaderboard,
    read_leaderboard,
)
from mast_bench.results.records import RECORD_SUFFIX, write_record

MODELS = ("vicreg", "random-init", "mast")
DATASETS = ("synthetic-shape", "synthetic-colour")


@pytest.fixture
def records_root(tmp_path):
    root = tmp_path / "records"
    for i, model in enumerate(MODELS):
        for j, ds in enumerate(DATASETS):
            sha = "" if model == "random-init" else f"{i:064x}"
            rec = make_record(model=model, dataset=ds, value=10.0 * i + j + 0.25, checkpoint_sha256=sha)
            write_record(root / model, rec)
    return root


def test_one_row_per_record_sorted_with_provenance(records_root, tmp_path):
    out = tmp_path / "lb" / "leaderboard.csv"
    df = build_leaderboard(records_root, out)
    assert list(df.columns) == list(LEADERBOARD_COLUMNS)
    assert len(df) == len(MODELS) * len(DATASETS)
    # Sorted by dataset, then model (task/protocol/metric/split are equal here).
    expected = sorted((ds, m) for m in MODELS for ds in DATASETS)
    assert list(zip(df.dataset, df.model)) == expected
    row = df[(df.model == "mast") & (df.dataset == "synthetic-colour")].iloc[0]
    assert row.value == 21.25
    assert row.checkpoint_sha256 == f"{2:064x}"
    assert json.loads(row.selected) == {"C": 0.1}
    assert json.loads(row.seeds) == [0]
    assert row.selected_on == "val" and row.created and row.code_version
    assert row.record_file.startswith("mast/") and row.record_file.endswith(RECORD_SUFFIX)
    assert df.attrs["duplicates"] == []
    # The CSV holds exactly the table (independently parsed with the csv module).
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == list(df.model)
    assert [float(r["value"]) for r in rows] == list(df.value)
    assert rows[0]["checkpoint_sha256"] == df.checkpoint_sha256[0]
    assert sorted(p.name for p in out.parent.iterdir()) == ["leaderboard.csv"]  # no temp files


def test_read_leaderboard_round_trip(records_root, tmp_path):
    out = tmp_path / "leaderboard.csv"
    df = build_leaderboard(records_root, out)
    back = read_leaderboard(out)
    assert list(back.columns) == list(df.columns)
    pd.testing.assert_series_equal(back.value, df.value)
    assert back["std"].isna().all()
    floor = back[back.model == "random-init"]
    assert (floor.checkpoint_sha256 == "").all()  # empty stays empty text, not NaN


def test_duplicate_cell_keeps_newest_and_says_so(records_root, tmp_path):
    # The same number written twice (a copied folder): one row, the newest file, the other named as ignored.
    old = make_record(model="vicreg", value=0.25, checkpoint_sha256=f"{0:064x}", created="2020-01-01T00:00:00+00:00")
    write_record(records_root / "copy", old)
    with pytest.warns(DuplicateRecordWarning, match=r"kept vicreg/.*ignored copy/vicreg__"):
        df = build_leaderboard(records_root, None)
    assert len(df) == len(MODELS) * len(DATASETS)
    cell = df[(df.model == "vicreg") & (df.dataset == "synthetic-shape")]
    assert list(cell.record_file.str.split("/").str[0]) == ["vicreg"]  # the fresh file, not the 2020 copy
    [dup] = df.attrs["duplicates"]
    assert dup["kept"].startswith("vicreg/") and dup["ignored"][0].startswith("copy/")
    assert df.attrs["conflicts"] == [] and (df.conflict == 0).all()


def test_conflicting_records_both_stay_and_are_marked(records_root):
    # A different number for the same cell and seeds is a conflict: every version stays on the leaderboard.
    newer = make_record(model="vicreg", value=99.0, checkpoint_sha256=f"{0:064x}", created="2999-01-01T00:00:00+00:00")
    write_record(records_root / "zz-newer", newer)
    with pytest.warns(ConflictingRecordsWarning, match=r"1 cell\(s\) have records that disagree; all are kept"):
        df = build_leaderboard(records_root, None)
    assert len(df) == len(MODELS) * len(DATASETS) + 1
    cell = df[(df.model == "vicreg") & (df.dataset == "synthetic-shape")]
    assert sorted(cell.value) == [0.25, 99.0] and list(cell.conflict) == [2, 2]
    [conflict] = df.attrs["conflicts"]
    assert sorted(conflict["values"]) == [0.25, 99.0] and conflict["seeds"] == [0]
    other = df[(df.model != "vicreg") | (df.dataset != "synthetic-shape")]
    assert (other.conflict == 0).all()


def test_other_seeds_of_a_cell_are_runs_not_conflicts(records_root):
    write_record(
        records_root / "seed1", make_record(model="vicreg", value=5.0, seeds=(1,), checkpoint_sha256=f"{0:064x}")
    )
    df = build_leaderboard(records_root, None)
    cell = df[(df.model == "vicreg") & (df.dataset == "synthetic-shape")]
    assert sorted(cell.value) == [0.25, 5.0] and list(cell.n_seeds) == [1, 1]
    assert df.attrs["conflicts"] == [] and df.attrs["duplicates"] == []


def test_malformed_record_is_named_and_nothing_is_written(records_root, tmp_path):
    out = tmp_path / "leaderboard.csv"
    out.write_text("previous leaderboard\n")
    bad = records_root / "vicreg" / f"broken{RECORD_SUFFIX}"
    bad.write_text('{"schema_version": 1, "model": "x", "value": "high"}')
    with pytest.raises(RecordError, match="not a valid record file") as info:
        build_leaderboard(records_root, out)
    assert str(bad) in str(info.value)
    assert out.read_text() == "previous leaderboard\n"


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "manifest.json").write_text("{}")
    with pytest.raises(RecordError, match=r"no result records \(\*\.record\.json\) under"):
        build_leaderboard(tmp_path / "empty", tmp_path / "lb.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_leaderboard(tmp_path / "missing", tmp_path / "lb.csv")
    assert not (tmp_path / "lb.csv").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,dataset\nm,d\n", "missing columns: task, protocol, metric, split, value, std, ci95"),
        ("", "not a readable leaderboard CSV"),
    ],
)
def test_read_leaderboard_rejects_foreign_csv(tmp_path, text, message):
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(RecordError, match=message) as info:
        read_leaderboard(path)
    assert str(info.value).startswith(f"{path}: ")


def test_read_leaderboard_rejects_non_numeric_value(records_root, tmp_path):
    out = tmp_path / "lb.csv"
    build_leaderboard(records_root, out)
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    df.loc[3, "value"] = "n/a"
    df.to_csv(out, index=False)
    with pytest.raises(RecordError, match="column 'value' needs a finite number on line 5, got 'n/a'"):
        read_leaderboard(out)


def test_cli_leaderboard(records_root, tmp_path):
    out = tmp_path / "leaderboard.csv"
    copy = make_record(model="mast", value=20.25, checkpoint_sha256=f"{2:064x}", created="2001-01-01")
    write_record(records_root / "copy", copy)
    result = CliRunner().invoke(main, ["leaderboard", "--records", str(records_root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (6 rows, 3 models, 2 datasets)" in result.output
    assert "note: duplicate records of one cell: kept mast/" in result.output
    assert len(pd.read_csv(out)) == 6
    write_record(records_root / "other", make_record(model="mast", value=20.5, checkpoint_sha256=f"{2:064x}"))
    result = CliRunner().invoke(main, ["leaderboard", "--records", str(records_root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "conflict: records of one cell disagree (20.25, 20.5); all kept: mast/" in result.output
    assert len(pd.read_csv(out)) == 7


def test_cli_leaderboard_bad_record_exits_2_with_message(records_root, tmp_path):
    bad = records_root / f"oops{RECORD_SUFFIX}"
    bad.write_text("{")
    result = CliRunner().invoke(main, ["leaderboard", "--records", str(records_root), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert f"Error: {bad}: not a valid record file (invalid JSON" in result.output
    assert not (tmp_path / "o.csv").exists()
