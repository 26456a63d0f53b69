"""Real-dataset loaders on tiny copies in the official formats: what they read, in what order, and bad input."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torchvision
from data_fixtures import (
    CIFAR10_CLASSES,
    REAL_MAKERS,
    make_cifar10,
    make_dtd,
    make_food101,
    make_imagefolder,
    make_imagenet,
    stl10_image,
    tree_state,
)
from fixtures.dataset_copies import copies_fixture, official_splits
from PIL import Image

from mast_bench.data.readers.cifar import pickle_globals
from mast_bench.data.verify.check import listing_for
from mast_bench.errors import DatasetError
from mast_bench.registry import DATASETS

MAKERS = REAL_MAKERS
# docs/protocols.md (metric column; AugSelf reports top-1 on STL-10 and MIT-67; ImageNet top-1).
METRICS = {name: "top1" for name in MAKERS}
TORCHVISION_CLASS = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "stl10": "STL10",
    "food101": "Food101",
    "sun397": "SUN397",
    "mit67": "ImageFolder",
    "imagenet": "ImageFolder",
    "imagefolder": "ImageFolder",
}


copies = copies_fixture(MAKERS)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_registration_follows_the_protocols(name: str) -> None:
    info = DATASETS.get(name)
    assert info.metric == METRICS[name]
    if name in TORCHVISION_CLASS:  # DTD's own lists are read directly (three placements of the archive)
        assert f"torchvision.datasets.{TORCHVISION_CLASS[name]}" in info.layout
    declared = info.val_splits
    expected_source = {"dtd": "official", "imagenet": "none", "imagefolder": "official"}.get(name, "seeded")
    assert info.val_source == expected_source
    for protocol, spec in declared.items():
        if not callable(spec) and not isinstance(spec, str):
            assert {f"train@{protocol}", f"val@{protocol}"} <= set(info.splits)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_split_loads_unverified_with_consistent_labels(name: str, copies: dict[str, Path]) -> None:
    info = DATASETS.get(name)
    classes = None
    for split in official_splits(name):
        ds = info.build(copies[name], split, transform=np.asarray, verify=False)
        image, target = ds[len(ds) - 1]
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        targets = list(ds.targets)
        assert target == targets[-1] and len(targets) == len(ds) > 0
        if split != "unlabeled" and split != "train+unlabeled":
            assert classes is None or list(ds.classes) == classes  # one class numbering for every split
            classes = list(ds.classes)
            assert set(targets) == set(range(len(classes)))


@pytest.mark.parametrize("name", sorted(set(MAKERS) - {"imagefolder"}))
def test_verification_refuses_a_partial_copy_and_writes_nothing(name: str, copies: dict[str, Path]) -> None:
    before = tree_state(copies[name])
    with pytest.raises(DatasetError) as exc:
        DATASETS.get(name).build(copies[name], official_splits(name)[0], verify=True)
    msg = str(exc.value)
    assert f"dataset {name!r} at " in msg
    assert "does not match the official copy (counts, files or checksums differ)" in msg
    assert "Pass --no-verify (verify=False) only for a copy you know is partial" in msg
    assert msg.endswith(f"Expected layout: {DATASETS.get(name).layout}")
    assert tree_state(copies[name]) == before


def test_cifar_batches_are_python2_pickles_read_by_torchvision(copies: dict[str, Path]) -> None:
    raw = pickle.loads((copies["cifar10"] / "cifar-10-batches-py" / "data_batch_1").read_bytes(), encoding="bytes")
    assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"} and raw[b"data"].shape == (2, 3072)
    meta = pickle.loads((copies["cifar10"] / "cifar-10-batches-py" / "batches.meta").read_bytes(), encoding="bytes")
    assert meta[b"label_names"][0] == b"airplane"
    ds = DATASETS.get("cifar10").build(copies["cifar10"], "train", verify=False)
    assert ds.classes == CIFAR10_CLASSES and len(ds) == 10
    first = np.asarray(ds[0][0])  # the row holds the red plane, then green, then blue
    assert (first == raw[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)).all() and ds[0][1] == raw[b"labels"][0]
    fine = pickle.loads((copies["cifar100"] / "cifar-100-python" / "train").read_bytes(), encoding="bytes")
    assert {b"fine_labels", b"coarse_labels", b"data"} <= set(fine)
    assert DATASETS.get("cifar100").build(copies["cifar100"], "test", verify=False).targets == list(range(100))


def test_cifar_checksums_are_verified_before_unpickling(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="md5 of cifar-10-batches-py/data_batch_1 is"):
        DATASETS.get("cifar10").build(root, "train", verify=True)
    with pytest.raises(DatasetError, match=r"cifar-10-batches-py/data_batch_3 is truncated or corrupt \(its pickle"):
        DATASETS.get("cifar10").build(root, "train", verify=False)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a tampered batch could do when unpickled
        return (Path.touch, (self.marker,))


def test_unverified_cifar_batches_are_scanned_before_unpickling(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path / "c")
    marker = tmp_path / "ran"
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({"data": _Payload(marker), "labels": []}, protocol=4))
    for check in (
        lambda: DATASETS.get("cifar10").build(root, "test", verify=False),
        lambda: listing_for("cifar10", root),
    ):
        with pytest.raises(
            DatasetError,
            match=r"refusing to unpickle cifar-10-batches-py/test_batch: it references "
            r"\['pathlib.Path.touch', ",
        ):
            check()
    assert not marker.exists()
    for protocol in (2, 3, 4, 5):  # re-pickled numpy arrays of any protocol are fine
        (tmp_path / "p").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}, protocol=protocol))
        assert set(pickle_globals(tmp_path / "p")) <= {
            "numpy.core.multiarray._reconstruct",
            "numpy.ndarray",
            "numpy.dtype",
            "_codecs.encode",
            "numpy.core.numeric._frombuffer",
        }


def test_stl10_pixels_and_labels_match_an_independent_decoder(copies: dict[str, Path]) -> None:
    ds = DATASETS.get("stl10").build(copies["stl10"], "test", verify=False)
    labels = np.fromfile(copies["stl10"] / "stl10_binary" / "test_y.bin", dtype=np.uint8) - 1
    for i in range(len(ds)):
        assert (np.asarray(ds[i][0]) == stl10_image(copies["stl10"], "test", i)).all() and ds[i][1] == labels[i]
    pool = DATASETS.get("stl10").build(copies["stl10"], "train+unlabeled", verify=False)
    assert len(pool) == 13 and list(pool.labels[-3:]) == [-1, -1, -1]


def test_food101_order_is_sorted_classes_then_json_order(tmp_path: Path) -> None:
    root = make_food101(tmp_path)
    meta_path = root / "food-101" / "meta" / "train.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({c: meta[c][::-1] for c in reversed(list(meta))}))  # unsorted keys
    ds = DATASETS.get("food101").build(root, "train", verify=False)
    rel = [f"{p.parent.name}/{p.stem}" for p, _ in ds.samples]
    assert rel == [r for c in sorted(meta) for r in meta[c][::-1]]
    tv = torchvision.datasets.Food101(root, split="train")  # same (file, label) pairs, torchvision's order
    assert sorted(map(tuple, zip(map(str, tv._image_files), tv._labels))) == sorted((str(p), t) for p, t in ds.samples)


def test_sun397_reads_partition_01_in_list_order(copies: dict[str, Path]) -> None:
    root = copies["sun397"]
    ds = DATASETS.get("sun397").build(root, "test", verify=False)
    lines = (root / "SUN397" / "Testing_01.txt").read_text().split()
    assert [str(p.relative_to(root / "SUN397")) for p, _ in ds.samples] == [ln.lstrip("/") for ln in lines]
    assert ds.classes == ["abbey", "bedroom", "outhouse/outdoor"] and ds.targets == [0, 0, 1, 1, 2, 2]
    assert len(list((root / "SUN397").rglob("sun_*.jpg"))) == 15  # the unused images stay out


def test_mit67_uses_the_lists_in_imagefolder_order(copies: dict[str, Path]) -> None:
    root = copies["mit67"]
    ds = DATASETS.get("mit67").build(root, "train", verify=False)
    listed = sorted((root / "TrainImages.txt").read_text().split(), key=lambda r: (r.split("/")[0], r))
    assert [f"{Path(p).parent.name}/{Path(p).name}" for p, _ in ds.samples] == listed
    assert isinstance(ds, torchvision.datasets.ImageFolder) and len(ds) == 9  # 3 unlisted images excluded


def test_dtd_labels_agree_across_splits_when_a_class_is_absent(tmp_path: Path) -> None:
    root = make_dtd(tmp_path)
    val = root / "dtd" / "dtd" / "labels" / "val1.txt"
    val.write_text("\n".join(ln for ln in val.read_text().split() if not ln.startswith("banded/")) + "\n")
    ds = DATASETS.get("dtd").build(root, "val", verify=False)
    assert ds.classes == ["banded", "blotchy", "zigzagged"] and ds.targets == [1, 1, 2, 2]


@pytest.mark.parametrize("place", ["dtd", "."])
def test_dtd_tarball_layouts_read_the_same_copy(tmp_path: Path, place: str) -> None:
    """The archive extracted into <root> (<root>/dtd/images) or --data-root at dtd/ itself: same samples."""
    make_dtd(tmp_path / "tv")
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "tv" / "dtd" / "dtd", other / place)
    want = DATASETS.get("dtd").build(tmp_path / "tv", "train", verify=False)
    got = DATASETS.get("dtd").build(other, "train", verify=False)
    rel = [(Path(p).relative_to(Path(p).parents[2]), t) for p, t in want.samples]
    assert [(Path(p).relative_to(Path(p).parents[2]), t) for p, t in got.samples] == rel and len(rel) == 6
    assert got.classes == want.classes and got[0][1] == want[0][1]


def test_dtd_without_images_and_labels_names_every_place_tried(tmp_path: Path) -> None:
    (tmp_path / "dtd" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        DATASETS.get("dtd").build(tmp_path, "train", verify=False)
    tried = f"{tmp_path}/dtd/dtd, {tmp_path}/dtd, {tmp_path}"
    assert str(err.value).startswith(f"dataset 'dtd': no images/ and labels/ folders in {tried} (expected layout: ")


def test_imagenet_subsets_keep_the_full_class_indices(copies: dict[str, Path]) -> None:
    info = DATASETS.get("imagenet")
    one = info.build(copies["imagenet"], "train-1pct", verify=False)
    assert [Path(p).name for p, _ in one.samples] == (copies["imagenet"] / "1percent.txt").read_text().split()
    assert one.targets == [0, 1, 2] and len(one.classes) == 3


def test_imagenet_bad_layouts(tmp_path: Path) -> None:
    info = DATASETS.get("imagenet")
    root = make_imagenet(tmp_path / "a", subsets=False)
    with pytest.raises(DatasetError, match=r"split 'train-10pct' needs the SimCLR subset list .*10percent.txt"):
        info.build(root, "train-10pct", verify=False)
    flat = make_imagenet(tmp_path / "b")
    for f in list((flat / "val").rglob("*.JPEG")):
        f.rename(flat / "val" / f.name)
    with pytest.raises(
        DatasetError,
        match=r"val/ holds the images directly; sort them into one folder per class "
        r"with the usual valprep\.sh",
    ):
        info.build(flat, "val", verify=False)
    stray = make_imagenet(tmp_path / "c")
    (stray / "train" / "backup").mkdir()
    with pytest.raises(DatasetError, match=r"train/ holds folders that are not WordNet ids: \['backup'\]"):
        info.build(stray, "train", verify=False)
    (stray / "train" / "backup").rmdir()
    (stray / "1percent.txt").write_text("n01440764_10000.JPEG\nn09999999_1.JPEG\n")
    with pytest.raises(
        DatasetError,
        match=r"1percent.txt lists 1 files not found under train/ \(e.g. "
        r"\['n09999999_1.JPEG'\]\)",
    ):
        info.build(stray, "train-1pct", verify=True)


def test_imagefolder_extra_class_and_flat_split_are_refused(tmp_path: Path) -> None:
    info = DATASETS.get("imagefolder")
    root = make_imagefolder(tmp_path / "a")
    (root / "test" / "horse").mkdir()
    Image.new("RGB", (4, 4)).save(root / "test" / "horse" / "h.png")
    before = tree_state(root)
    with pytest.raises(
        DatasetError,
        match=r"class folders of .*test' differ from train/: extra \['horse'\], "
        r"missing \[\] \(expected layout: <root>/train/<class>/<image>",
    ):
        info.build(root, "test", verify=False)
    flat = make_imagefolder(tmp_path / "b", per_class={"train": 2, "test": 1})
    (flat / "train" / "cat" / "cat_0.png").rename(flat / "train" / "loose.png")
    with pytest.raises(DatasetError, match=r"holds images directly \(loose.png, ...\) instead of one folder per class"):
        info.build(flat, "train", verify=False)
    with pytest.raises(DatasetError, match="has no val/ folder; the linear-probe protocols then draw a seeded"):
        info.build(flat, "val", verify=False)
    assert tree_state(root) == before


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (
            "food101",
            lambda r: (r / "food-101/images/waffles").rename(r / "food-101/images/w"),
            r"3 of the 9 images listed in meta/train.json are missing",
        ),
        ("sun397", lambda r: (r / "SUN397/Training_01.txt").unlink(), r"SUN397/Training_01.txt not found under"),
        (
            "mit67",
            lambda r: (r / "TestImages.txt").write_text("kitchen/kitchen_0003.jpg\nlibrary/x.jpg\n"),
            r"TestImages.txt has classes not in TrainImages.txt \['library'\]",
        ),
        ("stl10", lambda r: (r / "stl10_binary/train_y.bin").unlink(), r"stl10_binary/train_y.bin not found under"),
        ("cifar100", lambda r: (r / "cifar-100-python/meta").unlink(), r"cifar-100-python/meta not found under"),
    ],
)
def test_missing_files_name_the_expected_layout(tmp_path: Path, name: str, damage, message: str) -> None:
    root = MAKERS[name](tmp_path)
    damage(root)
    before = tree_state(root)
    with pytest.raises(DatasetError, match=message) as exc:
        DATASETS.get(name).build(root, "train", verify=False)
    assert f"expected layout: {DATASETS.get(name).layout}" in str(exc.value)
    assert tree_state(root) == before


def test_protocol_split_on_a_partial_copy_is_refused(copies: dict[str, Path]) -> None:
    with pytest.raises(DatasetError, match="this copy's train split has 9 images; a partial copy cannot use it"):
        DATASETS.get("mit67").build(copies["mit67"], "val@augself", verify=False)
