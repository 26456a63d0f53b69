"""Bold marks a column's best only where its lead over the runner-up exceeds the combined 95 % half-widths."""

from __future__ import annotations

import math

import pytest

from mast_bench.results.cells import CellValue, half_width_95
from mast_bench.results.layouts import load_layout
from mast_bench.results.paper import PaperTable, TableRow

LAYOUT = """\
title: noise
source: test
defaults: {task: linear, protocol: synthetic-linear, metric: top1, split: test, evaluator: linear}
columns:
  - {label: shape, dataset: synthetic-shape}
"""


def _table(tmp_path, *cells: CellValue) -> tuple[PaperTable, str]:
    path = tmp_path / "noise.yaml"
    path.write_text(LAYOUT)
    layout = load_layout(path)
    key = layout.cell_columns[0].key
    rows = tuple(TableRow(f"m{i}", "measured", {key: c}) for i, c in enumerate(cells))
    return PaperTable(layout, rows), key


def _ci(value: float, half: float) -> CellValue:
    return CellValue("value", value, half, "ci95", 1, (value,))


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ((_ci(50.0, 3.0), _ci(46.0, 3.0)), set()),  # lead 4.0 <= hypot(3, 3) = 4.24: within the noise
        ((_ci(50.0, 2.0), _ci(46.0, 2.0)), {0}),  # lead 4.0 > hypot(2, 2) = 2.83
        ((_ci(46.0, 1.0), _ci(50.0, 1.0), _ci(20.0, 1.0)), {1}),  # the runner-up, not the last row, decides
        ((CellValue("value", 50.0, math.nan, "", 1, (50.0,)), _ci(49.0, 3.0)), {0}),  # no interval on one side
        ((_ci(50.0, 9.0), _ci(50.0, 9.0)), {0, 1}),  # ties are all best
    ],
)
def test_bold_only_beyond_the_combined_intervals(tmp_path, cells, expected):
    table, key = _table(tmp_path, *cells)
    assert table.best(table.layout.column(key)) == expected


def test_half_width_of_a_seed_mean_is_its_95_percent_standard_error():
    std_cell = CellValue("value", 70.0, 2.0, "std", 4, (68.0, 70.0, 71.0, 71.0))
    assert half_width_95(std_cell) == pytest.approx(1.96 * 2.0 / 2.0)
    assert math.isnan(half_width_95(CellValue("value", 70.0, 2.0, "std", 1, (70.0,))))  # one seed: no spread
    assert half_width_95(_ci(70.0, 0.7)) == 0.7
