"""Seeded few-shot episodes and the manifest that replays them.

A :class:`Pool` is the labelled images episodes are drawn from (identifiers, labels, class names) plus
its fingerprint. :func:`draw_episodes` applies the protocol's class-size rule, then draws N-way K-shot
Q-query episodes with a seeded NumPy generator (PCG64) and returns an :class:`EpisodeManifest`: the
identifiers of every support and query image, the pool fingerprint, the protocol, its parameters and
every decision the class rule took; :func:`check_pool` refuses a manifest drawn from another pool.
:mod:`.manifest` stores manifests as JSON and reads them back. Every head runs on the same manifest,
and a manifest replays the same episodes on any machine: nothing is redrawn.

Class rules (what a protocol does with small classes; see :mod:`.protocols`):

``refuse``
    Classes without images do not exist in a pool; a class with fewer than K + Q images is an error
    that names the classes (Ericsson's code has no rule for them).
``augself``
    Classes with ≤ K images are dropped; a class with fewer than K + Q images gets K shots and draws
    its Q queries with replacement from its remaining images (AugSelf ``FewShotBatchSampler``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mast_bench.errors import ProtocolError

_SHOW = 5  # class names quoted in an error


@dataclass(frozen=True)
class Pool:
    """The labelled images episodes are drawn from.

    Attributes:
        dataset: registry name.
        splits: the dataset splits pooled (in order).
        ids: one stable identifier per image (relative file path, or ``<split>/<index>`` for array data).
        labels: ``(P,)`` int64 class indices into ``classes``.
        classes: class names.
        fingerprint: hex digest of the identifiers, labels and (when known) the images' content.
    """

    dataset: str
    splits: tuple[str, ...]
    ids: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[str, ...]
    fingerprint: str

    def members(self) -> dict[int, np.ndarray]:
        """Class index → pool indices of its images (ascending), for every class with images."""
        order = np.argsort(self.labels, kind="stable")
        values, starts = np.unique(self.labels[order], return_index=True)
        return {int(c): ix for c, ix in zip(values, np.split(order, starts[1:]))}


def make_pool(
    dataset: str,
    splits: tuple[str, ...],
    ids: list[str] | tuple[str, ...],
    labels: Any,
    classes: list[str] | tuple[str, ...],
    content: str = "",
) -> Pool:
    """A :class:`Pool` with its fingerprint.

    Args:
        content: a digest of the images themselves (the feature cache's fingerprint of the copy), mixed
            into the fingerprint so that a changed image changes it; "" where unknown.

    Raises:
        ProtocolError: identifiers repeat, or the labels do not match the identifiers or the classes.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(ids):
        raise ProtocolError(f"pool of {dataset!r}: {len(ids)} images but {len(labels)} labels")
    if len(set(ids)) != len(ids):
        raise ProtocolError(f"pool of {dataset!r}: image identifiers repeat")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ProtocolError(f"pool of {dataset!r}: labels outside the {len(classes)} classes")
    h = hashlib.sha256()
    h.update(json.dumps([dataset, list(splits), list(classes), content]).encode())
    for i, y in zip(ids, labels.tolist()):
        h.update(f"{i}\t{y}\n".encode())
    return Pool(dataset, tuple(splits), tuple(ids), labels, tuple(classes), h.hexdigest())


@dataclass(frozen=True)
class EpisodeManifest:
    """N-way K-shot Q-query episodes drawn from one pool.

    Attributes:
        dataset, pool_fingerprint, pool_size, pool_splits: the pool they were drawn from.
        protocol, protocol_version, class_rule: what drew them.
        ways, shots, queries, seed: the draw's parameters; ``len(self)`` episodes.
        decisions: what the class rule did (dropped classes, classes whose queries repeat, ...).
        ids: the identifiers of every image used; ``support``/``query`` index into it.
        classes: ``(E, N)`` class names of each episode's ways (way order = label order).
        support: ``(E, N, K)`` indices into ``ids``; query: ``(E, N, Q)``.
    """

    dataset: str
    pool_fingerprint: str
    pool_size: int
    pool_splits: tuple[str, ...]
    protocol: str
    protocol_version: str
    class_rule: str
    ways: int
    shots: int
    queries: int
    seed: int
    decisions: dict[str, Any]
    ids: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]
    support: np.ndarray
    query: np.ndarray

    def __len__(self) -> int:
        return len(self.support)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's content as JSON-safe data (:mod:`.manifest` adds the format and version)."""
        return {
            "dataset": self.dataset,
            "pool": {"fingerprint": self.pool_fingerprint, "size": self.pool_size, "splits": list(self.pool_splits)},
            "protocol": {"name": self.protocol, "version": self.protocol_version, "class_rule": self.class_rule},
            "ways": self.ways,
            "shots": self.shots,
            "queries": self.queries,
            "episodes": len(self),
            "seed": self.seed,
            "decisions": self.decisions,
            "ids": list(self.ids),
            "classes": [list(c) for c in self.classes],
            "support": self.support.tolist(),
            "query": self.query.tolist(),
        }

    def pool_indices(self, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
        """``(support (E, N, K), query (E, N, Q))`` as indices into ``pool`` (checked by :func:`check_pool`)."""
        check_pool(self, pool)
        where = {i: n for n, i in enumerate(pool.ids)}
        table = np.array([where[i] for i in self.ids], dtype=np.int64)
        return table[self.support], table[self.query]


def _names(pool: Pool, cls: list[int]) -> str:
    shown = ", ".join(pool.classes[c] for c in cls[:_SHOW])
    return shown + (f" and {len(cls) - _SHOW} more" if len(cls) > _SHOW else "")


def eligible_classes(
    pool: Pool, rule: str, protocol: str, ways: int, shots: int, queries: int
) -> tuple[list[int], dict[str, Any]]:
    """The classes episodes may use under ``rule``, and the decisions taken (recorded in the manifest).

    Raises:
        ProtocolError: a class is too small for a protocol without a rule; fewer than two classes;
            more ways than classes.
    """
    if ways < 2 or shots < 1 or queries < 1:
        raise ProtocolError(f"episodes need at least 2 ways, 1 shot and 1 query; got {ways}, {shots}, {queries}")
    members = pool.members()
    sizes = {c: len(ix) for c, ix in members.items()}
    need = shots + queries
    decisions: dict[str, Any] = {
        "empty_classes_removed": [pool.classes[c] for c in range(len(pool.classes)) if c not in sizes],
        "dropped_classes": [],
        "query_replacement_classes": [],
    }
    if rule == "refuse":
        small = sorted(c for c, n in sizes.items() if n < need)
        if small:
            raise ProtocolError(
                f"protocol {protocol!r} has no rule for classes with fewer than K + Q = {shots} + {queries} = {need} "
                f"images, and {len(small)} classes of {pool.dataset!r} have fewer ({_names(pool, small)}; smallest "
                f"{min(sizes[c] for c in small)}): use fewer --shots or --queries, or --protocol augself "
                "(drops classes with <= K images, draws queries with replacement)"
            )
        usable = sorted(sizes)
    elif rule == "augself":
        usable = sorted(c for c, n in sizes.items() if n > shots)
        decisions["dropped_classes"] = [pool.classes[c] for c in sorted(sizes) if sizes[c] <= shots]
        decisions["query_replacement_classes"] = [pool.classes[c] for c in usable if sizes[c] < need]
    else:
        raise ValueError(f"unknown class rule {rule!r}")
    dropped = len(decisions["dropped_classes"])
    why = f" ({dropped} classes with <= {shots} images dropped)" if dropped else ""
    if len(usable) < 2:
        raise ProtocolError(
            f"the pool of {pool.dataset!r} has {len(usable)} usable class{'es' * (len(usable) != 1)} "
            f"({_names(pool, usable) or 'none'}) under protocol {protocol!r} with K = {shots}{why}; few-shot "
            "episodes need at least 2 classes"
        )
    if ways > len(usable):
        raise ProtocolError(
            f"--ways {ways} needs {ways} classes, but the pool of {pool.dataset!r} has {len(usable)} usable classes "
            f"under protocol {protocol!r} with K = {shots}{why}; use --ways {len(usable)} or fewer"
        )
    decisions["usable_classes"] = len(usable)
    return usable, decisions


def draw_episodes(
    pool: Pool,
    *,
    protocol: str,
    protocol_version: str,
    class_rule: str,
    ways: int,
    shots: int,
    queries: int,
    episodes: int,
    seed: int,
    removed: tuple[str, ...] = (),
) -> EpisodeManifest:
    """Draw ``episodes`` N-way K-shot Q-query episodes from ``pool`` with a seeded generator.

    Each episode picks ``ways`` distinct usable classes, then per class ``shots + queries`` distinct
    images (support first); a class smaller than that (``augself`` rule only) shuffles its images, takes
    the first K as support and draws the Q queries with replacement from the rest.

    Args:
        removed: classes of the dataset the pool left out because they have no image (recorded).

    Raises:
        ProtocolError: see :func:`eligible_classes`; ``episodes`` < 1.
    """
    if episodes < 1:
        raise ProtocolError(f"--episodes must be at least 1, got {episodes}")
    usable, decisions = eligible_classes(pool, class_rule, protocol, ways, shots, queries)
    decisions["empty_classes_removed"] = [*removed, *decisions["empty_classes_removed"]]
    members = pool.members()
    rng = np.random.Generator(np.random.PCG64(seed))
    chosen = np.empty((episodes, ways), dtype=np.int64)
    support = np.empty((episodes, ways, shots), dtype=np.int64)
    query = np.empty((episodes, ways, queries), dtype=np.int64)
    for e in range(episodes):
        chosen[e] = rng.choice(np.asarray(usable), size=ways, replace=False)
        for w, c in enumerate(chosen[e]):
            ix = members[int(c)]
            if len(ix) >= shots + queries:
                pick = ix[rng.choice(len(ix), size=shots + queries, replace=False)]
                support[e, w], query[e, w] = pick[:shots], pick[shots:]
            else:
                order = ix[rng.permutation(len(ix))]
                support[e, w] = order[:shots]
                query[e, w] = order[shots:][rng.integers(0, len(ix) - shots, size=queries)]
    used = np.unique(np.concatenate([support.ravel(), query.ravel()]))
    local = np.searchsorted(used, np.arange(len(pool.ids)))
    return EpisodeManifest(
        dataset=pool.dataset,
        pool_fingerprint=pool.fingerprint,
        pool_size=len(pool.ids),
        pool_splits=pool.splits,
        protocol=protocol,
        protocol_version=protocol_version,
        class_rule=class_rule,
        ways=ways,
        shots=shots,
        queries=queries,
        seed=seed,
        decisions=decisions,
        ids=tuple(pool.ids[i] for i in used),
        classes=tuple(tuple(pool.classes[c] for c in row) for row in chosen.tolist()),
        support=local[support],
        query=local[query],
    )


def check_pool(manifest: EpisodeManifest, pool: Pool, path: str | Path | None = None) -> None:
    """Refuse a manifest drawn from another pool.

    Raises:
        ProtocolError: dataset, fingerprint or image identifiers differ; the message says what to do.
    """
    where = f"episode manifest {str(path)!r}" if path is not None else "the episode manifest"
    if manifest.dataset != pool.dataset:
        raise ProtocolError(f"{where} was drawn from dataset {manifest.dataset!r}, not {pool.dataset!r}")
    if manifest.pool_fingerprint != pool.fingerprint:
        raise ProtocolError(
            f"{where} was drawn from another pool of {pool.dataset!r}: its fingerprint is "
            f"{manifest.pool_fingerprint[:12]}, this copy's pool ({len(pool.ids)} images, splits "
            f"{'+'.join(pool.splits)}) is {pool.fingerprint[:12]} (images, labels or splits differ); point --data-root "
            "at the copy it was drawn from, or omit --manifest to draw new episodes from this one"
        )
    missing = sorted(set(manifest.ids) - set(pool.ids))
    if missing:  # cannot happen with equal fingerprints unless the file was edited by hand
        raise ProtocolError(f"{where} names images that are not in the pool, e.g. {missing[0]!r}")
