"""Seeded episode draws, the class-size rules, and manifests that replay or refuse.

The manifest is the unit of replay: the same seed gives the same episodes, a written manifest read
back gives the same image identifiers and the same accuracies, and a manifest drawn from another
pool (other images, labels or splits) is refused with a one-line explanation. The class rules are
checked on pools built to trigger them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fewshot_fixtures import feature_pool

from mast_bench.downstream.fewshot.episodes import check_pool, draw_episodes, make_pool
from mast_bench.downstream.fewshot.heads import HEADS
from mast_bench.downstream.fewshot.manifest import manifest_sha256, read_manifest, write_manifest
from mast_bench.downstream.fewshot.scoring import episode_accuracies
from mast_bench.errors import ProtocolError


def _pool(sizes: list[int], dataset: str = "toy", content: str = ""):  # type: ignore[no-untyped-def]
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])
    ids = [f"img/{i:04d}.jpg" for i in range(len(labels))]
    return make_pool(dataset, ("train", "test"), ids, labels, [f"class{c}" for c in range(len(sizes))], content)


def _draw(pool, rule: str = "augself", ways: int = 5, shots: int = 5, queries: int = 16, episodes: int = 50,
          seed: int = 0):  # type: ignore[no-untyped-def]  # fmt: skip
    protocol = "augself" if rule == "augself" else "ericsson"
    return draw_episodes(pool, protocol=protocol, protocol_version="1", class_rule=rule, ways=ways, shots=shots,
                         queries=queries, episodes=episodes, seed=seed)  # fmt: skip


def test_same_seed_same_episodes_other_seed_other() -> None:
    pool = _pool([30] * 8)
    a, b, c = _draw(pool, seed=3), _draw(pool, seed=3), _draw(pool, seed=4)
    assert np.array_equal(a.support, b.support) and np.array_equal(a.query, b.query) and a.ids == b.ids
    assert not np.array_equal(a.pool_indices(pool)[0], c.pool_indices(pool)[0])


def test_episode_structure() -> None:
    pool = _pool([30] * 8)
    m = _draw(pool, episodes=40)
    s, q = m.pool_indices(pool)
    assert s.shape == (40, 5, 5) and q.shape == (40, 5, 16)
    for e in range(40):
        classes = pool.labels[s[e, :, 0]]
        assert len(set(classes.tolist())) == 5  # distinct ways
        assert [pool.classes[c] for c in classes] == list(m.classes[e])
        for w in range(5):
            assert (pool.labels[s[e, w]] == classes[w]).all() and (pool.labels[q[e, w]] == classes[w]).all()
            both = np.concatenate([s[e, w], q[e, w]])
            assert len(set(both.tolist())) == 21  # large class: support and queries all distinct
    # Every class gets used, roughly uniformly (40 episodes x 5 ways over 8 classes = 25 each).
    counts = np.bincount(pool.labels[s[:, :, 0]].ravel(), minlength=8)
    assert counts.min() > 10


def test_manifest_round_trip_replays_the_same_accuracies(tmp_path: Path) -> None:
    x, y = feature_pool(8, 25, 32)
    pool = make_pool("mix", ("all",), [f"f{i}" for i in range(len(y))], y, [f"c{c}" for c in range(8)])
    m = _draw(pool, episodes=30)
    path, sha = write_manifest(tmp_path / "m.json", m)
    assert sha == manifest_sha256(path)
    back = read_manifest(path)
    assert back.ids == m.ids and back.classes == m.classes and back.decisions == m.decisions
    assert set(back.ids) <= set(pool.ids)
    small = _draw(pool, episodes=1)
    assert len(small.ids) == 5 * 21 and set(small.ids) < set(pool.ids)  # only the images used are named
    s0, q0 = m.pool_indices(pool)
    s1, q1 = back.pool_indices(pool)
    assert np.array_equal(s0, s1) and np.array_equal(q0, q1)
    feats = torch.from_numpy(x)
    for head in HEADS.values():
        assert np.array_equal(episode_accuracies(feats, s0, q0, head), episode_accuracies(feats, s1, q1, head))
    raw = json.loads(path.read_text())
    assert raw["pool"]["fingerprint"] == pool.fingerprint and raw["seed"] == 0
    assert raw["protocol"] == {"name": "augself", "version": "1", "class_rule": "augself"}
    assert (raw["ways"], raw["shots"], raw["queries"], raw["episodes"]) == (5, 5, 16, 30)


def test_replay_uses_identifiers_not_positions() -> None:
    # The same images listed in another order (another machine's directory listing) is the same pool
    # only if the fingerprint agrees; identifiers, not positions, carry the episodes.
    pool = _pool([25] * 6)
    m = _draw(pool, episodes=5)
    s, _ = m.pool_indices(pool)
    assert [pool.ids[i] for i in s[0, 0]] == [m.ids[i] for i in m.support[0, 0]]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("labels", "another pool"),
        ("content", "another pool"),
        ("dataset", "was drawn from dataset 'toy', not 'other'"),
    ],
)
def test_manifest_from_another_pool_is_refused(tmp_path: Path, change: str, why: str) -> None:
    pool = _pool([25] * 6)
    path, _ = write_manifest(tmp_path / "m.json", _draw(pool, episodes=5))
    m = read_manifest(path)
    if change == "labels":
        other = make_pool("toy", pool.splits, pool.ids, pool.labels[::-1].copy(), pool.classes)
    elif change == "content":
        other = _pool([25] * 6, content="sha-of-edited-images")
    else:
        other = _pool([25] * 6, dataset="other")
    with pytest.raises(ProtocolError, match=why) as exc:
        check_pool(m, other, path)
    assert "\n" not in str(exc.value)
    if change != "dataset":
        assert f"its fingerprint is {pool.fingerprint[:12]}, this copy's pool (150 images, splits train+test) is " \
               f"{other.fingerprint[:12]}" in str(exc.value)  # fmt: skip
        assert "omit --manifest to draw new episodes" in str(exc.value)


def test_malformed_manifests_are_one_line_errors(tmp_path: Path) -> None:
    pool = _pool([25] * 6)
    path, _ = write_manifest(tmp_path / "m.json", _draw(pool, episodes=5))
    raw = json.loads(path.read_text())
    raw["support"] = raw["support"][:-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ProtocolError, match=r"is malformed \(episode arrays do not match its header\)"):
        read_manifest(bad)
    bad.write_text("{}")
    with pytest.raises(ProtocolError, match=r"is not a mast-bench episode manifest"):
        read_manifest(bad)
    with pytest.raises(ProtocolError, match=r"does not exist"):
        read_manifest(tmp_path / "missing.json")


def test_refuse_rule_names_the_small_classes() -> None:
    pool = _pool([30, 30, 30, 30, 30, 12, 19])
    with pytest.raises(ProtocolError) as exc:
        _draw(pool, rule="refuse", shots=5, queries=15)
    assert str(exc.value) == (
        "protocol 'ericsson' has no rule for classes with fewer than K + Q = 5 + 15 = 20 images, and 2 classes of "
        "'toy' have fewer (class5, class6; smallest 12): use fewer --shots or --queries, or --protocol augself "
        "(drops classes with <= K images, draws queries with replacement)"
    )
    m = _draw(pool, rule="refuse", shots=2, queries=10)  # 12 images suffice for K + Q = 12
    assert m.decisions["dropped_classes"] == [] and m.decisions["usable_classes"] == 7


def test_augself_rule_drops_and_replaces_and_records() -> None:
    # class5 has exactly K = 5 images (dropped: AugSelf keeps classes with more than K), class6 has 9 < K + Q.
    pool = _pool([40, 40, 40, 40, 40, 5, 9])
    m = _draw(pool, rule="augself", shots=5, queries=16, episodes=200)
    assert m.decisions["dropped_classes"] == ["class5"]
    assert m.decisions["query_replacement_classes"] == ["class6"]
    assert m.decisions["usable_classes"] == 6
    s, q = m.pool_indices(pool)
    assert 5 not in pool.labels[s[:, :, 0]]
    small = np.argwhere(pool.labels[s[:, :, 0]] == 6)
    assert len(small) > 0
    for e, w in small:
        support, queries = set(s[e, w].tolist()), q[e, w]
        assert not support & set(queries.tolist())  # queries come from the class's other 4 images
        assert len(set(queries.tolist())) <= 4  # 16 queries from 4 images: with replacement
        assert len(support) == 5


def test_more_ways_than_classes_and_one_class_pools() -> None:
    with pytest.raises(ProtocolError, match=r"^--ways 5 needs 5 classes, but the pool of 'toy' has 3 usable classes"):
        _draw(_pool([30, 30, 30]), ways=5)
    one = r"^the pool of 'toy' has 1 usable class \(class0\) under protocol 'augself' with K = 5; few-shot episodes "
    with pytest.raises(ProtocolError, match=one + "need at least 2 classes$"):
        _draw(_pool([30]), ways=2)
    # A second class that the rule drops leaves one usable class: the same error, naming what is left.
    dropped = r"has 1 usable class \(class0\) .* with K = 5 \(1 classes with <= 5 images dropped\); few-shot "
    with pytest.raises(ProtocolError, match=dropped + "episodes need at least 2 classes$"):
        _draw(_pool([30, 3]), ways=2)
    with pytest.raises(ProtocolError, match=r"episodes need at least 2 ways, 1 shot and 1 query; got 1, 5, 16"):
        _draw(_pool([30] * 3), ways=1)
