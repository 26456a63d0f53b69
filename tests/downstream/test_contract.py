"""The evaluator contract: plan, skip existing records (said so), run the rest, write records; the weights object."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from click.testing import CliRunner
from downstream_fixtures import count_forwards, evaluate_args, one_thread, register_fake, tiny_backbone, tree
from fixtures.convert_sources import mast_bench_case, save

from mast_bench.cli import main
from mast_bench.downstream.contract import (
    SKIP_MESSAGE,
    Cell,
    EvalRequest,
    Evaluator,
    EvalWeights,
    Omitted,
    execute,
    summarise,
)
from mast_bench.downstream.knn import evaluate_knn
from mast_bench.downstream.weights import RANDOM_INIT, as_weights
from mast_bench.errors import DatasetError
from mast_bench.models.backbones import BackboneSpec, build_backbone
from mast_bench.results.records import ResultRecord, read_record

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
BIG = "test-contract-blobs"  # a bank of 210 images: every k of the kNN protocol fits


@pytest.fixture(scope="module", autouse=True)
def _fakes() -> None:
    register_fake(BIG, {"train": 150, "val": 60, "test": 30})


@dataclass(frozen=True)
class CountOptions:
    value: float = 50.0
    cells: int = 3


class CountingEvaluator(Evaluator[CountOptions]):
    """Plans ``options.cells`` cells; remembers which cells ``run`` was given."""

    name = "counting"
    options_type = CountOptions

    def __init__(self, fail: bool = False, wrong: bool = False, omit: int | None = None) -> None:
        self.ran: list[list[str]] = []
        self.fail, self.wrong, self.omit = fail, wrong, omit

    def plan(self, request: EvalRequest[CountOptions]) -> list[Cell]:
        return [
            request.cell(task="count", protocol=f"p{i}", protocol_version="1", metric="top1")
            for i in range(request.options.cells)
        ]

    def run(self, request: EvalRequest[CountOptions], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        self.ran.append([c.skeleton.protocol for c in cells])
        if self.fail:
            raise DatasetError("the copy is broken")
        if self.wrong:
            return [cells[0].fill(1.0)]
        return [
            Omitted(c, "too small") if i == self.omit else c.fill(request.options.value, extra={"i": i})
            for i, c in enumerate(cells)
        ]


def _request(**kw) -> EvalRequest[CountOptions]:
    return EvalRequest(tiny_backbone(), "tiny", "some-data", None, "count", CountOptions(**kw))


def test_execute_writes_one_record_per_cell_with_the_weights_provenance(tmp_path) -> None:
    lines: list[str] = []
    outcomes = execute(CountingEvaluator(), _request(), tmp_path / "rec", echo=lines.append)
    assert [o.status for o in outcomes] == ["done"] * 3 and len(tree(tmp_path / "rec")) == 3
    rec = read_record(outcomes[0].path)
    assert rec == outcomes[0].record and rec.value == 50.0 and rec.extra == {"source_format": "test", "i": 0}
    assert (rec.model, rec.checkpoint_sha256, rec.backbone, rec.device) == ("tiny", "ab" * 32, "resnet_tiny", "cpu")
    assert rec.created and rec.code_version and rec.wall_time_s >= 0
    assert lines == [f"some-data p{i} top1 = 50.00 -> {o.path}" for i, o in enumerate(outcomes)]
    assert summarise(outcomes) == "3 cells: 3 done, 0 skipped (records exist), 0 failed"


def test_existing_records_are_skipped_and_said_so_and_only_missing_cells_run(tmp_path) -> None:
    first = execute(CountingEvaluator(), _request(), tmp_path / "rec")
    first[1].path.unlink()
    ev, lines = CountingEvaluator(), []
    outcomes = execute(ev, _request(value=70.0), tmp_path / "rec", echo=lines.append)
    assert ev.ran == [["p1"]]
    assert [o.status for o in outcomes] == ["skipped", "done", "skipped"]
    assert [o.record.value for o in outcomes] == [50.0, 70.0, 50.0]  # type: ignore[union-attr]
    assert lines[0] == f"some-data p0 top1: {SKIP_MESSAGE} -> {first[0].path}"
    assert SKIP_MESSAGE == "skipped (record exists; --redo to recompute)"
    assert summarise(outcomes) == "3 cells: 1 done, 2 skipped (records exist), 0 failed"
    redo = CountingEvaluator()
    execute(redo, EvalRequest(**{**_request(value=80.0).__dict__, "redo": True}), tmp_path / "rec")
    assert redo.ran == [["p0", "p1", "p2"]]
    assert {read_record(p).value for p in (tmp_path / "rec").iterdir()} == {80.0}


def test_a_failing_run_writes_nothing_and_keeps_existing_records(tmp_path) -> None:
    execute(CountingEvaluator(), _request(cells=1), tmp_path / "rec")
    before = {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()}
    with pytest.raises(DatasetError, match="the copy is broken"):
        execute(CountingEvaluator(fail=True), _request(cells=3), tmp_path / "rec")
    assert {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()} == before


def test_records_that_do_not_match_the_cells_are_refused(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="evaluator 'counting' returned results"):
        execute(CountingEvaluator(wrong=True), _request(), tmp_path / "rec")
    assert tree(tmp_path / "rec") == []


def test_omitted_cells_write_no_record_and_are_noted_and_counted(tmp_path) -> None:
    lines: list[str] = []
    outcomes = execute(CountingEvaluator(omit=1), _request(), tmp_path / "rec", echo=lines.append)
    assert [o.status for o in outcomes] == ["done", "omitted", "done"]
    assert sum(f.endswith(".record.json") for f in tree(tmp_path / "rec")) == 2
    assert "some-data p1 top1: omitted (too small)" in lines
    assert summarise(outcomes) == "3 cells: 2 done, 0 skipped (records exist), 1 omitted, 0 failed"
    note = outcomes[1].path
    assert note is not None and note.name.endswith(".omitted.json") and note.parent == tmp_path / "rec"
    # A re-run reports the omission without running anything, like an existing record ...
    again, lines = CountingEvaluator(omit=1), []
    outcomes = execute(again, _request(), tmp_path / "rec", echo=lines.append)
    assert again.ran == [] and [o.status for o in outcomes] == ["skipped", "omitted", "skipped"]
    assert lines[1] == f"some-data p1 top1: omitted (too small; noted earlier; --redo to recompute) -> {note}"
    # ... and --redo runs it again; once the data allow it, its record replaces the note.
    execute(CountingEvaluator(), EvalRequest(**{**_request().__dict__, "redo": True}), tmp_path / "rec")
    assert not note.exists() and len(tree(tmp_path / "rec")) == 3


def test_an_unusable_records_folder_is_refused_before_planning(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    ev = CountingEvaluator()
    with pytest.raises(Exception, match="cannot create output folder"):
        execute(ev, _request(), tmp_path / "file" / "rec")
    assert ev.ran == []


def test_weights_of_our_checkpoints_name_their_method(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "cache"))
    path = save(mast_bench_case().ckpt, tmp_path / "final.pt")
    for _ in range(2):  # converted, then read from the conversion cache: the method survives both
        w = EvalWeights.load(path)
        assert (w.method, w.source_format, w.path) == ("mast", "mast-bench", path)
        assert len(w.sha256) == 64 and w.spec.name == "resnet_tiny" and not w.model.training
    (tmp_path / "data").mkdir()
    [rec, *_] = evaluate_knn(
        w,
        BIG,
        tmp_path / "data",
        "synthetic-knn",
        tmp_path / "rec",
        "run",
        cache_dir=tmp_path / "features",
        progress=False,
    )
    assert rec.method == "mast" and rec.checkpoint_sha256 == w.sha256


def test_in_memory_weights_are_a_random_init_floor() -> None:
    spec = BackboneSpec("resnet_tiny", stem="small", widths=(8, 16, 32, 64))
    module, _ = build_backbone(spec)
    w = EvalWeights.from_module(module.train(), spec, "floor")
    assert (w.method, w.sha256, w.source_format, w.input_size) == (RANDOM_INIT, "", "in-memory", 32)
    assert not w.model.training
    from mast_bench.convert import LoadedBackbone

    assert as_weights(LoadedBackbone.from_module(module, spec, "floor")).method == RANDOM_INIT
    with pytest.raises(TypeError, match="expected EvalWeights or LoadedBackbone, got int"):
        as_weights(3)


def test_single_command_says_each_cell_was_skipped_without_touching_the_data(tmp_path, monkeypatch) -> None:
    from mast_bench.cli import evaluate_cmd

    backbone = tiny_backbone()
    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: backbone)
    (tmp_path / "data").mkdir()
    args = evaluate_args("knn", BIG, "synthetic-knn", tmp_path)
    first = CliRunner().invoke(main, [*args, "--data-root", str(tmp_path / "data")])  # a bank of 210: no k omitted
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in (tmp_path / "rec").iterdir()}
    with count_forwards(backbone.model) as calls:
        again = CliRunner().invoke(main, [*args, "--data-root", str(tmp_path / "nonexistent")])
    assert again.exit_code == 0, again.output
    lines = again.output.splitlines()
    assert [line.split(": ")[0] for line in lines[:4]] == [f"{BIG} synthetic-knn-k{k} top1" for k in (10, 20, 100, 200)]
    assert all(f": {SKIP_MESSAGE} -> " in line for line in lines[:4])
    assert lines[4] == "4 cells: 0 done, 4 skipped (records exist), 0 failed"
    assert calls[0] == 0 and {p: p.read_bytes() for p in (tmp_path / "rec").iterdir()} == before
    redo = CliRunner().invoke(main, [*args, "--data-root", str(tmp_path / "nonexistent"), "--redo"])
    assert redo.exit_code == 2 and "does not exist" in redo.output


def test_request_normalises_paths_and_weights() -> None:
    r = EvalRequest(tiny_backbone(), "m", "d", "some/where", "p", CountOptions(), cache_dir="c")  # type: ignore[arg-type]
    assert isinstance(r.weights, EvalWeights) and str(r.data_root) == "some/where" and str(r.cache_dir) == "c"
    with pytest.raises(RuntimeError, match="run it through execute"):
        r.records_dir()
    assert torch.is_tensor(next(r.weights.model.parameters()))
