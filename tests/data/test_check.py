"""The dataset checker: counts, files, classes, checksums, duplicates, reports, CLI, and that it writes nothing."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from data_fixtures import make_cifar10, make_imagefolder, make_mit67, make_stl10, tree_state
from torchvision.datasets import CIFAR10

from mast_bench.cli import main
from mast_bench.data.verify.check import check_dataset, check_listing, listing_for, verify_listing
from mast_bench.data.verify.listing import DatasetListing, OfficialChecksum, SplitListing, file_digest
from mast_bench.errors import DatasetError


@pytest.fixture(scope="module")
def mit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mit67(tmp_path_factory.mktemp("mit67"))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _as_official(listing: DatasetListing, **expected: tuple[int, int]) -> DatasetListing:
    """The fixture's listing with its own counts declared official, so a consistent copy should pass."""
    splits = [
        SplitListing(s.name, s.targets, s.files, s.arrays, expected[s.name][0], expected[s.name][1])
        for s in listing.splits
    ]
    return DatasetListing(listing.dataset, listing.root, listing.layout, listing.classes, len(listing.classes), splits)


def test_consistent_copy_passes_every_check(mit: Path) -> None:
    report = check_listing(_as_official(listing_for("mit67", mit), train=(9, 3), test=(3, 1)), progress=False)
    assert report.ok, report.render()
    text = report.render()
    assert "ok    count      train: 9 images" in text and "test: 1 images in each class" in text
    assert text.endswith("\nOK") and "no identical images within or across splits" in text


def test_count_and_class_mismatches_fail_with_numbers(mit: Path) -> None:
    report = check_listing(_as_official(listing_for("mit67", mit), train=(10, 3), test=(3, 2)), progress=False)
    messages = [i.message for i in report.failures]
    assert "train: 9 images, expected 10" in messages
    assert "test: 3 classes do not have 2 images, e.g. airport_inside=1, bakery=1, kitchen=1" in messages
    assert report.render().splitlines()[-1] == "FAILED: 2 problems"


def test_official_copy_numbers_are_the_published_ones(mit: Path) -> None:
    report = check_dataset("mit67", mit, progress=False)
    assert "3 classes, expected 67" in [i.message for i in report.failures]
    assert "train: 9 images, expected 5360" in [i.message for i in report.failures]


def test_cifar_checksums_are_torchvisions(tmp_path: Path) -> None:
    listing = listing_for("cifar10", make_cifar10(tmp_path))
    published = {f"cifar-10-batches-py/{f}": md5 for f, md5 in CIFAR10.train_list + CIFAR10.test_list}
    published["cifar-10-batches-py/batches.meta"] = CIFAR10.meta["md5"]
    assert {c.path: c.digest for c in listing.checksums} == published
    report = check_listing(listing, duplicates=False, progress=False)
    real = hashlib.md5((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()).hexdigest()
    assert f"md5 of cifar-10-batches-py/test_batch is {real}, the official value is {CIFAR10.test_list[0][1]}" in [
        i.message for i in report.failures
    ]


def test_matching_checksum_passes_and_restricts_to_the_loaded_split(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    good = OfficialChecksum("a.bin", hashlib.md5(b"abc").hexdigest(), "md5", "test table", ("train",))
    bad = OfficialChecksum("a.bin", "0" * 32, "md5", "test table", ("test",))
    listing = DatasetListing("x", tmp_path, "layout", (), None, (), (good, bad))
    assert check_listing(listing, splits=["train"], progress=False).ok
    assert not check_listing(listing, splits=["test"], progress=False).ok
    assert file_digest(tmp_path / "a.bin", "sha256") == hashlib.sha256(b"abc").hexdigest()


def test_identical_image_in_two_splits_fails(tmp_path: Path, mit: Path) -> None:
    root = _copy(mit, tmp_path / "m")
    test_file = (root / "TestImages.txt").read_text().split()[0]
    shutil.copyfile(root / "Images" / "bakery" / "bakery_0000.jpg", root / "Images" / test_file)
    report = check_dataset("mit67", root, progress=False)
    dup = [i.message for i in report.failures if i.topic == "duplicates"]
    assert dup == [
        f"1 images occur in more than one split (identical bytes), e.g. "
        f"Images/bakery/bakery_0000.jpg = Images/{test_file}"
    ]


def test_identical_image_within_a_split_only_warns(tmp_path: Path, mit: Path) -> None:
    root = _copy(mit, tmp_path / "m")
    shutil.copyfile(root / "Images" / "bakery" / "bakery_0000.jpg", root / "Images" / "bakery" / "bakery_0001.jpg")
    report = check_dataset("mit67", root, progress=False)
    assert not [i for i in report.failures if i.topic == "duplicates"]
    assert [i.message for i in report.warnings] == [
        "1 images occur more than once within a split, e.g. "
        "Images/bakery/bakery_0000.jpg = Images/bakery/bakery_0001.jpg"
    ]


def test_file_listed_twice_or_in_two_splits_fails(tmp_path: Path, mit: Path) -> None:
    root = _copy(mit, tmp_path / "m")
    train = (root / "TrainImages.txt").read_text().split()
    test = (root / "TestImages.txt").read_text().split()
    (root / "TrainImages.txt").write_text("\n".join([*train, train[0], test[0]]) + "\n")
    report = check_dataset("mit67", root, duplicates=False, progress=False)
    messages = [i.message for i in report.failures]
    assert f"train: 1 files listed more than once, e.g. Images/{train[0]}" in messages
    assert f"1 files are listed in more than one split, e.g. Images/{test[0]}" in messages
    with pytest.raises(DatasetError, match="train: 1 files listed more than once"):
        verify_listing(_as_official(listing_for("mit67", root), train=(11, 4), test=(3, 1)))


def test_missing_listed_file_is_a_layout_failure(tmp_path: Path, mit: Path) -> None:
    root = _copy(mit, tmp_path / "m")
    (root / "Images" / "kitchen" / "kitchen_0001.jpg").unlink()
    report = check_dataset("mit67", root, progress=False)
    assert [i.topic for i in report.items] == ["layout"]
    assert (
        "1 of the 9 images listed in TrainImages.txt are missing" in report.items[0].message
        and "Images/kitchen/kitchen_0001.jpg" in report.items[0].message
    )


def test_wrong_folder_gives_a_report_naming_the_layout(tmp_path: Path) -> None:
    report = check_dataset("food101", tmp_path, progress=False)
    assert not report.ok
    assert "food-101/images, food-101/meta/train.json not found" in report.render()
    assert "expected layout: <root>/food-101/{images/<class>/<id>.jpg" in report.render()


@pytest.mark.parametrize("missing", ["train", "test"])
def test_imagefolder_check_asks_for_train_and_test_as_documented(tmp_path: Path, missing: str) -> None:
    root = make_imagefolder(tmp_path / "copy", per_class={"train": 2, "val": 1, "test": 1})
    shutil.rmtree(root / missing)
    report = check_dataset("imagefolder", root, progress=False)
    assert not report.ok
    [failure] = report.failures
    assert failure.message.startswith(f"dataset 'imagefolder': {str(root / missing)!r} not found (expected layout: ")
    shutil.rmtree(root / "val")  # val/ stays optional
    make_imagefolder(root, per_class={missing: 1}, seed=1)  # other pixels: not duplicates of the kept splits
    assert check_dataset("imagefolder", root, progress=False).ok


def test_unlabeled_pool_has_no_class_checks(tmp_path: Path) -> None:
    report = check_dataset("stl10", make_stl10(tmp_path, unlabeled=2), progress=False)
    assert "unlabeled: 2 images, expected 100000" in [i.message for i in report.failures]
    assert not [i for i in report.items if i.message.startswith("unlabeled: labels")]


def test_cifar_arrays_are_hashed_for_duplicates(tmp_path: Path) -> None:
    import pickle

    root = make_cifar10(tmp_path)
    path = root / "cifar-10-batches-py" / "data_batch_2"
    batch = pickle.loads(path.read_bytes(), encoding="latin1")
    test = pickle.loads((root / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="latin1")
    batch["data"][0] = test["data"][3]
    path.write_bytes(pickle.dumps(batch, protocol=2))
    dup = [i.message for i in check_dataset("cifar10", root, progress=False).failures if i.topic == "duplicates"]
    assert dup == ["1 images occur in more than one split (identical bytes), e.g. train[2] = test[3]"]


def test_check_writes_nothing(tmp_path: Path, mit: Path) -> None:
    root = _copy(mit, tmp_path / "m")
    before = tree_state(tmp_path)
    check_dataset("mit67", root, progress=False)
    check_dataset("mit67", tmp_path / "nowhere", progress=False)
    assert tree_state(tmp_path) == before


def test_synthetic_tasks_are_checked_from_their_loader(synthetic_root: Path) -> None:
    report = check_dataset("synthetic-shape", synthetic_root, progress=False)
    assert report.ok, report.render()
    assert [i.topic for i in report.items if i.status == "info"].count("count") == 3


def test_cli_check_reports_and_sets_the_exit_code(tmp_path: Path, mit: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["datasets", "check", "mit67", "--data-root", str(mit)])
    assert bad.exit_code == 1 and "FAIL  count      train: 9 images, expected 5360" in bad.stdout
    assert "FAILED: " in bad.stdout.splitlines()[-1]  # (the progress bar goes to stderr)
    good = runner.invoke(
        main, ["datasets", "check", "imagefolder", "--data-root", str(make_imagefolder(tmp_path)), "--skip-duplicates"]
    )
    assert good.exit_code == 0 and good.stdout.splitlines()[-1] == "OK"
    assert "duplicates" not in good.stdout
