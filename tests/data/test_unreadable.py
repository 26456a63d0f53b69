"""Every reader fails cleanly on unreadable data, and ``datasets check`` finds it.

For each registered dataset (the loop is over the whole registry, so a new reader without a fixture
fails here): a tiny copy in the official layout gets one image replaced by a truncated, empty or text
file (array-backed datasets: a truncated binary), and reading it gives the one-line
``cannot read image '<path>': <reason>`` (binaries: the file and the size expected). ``datasets check``
decodes every image and lists the bad one; ``--quick`` only checks presence and size.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from data_fixtures import (
    REAL_MAKERS,
    _py2_pickle,
    make_cifar10,
    make_dtd,
    make_food101,
    make_stl10,
)
from data_fixtures_fg import FG_MAKERS
from fewshot_fixtures import FEWSHOT_MAKERS

from mast_bench.cli import main
from mast_bench.data.verify.check import check_dataset
from mast_bench.errors import USER_ERRORS, DatasetError
from mast_bench.registry import DATASETS

MAKERS: dict[str, Callable[[Path], Path]] = {**REAL_MAKERS, **FG_MAKERS, **FEWSHOT_MAKERS}
#: Array-backed readers: the file to truncate and the images the official file holds (Krizhevsky 2009,
#: Coates et al. 2011).
BINARIES = {
    "cifar10": ("cifar-10-batches-py/data_batch_1", 10000),
    "cifar100": ("cifar-100-python/train", 50000),
    "stl10": ("stl10_binary/train_X.bin", 5000),
    "fc100": ("cifar-100-python/train", 50000),  # read through the cifar100 reader
}
REASONS = {
    "truncated": "the file is truncated (PIL: ",
    "empty": "empty file (0 bytes)",
    "text": "not an image file PIL can decode (unknown format, or not an image at all)",
}


def _copy(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    if name.startswith("synthetic-"):
        root = tmp_path / "suite"
        shutil.copytree(request.getfixturevalue("synthetic_root"), root)
        return root
    if name not in MAKERS:
        pytest.fail(f"no fixture for dataset {name!r}: add its maker to MAKERS (and BINARIES if array-backed)")
    return MAKERS[name](tmp_path)


def _split(name: str) -> str:
    return next(s for s in DATASETS.get(name).splits if "@" not in s)


def _spoil(path: Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("<html>404 Not Found</html>\n")


@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize("name", sorted(set(DATASETS.names()) - set(BINARIES)))
def test_an_unreadable_image_names_itself(name: str, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    root, split = _copy(name, tmp_path, request), _split(name)
    intact = DATASETS.get(name).build(root, split, verify=False)
    assert intact[0][0].size[0] > 0  # the fixture reads as it is: a PIL image (no transform)
    path = Path(intact.samples[0][0])
    _spoil(path, kind)
    ds = DATASETS.get(name).build(root, split, verify=False)  # listing never decodes: the copy still opens
    with pytest.raises(DatasetError) as err:
        ds[0]
    assert str(err.value).startswith(f"cannot read image {str(path)!r}: {REASONS[kind]}"), str(err.value)
    assert "\n" not in str(err.value) and isinstance(err.value, USER_ERRORS)


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_a_truncated_binary_names_the_file_and_the_size_expected(name: str, tmp_path: Path) -> None:
    root = MAKERS[name](tmp_path)
    rel, official = BINARIES[name]
    path = root / rel
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError) as err:
        DATASETS.get(name).build(root, _split(name), verify=False)
    msg = str(err.value)
    assert msg.startswith(f"dataset {'cifar100' if name == 'fc100' else name!r}: {rel} "), msg
    assert f"{path.stat().st_size} bytes" in msg and f"{official * 3 * (96 * 96 if name == 'stl10' else 1024)}" in msg


def test_a_cifar_batch_with_partial_images_names_the_file(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    batch = root / "cifar-10-batches-py" / "data_batch_2"
    entry = pickle.loads(batch.read_bytes(), encoding="latin1")  # the fixture's own file
    entry["data"] = entry["data"][:, :3000]  # rows cut short: not 32x32x3 any more
    _py2_pickle(batch, entry)
    with pytest.raises(DatasetError) as err:
        DATASETS.get("cifar10").build(root, "train", verify=False)
    assert str(err.value).startswith(
        "dataset 'cifar10': cifar-10-batches-py/data_batch_2 is truncated or corrupt (6000 pixel bytes and 2 labels "
        "do not make whole 32x32 RGB images with one label each; it has "
    ), str(err.value)
    assert "the official file holds 10000 images of 3072 bytes (30720000 bytes of pixels)" in str(err.value)


def test_a_truncated_stl10_label_file_names_it(tmp_path: Path) -> None:
    root = make_stl10(tmp_path)
    labels = root / "stl10_binary" / "train_y.bin"
    labels.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(DatasetError) as err:
        DATASETS.get("stl10").build(root, "train", verify=False)
    assert str(err.value).startswith(
        "dataset 'stl10': stl10_binary/train_X.bin holds 10 images (276480 bytes) but stl10_binary/train_y.bin holds "
        "9 labels; stl10_binary/train_y.bin should have 10 bytes (one label byte per image) to match (the official "
        "files hold 5000 images, 138240000 bytes, and 5000 labels): it is truncated or corrupt"
    ), str(err.value)


def test_an_stl10_image_file_cut_at_an_image_boundary_names_the_image_file(tmp_path: Path) -> None:
    root = make_stl10(tmp_path)
    images = root / "stl10_binary" / "train_X.bin"
    images.write_bytes(images.read_bytes()[: -2 * 3 * 96 * 96])  # two whole images gone: a whole number remains
    labels_before = (root / "stl10_binary" / "train_y.bin").read_bytes()
    with pytest.raises(DatasetError) as err:
        DATASETS.get("stl10").build(root, "train", verify=False)
    assert str(err.value).startswith(
        "dataset 'stl10': stl10_binary/train_X.bin holds 8 images (221184 bytes) but stl10_binary/train_y.bin holds "
        "10 labels; stl10_binary/train_X.bin should have 276480 bytes (10 images of 27648 bytes) to match (the "
        "official files hold 5000 images, 138240000 bytes, and 5000 labels): it is truncated or corrupt"
    ), str(err.value)
    assert "\n" not in str(err.value) and isinstance(err.value, USER_ERRORS)
    assert (root / "stl10_binary" / "train_y.bin").read_bytes() == labels_before  # nothing touched


def test_a_dataloader_worker_error_stays_one_line(tmp_path: Path) -> None:
    root = make_dtd(tmp_path)
    ds = DATASETS.get("dtd").build(root, "train", verify=False)
    path = Path(ds.samples[0][0])
    _spoil(path, "text")
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    with pytest.raises(DatasetError) as err:
        next(iter(loader))
    assert str(err.value) == f"cannot read image {str(path)!r}: {REASONS['text']}"


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_datasets_check_decodes_every_image_and_lists_the_bad_ones(kind: str, tmp_path: Path) -> None:
    root = make_food101(tmp_path)
    good = check_dataset("food101", root, progress=False)
    assert [i.message for i in good.items if i.topic == "decode"] == [
        "train: all 9 images decode",
        "test: all 3 images decode",
    ]
    files = [Path(p) for p, _ in DATASETS.get("food101").build(root, "test", verify=False).samples]
    for f in files[:2]:
        _spoil(f, kind)
    result = CliRunner().invoke(main, ["datasets", "check", "food101", "--data-root", str(root)])
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if "decode" in ln and "test:" in ln)
    assert line.strip().startswith("FAIL  decode     test: 2 of 3 images cannot be read: ")
    assert all(repr(str(f)) in line for f in files[:2]) and repr(str(files[2])) not in line
    quick = CliRunner().invoke(main, ["datasets", "check", "food101", "--data-root", str(root), "--quick"])
    assert "  decode  " not in quick.output and "ok    size       test: no empty files" in quick.output
    assert quick.exit_code == 1  # the fixture's counts are not the official ones; no decoding failure is listed


def test_datasets_check_quick_finds_empty_files_without_decoding(tmp_path: Path, monkeypatch) -> None:
    root = make_dtd(tmp_path)
    bad = Path(DATASETS.get("dtd").build(root, "val", verify=False).samples[1][0])
    _spoil(bad, "empty")
    monkeypatch.setattr("mast_bench.data.verify.check.open_image", lambda p: pytest.fail("decoded in --quick"))
    report = check_dataset("dtd", root, quick=True, progress=False)
    sizes = [(i.status, i.message) for i in report.items if i.topic == "size"]
    rel = bad.relative_to(root / "dtd" / "dtd")
    assert sizes == [
        ("ok", "train: no empty files"),
        ("fail", f"val: 1 empty files (0 bytes): {rel}"),
        ("ok", "test: no empty files"),
    ]
    assert {i.topic for i in report.items}.isdisjoint({"decode", "checksum"})  # no decoding, no md5 pass
    assert not any("identical" in i.message for i in report.items)  # no duplicate search
