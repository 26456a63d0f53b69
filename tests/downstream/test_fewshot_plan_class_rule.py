"""The few-shot plan applies the run's class-size rule to the listing's labels: a request none of whose K the
pool allows is refused before any feature is computed, with the reason the run would give."""

from __future__ import annotations

from pathlib import Path

import pytest
from downstream_fixtures import count_forwards, one_thread, tiny_backbone, tree
from fewshot_fixtures import make_eurosat

from mast_bench.downstream.contract import EvalRequest, execute, records_of
from mast_bench.downstream.fewshot import FewShotEvaluator, FewShotOptions
from mast_bench.downstream.fewshot.episodes import eligible_classes
from mast_bench.downstream.fewshot.pool import listed_pool
from mast_bench.errors import ProtocolError
from mast_bench.registry import DATASETS

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
# The synthetic suite's ``test`` size has 24 few-shot classes of 5 images: AugSelf's rule (the synthetic
# protocol's) drops classes with <= K images, so K = 5 leaves none.
ZERO_USABLE = (
    "the pool of 'synthetic-fewshot' has 0 usable classes (none) under protocol 'synthetic-fewshot' with K = 5 "
    "(24 classes with <= 5 images dropped); few-shot episodes need at least 2 classes"
)


def _request(root: Path, cache: Path, backbone=None, **options) -> EvalRequest:  # type: ignore[no-untyped-def]
    return EvalRequest(backbone or tiny_backbone(), "tiny", "synthetic-fewshot", root, "synthetic-fewshot",
                       FewShotOptions(**options), verify=False, progress=False, cache_dir=cache)  # fmt: skip


def test_listed_pool_has_the_class_sizes_of_the_features_pool(synthetic_root: Path) -> None:
    info = DATASETS.get("synthetic-fewshot")
    pool = listed_pool(info, synthetic_root, ("all",))
    assert pool is not None and len(pool.classes) == 24 and len(pool.labels) == 24 * 5
    assert sorted(len(ix) for ix in pool.members().values()) == [5] * 24
    with pytest.raises(ProtocolError) as exc:
        eligible_classes(pool, "augself", "synthetic-fewshot", 5, 5, 16)
    assert str(exc.value) == ZERO_USABLE


def test_a_k_no_class_allows_is_refused_at_plan_before_any_feature(synthetic_root: Path, tmp_path: Path) -> None:
    backbone = tiny_backbone()
    request = _request(synthetic_root, tmp_path / "cache", backbone, shots=(5,), episodes=10)
    with pytest.raises(ProtocolError) as exc:
        FewShotEvaluator().plan(request)
    assert str(exc.value) == ZERO_USABLE and "\n" not in str(exc.value)
    with count_forwards(backbone.model) as calls, pytest.raises(ProtocolError, match="0 usable classes"):
        execute(FewShotEvaluator(), request, tmp_path / "rec")
    assert calls[0] == 0 and tree(tmp_path / "rec") == [] and not (tmp_path / "cache").exists()


def test_a_k_next_to_one_that_runs_is_planned_and_omitted_with_the_same_reason(
    synthetic_root: Path, tmp_path: Path
) -> None:
    request = _request(synthetic_root, tmp_path / "cache", shots=(1, 5), episodes=10)
    assert [c.skeleton.protocol for c in FewShotEvaluator().plan(request)] == [
        "synthetic-fewshot-logreg-5way1shot-q16e10s0",
        "synthetic-fewshot-logreg-5way5shot-q16e10s0",
    ]
    outcomes = execute(FewShotEvaluator(), request, tmp_path / "rec")
    assert [o.status for o in outcomes] == ["done", "omitted"] and outcomes[1].error == ZERO_USABLE
    assert len(records_of(outcomes)) == 1


def test_the_plan_uses_the_protocol_rule_on_an_official_copy(tmp_path: Path) -> None:
    root = make_eurosat(tmp_path / "data", per_class=4)  # 3 classes of 4 images
    ask = EvalRequest(tiny_backbone(), "t", "eurosat", root, "ericsson", FewShotOptions(ways=3, shots=(1,)))
    with pytest.raises(ProtocolError, match=r"^protocol 'ericsson' has no rule for classes with fewer than K \+ Q"):
        FewShotEvaluator().plan(ask)
    fits = EvalRequest(tiny_backbone(), "t", "eurosat", root, "ericsson",
                       FewShotOptions(ways=3, shots=(1,), queries=3))  # fmt: skip
    assert [c.skeleton.protocol for c in FewShotEvaluator().plan(fits)] == ["ericsson-protonet-3way1shot-q3e600s0"]
