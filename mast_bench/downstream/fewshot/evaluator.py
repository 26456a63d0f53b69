"""The few-shot evaluator: one record per (head, K) on seeded, replayable episodes.

Implements the evaluator contract (:mod:`mast_bench.downstream.contract`). ``plan`` resolves the episode
shape (the protocol's defaults, the options, or a given manifest) and names one cell per head and K;
``run`` builds the pooled features once (through the feature cache), then for each K draws the episodes
(or replays the given manifest after checking its pool), writes the manifest next to the records under
``manifests/``, runs every requested head on those same episodes and fills each cell with the mean
accuracy, ± 1.96 · std / √E as ``ci95`` (the per-episode std itself under ``extra["episode_std"]``; the record's
``std``, a spread over seeds, stays None for the one seed), the number of episodes, and the manifest's path and
sha256. A K that the pool cannot honour (a class smaller than K + Q under a protocol without a rule for it,
fewer usable classes than ways) is omitted with the reason when another K of the request can be computed, and
refused with that one-line reason when none can: already by ``plan``, which applies the same class rule to the
labels of the splits' listings (no image read), so a suite or ``reproduce`` plan shows the reason up front.

A cell's protocol name is ``<protocol>-<head>-<N>way<K>shot``, plus ``-q<Q>e<E>s<seed>`` when the queries,
episodes or seed differ from the protocol's, so that a non-standard run never takes a standard cell's
place. Nothing is selected (every head's constants are fixed), so records say ``selected_on: none``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mast_bench.downstream.contract import Cell, EvalRequest, Evaluator, Omitted
from mast_bench.downstream.fewshot.episodes import EpisodeManifest, check_pool, draw_episodes, eligible_classes
from mast_bench.downstream.fewshot.heads import HEADS
from mast_bench.downstream.fewshot.manifest import manifest_sha256, read_manifest, write_manifest
from mast_bench.downstream.fewshot.pool import build_pool, listed_pool, pool_splits
from mast_bench.downstream.fewshot.protocols import FewShotProtocol, get_fewshot_protocol
from mast_bench.downstream.fewshot.scoring import episode_accuracies, summarise
from mast_bench.errors import ProtocolError
from mast_bench.registry import DATASETS, EVALUATORS, UnknownNameError
from mast_bench.results.records import ResultRecord

TASK = "fewshot"


@dataclass(frozen=True)
class FewShotOptions:
    """Options of the few-shot evaluator (unset fields take the protocol's values, or the manifest's).

    Attributes:
        heads: heads to run on the same episodes (empty: the protocol's own head).
        ways, shots, queries, episodes: the episode shape (``shots``: every K evaluated).
        seed: seed of the episode draw.
        manifest: replay this manifest instead of drawing (its shape and seed are used).
        splits: the splits to pool (empty: :func:`~mast_bench.downstream.fewshot.pool.pool_splits`).
        batch_size: images per forward pass.
    """

    heads: tuple[str, ...] = ()
    ways: int | None = None
    shots: tuple[int, ...] = ()
    queries: int | None = None
    episodes: int | None = None
    seed: int = 0
    manifest: Path | None = None
    splits: tuple[str, ...] = ()
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("ways", "queries", "episodes"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if any(k < 1 for k in self.shots):
            raise ValueError(f"shots must be >= 1, got {list(self.shots)}")
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown:
            raise UnknownNameError(f"unknown few-shot head {unknown[0]!r}. Valid heads: {', '.join(sorted(HEADS))}")


@dataclass(frozen=True)
class _Shape:
    ways: int
    shots: tuple[int, ...]
    queries: int
    episodes: int
    seed: int
    manifest: EpisodeManifest | None


def _shape(proto: FewShotProtocol, o: FewShotOptions) -> _Shape:
    if o.manifest is None:
        return _Shape(o.ways or proto.ways, o.shots or proto.shots, o.queries or proto.queries,
                      o.episodes or proto.episodes, o.seed, None)  # fmt: skip
    m = read_manifest(o.manifest)
    if m.protocol != proto.name:
        raise ProtocolError(
            f"episode manifest {str(o.manifest)!r} was drawn for protocol {m.protocol!r}; run it with "
            f"--protocol {m.protocol}"
        )
    given = {"--ways": (o.ways, m.ways), "--queries": (o.queries, m.queries), "--episodes": (o.episodes, len(m))}
    given["--shots"] = (o.shots[0] if len(o.shots) == 1 else (o.shots or None), m.shots)
    for flag, (asked, has) in given.items():
        if asked is not None and asked != has:
            raise ProtocolError(
                f"{flag} {asked if not isinstance(asked, tuple) else ','.join(map(str, asked))} conflicts with "
                f"episode manifest {str(o.manifest)!r}, which has {has}; omit {flag} to replay it"
            )
    return _Shape(m.ways, (m.shots,), m.queries, len(m), m.seed, m)


def cell_protocol(proto: FewShotProtocol, head: str, ways: int, shots: int, queries: int, episodes: int,
                  seed: int) -> str:  # fmt: skip
    """The record's protocol name of one (head, K) cell (see the module docstring)."""
    name = f"{proto.name}-{head}-{ways}way{shots}shot"
    if (queries, episodes, seed) != (proto.queries, proto.episodes, 0):
        name += f"-q{queries}e{episodes}s{seed}"
    return name


class FewShotEvaluator(Evaluator[FewShotOptions]):
    """N-way K-shot episodes on pooled frozen features; one cell per (head, K)."""

    name = TASK
    options_type = FewShotOptions

    def _resolve(self, request: EvalRequest[FewShotOptions]) -> tuple[FewShotProtocol, _Shape, tuple[str, ...]]:
        proto = get_fewshot_protocol(request.protocol)
        info = DATASETS.get(request.dataset)
        splits = request.options.splits or pool_splits(info, request.data_root)
        return proto, _shape(proto, request.options), splits

    def plan(self, request: EvalRequest[FewShotOptions]) -> list[Cell]:
        proto, shape, splits = self._resolve(request)
        if shape.ways < 2:
            raise ProtocolError(f"--ways must be at least 2, got {shape.ways}")
        self._check_class_sizes(request, proto, shape, splits)
        heads = request.options.heads or (proto.head,)
        return [
            request.cell(
                task=TASK,
                protocol=cell_protocol(proto, h, shape.ways, k, shape.queries, shape.episodes, shape.seed),
                protocol_version=proto.version,
                metric="top1",
                split="+".join(splits),
            )
            for h in heads
            for k in shape.shots
        ]

    @staticmethod
    def _check_class_sizes(request: EvalRequest[FewShotOptions], proto: FewShotProtocol, shape: _Shape,
                           splits: tuple[str, ...]) -> None:  # fmt: skip
        """Refuse at plan time a request none of whose K the pool's class sizes allow (the run's own rule).

        Only the listing's labels are read. A K the pool cannot honour next to one it can stays planned: ``run``
        omits it with the same reason. A replayed manifest was checked when it was drawn.
        """
        if shape.manifest is not None or request.data_root is None:
            return
        pool = listed_pool(DATASETS.get(request.dataset), Path(request.data_root), splits)
        if pool is None:
            return  # the copy cannot be listed here: the run reports why
        refused = []
        for k in shape.shots:
            try:
                eligible_classes(pool, proto.class_rule, proto.name, shape.ways, k, shape.queries)
            except ProtocolError as exc:
                refused.append(exc)
        if refused and len(refused) == len(shape.shots):
            raise refused[0]

    def run(self, request: EvalRequest[FewShotOptions], cells: list[Cell]) -> list[ResultRecord | Omitted]:
        proto, shape, splits = self._resolve(request)
        info = DATASETS.get(request.dataset)
        pre = proto.preprocessing(request.weights.spec)
        pooled = build_pool(request, info, splits, pre, request.options.batch_size)
        pool = pooled.pool
        device = torch.device(request.device)
        x = pooled.x.to(device)
        heads = request.options.heads or (proto.head,)
        by_name = {
            cell_protocol(proto, h, shape.ways, k, shape.queries, shape.episodes, shape.seed): (h, k)
            for h in heads
            for k in shape.shots
        }
        results: dict[str, ResultRecord | Omitted] = {}
        refused: dict[int, ProtocolError] = {}
        for k in sorted({by_name[c.skeleton.protocol][1] for c in cells}):
            try:
                manifest, path, sha = self._episodes(request, proto, shape, pool, k, pooled.empty_classes)
            except ProtocolError as exc:  # this K is impossible on this pool (class rule, ways): the others may not be
                refused[k] = exc
                continue
            support, query = manifest.pool_indices(pool)
            for cell in cells:
                head, shots = by_name[cell.skeleton.protocol]
                if shots != k:
                    continue
                start = time.perf_counter()
                summary = summarise(episode_accuracies(x, support, query, HEADS[head]))
                solve_s = round(time.perf_counter() - start, 3)
                results[cell.skeleton.protocol] = cell.fill(
                    # One episode draw is one seed: ``std`` (a spread over seeds) stays None; the spread of the
                    # episode accuracies is kept as ``episode_std``, and the mean's uncertainty is ``ci95``.
                    summary.mean, ci95=summary.ci95, std=None, seeds=(shape.seed,), selected_on="none",
                    extra={
                        "episode_std": summary.std,
                        "head": head, "head_params": dict(HEADS[head].params), "head_seconds": solve_s,
                        "ways": shape.ways, "shots": k,
                        "queries": shape.queries, "episodes": summary.episodes, "manifest": str(path),
                        "manifest_sha256": sha, "pool_fingerprint": pool.fingerprint, "pool_size": len(pool.ids),
                        "pool_splits": list(pool.splits), "pool_classes": len(pool.classes),
                        "class_rule": proto.class_rule, "decisions": manifest.decisions,
                        "preprocessing": pre.to_dict(), "features_cached": pooled.cached,
                        "data_verified": request.verify,
                    },
                )  # fmt: skip
        if refused and not results:
            raise next(iter(refused.values()))  # nothing computable: the request is refused as a whole
        for cell in cells:
            k = by_name[cell.skeleton.protocol][1]
            if k in refused:
                results[cell.skeleton.protocol] = Omitted(cell, str(refused[k]))
        return [results[c.skeleton.protocol] for c in cells]

    def _episodes(self, request: EvalRequest[FewShotOptions], proto: FewShotProtocol, shape: _Shape, pool: Any,
                  shots: int, removed: Sequence[str]) -> tuple[EpisodeManifest, Path, str]:  # fmt: skip
        """The episodes of one K: the given manifest (checked against the pool), or a seeded draw written out."""
        given = request.options.manifest
        if shape.manifest is not None and given is not None:
            check_pool(shape.manifest, pool, given)
            return shape.manifest, Path(given), manifest_sha256(given)
        manifest = draw_episodes(
            pool, protocol=proto.name, protocol_version=proto.version, class_rule=proto.class_rule,
            ways=shape.ways, shots=shots, queries=shape.queries, episodes=shape.episodes, seed=shape.seed,
            removed=tuple(removed),
        )  # fmt: skip
        name = (
            f"{pool.dataset}__{proto.name}__{shape.ways}way{shots}shot{shape.queries}q__{shape.episodes}ep__"
            f"seed{shape.seed}__{pool.fingerprint[:12]}.json"
        )
        path, sha = write_manifest(request.records_dir() / "manifests" / name, manifest)
        request.say(f"episodes: {len(manifest)} {shape.ways}-way {shots}-shot drawn (seed {shape.seed}) -> {path}")
        return manifest, path, sha


EVALUATORS.add(TASK, FewShotEvaluator())
