"""Reference values: the shipped files load with a source on every row; bad files are refused by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mast_bench.config import ConfigError
from mast_bench.results.references import COLUMNS, read_reference_dir, read_references

SHIPPED = Path(__file__).resolve().parents[2] / "results" / "reference"
HEADER = "model,label,task,dataset,protocol,metric,split,value,source,location,row,note"
ROW = "vicreg,VICReg,linear,imagenet,vicreg-linear,top1,val,73.2,VICReg README,pretrained models table,ResNet-50,"


def test_shipped_references_name_their_source():
    refs = read_reference_dir(SHIPPED)
    assert refs and all(r.source and r.location for r in refs)
    by = {(r.model, r.metric): r.value for r in refs}
    # The numbers as published (VICReg README; MoCo detection/README.md, VOC07+12 R50-C4).
    assert by[("vicreg", "top1")] == 73.2
    assert [by[("supervised-in1k", m)] for m in ("box_AP50", "box_AP", "box_AP75")] == [81.3, 53.5, 58.8]
    assert [by[("moco-v1-200ep", m)] for m in ("box_AP50", "box_AP", "box_AP75")] == [81.5, 55.9, 62.6]
    assert [by[("moco-v2-200ep", m)] for m in ("box_AP50", "box_AP", "box_AP75")] == [82.4, 57.0, 63.6]
    assert [by[("moco-v2-800ep", m)] for m in ("box_AP50", "box_AP", "box_AP75")] == [82.5, 57.4, 64.0]
    assert read_references(SHIPPED / "mast.csv") == []  # MAST's own rows ship empty


def test_shipped_ssl_transfer_values_fall_into_the_ericsson_tables():
    from mast_bench.results.layouts import load_layout

    refs = [r for r in read_reference_dir(SHIPPED) if r.file == "ssl-transfer.csv"]
    # The ssl-transfer readme.md: many-shot CIFAR10 (Table 1) and few-shot (Table 2) values, as printed there.
    assert {(r.model, r.dataset, r.protocol): r.value for r in refs} == {
        ("deepcluster-v2", "cifar10", "ericsson"): 94.07,
        ("supervised-in1k", "cifar10", "ericsson"): 91.47,
        ("deepcluster-v2", "eurosat", "ericsson-protonet-5way5shot"): 88.39,
        ("supervised-in1k", "chestx", "ericsson-protonet-5way50shot"): 32.34,
    }
    cells = {
        (c.task, c.dataset, c.protocol, c.split)
        for name in ("transfer-ericsson", "fewshot-ericsson")
        for c in load_layout(name).cell_columns
    }
    assert all((r.task, r.dataset, r.protocol, r.split) in cells for r in refs)


def _csv(tmp_path, text: str) -> Path:
    path = tmp_path / "refs.csv"
    path.write_text(text)
    return path


def test_columns_are_known():
    assert sorted(HEADER.split(",")) == sorted(COLUMNS)


def test_good_file(tmp_path):
    [ref] = read_references(_csv(tmp_path, f"{HEADER}\n{ROW}\n"))
    assert (ref.model, ref.value, ref.line, ref.file) == ("vicreg", 73.2, 2, "refs.csv")
    assert ref.citation == "VICReg README, pretrained models table, row ResNet-50"
    assert ref.selector() == ("linear", "imagenet", "vicreg-linear", "top1", "val")


def test_unknown_column_is_named_with_closest(tmp_path):
    path = _csv(tmp_path, HEADER.replace("source", "sourse") + "\n" + ROW + "\n")
    with pytest.raises(ConfigError) as info:
        read_references(path)
    assert str(info.value).startswith(f"{path}: unknown column 'sourse'; closest valid 'source' (columns: model, ")


def test_row_without_source_is_refused_by_line(tmp_path):
    no_source = ROW.replace("VICReg README", "")
    path = _csv(tmp_path, f"{HEADER}\n{ROW}\n{no_source.replace('vicreg,', 'x,', 1)}\n")
    with pytest.raises(ConfigError) as info:
        read_references(path)
    assert str(info.value) == f"{path}:3: no source (every reference value must name where it was published)"
    no_location = ROW.replace("pretrained models table", "")
    with pytest.raises(ConfigError, match=r":2: no location"):
        read_references(_csv(tmp_path, f"{HEADER}\n{no_location}\n"))
    no_row = ROW.replace("ResNet-50", "")
    with pytest.raises(ConfigError, match=r":2: no row \(every reference value must name where it was published\)"):
        read_references(_csv(tmp_path, f"{HEADER}\n{no_row}\n"))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROW.replace("73.2", "n/a"), ":2: value must be a finite number, got 'n/a'"),
        (ROW.replace("73.2", "inf"), ":2: value must be a finite number, got 'inf'"),
        (ROW.replace(",top1,", ",top-1,"), ":2: metric: unknown metric 'top-1'; closest valid 'top1'"),
        (
            ROW.replace(",imagenet,", ",imagenet1k,"),
            ":2: dataset: unknown dataset 'imagenet1k'; closest valid 'imagenet'",
        ),
        (ROW + ",extra", ":2: more fields than columns"),
    ],
)
def test_bad_rows(tmp_path, row, message):
    path = _csv(tmp_path, f"{HEADER}\n{row}\n")
    with pytest.raises(ConfigError) as info:
        read_references(path)
    assert str(info.value) == f"{path}{message}"


def test_missing_required_column_and_duplicates(tmp_path):
    header = HEADER.replace(",location", "")
    with pytest.raises(ConfigError, match=r"missing column\(s\) location"):
        read_references(_csv(tmp_path, header + "\n"))
    with pytest.raises(ConfigError, match=r":3: the same number is listed on line 2 already"):
        read_references(_csv(tmp_path, f"{HEADER}\n{ROW}\n{ROW.replace('73.2', '73.0')}\n"))
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.csv").write_text(f"{HEADER}\n{ROW}\n")
    (folder / "b.csv").write_text(f"{HEADER}\n{ROW}\n")
    with pytest.raises(ConfigError, match=r"b\.csv:2: the same number is listed in a\.csv:2"):
        read_reference_dir(folder)
    with pytest.raises(FileNotFoundError, match="reference folder"):
        read_reference_dir(tmp_path / "nope")
