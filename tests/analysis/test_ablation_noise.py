"""The ablation table marks a variant as best only where it beats the runner-up beyond the seed noise, and an
ablation folder never mixes runs of two suites."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import ttest_ind

from mast_bench.analysis.ablation import _check_same_suite, clear_winners, render_markdown, summarise
from mast_bench.errors import DatasetError
from mast_bench.fileio import sha256_file


def _scores(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"variant": v, "seed": s, "task": t, "value": x}
         for v, per_task in values.items() for t, xs in per_task.items() for s, x in enumerate(xs)]
    )  # fmt: skip


def test_clear_winner_needs_a_significant_lead_over_the_runner_up() -> None:
    values = {
        "vicreg": {"synthetic-a": [50.0, 51.0, 52.0], "synthetic-b": [40.0, 45.0, 50.0]},
        "masks": {"synthetic-a": [60.0, 61.0, 62.0], "synthetic-b": [44.0, 49.0, 54.0]},
    }
    scores = _scores(values)
    winners = clear_winners(scores, ["vicreg", "masks"], ["synthetic-a", "synthetic-b"])
    # a: a lead of 10 with std 1 (p ≈ 3e-4); b: a lead of 4 with std 5 (p ≈ 0.38): noise, not bold;
    # mean over tasks per seed: 52, 55, 58 against 45, 48, 51 (p ≈ 0.046).
    assert ttest_ind([60, 61, 62], [50, 51, 52], equal_var=False).pvalue < 0.05
    assert ttest_ind([44, 49, 54], [40, 45, 50], equal_var=False).pvalue > 0.05
    assert winners == {"synthetic-a": "masks", "synthetic-b": None, "mean": "masks"}
    text = render_markdown(summarise(scores, ["vicreg", "masks"], ["synthetic-a", "synthetic-b"]),
                           ["synthetic-a", "synthetic-b"], "settings", winners)  # fmt: skip
    assert "| masks | **61.0 ± 1.0** | 49.0 ± 5.0 | **55.0 ± 3.0** |" in text
    assert "| vicreg | 51.0 ± 1.0 | 45.0 ± 5.0 | 48.0 ± 3.0 |" in text


def test_one_seed_marks_nothing() -> None:
    scores = _scores({"vicreg": {"synthetic-a": [50.0]}, "masks": {"synthetic-a": [90.0]}})
    assert clear_winners(scores, ["vicreg", "masks"], ["synthetic-a"]) == {"synthetic-a": None, "mean": None}


def test_ablation_folder_refuses_runs_of_another_suite(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablation"
    _check_same_suite(out, synthetic_root)
    marker = json.loads((out / "suite.json").read_text())
    assert marker == {"generator_version": 2, "manifest_sha256": sha256_file(synthetic_root / "manifest.json")}
    _check_same_suite(out, synthetic_root)  # the same suite again: accepted
    other = Path(shutil.copytree(synthetic_root, tmp_path / "other"))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["seed"] = 7  # any other suite: another manifest digest
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError) as exc:
        _check_same_suite(out, other)
    digest = sha256_file(other / "manifest.json")[:12]
    assert str(exc.value) == (
        f"{str(out)!r} holds ablation runs of another synthetic suite (generator version 2, manifest "
        f"{marker['manifest_sha256'][:12]}; this one: version 2, manifest {digest}); use a new --out"
    )
    assert json.loads((out / "suite.json").read_text()) == marker  # left as it was
