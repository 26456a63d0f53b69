"""``--from`` resolution: a named format (``lightning:PREFIX`` included) or ``auto`` detection.

``auto`` asks every registered format whether it recognises the checkpoint. One specific match
wins; two specific matches are ambiguous and refused, naming both; a generic format (Lightning,
prefix inferred) is used only when no specific one matches. When nothing matches, the error
lists where ResNet weights were seen so the user can name the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mast_bench.convert.formats import SOURCE_FORMATS, SourceFormat
from mast_bench.convert.layout import iter_tensor_keys, trunk_prefixes
from mast_bench.errors import CheckpointError
from mast_bench.registry import CONVERTERS, UnknownNameError

OPTION_FORMATS = ("lightning",)


def parse_format(from_format: str) -> tuple[str, str | None]:
    """Split ``"lightning:model.backbone."`` into ``("lightning", "model.backbone.")``; validate the name."""
    name, sep, option = str(from_format).partition(":")
    if name not in SOURCE_FORMATS:
        raise UnknownNameError(
            f"unknown source format {name!r}; valid formats: {', '.join(SOURCE_FORMATS)} (and lightning:PREFIX)"
        )
    if sep and name not in OPTION_FORMATS:
        raise UnknownNameError(f"format {name!r} takes no ':' option; only lightning:PREFIX does")
    return name, (option if sep else None)


def _trunk_sightings(ckpt: Any) -> list[str]:
    """Where ResNet trunks appear: ``"<container>: 'prefix'"`` for every container holding one."""
    containers: dict[str, dict[str, Any]] = {}
    for where, key in iter_tensor_keys(ckpt):
        containers.setdefault(where, {})[key] = None
    seen = []
    for where, keys in containers.items():
        seen += [f"'{where or '<top level>'}' under {p!r}" for p in trunk_prefixes(keys)]
    return seen


def detect_format(ckpt: Any) -> tuple[SourceFormat, str]:
    """The format ``auto`` picks for ``ckpt`` and the evidence, or a CheckpointError saying why none."""
    formats = [factory() for _, factory in CONVERTERS.items()]
    matches = [(fmt, ev) for fmt in formats if (ev := fmt.detect(ckpt))]
    specific = [(f, e) for f, e in matches if not f.generic]
    if len(specific) > 1:
        listed = "; ".join(f"{f.name} ({e})" for f, e in specific)
        raise CheckpointError(f"cannot tell the format: the checkpoint matches {listed}; name one with --from")
    chosen = specific or matches
    if len(chosen) == 1:
        return chosen[0]
    if len(chosen) > 1:
        raise CheckpointError(f"cannot tell the format: matches {', '.join(f.name for f, _ in chosen)}")
    seen = _trunk_sightings(ckpt)
    if len(seen) > 1:
        raise CheckpointError(
            f"cannot tell the format: ResNet weights under {len(seen)} candidate prefixes ({'; '.join(seen)}); "
            "name the format with --from (for a custom layout re-save the chosen state dict, or use lightning:PREFIX "
            "on a Lightning file)"
        )
    top = list(ckpt)[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
    where = f"; ResNet weights seen in {seen[0]}" if seen else "; no ResNet weights found"
    raise CheckpointError(
        f"cannot tell the format of this checkpoint (top-level entries: {top}){where}. "
        f"Name it with --from, one of: {', '.join(SOURCE_FORMATS[1:])}"
    )


def resolve_format(ckpt: Any, from_format: str) -> tuple[SourceFormat, str | None, str]:
    """The format to read ``ckpt`` with, its option, and how it was chosen (for the report)."""
    name, option = parse_format(from_format)
    if name != "auto":
        return CONVERTERS.get(name)(), option, "given with --from"
    fmt, evidence = detect_format(ckpt)
    return fmt, None, f"auto-detected: {evidence}"
