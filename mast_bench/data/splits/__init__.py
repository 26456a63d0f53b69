"""Validation splits, one concern per module, imported in one direction only:

- :mod:`.seeded`: the pure seeded rules (no files, no registry);
- :mod:`.files`: committed split files, their checksums, and per-copy generated files;
- :mod:`.resolve`: which split a protocol uses on a copy, and the ``train@P``/``val@P`` subsets.

The public names of all three are re-exported here.
"""

from mast_bench.data.splits.files import (
    REPO,
    SPLITS_DIR,
    committed_specs,
    generated_split,
    load_committed_split,
    verify_committed_splits,
    write_committed_splits,
)
from mast_bench.data.splits.resolve import (
    LabeledSubset,
    ValSplit,
    build_protocol_split,
    declared_rule,
    resolve_val_split,
)
from mast_bench.data.splits.seeded import (
    GENERATED,
    OFFICIAL,
    PROTOCOLS,
    SeededSplit,
    ValRule,
    ValSplits,
    augself_split,
    draw,
    ericsson_split,
    ericsson_val_split,
    protocol_split_names,
    seeded_val_split,
)

__all__ = [
    "GENERATED",
    "OFFICIAL",
    "PROTOCOLS",
    "REPO",
    "SPLITS_DIR",
    "LabeledSubset",
    "SeededSplit",
    "ValRule",
    "ValSplit",
    "ValSplits",
    "augself_split",
    "build_protocol_split",
    "committed_specs",
    "declared_rule",
    "draw",
    "ericsson_split",
    "ericsson_val_split",
    "generated_split",
    "load_committed_split",
    "protocol_split_names",
    "resolve_val_split",
    "seeded_val_split",
    "verify_committed_splits",
    "write_committed_splits",
]
