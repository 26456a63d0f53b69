"""Comparison tables and the report: pivot values, ±, mean, formats, output-folder policy, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fixtures.records import make_record

from mast_bench.cli import main
from mast_bench.errors import RecordError
from mast_bench.fileio import OutputDirError
from mast_bench.results.leaderboard import build_leaderboard, read_leaderboard
from mast_bench.results.records import write_record
from mast_bench.results.report import render_report
from mast_bench.results.tables import MEAN, comparison_tables, short_labels

VALUES = {  # model -> dataset -> (value, std)
    "random-init": {
        "synthetic-shape": (30.0, None),
        "synthetic-colour": (90.0, None),
        "synthetic-texture": (40.0, None),
    },
    "vicreg": {"synthetic-shape": (80.04, 1.5), "synthetic-colour": (60.0, 0.25), "synthetic-texture": (55.55, None)},
    "mast": {"synthetic-shape": (85.0, 2.0), "synthetic-colour": (70.0, 1.0)},  # texture missing
}


def _write_all(root, values=VALUES, **kw):
    for model, cells in values.items():
        for ds, (value, std) in cells.items():
            sha = "" if model == "random-init" else model.encode().hex().ljust(64, "0")
            seeds = (0, 1, 2) if std is not None else (0,)  # a std is a spread over seeds
            write_record(
                root,
                make_record(model=model, dataset=ds, value=value, std=std, seeds=seeds, checkpoint_sha256=sha, **kw),
            )


@pytest.fixture
def leaderboard_csv(tmp_path):
    _write_all(tmp_path / "records")
    out = tmp_path / "leaderboard.csv"
    build_leaderboard(tmp_path / "records", out)
    return out


def test_pivot_values_mean_and_errors(leaderboard_csv):
    [table] = comparison_tables(read_leaderboard(leaderboard_csv), models=["random-init", "vicreg"])
    assert (table.task, table.protocol, table.metric, table.split) == ("linear", "synthetic-linear", "top1", "test")
    assert table.models == ["random-init", "vicreg", "mast"]  # listed first, then the rest alphabetically
    assert table.datasets == ["synthetic-colour", "synthetic-shape", "synthetic-texture"]
    for model, cells in VALUES.items():
        for ds in table.datasets:
            expected = cells.get(ds, (np.nan, None))[0]
            np.testing.assert_equal(table.values.at[model, ds], expected)
    assert table.values.at["vicreg", MEAN] == pytest.approx(np.mean([80.04, 60.0, 55.55]))
    assert np.isnan(table.values.at["mast", MEAN])  # a mean over a subset would not be comparable
    assert table.error_kind == "std"
    assert table.errors.at["vicreg", "synthetic-shape"] == 1.5
    assert np.isnan(table.errors.at["vicreg", "synthetic-texture"])


def test_markdown_layout(leaderboard_csv):
    [table] = comparison_tables(read_leaderboard(leaderboard_csv), models=["random-init", "vicreg", "mast"])
    assert table.to_markdown() == (
        "| model | colour | shape | texture | mean |\n"
        "|:--|--:|--:|--:|--:|\n"
        "| random-init | **90.0** | 30.0 | 40.0 | 53.3 |\n"
        "| vicreg | 60.0 ± 0.2 | 80.0 ± 1.5 | **55.5** | **65.2** |\n"
        "| mast | 70.0 ± 1.0 | **85.0 ± 2.0** | – | – |\n"
    )
    assert "± is the standard deviation" in table.footnote()
    plain = table.to_markdown(labels={}, decimals=2, higher_is_better=None)
    assert "| model | synthetic-colour | synthetic-shape | synthetic-texture | mean |" in plain
    assert "| vicreg | 60.00 ± 0.25 | 80.04 ± 1.50 | 55.55 | 65.20 |" in plain


def test_ci95_used_when_no_record_has_std(tmp_path):
    root = tmp_path / "r"
    write_record(root, make_record(model="a", value=50.0, ci95=1.25))
    write_record(root, make_record(model="b", value=50.0))
    [table] = comparison_tables(build_leaderboard(root, None))
    assert table.error_kind == "ci95"
    assert table.cell("a", "synthetic-shape", 2) == "50.00 ± 1.25"
    assert table.cell("b", "synthetic-shape", 2) == "50.00"
    assert table.best("synthetic-shape") == {"a", "b"}  # ties are all best
    assert "95 % CI" in table.footnote()


def test_one_table_per_task_protocol_metric_split(tmp_path):
    root = tmp_path / "r"
    write_record(root, make_record(model="a"))
    write_record(root, make_record(model="a", task="fewshot", protocol="fewshot-5way", metric="accuracy", ci95=0.4))
    write_record(root, make_record(model="a", split="val"))
    tables = comparison_tables(build_leaderboard(root, None))
    assert [(t.task, t.split) for t in tables] == [("fewshot", "test"), ("linear", "test"), ("linear", "val")]
    assert len({t.slug for t in tables}) == 3


def test_same_model_two_checkpoints_is_an_error(tmp_path):
    root = tmp_path / "r"
    write_record(root, make_record(model="vicreg", checkpoint_sha256="1" * 64))
    write_record(root, make_record(model="vicreg", checkpoint_sha256="2" * 64))
    with pytest.raises(RecordError, match=r"model 'vicreg' has 2 results for dataset 'synthetic-shape'.*111111111111"):
        comparison_tables(build_leaderboard(root, None))


def test_to_frame_and_latex(leaderboard_csv):
    [table] = comparison_tables(read_leaderboard(leaderboard_csv))
    frame = table.to_frame()
    assert list(frame.columns) == [
        "model",
        "synthetic-colour",
        "synthetic-shape",
        "synthetic-texture",
        MEAN,
        "synthetic-colour_std",
        "synthetic-shape_std",
        "synthetic-texture_std",
    ]
    assert frame.set_index("model").at["vicreg", "synthetic-shape_std"] == 1.5
    tex = table.to_latex(labels={"synthetic-shape": "shape_&_form"})
    assert tex.startswith("\\begin{tabular}{lrrrr}\n\\toprule\n")
    assert "shape\\_\\&\\_form" in tex
    assert "\\textbf{85.0 $\\pm$ 2.0}" in tex
    assert "mast & 70.0 $\\pm$ 1.0 & \\textbf{85.0 $\\pm$ 2.0} & -- & -- \\\\" in tex


@pytest.mark.parametrize(
    ("names", "labels"),
    [
        (["synthetic-shape", "synthetic-colour"], ["shape", "colour"]),
        (["a-b-x", "a-b-y"], ["x", "y"]),
        (["synthetic-shape", "cifar10"], ["synthetic-shape", "cifar10"]),
        (["voc07"], ["voc07"]),
        (["x-y", "x-y-z"], ["y", "y-z"]),
    ],
)
def test_short_labels(names, labels):
    assert list(short_labels(names).values()) == labels


def test_render_report_writes_tables_and_reruns_in_place(leaderboard_csv, tmp_path):
    out = tmp_path / "report"
    outputs = render_report(leaderboard_csv, out)
    stem = "linear__synthetic-linear__top1__test"
    names = sorted(p.name for p in outputs.tables)
    # The comparison table and the shipped paper layout these records fall into, each as md, csv and tex.
    assert names == sorted(f"{s}.{ext}" for s in (stem, "synthetic") for ext in ("md", "csv", "tex"))
    text = outputs.index.read_text()
    assert text.startswith("# mast-bench results\n")
    assert "## linear · synthetic-linear · top1 (test)" in text
    assert "## Synthetic invariance suite" in text
    assert "| vicreg | 60.0 ± 0.2 (n=3) | 80.0 ± 1.5 (n=3) | **55.5** | **65.2** |" in text
    assert "| mast | 70.0 ± 1.0 (n=3) | **85.0 ± 2.0 (n=3)** | – | – |" in text
    long = pd.read_csv(out / "tables" / f"{stem}.csv")
    mean = long[(long.row == "random-init") & (long.column == MEAN)].value.item()
    assert mean == pytest.approx(np.mean([30.0, 90.0, 40.0]))
    assert (out / "tables" / f"{stem}.tex").read_text().startswith("\\begin{tabular}{lrrrr}\n\\toprule\n")
    assert outputs.html.is_file()
    render_report(leaderboard_csv, out)  # its own earlier output is not "other content"


def test_render_report_refuses_foreign_folder_and_keeps_its_files(leaderboard_csv, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=r"already exists and holds other files \(notes\.txt\)"):
        render_report(leaderboard_csv, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    render_report(leaderboard_csv, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.md").is_file()


def test_render_report_bad_csv_writes_nothing(tmp_path):
    bad = tmp_path / "lb.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(RecordError, match="missing columns"):
        render_report(bad, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_cli_report(leaderboard_csv, tmp_path):
    out = tmp_path / "rep"
    result = CliRunner().invoke(main, ["report", "--leaderboard", str(leaderboard_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'report.md'}, {out / 'report.html'} and 6 table files under {out / 'tables'}" in result.output
    missing = CliRunner().invoke(main, ["report", "--leaderboard", str(tmp_path / "none.csv"), "--out", str(out)])
    assert missing.exit_code == 2
    assert "does not exist (build it with `mast-bench leaderboard`)" in missing.output
