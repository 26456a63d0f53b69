"""``reproduce``: the plan (reuse / run / cannot run, with reasons), running through the contract, rendering."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fixtures.convert_sources import mast_bench_case, save
from fixtures.records import make_record

from mast_bench.cli import main
from mast_bench.errors import DatasetError
from mast_bench.results import reproduce as reproduce_mod
from mast_bench.results.layouts import load_layout
from mast_bench.results.records import iter_records, write_record
from mast_bench.results.reproduce import Weights, parse_weights, plan_reproduction, reproduce

LAYOUT = """\
title: tiny
source: test
defaults: {task: linear, protocol: synthetic-linear, metric: top1, split: test, evaluator: linear}
columns:
  - {label: shape, dataset: synthetic-shape, data_folder: "."}
  - {label: colour, dataset: synthetic-colour, data_folder: "."}
  - {label: cifar, dataset: cifar10, protocol: ericsson}
  - {label: x, dataset: synthetic-shape, data_folder: ".", task: fewshot, protocol: synthetic-fewshot-logreg-5way1shot,
     evaluator: nope}
  - {label: mean, mean_of: [shape, colour]}
"""


@pytest.fixture
def setup(tmp_path, synthetic_root, monkeypatch):
    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "cache"))
    layout_file = tmp_path / "tiny.yaml"
    layout_file.write_text(LAYOUT)
    ckpt = save(mast_bench_case().ckpt, tmp_path / "mast.pt")
    [weights] = parse_weights([f"mast={ckpt}"])
    return load_layout(layout_file), weights, synthetic_root


def _statuses(plan):
    return {c.column.key: (c.status, c.detail) for c in plan.cells}


def test_plan_lists_what_runs_what_exists_and_why_not(setup, tmp_path):
    layout, weights, suite = setup
    plan = plan_reproduction(layout, [weights], suite, tmp_path / "records")
    status = _statuses(plan)
    assert status["shape"] == ("run", "") and status["colour"] == ("run", "")
    assert status["cifar"] == ("blocked", f"no data: {suite / 'cifar10'} is not a folder (cifar10)")
    assert status["x"] == (
        "blocked",
        "no evaluator 'nope' in this build (evaluators: " + ", ".join(reproduce_mod_evaluators()) + ")",
    )
    lines = plan.lines()
    assert lines[-1] == "4 cells: 0 exist, 2 to run, 2 cannot run"
    assert (
        f"  mast-bench evaluate linear --weights {weights.path} --model-name mast --dataset synthetic-shape "
        f"--data-root {suite} --protocol synthetic-linear --out {tmp_path / 'records'}"
    ) in lines
    assert not (tmp_path / "records").exists()  # planning writes nothing


def reproduce_mod_evaluators():
    from mast_bench.registry import EVALUATORS

    return EVALUATORS.names()


def test_existing_record_of_the_same_checkpoint_is_reused_another_checkpoint_is_not(setup, tmp_path):
    layout, weights, suite = setup
    records = tmp_path / "records"
    mine = write_record(records, make_record(model="mast", checkpoint_sha256=weights.sha256, value=50.0))
    write_record(records, make_record(model="mast", checkpoint_sha256="0" * 64, dataset="synthetic-colour"))
    status = _statuses(plan_reproduction(layout, [weights], suite, records))
    assert status["shape"] == ("exists", str(mine))
    assert status["colour"] == ("run", "")  # that record is of another checkpoint named "mast"


@pytest.mark.slow
def test_reproduce_runs_the_missing_cells_then_reuses_them(setup, tmp_path):
    layout, weights, suite = setup
    records, out = tmp_path / "records", tmp_path / "out"
    lines: list[str] = []
    result = reproduce(layout, [weights], suite, records, out, echo=lines.append)
    assert result.failures == []
    written = sorted(r.dataset for _, r in iter_records(records))
    assert written == ["synthetic-colour", "synthetic-shape"]
    table = (out / "tables" / "tiny.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| mast |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:5] == ["–", "–"]  # cifar (no data) and x (no evaluator) render as missing
    assert all(c[0].isdigit() for c in cells[1:3] + cells[5:6])
    assert sum(line.startswith("running: ") for line in lines) == 2
    again: list[str] = []
    reproduce(layout, [weights], suite, records, out, echo=again.append)
    assert not any(line.startswith("running: ") for line in again)
    assert again[-1] == "4 cells: 2 exist, 0 to run, 2 cannot run"
    assert (out / "tables" / "tiny.md").read_text() == table


def test_dry_run_writes_nothing(setup, tmp_path):
    layout, weights, suite = setup
    result = reproduce(layout, [weights], suite, tmp_path / "records", tmp_path / "out", dry_run=True)
    assert result.outputs is None and result.plan.counts() == {"exists": 0, "run": 2, "blocked": 2}
    assert not (tmp_path / "records").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_failing_request_is_reported_and_the_others_run(setup, tmp_path, monkeypatch):
    layout, weights, suite = setup
    real = reproduce_mod.build_request

    def failing(job, **kw):
        if job.column.dataset == "synthetic-colour":
            raise DatasetError("synthetic-colour: truncated copy")
        return real(job, **kw)

    plan = plan_reproduction(layout, [weights], suite, tmp_path / "records", check=lambda job: "")
    monkeypatch.setattr(reproduce_mod, "build_request", failing)
    failures = reproduce_mod.run_plan(plan)
    assert failures == ["mast linear synthetic-colour: synthetic-colour: truncated copy"]
    assert [r.dataset for _, r in iter_records(tmp_path / "records")] == ["synthetic-shape"]


def test_parse_weights_errors(tmp_path):
    with pytest.raises(ValueError, match=r"--weights must be NAME=PATH, got 'x\.pt'"):
        parse_weights(["x.pt"])
    with pytest.raises(FileNotFoundError, match=r"weights file '.*nope\.pt' \(for 'a'\) does not exist"):
        parse_weights([f"a={tmp_path / 'nope.pt'}"])
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    with pytest.raises(ValueError, match="the name 'a' is given twice"):
        parse_weights([f"a={f}", f"a={f}"])
    [w] = parse_weights([f"a={f}"])
    assert isinstance(w, Weights) and len(w.sha256) == 64


def test_cli_list_and_bad_input(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(main, ["reproduce", "--list"])
    assert listed.exit_code == 0 and "voc-detection" in listed.output and "imagenet" in listed.output
    unknown = runner.invoke(main, ["reproduce", "imagenett", "--weights", "a=b", "--data-root", str(tmp_path)])
    assert unknown.exit_code == 2 and "Error: unknown table 'imagenett'; closest valid 'imagenet'" in unknown.output
    no_weights = runner.invoke(main, ["reproduce", "imagenet", "--data-root", str(tmp_path)])
    assert no_weights.exit_code == 2 and "--weights" in no_weights.output
    bad = runner.invoke(main, ["reproduce", "imagenet", "--weights", "oops", "--data-root", str(tmp_path)])
    assert bad.exit_code == 2 and "--weights must be NAME=PATH, got 'oops'" in bad.output
    missing = runner.invoke(main, ["reproduce", "imagenet", "--weights", f"a={tmp_path / 'x.pt'}",
                                   "--data-root", str(tmp_path)])  # fmt: skip
    assert missing.exit_code == 2 and "Error: weights file" in missing.output


def test_cli_dry_run_on_a_shipped_table(setup, tmp_path):
    _, weights, suite = setup
    result = CliRunner().invoke(
        main,
        ["reproduce", "mast-ablation", "--weights", f"mast={weights.path}", "--data-root", str(suite),
         "--records", str(tmp_path / "r"), "--dry-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mast-ablation: MAST ablation (synthetic suite)\n")
    assert "  mast | shape: run\n" in result.output
    assert result.output.rstrip().endswith("5 cells: 0 exist, 5 to run, 0 cannot run")
    assert not (tmp_path / "r").exists()


def test_dry_run_commands_carry_device_and_no_verify(setup, tmp_path):
    _, weights, suite = setup
    args = ["reproduce", "mast-ablation", "--weights", f"mast={weights.path}", "--data-root", str(suite),
            "--records", str(tmp_path / "r"), "--dry-run"]  # fmt: skip
    plain = CliRunner().invoke(main, args)
    chosen = CliRunner().invoke(main, [*args, "--device", "cpu", "--no-verify"])
    assert plain.exit_code == chosen.exit_code == 0, chosen.output
    shape = (
        f"  mast-bench evaluate linear --weights {weights.path} --model-name mast --dataset synthetic-shape "
        f"--data-root {suite} --protocol synthetic-linear"
    )
    assert f"{shape} --device " in plain.output and "--no-verify" not in plain.output  # auto, resolved here
    assert f"{shape} --device cpu --no-verify --out {tmp_path / 'r'}\n" in chosen.output
