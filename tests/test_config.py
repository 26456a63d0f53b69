"""Strict recipe loading: unknown keys, types, overrides, freezing, defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mast_bench.config import ConfigError, Recipe, dump_yaml, load_recipe, parse_override, to_dict

REPO = Path(__file__).resolve().parent.parent


def test_defaults_come_from_one_place() -> None:
    r = load_recipe(None)
    assert r == Recipe()
    assert r.method.sim_coeff == 25.0 and r.method.std_coeff == 25.0 and r.method.cov_coeff == 1.0
    assert r.optim.base_lr == 0.2 and r.optim.weight_decay == 1e-6


def test_unknown_top_level_key_names_key_and_closest(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("modle:\n  backbone: resnet18\n")
    with pytest.raises(ConfigError) as exc:
        load_recipe(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: unknown key 'modle'; did you mean 'model'?")
    assert "valid keys here: name, model, method" in msg


def test_misspelt_nested_key_names_dotted_path(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("optim:\n  base_lrr: 0.3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim.base_lrr'; did you mean 'base_lr'\?"):
        load_recipe(p)


def test_deeply_nested_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'method.mast.sparsity'; did you mean 'sparsity_coeff'\?"):
        load_recipe({"method": {"mast": {"sparsity": 0.1}}})


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"run": {"epochs": "ten"}}, "run.epochs: expected an integer, got 'ten'"),
        ({"run": {"epochs": 1.5}}, "run.epochs: expected an integer, got 1.5"),
        ({"run": {"epochs": True}}, "run.epochs: expected an integer, got True"),
        ({"optim": {"base_lr": "x"}}, "optim.base_lr: expected a number, got 'x'"),
        ({"optim": {"name": "adam"}}, "optim.name: 'adam' is not one of ['lars', 'sgd', 'adamw'] (closest: 'adamw')"),
        ({"method": {"mast": {"masks": "yes"}}}, "method.mast.masks: expected true/false, got 'yes'"),
        ({"model": {"projector": 8}}, "model.projector: expected a list, got 8"),
        ({"model": {"projector": [8, "a"]}}, "model.projector[1]: expected an integer, got 'a'"),
        ({"augment": {"crop_scale": [0.1]}}, "augment.crop_scale: expected a list of 2 items, got 1"),
        ({"model": 3}, "model: expected a mapping for section ModelConfig, got 3"),
    ],
)
def test_type_errors(tree: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_recipe(tree)
    assert str(exc.value) == message


def test_int_accepted_for_float_and_lists_become_tuples() -> None:
    r = load_recipe({"optim": {"base_lr": 1}, "model": {"projector": [8, 8]}})
    assert r.optim.base_lr == 1.0 and isinstance(r.optim.base_lr, float)
    assert r.model.projector == (8, 8)


def test_frozen() -> None:
    r = load_recipe(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.run.epochs = 3  # type: ignore[misc]


def test_overrides_are_type_checked_like_files() -> None:
    r = load_recipe({"run": {"epochs": 5}}, ["run.epochs=7", "model.projector=[16, 16]", "method.mast.masks=false"])
    assert r.run.epochs == 7 and r.model.projector == (16, 16) and r.method.mast.masks is False
    with pytest.raises(ConfigError, match=r"--set run.epoch=3: unknown key 'run.epoch'; did you mean 'epochs'\?"):
        load_recipe(None, ["run.epoch=3"])
    with pytest.raises(ConfigError, match=r"run.epochs: expected an integer, got 'many'"):
        load_recipe(None, ["run.epochs=many"])
    with pytest.raises(ConfigError, match=r"--set run=3: 'run' is a section; set one of its keys"):
        load_recipe(None, ["run=3"])
    with pytest.raises(ConfigError, match=r"expected key.path=value"):
        parse_override("run.epochs")


def test_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_recipe(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping, got list"):
        load_recipe(lst)


def test_dump_round_trip() -> None:
    r = load_recipe({"name": "x", "run": {"epochs": 3}, "model": {"projector": [4, 4]}})
    assert load_recipe(__import__("yaml").safe_load(dump_yaml(r))) == r
    assert to_dict(r)["model"]["projector"] == [4, 4]


@pytest.mark.parametrize("path", sorted((REPO / "pretrain").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path: Path) -> None:
    r = load_recipe(path)
    assert r.name != "unnamed"
