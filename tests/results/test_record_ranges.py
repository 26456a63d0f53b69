"""Record values are range-checked per metric; the leaderboard says whether the copy was verified and which split."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fixtures.records import make_record

from mast_bench.cli import main
from mast_bench.errors import RecordError
from mast_bench.results.leaderboard import LEADERBOARD_COLUMNS, build_leaderboard
from mast_bench.results.records import metric_range, read_record, write_record


@pytest.mark.parametrize("metric", ["top1", "top5", "mean_per_class", "voc07_map", "AP", "AP50", "APs", "bbox_AP75"])
def test_a_percentage_beyond_100_is_refused_naming_the_field(metric: str) -> None:
    with pytest.raises(ValueError) as err:
        make_record(metric=metric, value=1e9)
    assert str(err.value) == (
        f"record field 'value' must lie in [0, 100] for metric {metric!r} (percent), got 1000000000.0"
    )
    with pytest.raises(ValueError, match=r"record field 'value' must lie in \[0, 100\]"):
        make_record(metric=metric, value=-0.5)
    assert make_record(metric=metric, value=100.0).value == 100.0 and make_record(metric=metric, value=0.0)


def test_uncertainty_of_a_percentage_is_bounded_too() -> None:
    with pytest.raises(ValueError, match=r"record field 'ci95' must be at most 100 for metric 'top1', got 250\.0"):
        make_record(ci95=250.0)


def test_per_class_scores_of_a_percentage_are_bounded_too() -> None:
    per_class = {"score": "recall", "support": [4, 4, 0], "values": [50.0, 1e9, None]}
    with pytest.raises(ValueError) as err:
        make_record(metric="top1", extra={"per_class": per_class})
    assert str(err.value) == (
        "record field 'extra.per_class.values[1]' must lie in [0, 100] for metric 'top1' (percent) or be null, "
        "got 1000000000.0"
    )
    # null: a class absent from test; 100.00000000000003: an 11-point AP summed in floating point
    ok = {"score": "recall", "support": [4, 4, 0, 3], "values": [50.0, 100.0, None, 100.00000000000003]}
    assert make_record(metric="top1", extra={"per_class": ok}).extra["per_class"] == ok


def test_metrics_without_a_known_range_are_not_bounded() -> None:
    assert metric_range("loss") is None and metric_range("top1") == (0.0, 100.0)
    assert make_record(metric="loss", value=1e9).value == 1e9


def test_a_record_file_with_an_impossible_value_is_refused_naming_the_file(tmp_path) -> None:
    path = write_record(tmp_path, make_record())
    data = json.loads(path.read_text())
    data["value"] = 1e9
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=rf"{path}: not a valid record file \(record field 'value' must lie in"):
        read_record(path)


def test_leaderboard_carries_the_verification_and_the_validation_split(tmp_path) -> None:
    drawn = {"source": "drawn-from-copy", "seed": 0, "n_val": 10}
    write_record(tmp_path / "r", make_record(dataset="cifar10", extra={"data_verified": False, "val_split": drawn}))
    write_record(
        tmp_path / "r",
        make_record(dataset="dtd", extra={"data_verified": True, "val_split": {"source": "official", "seed": None}}),
    )
    write_record(tmp_path / "r", make_record(dataset="pets", task="knn", selected={}, selected_on="none"))
    df = build_leaderboard(tmp_path / "r", tmp_path / "lb.csv")
    assert {"val_split", "data_verified"} <= set(LEADERBOARD_COLUMNS)
    rows = {r.dataset: (r.val_split, r.data_verified) for r in df.itertuples()}
    assert rows == {"cifar10": ("drawn-from-copy (seed 0)", "false"), "dtd": ("official", "true"), "pets": ("", "")}


def test_leaderboard_out_naming_a_folder_is_one_line_and_writes_nothing(tmp_path) -> None:
    write_record(tmp_path / "r", make_record())
    (tmp_path / "lb").mkdir()
    result = CliRunner().invoke(main, ["leaderboard", "--records", str(tmp_path / "r"), "--out", str(tmp_path / "lb")])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: --out {str(tmp_path / 'lb')!r} is a folder; name the CSV file to write, e.g. "
        f"{str(tmp_path / 'lb' / 'leaderboard.csv')!r}\n"
    )
    assert list((tmp_path / "lb").iterdir()) == []
