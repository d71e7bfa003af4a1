"""Opening a sample's images, whether files (``Path``) or cells of a data file (``ImageRef``).

``open_image(image)`` gives a lazily decoded ``PIL.Image`` (a context manager; only the header
is parsed until the pixels are used), ``load_rgb(image)`` the decoded 8-bit RGB copy (16-bit,
32-bit integer and float images scaled, never clipped), ``image_size`` the (width, height) from
the header, and ``check_image(image, verify=True)`` raises ValueError naming the image when it
is missing or not a regular file (saying what it is), empty, corrupt, larger than
``MAX_IMAGE_PIXELS``, more elongated than ``MAX_ASPECT_RATIO``, or of a pixel range that cannot
be shown as 8-bit colour.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .types import ImageRef

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image accepted (width x height, read from the header): 64 megapixels."""
MAX_ASPECT_RATIO = 200
"""Most elongated image accepted (long side / short side): the vision processors refuse more
(Qwen2-VL's ``smart_resize`` raises above 200)."""

#: PIL modes of more than 8 bits per pixel, which ``convert("RGB")`` clips instead of scaling.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def open_image(image: Path | ImageRef | str) -> Any:
    """A ``PIL.Image`` over the file or the data-file cell (use as a context manager)."""
    from PIL import Image

    if isinstance(image, ImageRef):
        return image.open()
    return Image.open(Path(image))


def load_rgb(image: Path | ImageRef | str) -> Any:
    """The image as 8-bit RGB (PIL); 16-bit, 32-bit integer and float images are scaled, not
    clipped: 16-bit by 65535 -> 255; 32-bit integer ones whose values lie in 0..65535 likewise
    (PNG's 16-bit grey opens so); float ones in [0, 1] by 255, in [0, 255] as they are.
    ValueError (naming the image and the range) for one that cannot be mapped without guessing."""
    import numpy as np
    from PIL import Image

    with open_image(image) as im:
        if im.mode not in _WIDE_MODES:
            return im.convert("RGB")
        mode = im.mode
        a = np.asarray(im).astype(np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
        scale = 65535.0
    elif mode == "F" and np.isfinite(a).all() and lo >= 0 and hi <= 1:
        scale = 1.0
    elif mode == "F" and np.isfinite(a).all() and lo >= 0 and hi <= 255:
        scale = 255.0
    else:
        kind = "32-bit integer" if mode == "I" else "float"
        allowed = "0..65535" if mode == "I" else "[0, 1] or [0, 255]"
        raise ValueError(f"{kind} image with values in [{lo:g}, {hi:g}], outside the range {allowed} "
                         f"that maps to 8-bit colour without guessing: {image}")
    grey = np.clip(np.round(a / scale * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


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
            raise ValueError(_not_a_file(image))
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
                if max(w, h) > MAX_ASPECT_RATIO * max(1, min(w, h)):
                    ratio = f"{max(w, h) / max(1, min(w, h)):.0f}:1"
                    raise ValueError(f"image {w}x{h} has an aspect ratio {ratio}, more than the {MAX_ASPECT_RATIO}:1 "
                                     f"the vision processors accept: {image}")
                mode = im.mode
                if verify:
                    im.verify()
        if mode in _WIDE_MODES:  # the pixel range decides whether it maps to 8 bits
            load_rgb(image)
    except ValueError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large: {exc}: {image}") from None
    except Exception as exc:  # PIL raises many kinds for corrupt data
        raise ValueError(f"image is corrupt or not an image ({exc.__class__.__name__}: {exc}): {image}") from None


def _not_a_file(path: Path) -> str:
    """What ``path`` is when it is not a regular file ("image not found" only when absent)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return f"image not found: {path}"
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return f"image path is {what}, not an image file: {path}"
    return f"image path is not a regular file: {path}"


__all__ = ["MAX_IMAGE_PIXELS", "MAX_ASPECT_RATIO", "open_image", "load_rgb", "image_size", "check_image"]
