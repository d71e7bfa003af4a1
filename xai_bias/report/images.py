"""Images named in the record metadata, embedded as downscaled data URIs (one per file).

The runner stores the sample's image paths in ``meta["images"]`` (older traces and other
writers may use ``image`` / ``image_path`` / ...: the keys the figures read). Relative paths are
tried against the trace's folder and the working directory. Each file is read, downscaled to
``max_side`` pixels on its longer side and encoded as PNG or JPEG, whichever is smaller; the
same file used by many records (or traces) is embedded once.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any, Mapping

from ..plots.overlays import META_IMAGE_KEYS


def image_paths(meta: Any) -> list[str]:
    """The image paths a record's metadata names, in order."""
    if not isinstance(meta, Mapping):
        return []
    for key in META_IMAGE_KEYS:
        value = meta.get(key)
        if not value:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        return [os.fspath(v) for v in values if v]
    return []


class ImageStore:
    """Data URIs of the embedded images; ``add`` returns an image's index (None if unreadable)."""

    def __init__(self, max_side: int = 256):
        self.max_side = int(max_side)
        self.uris: list[str] = []
        self.sizes: list[tuple[int, int]] = []  # (width, height) of the original file
        self.missing: dict[str, str] = {}  # path -> why it is not embedded
        self._index: dict[str, int | None] = {}

    @property
    def n_bytes(self) -> int:
        return sum(len(u) for u in self.uris)

    def checkpoint(self) -> int:
        return len(self.uris)

    def n_bytes_since(self, mark: int) -> int:
        return sum(len(u) for u in self.uris[mark:])

    def rollback(self, mark: int) -> None:
        """Forget the images added after ``checkpoint()`` returned ``mark``."""
        del self.uris[mark:], self.sizes[mark:]
        self._index = {k: v for k, v in self._index.items() if v is None or v < mark}

    def add(self, name: str, base: Path) -> int | None:
        path = _resolve(name, base)
        key = str(path) if path is not None else f"{base}::{name}"
        if key in self._index:
            return self._index[key]
        idx = None
        if path is None:
            self.missing[name] = "file not found (tried as given, next to the trace and in the working directory)"
        else:
            try:
                uri, size = encode_image(path, self.max_side)
            except Exception as exc:  # PIL raises many types for unreadable files
                self.missing[name] = f"unreadable image ({type(exc).__name__}: {exc})"
            else:
                idx = len(self.uris)
                self.uris.append(uri)
                self.sizes.append(size)
        self._index[key] = idx
        return idx


def _resolve(name: str, base: Path) -> Path | None:
    p = Path(name).expanduser()
    for cand in ([p] if p.is_absolute() else [base / p, Path.cwd() / p]):
        if cand.is_file():
            return cand
    return None


def encode_image(path: Path, max_side: int) -> tuple[str, tuple[int, int]]:
    """(data URI of the downscaled image, original (width, height))."""
    from PIL import Image

    with Image.open(path) as im:
        size = im.size
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        best = None
        for fmt, mime, kwargs in (("PNG", "image/png", {"optimize": True}),
                                  ("JPEG", "image/jpeg", {"quality": 82, "optimize": True})):
            buf = io.BytesIO()
            im.save(buf, fmt, **kwargs)
            data = buf.getvalue()
            if best is None or len(data) < len(best[1]):
                best = (mime, data)
    mime, data = best
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", size
