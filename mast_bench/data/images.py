"""The one path by which every reader opens an image file.

A corrupt, empty, truncated or mislabelled file (text saved as ``.jpg``) raises
:class:`~mast_bench.errors.DatasetError` ``cannot read image '<path>': <reason>``, which the CLI prints
as one line with exit status 2, instead of a PIL traceback from inside a DataLoader worker.
Readers built on torchvision datasets that decode in their own ``__getitem__`` (Food-101,
SUN397) mix in :class:`OpenImageItems`; ``ImageFolder``-based readers pass :func:`open_image` as
their ``loader``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from mast_bench.errors import DatasetError


def _reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file PIL can decode (unknown format, or not an image at all)"
    text = str(exc).replace(str(path), "").replace("''", "").strip(" :") or type(exc).__name__
    if "truncated" in text.lower():
        return f"the file is truncated (PIL: {text})"
    return f"{type(exc).__name__}: {text}" if isinstance(exc, (SyntaxError, ValueError)) else text


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image file completely and return it as an RGB PIL image.

    Decoding is forced here (``convert`` loads every pixel), so a file cut short fails now and names
    itself, rather than later inside a transform. Grayscale, palette and CMYK files (several official
    copies hold some) are converted to RGB.

    Raises:
        DatasetError: ``cannot read image '<path>': <reason>`` for a missing, empty, truncated or
            undecodable file.
    """
    p = Path(path)
    try:
        if p.is_file() and p.stat().st_size == 0:
            raise DatasetError(f"cannot read image {str(p)!r}: empty file (0 bytes)")
        with Image.open(p) as im:
            return im.convert("RGB")
    except DatasetError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {str(p)!r}: {_reason(p, exc)}") from None


class OpenImageItems:
    """Mixin for torchvision file-list datasets (``_image_files``, ``_labels``): decode through :func:`open_image`.

    Replaces the reader's ``__getitem__`` (``PIL.Image.open(f).convert("RGB")`` then the transforms) by
    the same steps with :func:`open_image`, so their items are unchanged for readable files.
    """

    _image_files: list[Any]
    _labels: list[Any]
    transform: Callable[[Any], Any] | None
    target_transform: Callable[[Any], Any] | None

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, label = open_image(self._image_files[index]), self._labels[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label
