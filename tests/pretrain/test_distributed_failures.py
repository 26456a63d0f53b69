"""Bad input under torchrun: every rank stops with the same one-line message, nothing hangs, nothing is written."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mast_bench.config import ConfigError
from mast_bench.pretrain.data import EpochBatchSampler
from mast_bench.pretrain.distributed import DistEnv, raise_if_any_failed

sys.path.insert(0, str(Path(__file__).parent))
from test_throughput_switches import _recipe, pool  # noqa: F401  (registers the test pool; fixture)

HANG_LIMIT_S = 180  # far above the few seconds a clean stop takes on a loaded 2-core machine


def test_global_batch_must_divide_by_world_size() -> None:
    with pytest.raises(ConfigError) as exc:
        EpochBatchSampler(32, 10, 0, DistEnv(rank=0, world_size=3))
    assert str(exc.value) == "run.batch_size (10) must divide by the number of processes (3)"


def test_single_process_raises_its_own_error_unchanged() -> None:
    raise_if_any_failed(None)
    error = ConfigError("bad")
    with pytest.raises(ConfigError) as exc:
        raise_if_any_failed(error)
    assert exc.value is error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, roots: list[str], overrides: list[str], out: str, report: str) -> None:
    """One torchrun-like rank: its environment, then the library call; the outcome goes to a JSON file."""
    from mast_bench.pretrain.run import pretrain

    os.environ.update(
        WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    try:
        pretrain(_recipe(*overrides), Path(out), data_root=roots[rank], progress=False)
        result = {"ok": True}
    except Exception as exc:
        result = {"ok": False, "type": type(exc).__name__, "message": str(exc)}
    Path(report, f"rank{rank}.json").write_text(json.dumps(result))


def _two_ranks(tmp_path: Path, roots: list[str], overrides: list[str]) -> list[dict]:
    ctx = mp.start_processes(
        _rank,
        args=(_free_port(), roots, overrides, str(tmp_path / "out"), str(tmp_path)),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + HANG_LIMIT_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the ranks did not stop within {HANG_LIMIT_S} s (a hang)")
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_data_root_missing_on_one_rank_stops_every_rank(pool: Path, tmp_path: Path) -> None:  # noqa: F811
    missing = tmp_path / "not-mounted"
    results = _two_ranks(tmp_path, [str(pool), str(missing)], [])
    expected = (
        f"rank 1 of 2: data root {str(missing)!r} for dataset 'throughput-test-pool' does not exist "
        "(expected layout: <root>/images/*.png)"
    )
    assert results == [{"ok": False, "type": "DatasetError", "message": expected}] * 2
    assert not (tmp_path / "out").exists()  # the output folder is created only once every rank checked out


@pytest.mark.slow
def test_batch_not_divisible_by_world_size_stops_every_rank(pool: Path, tmp_path: Path) -> None:  # noqa: F811
    results = _two_ranks(tmp_path, [str(pool)] * 2, ["run.batch_size=9"])
    expected = "run.batch_size (9) must divide by the number of processes (2)"  # the same on every rank
    assert results == [{"ok": False, "type": "ConfigError", "message": expected}] * 2
    assert not (tmp_path / "out").exists()
