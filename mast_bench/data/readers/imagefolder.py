"""Generic readers for images stored as files: class folders (ImageFolder) and unlabeled folders.

``ImageFolderSplit`` reads one split laid out as ``<split>/<class_name>/<image>`` and numbers the
classes in sorted order of their folder names, exactly like ``torchvision.datasets.ImageFolder``
(same class indices and sample order; a test checks the parity). Unlike torchvision it checks
the layout up front and raises :class:`~mast_bench.errors.DatasetError` with a message that names
the folder at fault and the expected layout, instead of a bare ``FileNotFoundError`` deep in a
DataLoader worker. Hidden entries (names starting with ".") are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from mast_bench.data.images import open_image
from mast_bench.errors import DatasetError

#: Image suffixes accepted (lower-cased), as in torchvision's IMG_EXTENSIONS minus the rare ones.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _image_files(folder: Path, recursive: bool) -> list[Path]:
    """Image files under ``folder`` in torchvision's order (sorted walk, sorted names)."""
    if not recursive:
        return [folder / n for n in sorted(os.listdir(folder)) if is_image_file(n) and (folder / n).is_file()]
    found = []
    for root, _, names in sorted(os.walk(folder, followlinks=True)):
        if any(part.startswith(".") for part in Path(root).relative_to(folder).parts):
            continue
        found += [Path(root) / n for n in sorted(names) if is_image_file(n)]
    return found


class ImageFolderSplit(Dataset[tuple[Any, int]]):
    """One split of a classification dataset stored as one folder per class.

    Args:
        root: the split folder, holding ``<class_name>/`` sub-folders of images (searched recursively).
        transform: applied to each RGB PIL image.
        classes: if given, the class folders must be exactly these names (any order).
        layout: description of the expected layout, quoted in every error message.

    Items are ``(transform(image), class_index)`` with class indices in sorted order of the names.

    Raises:
        DatasetError: the folder is missing, has no class folders, a class folder holds no images,
            images lie directly in ``root``, or the class folders differ from ``classes``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Image.Image], Any] | None = None,
        classes: Sequence[str] | None = None,
        layout: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        self.layout = layout or f"{self.root}/<class_name>/<image>.png (one folder per class)"
        hint = f"(expected layout: {self.layout})"
        if not self.root.is_dir():
            raise DatasetError(f"image folder {str(self.root)!r} does not exist {hint}")
        entries = sorted(e for e in os.listdir(self.root) if not e.startswith("."))
        found = [e for e in entries if (self.root / e).is_dir()]
        loose = [e for e in entries if is_image_file(e) and (self.root / e).is_file()]
        if loose:
            raise DatasetError(
                f"image folder {str(self.root)!r} holds images directly ({loose[0]}, ...); "
                f"they must be inside one folder per class {hint}"
            )
        if not found:
            raise DatasetError(f"image folder {str(self.root)!r} has no class folders {hint}")
        if classes is not None:
            missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
            if missing or extra:
                raise DatasetError(
                    f"class folders in {str(self.root)!r} do not match the expected classes: "
                    f"missing {missing}, unexpected {extra} {hint}"
                )
        self.classes: list[str] = found
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(found)}
        self.samples: list[tuple[Path, int]] = []
        for c in found:
            files = _image_files(self.root / c, recursive=True)
            if not files:
                raise DatasetError(
                    f"class folder {str(self.root / c)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}) {hint}"
                )
            self.samples += [(f, self.class_to_idx[c]) for f in files]
        self.targets: list[int] = [t for _, t in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        img = open_image(path)
        return (self.transform(img) if self.transform is not None else img), target

    def counts(self) -> dict[str, int]:
        """Number of images per class name."""
        out = dict.fromkeys(self.classes, 0)
        for _, t in self.samples:
            out[self.classes[t]] += 1
        return out


class UnlabeledFolder(Dataset[tuple[Any, int]]):
    """Every image in one folder (sorted by path), for pretraining; the target is always -1.

    Args:
        folder: the folder of images.
        transform: applied to each RGB PIL image.
        recursive: also read images in sub-folders (e.g. an ImageFolder train split used without labels).
        layout: description of the expected layout, quoted in error messages.

    Raises:
        DatasetError: the folder is missing or holds no images.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        transform: Callable[[Image.Image], Any] | None = None,
        recursive: bool = False,
        layout: str | None = None,
    ) -> None:
        self.root = Path(folder)
        self.transform = transform
        self.layout = layout or f"{self.root}/<image>.png" + (" (sub-folders allowed)" if recursive else "")
        hint = f"(expected layout: {self.layout})"
        if not self.root.is_dir():
            raise DatasetError(f"image folder {str(self.root)!r} does not exist {hint}")
        self.files: list[Path] = _image_files(self.root, recursive)
        if not self.files:
            sub = "" if recursive or not any(p.is_dir() for p in self.root.iterdir()) else " (only sub-folders)"
            raise DatasetError(
                f"image folder {str(self.root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}){sub} {hint}"
            )
        # Same attributes as ImageFolderSplit, so code that lists files works on both.
        self.samples: list[tuple[Path, int]] = [(f, -1) for f in self.files]
        self.targets: list[int] = [-1] * len(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = open_image(self.files[index])
        return (self.transform(img) if self.transform is not None else img), -1
