"""Opening a sample's images, whether files (``Path``) or cells of a data file (``ImageRef``).

``open_image(image)`` gives a lazily decoded ``PIL.Image`` (a context manager; only the header
is parsed until the pixels are used), ``load_rgb(image)`` the decoded RGB copy, ``image_size``
the (width, height) from the header, and ``check_image(image, verify=True)`` raises ValueError
naming the image when it is missing, empty, corrupt, or larger than ``MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .types import ImageRef

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image accepted (width x height, read from the header): 64 megapixels."""


def open_image(image: Path | ImageRef | str) -> Any:
    """A ``PIL.Image`` over the file or the data-file cell (use as a context manager)."""
    from PIL import Image

    if isinstance(image, ImageRef):
        return image.open()
    return Image.open(Path(image))


def load_rgb(image: Path | ImageRef | str) -> Any:
    """The decoded image in RGB."""
    with open_image(image) as im:
        return im.convert("RGB")


def image_size(image: Path | ImageRef | str) -> tuple[int, int]:
    """(width, height) read from the header."""
    with open_image(image) as im:
        return im.size


def check_image(image: Path | ImageRef | str, verify: bool = True) -> None:
    """Raise ValueError if the image is missing, empty, too large (header) or corrupt.

    ``verify`` also checks the whole encoded stream (PIL ``verify``); without it only the header
    is read (the pixels of a data-file cell are then checked when the image is first decoded)."""
    from PIL import Image

    if not isinstance(image, ImageRef):
        image = Path(image)
        if not image.is_file():
            raise ValueError(f"image not found: {image}")
        if image.stat().st_size == 0:
            raise ValueError(f"image is empty (0 bytes): {image}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_image(image) as im:  # reads the header only
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise ValueError(
                        f"image too large: {w}x{h} = {w * h / 1e6:.0f} megapixels "
                        f"(limit {MAX_IMAGE_PIXELS / 1e6:.0f}): {image}"
                    )
                if verify:
                    im.verify()
    except ValueError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large: {exc}: {image}") from None
    except Exception as exc:  # PIL raises many kinds for corrupt data
        raise ValueError(f"image is corrupt or not an image ({exc.__class__.__name__}: {exc}): {image}") from None


__all__ = ["MAX_IMAGE_PIXELS", "open_image", "load_rgb", "image_size", "check_image"]
