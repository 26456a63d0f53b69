"""Table layouts: every shipped layout loads; bad layouts name the problem and the closest valid name."""

from __future__ import annotations

import textwrap

import pytest

from mast_bench.config import ConfigError
from mast_bench.results.layouts import find_layout, list_layouts, load_layout, shipped_layouts
from mast_bench.results.vocabulary import vocabulary

SHIPPED = sorted(shipped_layouts())
# Kinds of table the harness promises a layout for.
REQUIRED = {
    "imagenet",
    "transfer-augself",
    "transfer-ericsson",
    "fewshot-augself",
    "fewshot-ericsson",
    "voc-detection",
    "coco-c4",
    "coco-fpn",
    "mast-ablation",
    "synthetic",
}


def test_every_table_kind_is_shipped():
    assert set(SHIPPED) >= REQUIRED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_layout_loads_with_known_names(name):
    layout = load_layout(name)
    vocab = vocabulary()
    assert layout.name == name and layout.title and layout.source
    assert layout.cell_columns
    for column in layout.cell_columns:
        assert column.task in vocab.tasks and column.dataset in vocab.datasets
        assert column.protocol in vocab.protocols and column.metric in vocab.metrics
        assert column.evaluator, f"{name}: column {column.key} says no evaluator for `reproduce`"
    for column in layout.columns:
        if column.is_mean:
            assert all(not layout.column(k).is_mean for k in column.mean_of)


def test_defaults_dataset_metric_and_groups():
    layout = load_layout("transfer-ericsson")
    by_label = {c.label: c for c in layout.columns}
    assert by_label["Aircraft"].metric == "mean_per_class"  # `metric: dataset` → the dataset's own
    assert by_label["CIFAR10"].metric == "top1"
    assert by_label["VOC2007"].metric == "voc07_map"
    assert by_label["mean"].mean_of[0] == "Aircraft" and len(by_label["mean"].mean_of) == 11
    imagenet = load_layout("imagenet")
    assert [c.key for c in imagenet.columns][:3] == ["Linear/top-1", "Linear/top-5", "Semi-sup. 1 %/top-1"]
    assert dict(imagenet.columns[2].options) == {"percent": 1}
    assert imagenet.columns[2].selector() == ("finetune", "imagenet", "vicreg-semisup-1pct", "top1", "val")


def _write(tmp_path, body: str):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """\
title: t
source: s
defaults: {task: linear, protocol: ericsson, split: test, evaluator: linear}
columns:
  - {label: A, dataset: cifar10, metric: top1}
"""


def test_user_layout_file_loads(tmp_path):
    layout = load_layout(_write(tmp_path, GOOD))
    assert layout.name == "mine"
    assert layout.columns[0].selector() == ("linear", "cifar10", "ericsson", "top1", "test")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("metric: top1", "metric: top-1", "columns[0].metric: unknown metric 'top-1'; closest valid 'top1'"),
        (
            "dataset: cifar10",
            "dataset: cifar-10",
            "columns[0].dataset: unknown dataset 'cifar-10'; closest valid 'cifar10'",
        ),
        ("protocol: ericson", None, "columns[0].protocol: unknown protocol 'ericson'; closest valid 'ericsson'"),
        ("task: linear", "task: linaer", "columns[0].task: unknown task 'linaer'; closest valid 'linear'"),
    ],
)
def test_unknown_names_are_named_with_closest(tmp_path, old, new, message):
    body = GOOD.replace(old, new) if new else GOOD.replace("protocol: ericsson", old)
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_layout(path)
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD.replace("title: t", "titel: t"), "unknown key 'titel'; did you mean 'title'?"),
        (GOOD.replace("metric: top1", "metrc: top1"), "unknown key 'columns[0].metrc'; did you mean 'metric'?"),
        (GOOD + "  - {label: m, mean_of: [B]}\n", "columns[1].mean_of: no cell column 'B'"),
        (
            GOOD + "  - {label: A, dataset: dtd, metric: top1}\n",
            "column keys must be unique (group/label), repeated: A",
        ),
        (GOOD.replace(", metric: top1", ""), "columns[0] ('A'): no metric (set it on the column or in defaults)"),
        ("title: t\ncolumns: []\n", "a layout needs at least one column"),
        (
            GOOD.replace("metric: top1", "metric: dataset").replace("cifar10", "coco2017"),
            "metric 'dataset' needs a registered dataset, 'coco2017' is not",
        ),
    ],
)
def test_bad_layouts(tmp_path, body, message):
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError, match=None) as info:
        load_layout(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_unknown_table_name_lists_shipped_and_closest():
    with pytest.raises(ConfigError) as info:
        find_layout("imagenett")
    text = str(info.value)
    assert text.startswith("unknown table 'imagenett'; closest valid 'imagenet'; shipped tables: ")
    assert all(name in text for name in SHIPPED)


def test_list_layouts_sorted():
    assert [layout.name for layout in list_layouts()] == SHIPPED
