"""``evaluate detection`` launch options (--seeds, --ims-per-gpu, --dist-url): bad values get one line, exit 2,
and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.convert_sources import mast_bench_case, save

from mast_bench.cli import main

pytestmark = pytest.mark.detectron2
pytest.importorskip("detectron2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run", "--seeds", "0"], "Error: Invalid value for '--seeds': 0 is not in the range x>=1."),
        (["--dry-run", "--ims-per-gpu", "0"], "Error: Invalid value for '--ims-per-gpu': 0 is not in the range x>=1."),
        (
            ["--data-root", "{tmp}", "--num-gpus", "0", "--num-machines", "2"],
            "Error: Invalid value for --dist-url: must name machine 0, e.g. tcp://HOST:PORT, with --num-machines > 1",
        ),
    ],
)
def test_launch_options_refuse_bad_values(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAST_BENCH_CACHE", str(tmp_path / "cache"))
    weights = save(mast_bench_case().ckpt, tmp_path / "w.pt")
    out = tmp_path / "recs"
    argv = ["evaluate", "detection", "--weights", str(weights), "--task", "synthetic", "--out", str(out)]
    result = CliRunner().invoke(main, argv + [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.rglob("*"))
