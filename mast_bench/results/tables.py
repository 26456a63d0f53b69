"""Comparison tables from a leaderboard: models × datasets, one table per (task, protocol, metric, split).

A cell shows the record's value, with ``±`` its standard deviation (over seeds or runs) where the
table's records carry one, otherwise its 95 % confidence interval where they carry that; the
footnote says which. The mean column is the plain mean over the table's datasets and is left
empty for a model that misses any of them (a mean over a subset would not be comparable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from mast_bench.errors import RecordError

MEAN = "mean"
MISSING = "–"
_GROUP = ("task", "protocol", "metric", "split")
_UNCERTAINTY_NOTE = {"std": "± is the standard deviation reported by each record", "ci95": "± is the 95 % CI"}


@dataclass(frozen=True)
class ComparisonTable:
    """One model × dataset table.

    Attributes:
        task, protocol, metric, split: what every cell of the table measured.
        values: float frame, index = models, columns = datasets + ``mean``; NaN where missing.
        errors: float frame, index = models, columns = datasets; NaN where no uncertainty.
        error_kind: ``"std"``, ``"ci95"`` or ``""`` (no cell has an uncertainty).
    """

    task: str
    protocol: str
    metric: str
    split: str
    values: pd.DataFrame
    errors: pd.DataFrame
    error_kind: str

    @property
    def models(self) -> list[str]:
        return list(self.values.index)

    @property
    def datasets(self) -> list[str]:
        return [c for c in self.values.columns if c != MEAN]

    @property
    def title(self) -> str:
        return f"{self.task} · {self.protocol} · {self.metric} ({self.split})"

    @property
    def slug(self) -> str:
        return "__".join(_slug(p) for p in (self.task, self.protocol, self.metric, self.split))

    def footnote(self, higher_is_better: bool = True) -> str:
        parts = [f"{self.metric} on {self.split}", "mean over the datasets (empty if one is missing)"]
        if self.error_kind:
            parts.append(_UNCERTAINTY_NOTE[self.error_kind])
        if higher_is_better:
            parts.append("best per column in bold")
        return "; ".join(parts) + "."

    def cell(self, model: str, column: str, decimals: int = 1) -> str:
        """The formatted text of one cell (``MISSING`` where there is no value)."""
        value = self.values.at[model, column]
        if math.isnan(value):
            return MISSING
        text = f"{value:.{decimals}f}"
        if column != MEAN:
            err = self.errors.at[model, column]
            if not math.isnan(err):
                text += f" ± {err:.{decimals}f}"
        return text

    def best(self, column: str, decimals: int = 1, higher_is_better: bool = True) -> set[str]:
        """Models whose rounded value in ``column`` is the best (ties all count)."""
        col = self.values[column].dropna().round(decimals)
        if col.empty or len(self.values) < 2:
            return set()
        target = col.max() if higher_is_better else col.min()
        return set(col.index[col == target])

    def to_markdown(
        self, labels: Mapping[str, str] | None = None, decimals: int = 1, higher_is_better: bool | None = True
    ) -> str:
        """GitHub-flavoured Markdown: header, right-aligned numbers, best per column in bold.

        Args:
            labels: column label per dataset (default: :func:`short_labels`).
            decimals: digits after the point.
            higher_is_better: which end is bold; None for no bold.
        """
        labels = dict(labels) if labels is not None else short_labels(self.datasets)
        columns = [*self.datasets, MEAN]
        header = ["model", *(labels.get(c, c) for c in self.datasets), MEAN]
        lines = ["| " + " | ".join(header) + " |", "|:--" + "|--:" * len(columns) + "|"]
        bold = {c: self.best(c, decimals, higher_is_better) if higher_is_better is not None else set() for c in columns}
        for model in self.models:
            texts = {c: self.cell(model, c, decimals) for c in columns}
            cells = [f"**{texts[c]}**" if model in bold[c] else texts[c] for c in columns]
            lines.append("| " + " | ".join([_md_escape(model), *cells]) + " |")
        return "\n".join(lines) + "\n"

    def to_frame(self) -> pd.DataFrame:
        """Numbers for a CSV: ``model``, one column per dataset, ``mean``, then ``<dataset>_<error_kind>``."""
        frame = self.values.copy()
        if self.error_kind:
            for ds in self.datasets:
                frame[f"{ds}_{self.error_kind}"] = self.errors[ds]
        frame.index.name = "model"
        return frame.reset_index()

    def to_latex(
        self, labels: Mapping[str, str] | None = None, decimals: int = 1, higher_is_better: bool | None = True
    ) -> str:
        """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); best per column in bold."""
        labels = dict(labels) if labels is not None else short_labels(self.datasets)
        columns = [*self.datasets, MEAN]
        bold = {c: self.best(c, decimals, higher_is_better) if higher_is_better is not None else set() for c in columns}
        header = " & ".join(["model", *(_tex_escape(labels.get(c, c)) for c in self.datasets), MEAN])
        lines = [f"\\begin{{tabular}}{{l{'r' * len(columns)}}}", "\\toprule", header + " \\\\", "\\midrule"]
        for model in self.models:
            cells = []
            for c in columns:
                text = self.cell(model, c, decimals).replace(" ± ", " $\\pm$ ").replace(MISSING, "--")
                cells.append(f"\\textbf{{{text}}}" if model in bold[c] else text)
            lines.append(" & ".join([_tex_escape(model), *cells]) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join(lines) + "\n"


def comparison_tables(
    df: pd.DataFrame, models: Sequence[str] | None = None, datasets: Sequence[str] | None = None
) -> list[ComparisonTable]:
    """One :class:`ComparisonTable` per (task, protocol, metric, split) in a leaderboard frame.

    Args:
        df: a leaderboard (see :func:`mast_bench.results.leaderboard.read_leaderboard`).
        models: row order; models not listed follow in alphabetical order.
        datasets: column order; datasets not listed follow in alphabetical order.

    Raises:
        RecordError: two rows of one table are the same model on the same dataset (e.g. two
            checkpoints given the same model name): a table cannot choose between them.
    """
    tables = []
    for group, rows in df.groupby(list(_GROUP), sort=True):
        task, protocol, metric, split = (str(g) for g in group)
        tables.append(_table(rows, task, protocol, metric, split, models, datasets))
    return tables


def _table(
    rows: pd.DataFrame,
    task: str,
    protocol: str,
    metric: str,
    split: str,
    models: Sequence[str] | None,
    datasets: Sequence[str] | None,
) -> ComparisonTable:
    clash = rows[rows.duplicated(["model", "dataset"], keep=False)]
    if not clash.empty:
        first = clash.iloc[0]
        same = clash[clash.model.eq(first.model) & clash.dataset.eq(first.dataset)]
        shas = sorted({str(s)[:12] or "(none)" for s in same.get("checkpoint_sha256", [])})
        if len(shas) == 1:
            values = ", ".join(f"{v:g}" for v in same["value"])
            raise RecordError(
                f"model {first.model!r} has {len(same)} records for dataset {first.dataset!r} in "
                f"{task}/{protocol}/{metric}/{split} with one checkpoint ({values}: other seeds or a conflict); "
                "`mast-bench report` shows them aggregated, or as a conflict"
            )
        raise RecordError(
            f"model {first.model!r} has {len(same)} "
            f"results for dataset {first.dataset!r} in {task}/{protocol}/{metric}/{split} "
            f"(checkpoints {', '.join(shas)}); give each checkpoint its own model name or build the leaderboard "
            "from one run's records"
        )
    row_order = _order(rows["model"].unique(), models)
    col_order = _order(rows["dataset"].unique(), datasets)
    values = rows.pivot(index="model", columns="dataset", values="value").reindex(index=row_order, columns=col_order)
    values = values.astype(float)
    values[MEAN] = values[col_order].mean(axis=1, skipna=False)
    error_kind = next((k for k in ("std", "ci95") if rows[k].notna().any()), "")
    if error_kind:
        errors = rows.pivot(index="model", columns="dataset", values=error_kind)
        errors = errors.reindex(index=row_order, columns=col_order).astype(float)
    else:
        errors = pd.DataFrame(float("nan"), index=row_order, columns=col_order)
    values.columns.name = errors.columns.name = None
    return ComparisonTable(task, protocol, metric, split, values, errors, error_kind)


def short_labels(datasets: Sequence[str]) -> dict[str, str]:
    """Column labels without the prefix every dataset shares (``synthetic-shape`` → ``shape``)."""
    names = list(datasets)
    parts = [n.split("-") for n in names]
    shared = 0
    # Shared leading dash-separated words, always leaving at least one word of every name.
    while len(names) > 1 and all(len(p) > shared + 1 and p[shared] == parts[0][shared] for p in parts):
        shared += 1
    return {n: "-".join(p[shared:]) for n, p in zip(names, parts)}


def _order(present: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    present = [str(p) for p in present]
    first = [w for w in (wanted or ()) if w in present]
    return first + sorted(p for p in present if p not in first)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _tex_escape(text: str) -> str:
    out = text.replace("\\", "\\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("~", "\\textasciitilde{}").replace("^", "\\textasciicircum{}")
