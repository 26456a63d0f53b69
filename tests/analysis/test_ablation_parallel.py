"""`mast-bench ablation --jobs N`: runs pretrained as parallel child processes give the same table as one process,
a failing child is named with its log, and `--recipe` picks the base recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mast_bench.analysis.ablation import RECIPES_DIR, run_ablation
from mast_bench.cli import main

TINY = ("run.epochs=1", "run.max_steps_per_epoch=1", "run.batch_size=8", "data.workers=0", "run.threads=1")
RECIPE = RECIPES_DIR / "mast_tiny_synthetic.yaml"


@pytest.mark.slow
def test_parallel_runs_give_the_same_table_as_one_process(synthetic_root: Path, tmp_path: Path) -> None:
    kwargs = dict(suite=synthetic_root, seeds=(0,), variants=("random-init", "vicreg", "masks+uncertainty"),
                  overrides=TINY, base_recipe=RECIPE, progress=False)  # fmt: skip
    one = run_ablation(tmp_path / "one", **kwargs)
    two = run_ablation(tmp_path / "two", jobs=2, threads=1, **kwargs)
    assert one.scores.equals(two.scores)
    assert one.markdown.split("Code ")[0] == two.markdown.split("Code ")[0]
    for name in ("vicreg-s0", "masks+uncertainty-s0"):
        assert (tmp_path / "two" / "runs" / name / "final.pt").is_file()
        assert (tmp_path / "two" / "logs" / f"{name}.log").is_file()
    assert not (tmp_path / "one" / "logs").exists()  # jobs=1 trains in this process
    # a second call finds every run finished: no child is started, the table is rebuilt from the records
    for log in (tmp_path / "two" / "logs").iterdir():
        log.unlink()
    again = run_ablation(tmp_path / "two", jobs=2, threads=1, **kwargs)
    assert again.scores.equals(two.scores) and not any((tmp_path / "two" / "logs").iterdir())


def test_a_failing_child_is_named_with_its_log(synthetic_root: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as exc:
        run_ablation(tmp_path / "out", suite=synthetic_root, seeds=(0,), variants=("vicreg",), jobs=2, progress=False,
                     overrides=(*TINY, "data.split=validation"), base_recipe=RECIPE)  # fmt: skip
    log = tmp_path / "out" / "logs" / "vicreg-s0.log"
    message = str(exc.value)
    assert message.startswith(f"ablation runs failed:\nvicreg-s0 (exit 2, {log}):\n")
    assert log.is_file() and "validation" in message  # the child's own error, from its log's last lines


def test_cli_recipe_and_jobs_options_are_validated(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["ablation", "--out", str(tmp_path / "o"), "--jobs", "0"])
    assert res.exit_code == 2 and "Invalid value for '--jobs'" in res.output
    res = runner.invoke(main, ["ablation", "--out", str(tmp_path / "o"), "--recipe", str(tmp_path / "none.yaml"),
                               "--suite-size", "test", "--variants", "vicreg"])  # fmt: skip
    assert res.exit_code != 0 and "none.yaml" in res.output
    assert not (tmp_path / "o").exists()  # refused before anything is written
