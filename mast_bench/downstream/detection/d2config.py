"""Detectron2 configs: the defaults plus our keys, loading a pinned file strictly, and writing one out.

``MODEL.MAST_BENCH_RESNET`` (``BLOCKS``, ``WIDTHS``, ``STEM``) describes the trunk of
``build_mast_bench_resnet_fpn_backbone``; it is the only key we add. Loading goes through yacs'
``merge_from_file`` with ``allow_unsafe=False`` (plain YAML only): an unknown key is a ``KeyError`` naming it,
and ``_BASE_`` files are resolved relative to the file that names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mast_bench.config import ConfigError
from mast_bench.downstream.detection.requirement import require_detectron2


def base_config() -> Any:
    """Detectron2's default ``CfgNode`` with ``MODEL.MAST_BENCH_RESNET`` added (unfrozen)."""
    require_detectron2()
    from detectron2.config import CfgNode, get_cfg

    cfg = get_cfg()
    cfg.MODEL.MAST_BENCH_RESNET = CfgNode()
    cfg.MODEL.MAST_BENCH_RESNET.BLOCKS = [1, 1, 1, 1]
    cfg.MODEL.MAST_BENCH_RESNET.WIDTHS = [16, 32, 64, 128]
    cfg.MODEL.MAST_BENCH_RESNET.STEM = "small"
    return cfg


def load_config(path: str | Path) -> Any:
    """Load a Detectron2 YAML (a pinned task or a materialised config) over :func:`base_config`.

    Raises:
        ConfigError: the file is missing, names an unknown key, or a ``_BASE_`` cannot be resolved.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Detectron2 config {str(path)!r} not found")
    cfg = base_config()
    try:
        cfg.merge_from_file(str(path), allow_unsafe=False)
    except KeyError as exc:
        raise ConfigError(f"{path}: {exc.args[0] if exc.args else exc}") from None
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(f"{path}: cannot resolve the config or its _BASE_ ({exc})") from None
    return cfg


def get_key(cfg: Any, dotted: str) -> Any:
    """``cfg.A.B.C`` for ``"A.B.C"``."""
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def set_key(cfg: Any, dotted: str, value: Any) -> None:
    """Set ``cfg.A.B.C = value`` for an existing key ``"A.B.C"`` (a new key is a ``KeyError``)."""
    *parents, leaf = dotted.split(".")
    node = cfg
    for part in parents:
        node = getattr(node, part)
    if leaf not in node:
        raise KeyError(f"Non-existent config key: {dotted}")
    node[leaf] = value


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a ``CfgNode`` as ``{"A.B.C": value}`` (lists as tuples, for comparisons)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out
