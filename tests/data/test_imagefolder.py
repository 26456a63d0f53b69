"""Generic folder readers: parity with torchvision's ImageFolder, and an exact error per bad layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from mast_bench.data.readers.imagefolder import ImageFolderSplit, UnlabeledFolder
from mast_bench.errors import DatasetError


def _img(path: Path, value: int = 0, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(path, format=fmt)
    return path


@pytest.fixture()
def split(tmp_path: Path) -> Path:
    root = tmp_path / "train"
    _img(root / "zebra" / "b.png", 1)
    _img(root / "zebra" / "a.jpg", 2, "JPEG")
    _img(root / "Apple" / "x.png", 3)
    _img(root / "apple" / "nested" / "deep.png", 4)
    _img(root / "apple" / "c.PNG", 5)
    (root / "apple" / "notes.txt").write_text("not an image")
    return root


def test_matches_torchvision_imagefolder(split: Path) -> None:
    ours, ref = ImageFolderSplit(split), ImageFolder(str(split))
    assert ours.classes == ref.classes == ["Apple", "apple", "zebra"]  # sorted by code point, like torchvision
    assert ours.class_to_idx == ref.class_to_idx
    assert [(str(p), t) for p, t in ours.samples] == ref.samples
    assert ours.targets == ref.targets and len(ours) == 5
    assert ours.counts() == {"Apple": 1, "apple": 2, "zebra": 2}


def test_items_and_transform(split: Path) -> None:
    ds = ImageFolderSplit(split, transform=lambda im: np.asarray(im)[0, 0, 0])
    assert [ds[i] for i in range(len(ds))] == [(3, 0), (5, 1), (4, 1), (2, 2), (1, 2)]
    img, _ = ImageFolderSplit(split)[0]
    assert img.mode == "RGB" and img.size == (4, 4)


def test_hidden_entries_are_ignored(split: Path) -> None:
    _img(split / ".ipynb_checkpoints" / "x.png")
    _img(split / "zebra" / ".cache" / "y.png")
    _img(split / "zebra" / ".hidden.png")
    assert ImageFolderSplit(split).classes == ["Apple", "apple", "zebra"] and len(ImageFolderSplit(split)) == 5


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as exc:
        ImageFolderSplit(tmp_path / "nope", layout="<root>/train/<class>/*.jpg")
    assert str(exc.value) == (
        f"image folder {str(tmp_path / 'nope')!r} does not exist (expected layout: <root>/train/<class>/*.jpg)"
    )


def test_no_class_folders_and_loose_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DatasetError, match=r"'.*/empty' has no class folders \(expected layout: .*/empty/<class_name>/"
    ):
        ImageFolderSplit(tmp_path / "empty")
    _img(tmp_path / "flat" / "a.png")
    with pytest.raises(DatasetError, match=r"holds images directly \(a.png, ...\); they must be inside one folder per"):
        ImageFolderSplit(tmp_path / "flat")


def test_empty_class_folder(split: Path) -> None:
    (split / "zebra" / "a.jpg").unlink()
    (split / "zebra" / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"class folder '.*/train/zebra' holds no images \(.png, .jpg, .jpeg"):
        ImageFolderSplit(split)


def test_expected_classes(split: Path) -> None:
    assert ImageFolderSplit(split, classes=["zebra", "apple", "Apple"]).classes == ["Apple", "apple", "zebra"]
    with pytest.raises(
        DatasetError, match=r"do not match the expected classes: missing \['cat'\], unexpected \['zebra'\]"
    ):
        ImageFolderSplit(split, classes=["Apple", "apple", "cat"])


def test_unreadable_image_names_the_file(split: Path) -> None:
    (split / "zebra" / "b.png").write_bytes(b"not a png")
    ds = ImageFolderSplit(split)
    with pytest.raises(DatasetError, match=r"cannot read image '.*/zebra/b.png'"):
        ds[4]


def test_unlabeled_folder(tmp_path: Path) -> None:
    for name in ("b.png", "a.png", "c.jpg"):
        _img(tmp_path / "pool" / name, fmt="JPEG" if name.endswith("jpg") else None)
    _img(tmp_path / "pool" / "sub" / "d.png")
    ds = UnlabeledFolder(tmp_path / "pool")
    assert [p.name for p in ds.files] == ["a.png", "b.png", "c.jpg"] and ds.targets == [-1, -1, -1]
    assert ds[0][1] == -1 and ds[0][0].size == (4, 4)
    assert [p.name for p in UnlabeledFolder(tmp_path / "pool", recursive=True).files] == [
        "a.png", "b.png", "c.jpg", "d.png",
    ]  # fmt: skip


def test_unlabeled_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"'.*/missing' does not exist \(expected layout: .*/missing/<image>.png\)"):
        UnlabeledFolder(tmp_path / "missing")
    _img(tmp_path / "classes" / "cat" / "a.png")
    with pytest.raises(DatasetError, match=r"holds no images \(.png, .*\) \(only sub-folders\) \(expected layout"):
        UnlabeledFolder(tmp_path / "classes")
    assert len(UnlabeledFolder(tmp_path / "classes", recursive=True)) == 1
