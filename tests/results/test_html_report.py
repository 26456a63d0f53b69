"""The report: every output byte-identical across renders, a self-contained HTML page, newer schemas refused."""

from __future__ import annotations

import csv
import json
import re
import warnings

import pytest
from click.testing import CliRunner
from fixtures.paper_records import REFERENCES, write_all
from fixtures.records import make_record
from PIL import Image

from mast_bench.cli import main
from mast_bench.errors import RecordError
from mast_bench.results.leaderboard import build_leaderboard, read_leaderboard
from mast_bench.results.records import iter_records, write_record
from mast_bench.results.report import render_report

# A few layouts of every kind keep the page (and its matplotlib charts) quick to render twice.
HTML_LAYOUTS = ("imagenet", "voc-detection", "mast-ablation", "fewshot-augself", "synthetic")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    write_all(root / "records", HTML_LAYOUTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_leaderboard(root / "records", root / "leaderboard.csv")
    return root / "leaderboard.csv"


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analysis")
    Image.new("RGB", (8, 6), (200, 30, 30)).save(folder / "mask_overlap.png")
    Image.new("RGB", (8, 6), (30, 30, 200)).save(folder / "uncertainty_vs_strength.png")
    (folder / "analysis.json").write_text(json.dumps({"checkpoint": "/x/mast/final.pt", "checkpoint_sha256": "c" * 64}))
    return folder


@pytest.fixture(scope="module")
def report(board, analysis, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    render_report(board, out, references=REFERENCES, analyses=[analysis])
    return out


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_records_give_byte_identical_reports(board, analysis, report, tmp_path):
    again = tmp_path / "again"
    render_report(board, again, references=REFERENCES, analyses=[analysis])
    first, second = _files(report), _files(again)
    assert sorted(first) == sorted(second)
    assert "report.html" in first and "report.md" in first and "tables/imagenet.tex" in first
    different = [name for name in first if first[name] != second[name]]
    assert different == []


@pytest.mark.slow
def test_records_written_in_another_order_give_the_same_bytes(board, tmp_path):
    """Another writing order (file-system order, creation times) changes neither the leaderboard nor the report."""
    from fixtures.paper_records import layout_records

    from mast_bench.results.layouts import list_layouts

    records = {}
    for layout in list_layouts():
        if layout.name not in HTML_LAYOUTS:
            continue
        for record in layout_records(layout):
            records.setdefault(record.key(), record)
    for record in reversed(list(records.values())):
        write_record(tmp_path / "records", record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_leaderboard(tmp_path / "records", tmp_path / "leaderboard.csv")
    assert (tmp_path / "leaderboard.csv").read_bytes() == board.read_bytes()
    render_report(board, tmp_path / "a", references=REFERENCES)
    render_report(tmp_path / "leaderboard.csv", tmp_path / "b", references=REFERENCES)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_html_is_self_contained_and_complete(report):
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external scripts, styles, images or fonts (SVG's xmlns is a name, not a fetch).
    assert not re.search(r"<script[^>]+src=|<link|@import|url\((?!#)", page)  # url(#id) points inside the page
    external = {m for m in re.findall(r'(?:src|href)="([^"#][^"]*)"', page) if not m.startswith("data:image/png")}
    assert external == set()
    # Every table is there, sortable, with provenance on hover and in a details row.
    for name in HTML_LAYOUTS:
        assert f'<section id="{name}">' in page
    assert page.count('<table class="results">') == page.count("<section id=") - 1  # minus the analysis section
    assert 'class="sortable"' in page and "addEventListener" in page
    assert "<details><summary>Provenance</summary>" in page
    assert re.search(r'<td data-sort="[0-9.]+" title="vicreg: ', page)
    # Bar charts are inline SVG; the MAST figures are embedded PNGs.
    assert page.count("<svg") >= len(HTML_LAYOUTS) and "<?xml" not in page
    assert page.count("data:image/png;base64,") == 2
    assert "Checkpoint mast (sha256 cccccccccccc)" in page
    # Published numbers and deltas are on the page.
    assert "MoCo v2 200 ep" in page and "Δ measured − published" in page
    assert "<html" in page and page.rstrip().endswith("</html>")


def test_report_without_analysis_or_references(board, tmp_path):
    out = render_report(board, tmp_path / "plain", layouts=["synthetic"])
    page = out.html.read_text(encoding="utf-8")
    assert "MAST analysis" not in page and "(published)" not in page
    names = sorted(p.name for p in out.tables)
    assert "synthetic.md" in names and not any(n.startswith("imagenet") for n in names)


def test_bad_analysis_folder_writes_nothing(board, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a `mast-bench analyze` output folder"):
        render_report(board, tmp_path / "out", analyses=[tmp_path])
    assert not (tmp_path / "out").exists()


def test_newer_record_schema_is_refused(tmp_path):
    path = write_record(tmp_path, make_record())
    data = json.loads(path.read_text())
    data["schema_version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as info:
        iter_records(tmp_path)
    assert str(info.value) == (
        f"{path}: not a valid record file (record schema_version 2 is newer than this mast-bench reads (1); "
        "upgrade mast-bench to read it)"
    )
    result = CliRunner().invoke(main, ["leaderboard", "--records", str(tmp_path), "--out", str(tmp_path / "lb.csv")])
    assert result.exit_code == 2 and "is newer than this mast-bench reads" in result.output
    assert not (tmp_path / "lb.csv").exists()


def test_newer_schema_in_leaderboard_csv_is_refused(board, tmp_path):
    with board.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[1]["schema_version"] == "1"
    rows[1]["schema_version"] = "3"
    bad = tmp_path / "lb.csv"
    with bad.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(RecordError, match=r"line 3 holds a record of schema_version 3, newer than this mast-bench"):
        read_leaderboard(bad)
    with pytest.raises(RecordError, match="newer than this mast-bench"):
        render_report(bad, tmp_path / "rep")
    assert not (tmp_path / "rep").exists()


def test_cli_report_writes_html(board, analysis, tmp_path):
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--leaderboard",
            str(board),
            "--out",
            str(out),
            "--references",
            str(REFERENCES),
            "--layout",
            "voc-detection",
            "--analysis",
            str(analysis),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'report.md'}, {out / 'report.html'} and " in result.output
    assert "MoCo v2 800 ep" in (out / "tables" / "voc-detection.md").read_text()
    bad = CliRunner().invoke(main, ["report", "--leaderboard", str(board), "--out", str(out), "--layout", "vocc"])
    assert bad.exit_code == 2
    assert "Error: unknown table 'vocc'" in bad.output
