"""Validation splits: parity with the protocols' own draws, committed files, resolution, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import make_imagefolder, tree_state
from torch.utils.data import random_split

from mast_bench.data import splits as S
from mast_bench.errors import DatasetError, ProtocolError
from mast_bench.registry import DATASETS


@pytest.mark.parametrize(("n_train", "n_val", "seed"), [(45000, 5000, 43), (4500, 500, 50), (7, 3, 1)])
def test_seeded_split_is_augselfs_random_split(n_train: int, n_val: int, seed: int) -> None:
    train, val = random_split(range(n_train + n_val), [n_train, n_val], generator=torch.Generator().manual_seed(seed))
    ours_train, ours_val = S.seeded_val_split(n_train, n_val, seed)
    assert ours_train.tolist() == sorted(train.indices) and ours_val.tolist() == sorted(val.indices)


def test_ericsson_split_is_the_legacy_numpy_shuffle() -> None:
    state = np.random.get_state()
    try:  # Ericsson et al.'s get_train_valid_loader, verbatim in behaviour
        indices = list(range(5360))
        np.random.seed(0)
        np.random.shuffle(indices)
        split = int(np.floor(0.2 * 5360))
        ref_train, ref_val = indices[split:], indices[:split]
    finally:
        np.random.set_state(state)
    train, val = S.ericsson_val_split(5360)
    assert val.tolist() == sorted(ref_val) and train.tolist() == sorted(ref_train)
    assert len(val) == 1072 and len(set(train) | set(val)) == 5360 and not set(train) & set(val)


def test_bad_split_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_val > 0"):
        S.seeded_val_split(10, 0, 1)
    with pytest.raises(ValueError, match="validation fraction of 3 items is empty"):
        S.ericsson_val_split(3)


# docs/protocols.md, validation splits: AugSelf's sizes and seeds and the Ericsson rule (20 %, seed 0).
PROTOCOL_TABLE = {
    ("cifar10", "augself"): (45000, 5000, 43),
    ("cifar100", "augself"): (45000, 5000, 44),
    ("food101", "augself"): (68175, 7575, 42),
    ("stl10", "augself"): (4500, 500, 50),
    ("mit67", "augself"): (4690, 670, 51),
    ("cifar10", "ericsson"): (40000, 10000, 0),
    ("cifar100", "ericsson"): (40000, 10000, 0),
    ("food101", "ericsson"): (60600, 15150, 0),
    ("stl10", "ericsson"): (4000, 1000, 0),
    ("mit67", "ericsson"): (4288, 1072, 0),
    ("sun397", "ericsson"): (15880, 3970, 0),
}


@pytest.mark.parametrize(("key", "sizes"), sorted(PROTOCOL_TABLE.items()))
def test_declared_splits_follow_the_protocol_table(key: tuple[str, str], sizes: tuple[int, int, int]) -> None:
    spec = DATASETS.get(key[0]).val_splits[key[1]]
    assert (spec.n_train, spec.n_val, spec.seed) == sizes
    assert spec.scheme == ("random_split" if key[1] == "augself" else "ericsson")


def test_committed_files_match_checksums_and_a_fresh_draw() -> None:
    assert S.verify_committed_splits() == []
    assert set(PROTOCOL_TABLE) <= set(S.committed_specs())


def test_rewriting_is_byte_identical(tmp_path: Path) -> None:
    S.write_committed_splits(tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (S.SPLITS_DIR / path.relative_to(tmp_path)).read_bytes(), path


def test_committed_split_resolves_with_provenance() -> None:
    vs = S.resolve_val_split("cifar10", "augself")
    assert vs.source == "committed" and vs.train_split == vs.val_split == "train" and vs.seed == 43
    assert vs.file == "downstream/splits/cifar10/augself-val.json" and len(vs.sha256 or "") == 64
    assert len(vs.val_indices) == 5000 and len(vs.train_indices) == 45000
    assert sorted(set(vs.train_indices) | set(vs.val_indices)) == list(range(50000))
    assert vs.describe()["n_val"] == 5000 and "val_indices" not in vs.describe()
    assert S.resolve_val_split("dtd", "augself").describe()["source"] == "official"


def test_modified_split_file_is_refused(tmp_path: Path) -> None:
    shutil.copytree(S.SPLITS_DIR, tmp_path / "splits")
    target = tmp_path / "splits" / "stl10" / "augself-val.json"
    data = json.loads(target.read_text())
    data["val_indices"][0] += 1
    target.write_text(json.dumps(data))
    before = tree_state(tmp_path)
    with pytest.raises(ProtocolError, match=r"augself-val.json' has sha256 .* the file was modified"):
        S.resolve_val_split("stl10", "augself", splits_dir=tmp_path / "splits")
    assert tree_state(tmp_path) == before
    assert any("modified" in p for p in S.verify_committed_splits(tmp_path / "splits"))


def test_missing_split_file_is_refused(tmp_path: Path) -> None:
    shutil.copytree(S.SPLITS_DIR, tmp_path / "splits")
    (tmp_path / "splits" / "mit67" / "ericsson-val.json").unlink()
    with pytest.raises(ProtocolError, match=r"ericsson-val.json' is missing; run `python scripts/make_splits.py`"):
        S.resolve_val_split("mit67", "ericsson", splits_dir=tmp_path / "splits")


def test_protocols_without_a_validation_split_refuse() -> None:
    with pytest.raises(
        ProtocolError,
        match=r"'sun397' has no validation split for protocol 'augself' \(protocols "
        r"with one: ericsson\); selection on the test split is not allowed",
    ):
        S.resolve_val_split("sun397", "augself")
    with pytest.raises(ProtocolError, match="'imagenet' has no validation split for protocol 'ericsson'"):
        S.resolve_val_split("imagenet", "ericsson")
    with pytest.raises(ProtocolError, match="unknown protocol 'linear'; valid: ericsson, augself"):
        S.resolve_val_split("cifar10", "linear")


class _FakeTrain(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.targets = [i % 10 for i in range(n)]
        self.classes = [str(i) for i in range(10)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, self.targets[i]


def test_protocol_split_is_the_committed_subset_of_train() -> None:
    val = S.build_protocol_split("stl10", "val@augself", lambda split: _FakeTrain(5000))
    train = S.build_protocol_split("stl10", "train@augself", lambda split: _FakeTrain(5000))
    vs = S.resolve_val_split("stl10", "augself")
    assert [val[i][0] for i in range(len(val))] == vs.val_indices.tolist()
    assert len(train) == 4500 and not set(train.indices) & set(val.indices)
    assert val.targets == [i % 10 for i in vs.val_indices] and val.classes == [str(i) for i in range(10)]


def test_partial_copy_cannot_use_a_committed_split() -> None:
    with pytest.raises(
        DatasetError,
        match="indexes the official 5000-image train split, but this copy's train split "
        "has 12 images; a partial copy cannot use it",
    ):
        S.build_protocol_split("stl10", "val@ericsson", lambda split: _FakeTrain(12))


def test_imagefolder_uses_val_folder_when_present(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data")
    vs = S.resolve_val_split("imagefolder", "augself", root=root)
    assert (vs.source, vs.train_split, vs.val_split) == ("official", "train", "val")
    with pytest.raises(ProtocolError, match="depends on the copy: pass its data root"):
        S.resolve_val_split("imagefolder", "augself")


def test_generated_split_is_drawn_once_recorded_and_reused(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", per_class={"train": 10, "test": 2})
    train = DATASETS.get("imagefolder").build(root, "train", verify=False)
    vs = S.resolve_val_split("imagefolder", "ericsson", train=train, record_dir=tmp_path / "out", root=root)
    assert vs.source == "generated" and len(vs.val_indices) == 4 and len(vs.train_indices) == 16
    assert vs.val_indices.tolist() == S.ericsson_val_split(20)[1].tolist()
    path = tmp_path / "out" / "splits" / "imagefolder-ericsson-val.json"
    assert vs.file == str(path) and json.loads(path.read_text())["n_total"] == 20
    again = S.resolve_val_split("imagefolder", "ericsson", train=train, record_dir=tmp_path / "out", root=root)
    assert again.sha256 == vs.sha256 and again.val_indices.tolist() == vs.val_indices.tolist()


def test_generated_split_refuses_a_changed_copy_and_keeps_the_record(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", per_class={"train": 10, "test": 2})
    info = DATASETS.get("imagefolder")
    S.resolve_val_split(
        "imagefolder", "ericsson", train=info.build(root, "train", verify=False), record_dir=tmp_path / "out", root=root
    )
    (root / "train" / "cat" / "cat_0.png").unlink()
    before = tree_state(tmp_path / "out")
    with pytest.raises(DatasetError, match=r"changed since the validation split .* was drawn \(now 19 files\)"):
        S.resolve_val_split(
            "imagefolder",
            "ericsson",
            train=info.build(root, "train", verify=False),
            record_dir=tmp_path / "out",
            root=root,
        )
    assert tree_state(tmp_path / "out") == before


def test_generated_split_needs_a_record_folder(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path / "data", per_class={"train": 5, "test": 2})
    train = DATASETS.get("imagefolder").build(root, "train", verify=False)
    before = tree_state(tmp_path)
    with pytest.raises(
        ProtocolError,
        match="draws one from your copy on first use, which needs the built train split and a record folder",
    ):
        S.resolve_val_split("imagefolder", "ericsson", train=train, root=root)
    assert tree_state(tmp_path) == before
