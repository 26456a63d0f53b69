"""Feature extraction and its on-disk cache."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from downstream_fixtures import count_forwards, one_thread, register_fake, tiny_backbone, tree

from mast_bench.downstream.features import Features, cache_key, cache_path, extract_features
from mast_bench.downstream.protocols import PROTOCOLS
from mast_bench.errors import DatasetError

DATASET = "test-features-blobs"

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module", autouse=True)
def _fake() -> None:
    register_fake(DATASET)


def _extract(backbone, tmp_path, split="train", **kw):
    pre = PROTOCOLS["synthetic-linear"].preprocessing(backbone.spec)
    return extract_features(backbone, DATASET, split, tmp_path / "data", pre, cache_dir=tmp_path / "cache",
                            progress=False, batch_size=16, **kw)


def test_second_extraction_is_read_from_the_cache(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    backbone = tiny_backbone()
    with count_forwards(backbone.model) as calls:
        first = _extract(backbone, tmp_path)
        after_first = calls[0]
        second = _extract(backbone, tmp_path)
    assert after_first == 4  # 60 images in batches of 16
    assert calls[0] == after_first  # no forward pass the second time
    assert not first.cached and second.cached
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert first.x.shape == (60, 64) and first.x.dtype == torch.float32
    files = tree(tmp_path / "cache")
    assert len(files) == 1 and files[0].endswith(".pt") and not any(f.startswith(".") for f in files)


def test_cache_key_separates_checkpoint_split_preprocessing_and_layer(tmp_path) -> None:
    backbone = tiny_backbone()
    pre = PROTOCOLS["synthetic-linear"].preprocessing(backbone.spec)
    content = {"kind": "files", "n": 60, "digest": "0" * 64}
    args = (backbone.spec, "pool", pre, DATASET, content, "train")
    base = cache_path(tmp_path, cache_key(backbone.source_sha256, *args))
    assert cache_path(tmp_path, cache_key("cd" * 32, *args)) != base
    assert cache_path(tmp_path, cache_key(backbone.source_sha256, backbone.spec, "layer3", *args[2:])) != base
    other_pre = PROTOCOLS["ericsson"].preprocessing(backbone.spec)
    assert cache_path(tmp_path, cache_key(backbone.source_sha256, backbone.spec, "pool", other_pre, *args[3:])) != base
    assert cache_path(tmp_path, cache_key(backbone.source_sha256, *args[:-1], "val")) != base
    changed = {**content, "digest": "1" * 64}
    assert cache_path(tmp_path, cache_key(backbone.source_sha256, *args[:4], changed, "train")) != base


def test_in_memory_models_are_never_cached(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    backbone = tiny_backbone(sha="")
    with count_forwards(backbone.model) as calls:
        _extract(backbone, tmp_path)
        _extract(backbone, tmp_path)
    assert calls[0] == 8
    assert tree(tmp_path / "cache") == []


def test_corrupt_cache_entry_is_recomputed_with_a_warning(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    backbone = tiny_backbone()
    good = _extract(backbone, tmp_path)
    [name] = tree(tmp_path / "cache")
    (tmp_path / "cache" / name).write_bytes(b"not a torch file")
    with count_forwards(backbone.model) as calls, pytest.warns(UserWarning, match="ignoring feature cache"):
        again = _extract(backbone, tmp_path)
    assert calls[0] == 4 and torch.equal(again.x, good.x)
    assert _extract(backbone, tmp_path).cached  # rewritten, valid again


def test_a_different_stage_is_pooled_from_the_feature_maps(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    feats = _extract(tiny_backbone(), tmp_path, layer="layer3")
    assert feats.x.shape == (60, 32)
    with pytest.raises(ValueError, match="unknown layer 'layer9'"):
        _extract(tiny_backbone(sha="ef" * 32), tmp_path, layer="layer9")


def test_features_whose_count_disagrees_with_the_labels_are_refused() -> None:
    with pytest.raises(DatasetError, match=r"features of cifar10/train disagree with its labels: 5 feature rows but 4"):
        Features(torch.zeros(5, 3), torch.zeros(4, dtype=torch.long), "cifar10", "train")


def test_cache_entry_with_mismatched_counts_is_not_trusted(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    backbone = tiny_backbone()
    _extract(backbone, tmp_path)
    [name] = tree(tmp_path / "cache")
    path = tmp_path / "cache" / name
    blob = torch.load(path, weights_only=True)
    blob["y"] = blob["y"][:-1]
    torch.save(blob, path)
    with pytest.warns(UserWarning, match="disagree with its labels: 60 feature rows but 59 labels"):
        feats = _extract(backbone, tmp_path)
    assert len(feats.y) == 60


def test_device_and_backbone_state_are_respected(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    backbone = tiny_backbone()
    backbone.model.train()
    feats = _extract(dataclasses.replace(backbone, source_sha256=""), tmp_path)
    assert not backbone.model.training  # features are always taken in eval mode
    assert torch.isfinite(feats.x).all()
