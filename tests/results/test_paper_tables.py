"""Paper-layout tables: a golden rendering of every shipped layout (Markdown, LaTeX, CSV) from fixture records.

To accept a deliberate change of the output: ``MAST_BENCH_UPDATE_GOLDEN=1 pytest tests/results/test_paper_tables.py``,
then read the diff of ``tests/results/golden/`` before committing it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import pytest
from fixtures.paper_records import REFERENCES, layout_records

from mast_bench.results import render
from mast_bench.results.layouts import load_layout, shipped_layouts
from mast_bench.results.leaderboard import build_leaderboard
from mast_bench.results.paper import build_table
from mast_bench.results.records import write_record
from mast_bench.results.references import read_reference_dir
from mast_bench.results.report import comparison_layouts

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("MAST_BENCH_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with MAST_BENCH_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _board(tmp_path, records):
    for record in records:
        write_record(tmp_path / "records", record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_leaderboard(tmp_path / "records", None)


@pytest.mark.parametrize("name", sorted(shipped_layouts()))
def test_golden_rendering(name, tmp_path):
    layout = load_layout(name)
    table = build_table(layout, _board(tmp_path, layout_records(layout)), read_reference_dir(REFERENCES))
    _check(f"{name}.md", render.to_markdown(table))
    _check(f"{name}.tex", render.to_latex(table))
    _check(f"{name}.csv", render.to_csv(table))


def test_golden_comparison_table(tmp_path):
    layout = load_layout("mast-ablation")
    df = _board(tmp_path, layout_records(layout))
    [auto] = comparison_layouts(df)
    table = build_table(auto, df)
    _check("comparison.md", render.to_markdown(table))
    assert [c.label for c in auto.columns] == ["colour", "orientation", "position", "shape", "texture", "mean"]
    assert [r.label for r in table.rows][:3] == ["masks+uncertainty+aware-s0", "masks+uncertainty+aware-s1",
                                                 "masks+uncertainty+aware-s2"]  # fmt: skip


def test_golden_tables_say_what_they_promise(tmp_path):
    """Spot checks that the golden files hold what each kind of table must show (read from the files)."""
    ablation = (GOLDEN / "mast-ablation.md").read_text()
    assert "| vicreg | 42.0 ± 0.8 (n=3) |" in ablation  # mean ± sample std of 41.25, 42.0, 42.75
    imagenet = (GOLDEN / "imagenet.md").read_text()
    assert "| ↳ VICReg R50 (published) | **73.2** |" in imagenet
    assert "| ↳ Δ measured − published | -33.2 |" in imagenet  # 40.0 - 73.2
    assert "| Linear top-1 | Linear top-5 | Semi-sup. 1 % top-1 |" in imagenet
    voc = (GOLDEN / "voc-detection.md").read_text()
    assert "| MoCo v2 200 ep | 82.4 | 57.0 | 63.6 |" in voc
    assert "± 0.2 (n=5)" in voc
    tex = (GOLDEN / "imagenet.tex").read_text()
    assert "\\multicolumn{2}{c}{Linear}" in tex and "\\cmidrule(lr){2-3}" in tex and "\\toprule" in tex
    assert "\\textbf{" in tex
    fewshot = (GOLDEN / "fewshot-augself.md").read_text()
    assert "± 0.3" in fewshot and "95 % confidence interval" in fewshot
    frame = pd.read_csv(GOLDEN / "transfer-ericsson.csv")
    mean = frame[(frame.row == "vicreg") & (frame.column == "mean")].value.item()
    cells = frame[(frame.row == "vicreg") & (frame.column != "mean")].value
    assert mean == pytest.approx(cells.mean(), abs=1e-9)
    assert frame[(frame.row == "mast") & (frame.column == "mean")].status.item() == "missing"
