"""The few-shot evaluator end to end: records per (head, K), manifests replayed or refused, skips, CLI.

Runs on the synthetic few-shot pool (24 classes of 5 images at the ``test`` size) and on a tiny EuroSAT
copy in its official layout, with a random-init ``resnet_tiny`` whose features are cached per test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from downstream_fixtures import count_forwards, one_thread, tiny_backbone, tree
from fewshot_fixtures import make_eurosat
from PIL import Image

from mast_bench.cli import main
from mast_bench.downstream.contract import SKIP_MESSAGE, EvalRequest, execute, records_of
from mast_bench.downstream.fewshot import FewShotEvaluator, FewShotOptions
from mast_bench.downstream.fewshot.manifest import read_manifest
from mast_bench.errors import ProtocolError
from mast_bench.registry import EVALUATORS

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
HEADS = ("protonet", "cosine", "logreg", "ridge")


def _run(root: Path, out: Path, cache: Path, dataset: str = "synthetic-fewshot", protocol: str = "synthetic-fewshot",
         echo: list[str] | None = None, backbone=None, **options):  # type: ignore[no-untyped-def]  # fmt: skip
    request = EvalRequest(backbone or tiny_backbone(), "tiny", dataset, root, protocol, FewShotOptions(**options),
                          verify=False, progress=False, cache_dir=cache)  # fmt: skip
    return execute(FewShotEvaluator(), request, out, echo=None if echo is None else echo.append)


def test_one_record_per_head_and_shot_on_shared_episodes(synthetic_root: Path, tmp_path: Path) -> None:
    outcomes = _run(synthetic_root, tmp_path / "rec", tmp_path / "c", heads=HEADS, shots=(1, 2), episodes=60)
    records = records_of(outcomes)
    assert [r.protocol for r in records] == [
        f"synthetic-fewshot-{h}-5way{k}shot-q16e60s0" for h in HEADS for k in (1, 2)
    ]
    manifests = {}
    for r in records:
        assert r.task == "fewshot" and r.metric == "top1" and r.split == "all" and r.selected_on == "none"
        assert 0 <= r.value <= 100 and r.seeds == (0,) and r.extra["episodes"] == 60
        # One seed: no spread over seeds; the episode spread is extra["episode_std"], the mean's interval ci95.
        assert r.std is None and r.extra["episode_std"] > 0
        assert r.ci95 == pytest.approx(1.96 * r.extra["episode_std"] / np.sqrt(60))
        path = Path(r.extra["manifest"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r.extra["manifest_sha256"]
        manifests.setdefault(r.extra["shots"], set()).add(str(path))
        assert r.extra["pool_size"] == 24 * 5 and r.extra["pool_classes"] == 24
    assert all(len(v) == 1 for v in manifests.values())  # every head ran on the same episodes per K
    assert sorted(p for p in tree(tmp_path / "rec") if p.startswith("manifests/")) == sorted(
        f"manifests/{Path(next(iter(v))).name}" for v in manifests.values()
    )
    # 5 images per class: fewer than K + Q for every class, so AugSelf's rule draws queries with replacement.
    two = next(r for r in records if r.extra["shots"] == 2)
    assert len(two.extra["decisions"]["query_replacement_classes"]) == 24
    assert two.extra["decisions"]["dropped_classes"] == []
    # The heads see the same episodes but are different classifiers: not all numbers coincide.
    assert len({round(r.value, 6) for r in records if r.extra["shots"] == 1}) > 1


def test_replaying_a_manifest_gives_identical_numbers_and_a_rerun_skips(synthetic_root: Path, tmp_path: Path) -> None:
    first = records_of(_run(synthetic_root, tmp_path / "a", tmp_path / "c", heads=HEADS, shots=(1,), episodes=40))
    manifest = Path(first[0].extra["manifest"])
    replay = records_of(_run(synthetic_root, tmp_path / "b", tmp_path / "c", heads=HEADS, manifest=manifest))
    assert [r.value for r in replay] == [r.value for r in first]
    assert [r.protocol for r in replay] == [r.protocol for r in first]
    assert all(r.extra["manifest"] == str(manifest) for r in replay)
    assert not (tmp_path / "b" / "manifests").exists()  # a replay writes no new episodes

    lines: list[str] = []
    backbone = tiny_backbone()
    with count_forwards(backbone.model) as calls:
        again = _run(synthetic_root, tmp_path / "a", tmp_path / "c", echo=lines, backbone=backbone, heads=HEADS,
                     shots=(1,), episodes=40)  # fmt: skip
    assert [o.status for o in again] == ["skipped"] * 4 and calls[0] == 0
    assert all(SKIP_MESSAGE in line for line in lines) and len(lines) == 4


def test_manifest_of_a_changed_copy_is_refused_and_nothing_written(synthetic_root: Path, tmp_path: Path) -> None:
    first = records_of(_run(synthetic_root, tmp_path / "a", tmp_path / "c", shots=(1,), episodes=10))
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root, copy)
    image = next((copy / "fewshot").rglob("*.png"))
    Image.new("RGB", (32, 32), (1, 2, 3)).save(image)  # one image of the pool changed
    with pytest.raises(ProtocolError, match=r"was drawn from another pool of 'synthetic-fewshot': its fingerprint"):
        _run(copy, tmp_path / "b", tmp_path / "c", manifest=Path(first[0].extra["manifest"]))
    assert tree(tmp_path / "b") == []
    # The untouched copy still replays it.
    assert records_of(_run(synthetic_root, tmp_path / "d", tmp_path / "c", manifest=Path(first[0].extra["manifest"])))


def test_manifest_options_must_agree_with_the_file(synthetic_root: Path, tmp_path: Path) -> None:
    first = records_of(_run(synthetic_root, tmp_path / "a", tmp_path / "c", shots=(1,), episodes=10))
    m = Path(first[0].extra["manifest"])
    with pytest.raises(ProtocolError, match=r"^--shots 5 conflicts with episode manifest .* which has 1; omit --shots"):
        _run(synthetic_root, tmp_path / "b", tmp_path / "c", manifest=m, shots=(5,))
    with pytest.raises(ProtocolError, match=r"was drawn for protocol 'synthetic-fewshot'; run it with --protocol"):
        _run(synthetic_root, tmp_path / "b", tmp_path / "c", protocol="augself", manifest=m)
    assert read_manifest(m).shots == 1 and tree(tmp_path / "b") == []


@pytest.mark.parametrize(
    ("classes", "options", "message"),
    [
        (("AnnualCrop", "Forest", "River"), {"ways": 5},
         r"^--ways 5 needs 5 classes, but the pool of 'eurosat' has 3 usable classes under protocol 'augself'"),
        (("Forest",), {"ways": 2}, r"^the pool of 'eurosat' has 1 usable class \(Forest\) under protocol 'augself'"),
    ],
)  # fmt: skip
def test_bad_pools_are_one_line_errors(tmp_path: Path, classes, options, message: str) -> None:  # type: ignore[no-untyped-def]
    root = make_eurosat(tmp_path / "data", classes=classes, per_class=4)
    with pytest.raises(ProtocolError, match=message) as exc:
        _run(root, tmp_path / "rec", tmp_path / "c", dataset="eurosat", protocol="augself", shots=(1,), **options)
    assert "\n" not in str(exc.value) and not [p for p in tree(tmp_path / "rec") if p.endswith(".record.json")]


def test_ericsson_refuses_classes_smaller_than_k_plus_q(tmp_path: Path) -> None:
    root = make_eurosat(tmp_path / "data", per_class=4)
    with pytest.raises(ProtocolError, match=r"^protocol 'ericsson' has no rule for classes with fewer than K \+ Q = "
                                            r"1 \+ 15 = 16 images, and 3 classes of 'eurosat' have fewer"):  # fmt: skip
        _run(root, tmp_path / "rec", tmp_path / "c", dataset="eurosat", protocol="ericsson", ways=3, shots=(1,))
    [r] = records_of(_run(root, tmp_path / "rec", tmp_path / "c", dataset="eurosat", protocol="ericsson", ways=3,
                          shots=(1,), queries=3, episodes=5))  # fmt: skip
    assert r.protocol == "ericsson-protonet-3way1shot-q3e5s0"
    assert r.extra["preprocessing"]["square"] is True and r.extra["preprocessing"]["resize"] == 257
    assert r.extra["preprocessing"]["crop"] == 224
    # EuroSAT has ten classes; this copy holds three: the seven without images are removed and recorded.
    assert len(r.extra["decisions"]["empty_classes_removed"]) == 7


def test_multilabel_and_unlabelled_datasets_are_refused_at_plan(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match=r"dataset 'voc07' \(multi-label\) has none"):
        FewShotEvaluator().plan(EvalRequest(tiny_backbone(), "t", "voc07", tmp_path, "augself", FewShotOptions()))
    with pytest.raises(ProtocolError, match=r"dataset 'synthetic-pool' \(unlabelled\) has none"):
        FewShotEvaluator().plan(EvalRequest(tiny_backbone(), "t", "synthetic-pool", tmp_path, "augself",
                                            FewShotOptions()))  # fmt: skip


def test_evaluator_is_registered_and_pools_fc100_test_classes() -> None:
    from mast_bench.downstream.fewshot.pool import pool_splits
    from mast_bench.registry import DATASETS

    assert isinstance(EVALUATORS.get("fewshot"), FewShotEvaluator)
    assert pool_splits(DATASETS.get("fc100"), None) == ("test",)
    assert pool_splits(DATASETS.get("cub200"), None) == ("train", "test")
    assert pool_splits(DATASETS.get("aircraft"), None) == ("train", "val", "test")
    assert pool_splits(DATASETS.get("stl10"), None) == ("train", "test")


def test_cli_fewshot_prints_records_and_refuses_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mast_bench.cli import evaluate_cmd

    monkeypatch.setattr(evaluate_cmd, "_load_backbone", lambda *a: tiny_backbone())
    root = make_eurosat(tmp_path / "data", per_class=6)
    args = ["evaluate", "fewshot", "--weights", str(tmp_path / "w.pt"), "--dataset", "eurosat", "--data-root",
            str(root), "--protocol", "augself", "--ways", "3", "--shots", "1,2", "--queries", "3", "--episodes", "20",
            "--head", "protonet", "--head", "logreg", "--out", str(tmp_path / "rec"), "--cache-dir",
            str(tmp_path / "c"), "--device", "cpu", "--no-progress", "--no-verify"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    printed = [line.split(" = ")[0] for line in result.output.splitlines() if " = " in line]
    assert printed == [f"eurosat augself-{h}-3way{k}shot-q3e20s0 top1" for h in ("protonet", "logreg") for k in (1, 2)]
    assert result.output.splitlines()[-1] == "4 cells: 4 done, 0 skipped (records exist), 0 failed"
    records = [p for p in tree(tmp_path / "rec") if p.endswith(".record.json")]
    assert len(records) == 4
    rec = json.loads((tmp_path / "rec" / records[0]).read_text())
    assert rec["extra"]["manifest"].startswith(str(tmp_path / "rec" / "manifests"))

    bad = CliRunner().invoke(main, [*args[:11], "5", *args[12:]])  # --ways 5 on three classes
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1].startswith("Error: --ways 5 needs 5 classes, but the pool of 'eurosat'")
    assert len([p for p in tree(tmp_path / "rec") if p.endswith(".record.json")]) == 4

    shots = CliRunner().invoke(main, [*args[:13], "1,x", *args[14:]])
    assert shots.exit_code == 2 and "expected comma-separated integers such as 1,5; got '1,x'" in shots.output


def _pooled_copies():  # type: ignore[no-untyped-def]
    from data_fixtures import make_imagefolder
    from data_fixtures_fg import make_cub200
    from fewshot_fixtures import make_chestx, make_cropdiseases, make_fc100, make_isic2018, make_plantdisease

    return {
        # name: (maker, pooled splits, pool size)
        "fc100": (make_fc100, "test", 20 * 4),
        "cub200": (make_cub200, "train+test", None),
        "imagefolder": (
            lambda p: make_imagefolder(p, ("cat", "dog", "owl"), {"train": 3, "test": 2}),
            "train+test",
            15,
        ),
        "plantdisease": (make_plantdisease, "train+test", 4 * 5),
        "cropdiseases": (make_cropdiseases, "all", 4 * 4),
        "isic2018": (make_isic2018, "all", 7 * 3),
        "chestx": (make_chestx, "all", 7 * 3),
    }


@pytest.mark.parametrize("name", sorted(_pooled_copies()))
def test_every_fewshot_source_pools_its_splits(name: str, tmp_path: Path) -> None:
    maker, split, size = _pooled_copies()[name]
    root = maker(tmp_path / "data")
    [r] = records_of(_run(root, tmp_path / "rec", tmp_path / "c", dataset=name, protocol="augself", ways=2,
                          shots=(1,), queries=1, episodes=6, heads=("protonet",)))  # fmt: skip
    assert r.split == split and r.extra["pool_splits"] == split.split("+")
    if size is not None:
        assert r.extra["pool_size"] == size
    manifest = read_manifest(r.extra["manifest"])
    assert len(manifest) == 6 and manifest.support.shape == (6, 2, 1)
    if name == "fc100":
        assert all(i.split("/")[0] in ("train", "test") for i in manifest.ids)  # CIFAR file/index identifiers
        assert r.extra["pool_classes"] == 20 and len(r.extra["decisions"]["empty_classes_removed"]) == 80
    else:  # paths relative to the data root
        assert all(not Path(i).is_absolute() and (root / i).is_file() for i in manifest.ids)


def test_an_impossible_k_is_omitted_when_another_k_can_run(tmp_path: Path) -> None:
    root = make_eurosat(tmp_path / "data", per_class=4)
    lines: list[str] = []
    outcomes = _run(root, tmp_path / "rec", tmp_path / "c", dataset="eurosat", protocol="ericsson", ways=3,
                    shots=(1, 3), queries=2, episodes=5, echo=lines)  # fmt: skip
    assert [o.status for o in outcomes] == ["done", "omitted"]
    assert outcomes[1].error.startswith("protocol 'ericsson' has no rule for classes with fewer than K + Q = 3 + 2 = 5")
    assert any(line.startswith("eurosat ericsson-protonet-3way3shot-q2e5s0 top1: omitted (protocol 'ericsson'")
               for line in lines)  # fmt: skip
    assert len([p for p in tree(tmp_path / "rec") if p.endswith(".record.json")]) == 1


def test_a_manifest_replays_on_a_copy_with_new_modification_times(synthetic_root: Path, tmp_path: Path) -> None:
    # Another machine's copy has the same files with other mtimes: the episodes must replay there.
    first = records_of(_run(synthetic_root, tmp_path / "a", tmp_path / "c", shots=(1,), episodes=10))
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root, copy, copy_function=shutil.copy)  # shutil.copy does not keep mtimes
    image = next((copy / "fewshot").rglob("*.png"))
    assert image.stat().st_mtime_ns != (synthetic_root / image.relative_to(copy)).stat().st_mtime_ns
    [again] = records_of(_run(copy, tmp_path / "b", tmp_path / "c2", manifest=Path(first[0].extra["manifest"])))
    assert again.value == first[0].value and again.extra["pool_fingerprint"] == first[0].extra["pool_fingerprint"]


def test_synthetic_rows_compare_models_on_the_same_episodes(synthetic_root: Path, tmp_path: Path) -> None:
    from mast_bench.downstream.fewshot.synthetic import fewshot_table, synthetic_fewshot_records

    lines: list[str] = []
    weights = {"a": tiny_backbone(sha="a" * 64, seed=0), "b": tiny_backbone(sha="b" * 64, seed=1)}
    records = synthetic_fewshot_records(weights, synthetic_root, tmp_path / "rec", cache_dir=tmp_path / "c",
                                        episodes=30, echo=lines.append)  # fmt: skip
    # The test-size pool has 5 images per class: K = 5 leaves no class with more than K images (omitted).
    assert [(r.model, r.extra["head"], r.extra["shots"]) for r in records] == [
        (m, h, 1) for m in ("a", "b") for h in ("protonet", "logreg")
    ]
    assert len({r.extra["manifest"] for r in records}) == 1  # both models, both heads: one set of episodes
    assert lines[0].startswith("    a fewshot protonet 5-way 1-shot: ")
    table = fewshot_table(records).splitlines()
    assert table[0] == "| model | protonet 1-shot | logreg 1-shot |"
    assert [row.split(" | ")[0] for row in table[2:4]] == ["| a", "| b"] and " ± " in table[2]
    assert "over 30 seeded episodes shared by every model and head" in table[-1]


def test_suites_carry_fewshot_cells(synthetic_root: Path, tmp_path: Path) -> None:
    from mast_bench.config import ConfigError
    from mast_bench.downstream.suite import cells, load_suite, run_suite

    repo = Path(__file__).resolve().parents[2]
    ericsson = load_suite(repo / "downstream" / "transfer_ericsson.yaml")
    few = [d for g, d in cells(ericsson) if g.evaluator == "fewshot"]
    assert few[:4] == ["cropdiseases", "eurosat", "isic2018", "chestx"] and "voc07" not in few
    augself = load_suite(repo / "downstream" / "transfer_augself.yaml")
    assert {(g.protocol, d, g.folder) for g, d in cells(augself) if g.evaluator == "fewshot"} == {
        ("augself", "cub200", None), ("augself", "plantdisease", None), ("augself", "fc100", "cifar100")
    }  # fmt: skip

    suite_file = tmp_path / "s.yaml"
    suite_file.write_text("name: s\ngroups:\n  - evaluator: fewshot\n    protocol: synthetic-fewshot\n"
                          "    folder: '.'\n    datasets: [synthetic-fewshot]\n")  # fmt: skip
    lines: list[str] = []
    outcomes = run_suite(load_suite(suite_file), tiny_backbone(), synthetic_root, tmp_path / "rec", "tiny",
                         cache_dir=tmp_path / "c", progress=False, echo=lines.append)  # fmt: skip
    # The protocol's own head at K = 1 and 5; K = 5 leaves no class of the 5-image test pool (omitted).
    assert [(o.name, o.status) for o in outcomes] == [
        ("synthetic-fewshot synthetic-fewshot-logreg-5way1shot top1", "done"),
        ("synthetic-fewshot synthetic-fewshot-logreg-5way5shot top1", "omitted"),
    ]
    suite_file.write_text("groups:\n  - evaluator: fewshot\n    protocol: knn\n    datasets: [fc100]\n")
    with pytest.raises(ConfigError, match=r"'knn' is not a fewshot protocol; valid: augself, ericsson, synthetic"):
        load_suite(suite_file)
