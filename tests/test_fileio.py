"""Atomic writes leave nothing half-written; output folders are refused when they hold other files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mast_bench.fileio import OutputDirError, atomic_open, atomic_write_json, atomic_write_text, prepare_out_dir


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_uses_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644


def test_interrupted_write_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("good")
    with pytest.raises(KeyboardInterrupt), atomic_open(target, "w") as fh:
        fh.write("half")
        raise KeyboardInterrupt
    assert target.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_json_rejects_nan_without_touching_target(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    with pytest.raises(ValueError):
        atomic_write_json(target, {"x": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_out_dir_policy(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert prepare_out_dir(out) == out  # created
    prepare_out_dir(out)  # empty folder is fine
    (out / "keep.txt").write_text("precious")
    with pytest.raises(OutputDirError) as exc:
        prepare_out_dir(out)
    assert str(exc.value) == (
        f"output folder {str(out)!r} already exists and holds other files (keep.txt); "
        "choose another --out or pass --overwrite"
    )
    assert (out / "keep.txt").read_text() == "precious"
    prepare_out_dir(out, allowed=("keep.txt",))
    prepare_out_dir(out, overwrite=True)
    assert (out / "keep.txt").read_text() == "precious"  # overwrite deletes nothing up front


def test_out_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(OutputDirError, match="exists and is not a folder"):
        prepare_out_dir(f)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX only")
def test_unwritable_out_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    # chattr-free way to get an unwritable folder even as root: a path under a regular file.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(OutputDirError, match="cannot create output folder"):
        prepare_out_dir(blocker / "sub")
    ro.chmod(0o500)
    try:
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits")
        with pytest.raises(OutputDirError, match="is not writable"):
            prepare_out_dir(ro)
    finally:
        ro.chmod(0o700)
