"""The one checkpoint reader: it is the only torch.load, applies the version rule, loads strictly, feeds the caches."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import mast_bench
from mast_bench.checkpoints import FORMAT, check_format, load_checkpoint, load_strict, read_weights, safe_load
from mast_bench.convert.cache import read_entry
from mast_bench.errors import CheckpointError

PACKAGE = Path(mast_bench.__file__).parent


def _torch_load_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "torch"
    ]


def test_checkpoints_is_the_only_caller_of_torch_load() -> None:
    callers = {str(p.relative_to(PACKAGE)): lines for p in PACKAGE.rglob("*.py") if (lines := _torch_load_calls(p))}
    assert list(callers) == ["checkpoints.py"] and len(callers["checkpoints.py"]) == 1, callers


def _ckpt(**changes: object) -> dict:
    meta = {"method": "vicreg", "backbone": {}, "recipe": {}, "epoch": 1, "step": 2, "complete": True}
    return {"format": FORMAT, "format_version": 1, "backbone": {}, "projector": {}, "method_state": {}, "meta": meta,
            **changes}  # fmt: skip


@pytest.mark.parametrize("version", [0, 2, True, "1", None])
def test_version_rule_refuses_what_this_code_cannot_read(version: object) -> None:
    with pytest.raises(CheckpointError, match=rf"has format_version {version!r}; this code reads up to 1$"):
        check_format(_ckpt(format_version=version), "'x.pt'")


def test_version_rule_accepts_the_current_layout_and_names_missing_entries() -> None:
    assert check_format(_ckpt(), "'x.pt'")["format_version"] == 1
    broken = _ckpt()
    del broken["projector"], broken["meta"]["step"]
    with pytest.raises(CheckpointError, match=r"^checkpoint 'x.pt' lacks projector, meta.step$"):
        check_format(broken, "'x.pt'")


def test_load_checkpoint_round_trip_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    torch.save(_ckpt(backbone={"w": torch.arange(3.0)}), path)
    assert torch.equal(load_checkpoint(path)["backbone"]["w"], torch.arange(3.0))
    assert safe_load(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert safe_load(path, hash_file=False).sha256 == ""


def test_load_strict_names_every_leftover_key() -> None:
    module = nn.Linear(2, 3)
    state = {"weight": torch.zeros(3, 3), "extra": torch.zeros(1)}
    with pytest.raises(CheckpointError) as err:
        load_strict(module, state, "head")
    assert str(err.value) == (
        "head weights do not match the model: missing keys: bias; unexpected keys: extra; "
        "shape mismatch: weight (3, 3) vs (3, 2)"
    )
    good = {"weight": torch.ones(3, 2), "bias": torch.ones(3)}
    load_strict(module, good, "head")
    assert torch.equal(module.weight, good["weight"])


def test_an_unreadable_converted_weights_entry_is_a_cache_miss(tmp_path: Path) -> None:
    weights = tmp_path / "e.pth"
    weights.write_bytes(b"PK\x03\x04 not really a zip")  # intact sidecar digest, unreadable content
    weights.with_suffix(".json").write_text(
        json.dumps({"weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()})
    )
    with pytest.raises(CheckpointError):
        read_weights(weights)
    assert read_entry(weights) is None
