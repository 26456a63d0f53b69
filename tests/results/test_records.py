"""Result records: round trip, cell identity, validation, and the errors a bad file gets."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest
from fixtures.records import make_record

from mast_bench.errors import RecordError
from mast_bench.results.records import (
    KEY_FIELDS,
    RECORD_SUFFIX,
    SCHEMA_VERSION,
    ResultRecord,
    created_datetime,
    iter_records,
    read_record,
    record_path,
    write_record,
)


def test_round_trip_stamps_provenance_and_writes_one_file(tmp_path):
    rec = make_record(std=0.5, extra={"n_train": 120})
    path = write_record(tmp_path, rec)
    assert path == record_path(tmp_path, rec)
    assert path.name.endswith(RECORD_SUFFIX)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    back = read_record(path)
    assert back.created and created_datetime(back.created) is not None
    assert back.code_version.startswith("0.")
    assert dataclasses.replace(back, created="", code_version="") == rec
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["seeds"] == [0]
    assert on_disk["selected_on"] == "val"


def test_rewrite_of_same_cell_replaces_file(tmp_path):
    first = write_record(tmp_path, make_record(value=10.0))
    second = write_record(tmp_path, make_record(value=20.0))
    assert first == second
    assert read_record(second).value == 20.0
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("field_name", KEY_FIELDS)
def test_every_identifying_field_changes_the_key(field_name):
    rec = make_record()
    changed = dataclasses.replace(rec, **{field_name: getattr(rec, field_name) + "x"})
    assert changed.key() != rec.key()


def test_measurement_fields_do_not_change_the_key():
    rec = make_record()
    other = dataclasses.replace(rec, value=1.0, std=2.0, wall_time_s=3.0, created="2024-01-01T00:00:00+00:00")
    assert other.key() == rec.key()


def test_random_floor_has_empty_checkpoint_hash():
    rec = make_record(checkpoint_sha256="", model="random-init", method="random-init")
    assert rec.key().startswith("random-init__linear__synthetic-shape__synthetic-linear__top1__")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"selected_on": "test"}, "selected on the test split"),
        ({"value": float("nan")}, "finite number"),
        ({"value": float("inf")}, "finite number"),
        ({"value": True}, "finite number"),
        ({"value": "81.2"}, "finite number"),
        ({"model": ""}, "'model' must be a non-empty string"),
        ({"dataset": None}, "'dataset' must be a non-empty string"),
        ({"std": -1.0}, "'std' must be a finite number >= 0"),
        ({"ci95": float("nan")}, "'ci95' must be a finite number >= 0"),
        ({"seeds": (0, "1")}, "'seeds' must hold integers"),
        ({"selected": [("C", 1.0)]}, "'selected' must be a mapping"),
        ({"created": "yesterday"}, "ISO-8601"),
        ({"wall_time_s": -2}, "'wall_time_s' must be a number >= 0"),
    ],
)
def test_invalid_fields_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        make_record(**kw)


def test_from_dict_refuses_unknown_missing_and_other_versions():
    d = make_record().to_dict()
    with pytest.raises(ValueError, match="unknown fields: accuracy"):
        ResultRecord.from_dict({**d, "accuracy": 1})
    with pytest.raises(ValueError, match="missing fields: metric, value"):
        ResultRecord.from_dict({k: v for k, v in d.items() if k not in ("metric", "value")})
    with pytest.raises(ValueError, match=r"schema_version 99 is newer than this mast-bench reads \(1\); upgrade"):
        ResultRecord.from_dict({**d, "schema_version": 99})
    with pytest.raises(ValueError, match="schema_version 0 is not supported"):
        ResultRecord.from_dict({**d, "schema_version": 0})
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        ResultRecord.from_dict([d])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"schema_version": 1, "model": "m"}', "missing fields"),
    ],
)
def test_read_record_names_the_bad_file(tmp_path, content, message):
    bad = tmp_path / f"bad{RECORD_SUFFIX}"
    bad.write_text(content)
    with pytest.raises(RecordError, match=message) as info:
        read_record(bad)
    assert str(info.value).startswith(f"{bad}: ")
    assert bad.read_text() == content  # reading never touches the file


def test_read_record_unreadable_bytes(tmp_path):
    bad = tmp_path / f"bin{RECORD_SUFFIX}"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecordError, match="cannot read record file"):
        read_record(bad)


def test_iter_records_finds_nested_records_and_ignores_other_json(tmp_path):
    a = write_record(tmp_path / "run-a", make_record(model="a"))
    b = write_record(tmp_path / "run-b" / "deep", make_record(model="b"))
    (tmp_path / "run-a" / "episodes.json").write_text("[1, 2, 3]")  # an episode manifest, not a record
    (tmp_path / "run-a" / f".{a.name}.123.tmp").write_text("{partial")  # an interrupted atomic write
    found = iter_records(tmp_path)
    assert [p for p, _ in found] == sorted([a, b])
    assert {r.model for _, r in found} == {"a", "b"}


def test_iter_records_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"records folder .* does not exist"):
        iter_records(tmp_path / "nope")


def test_created_datetime_treats_naive_stamps_as_utc():
    naive = created_datetime("2024-05-01T12:00:00")
    aware = created_datetime("2024-05-01T12:00:00+00:00")
    assert naive == aware and isinstance(naive, datetime)
    assert created_datetime("") is None
