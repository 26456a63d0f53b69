"""Bar charts draw an error bar only where a cell has an uncertainty (a zero-length one reads as a published tick)."""

from __future__ import annotations

import math
import warnings

import matplotlib
from fixtures.records import make_record
from matplotlib.container import BarContainer

from mast_bench.results import charts
from mast_bench.results.layouts import load_layout
from mast_bench.results.leaderboard import build_leaderboard
from mast_bench.results.paper import build_table
from mast_bench.results.records import write_record

matplotlib.use("Agg")


def test_cells_without_uncertainty_get_no_error_bar(tmp_path) -> None:
    write_record(tmp_path, make_record(model="m", dataset="synthetic-shape", value=60.0, ci95=2.0))
    write_record(tmp_path, make_record(model="m", dataset="synthetic-colour", value=40.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = build_table(load_layout("synthetic"), build_leaderboard(tmp_path, None))
    [row] = [r for r in table.rows if r.kind == "measured"]
    columns = [c for c in table.layout.cell_columns if row.cells[c.key].has_value]
    assert [c.dataset for c in columns] == ["synthetic-shape", "synthetic-colour"]

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    charts._bars(ax, table, row, 0, columns, 0.8, 1)
    [bars] = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_height() for b in bars] == [60.0, 40.0]
    (err_line,) = bars.errorbar.lines[2]  # the vertical error segments, one per bar that has one
    caps = [v for line in bars.errorbar.lines[1] for v in line.get_ydata() if not math.isnan(v)]
    assert sorted(caps) == [58.0, 62.0]  # no cap drawn on the colour bar
    spans = [[y for _, y in s.tolist()] for s in err_line.get_segments() if len(s)]
    assert spans == [[58.0, 62.0]]  # shape ± 2.0 only; colour none
    plt.close(fig)
