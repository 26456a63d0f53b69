"""Ctrl-C in `pretrain` before the first checkpoint: the command it suggests really starts the run again."""

from __future__ import annotations

import shlex
from pathlib import Path

from click.testing import CliRunner

from mast_bench.cli import main
from mast_bench.errors import TrainingInterrupted
from mast_bench.pretrain import run

RECIPE = Path(__file__).resolve().parents[2] / "pretrain" / "vicreg_tiny_quick.yaml"


def test_an_interrupt_before_any_checkpoint_suggests_a_command_that_runs(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    calls: list[Path] = []

    def interrupted_early(cfg, out_dir, **kw):
        calls.append(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)  # what a run leaves before its first checkpoint
        (out_dir / "recipe.yaml").write_text("name: x\n")
        (out_dir / "log.jsonl").write_text('{"event": "start"}\n')
        raise TrainingInterrupted(
            "interrupted at epoch 1 step 2; no checkpoint had been written yet, so start the run again"
        )

    monkeypatch.setattr(run, "pretrain", interrupted_early)
    args = ["pretrain", str(RECIPE), "--set", "run.epochs=1", "--out", str(out), "--data-root", str(tmp_path)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 130
    advice = first.output.splitlines()[-1]
    assert advice == "Start again with: " + shlex.join(
        [
            "mast-bench",
            "pretrain",
            str(RECIPE),
            "--set=run.epochs=1",
            "--out",
            str(out),
            "--data-root",
            str(tmp_path),
            "--overwrite",
        ]
    )
    assert "Resume with" not in first.output

    # The suggested command gets past the output-folder check that refuses the same command without it.
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "already exists and holds other files" in refused.output
    again = CliRunner().invoke(main, shlex.split(advice.removeprefix("Start again with: "))[1:])
    assert again.exit_code == 130 and len(calls) == 2  # reached the training again (interrupted again)
