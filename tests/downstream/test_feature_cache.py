"""The feature cache is keyed by the copy's content: an edited copy is recomputed, an untouched one is not."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import make_cifar10, make_dtd
from downstream_fixtures import count_forwards, one_thread, tiny_backbone
from PIL import Image

from mast_bench.downstream.fingerprint import split_fingerprint
from mast_bench.downstream.knn import evaluate_knn
from mast_bench.registry import DATASETS

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
COLOURS = {"banded": (220, 40, 40), "blotchy": (40, 200, 40), "zigzagged": (40, 40, 220)}


def _colour_dtd(root: Path) -> Path:
    """A DTD copy whose classes are colours (a random backbone separates them), 4 images per class and split."""
    make_dtd(root, per_split=4)
    rng = np.random.default_rng(0)
    images = root / "dtd" / "dtd" / "images"
    for cls, colour in COLOURS.items():
        for path in sorted((images / cls).iterdir()):
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path, format="JPEG")
    return root


def _swap_test_images(root: Path) -> None:
    """Exchange the banded and blotchy test images (renames: sizes and mtimes travel with the content)."""
    base = root / "dtd" / "dtd"
    test = (base / "labels" / "test1.txt").read_text().split()
    pairs = zip([t for t in test if t.startswith("banded/")], [t for t in test if t.startswith("blotchy/")])
    for a, b in pairs:
        tmp = base / "images" / "swap.tmp"
        os.rename(base / "images" / a, tmp)
        os.rename(base / "images" / b, base / "images" / a)
        os.rename(tmp, base / "images" / b)


def _knn(weights, root: Path, out: Path, cache: Path, **kw):
    return evaluate_knn(
        weights, "dtd", root, "synthetic-knn", out, "tiny", verify=False, cache_dir=cache, progress=False, **kw
    )


def test_swapping_images_between_classes_changes_the_number(tmp_path) -> None:
    root = _colour_dtd(tmp_path / "dtd")
    weights = tiny_backbone()
    [before, _] = _knn(weights, root, tmp_path / "rec", tmp_path / "cache")
    assert before.value == 100.0
    _swap_test_images(root)
    lines: list[str] = []
    with count_forwards(weights.model) as calls:
        [redo, _] = _knn(weights, root, tmp_path / "rec", tmp_path / "cache", redo=True, echo=lines.append)
    [fresh, _] = _knn(weights, root, tmp_path / "fresh", tmp_path / "fresh-cache")
    assert calls[0] > 0 and not redo.extra["features_cached"]
    assert redo.value == fresh.value == pytest.approx(100 / 3)  # 8 of the 12 test images now carry the other label
    assert not any("from the cache" in line for line in lines)  # --redo recomputes every split


def test_an_edited_split_misses_the_cache_and_the_untouched_ones_hit(tmp_path) -> None:
    root = _colour_dtd(tmp_path / "dtd")
    weights = tiny_backbone()
    _knn(weights, root, tmp_path / "rec", tmp_path / "cache")
    _swap_test_images(root)
    lines: list[str] = []
    [after, _] = _knn(weights, root, tmp_path / "rec2", tmp_path / "cache", echo=lines.append)
    assert after.value == pytest.approx(100 / 3) and not after.extra["features_cached"]
    hits = sorted(line.split(":")[0] for line in lines if "from the cache" in line)
    assert hits == ["features dtd/train", "features dtd/val"]


def test_an_untouched_copy_runs_no_forward_pass(tmp_path) -> None:
    root = _colour_dtd(tmp_path / "dtd")
    weights = tiny_backbone()
    [first, _] = _knn(weights, root, tmp_path / "rec", tmp_path / "cache")
    lines: list[str] = []
    with count_forwards(weights.model) as calls:
        [again, _] = _knn(weights, root, tmp_path / "rec2", tmp_path / "cache", echo=lines.append)
    assert calls[0] == 0 and again.extra["features_cached"] and again.value == first.value
    assert sum("from the cache" in line for line in lines) == 3  # train, val, test


@pytest.mark.parametrize("change", ["add", "remove", "rewrite", "relabel"])
def test_the_fingerprint_sees_added_removed_rewritten_and_relabelled_images(tmp_path, change: str) -> None:
    root = _colour_dtd(tmp_path / "dtd")
    info = DATASETS.get("dtd")
    base = root / "dtd" / "dtd"
    before = split_fingerprint(info.build(root, "train", None, False), root)
    listed = (base / "labels" / "train1.txt").read_text().split()
    if change == "add":
        Image.new("RGB", (24, 24)).save(base / "images" / "banded" / "banded_0099.jpg")
        (base / "labels" / "train1.txt").write_text("\n".join([*listed, "banded/banded_0099.jpg"]) + "\n")
    elif change == "remove":
        (base / "labels" / "train1.txt").write_text("\n".join(listed[1:]) + "\n")
    elif change == "rewrite":
        Image.new("RGB", (24, 24), (1, 2, 3)).save(base / "images" / listed[0])
    else:  # the same file listed under another class
        os.rename(base / "images" / listed[0], base / "images" / "blotchy" / "moved.jpg")
        (base / "labels" / "train1.txt").write_text("\n".join(["blotchy/moved.jpg", *listed[1:]]) + "\n")
    after = split_fingerprint(info.build(root, "train", None, False), root)
    assert before["kind"] == after["kind"] == "files" and before["digest"] != after["digest"]


def test_a_moved_copy_keeps_its_fingerprint(tmp_path) -> None:
    root = _colour_dtd(tmp_path / "a")
    info = DATASETS.get("dtd")
    before = split_fingerprint(info.build(root, "test", None, False), root)
    moved = tmp_path / "b"
    os.rename(root, moved)
    assert split_fingerprint(info.build(moved, "test", None, False), moved) == before


def test_binary_batches_are_fingerprinted_by_content(tmp_path) -> None:
    root = make_cifar10(tmp_path / "cifar", train_per_class=2, test_per_class=1)
    info = DATASETS.get("cifar10")
    before = split_fingerprint(info.build(root, "test", None, False), root)
    same = split_fingerprint(info.build(root, "test", None, False), root)
    other = make_cifar10(tmp_path / "cifar2", train_per_class=2, test_per_class=1, seed=1)
    changed = split_fingerprint(info.build(other, "test", None, False), other)
    assert before["kind"] == "arrays" and before == same and changed["digest"] != before["digest"]


def test_fingerprint_of_a_subset_covers_only_its_rows(tmp_path) -> None:
    from torch.utils.data import Subset

    root = _colour_dtd(tmp_path / "dtd")
    full = DATASETS.get("dtd").build(root, "train", None, False)
    a, b = split_fingerprint(Subset(full, [0, 1]), root), split_fingerprint(Subset(full, [1, 0]), root)
    assert a["n"] == 2 and a["digest"] != b["digest"]  # order is part of the key: rows follow it
