"""Sample sets: load and validate a JSONL file of multiple-choice items.

One JSON object a line, in DESIGN.md's Sample format, MMMU-Pro field names accepted::

    {"id": "validation_Music_11", "question": "Name ... <image 1>",
     "options": ["turn", "slide", ...]          # a list, or its string form "['turn', ...]"
     "answer": "F",                              # a letter, optional
     "image_1": "images/x_1.png", ...            # or "images": [...]; MMMU-Pro: image_1..image_7
     "vision_image": "vision/x.png",             # optional screenshot of question + options
     "meta": {...}, "subject": "Music", ...}     # every other field goes to Sample.meta

Image paths are relative to the file's folder, else to its ``static/`` subfolder (the MMMU-Pro
layout); absolute paths are used as they are. ``<image N>`` placeholders stay in the question.

Every line is validated before any model work; each problem is a ``SampleError`` naming
``file:line``, the id and the cause: malformed JSON, non-UTF-8 bytes, a line that is not an
object, a missing or non-string id, a missing question, a question that is empty while the item
has no image (an empty question is allowed when images carry it), missing options, fewer than 2
options or more than there are letters, an answer letter outside the options, a placeholder
``<image N>`` with no N-th image, an image that is missing, empty (0 bytes), corrupt (PIL
``verify``) or larger than ``MAX_IMAGE_PIXELS`` (read from the header only), and a duplicate id.
With ``on_error="stop"`` the first problem raises; with ``"skip"`` problems are collected in
``SampleSet.problems`` and the item is left out.

Hugging Face parquet layouts are not read (pyarrow is not a dependency): such a path gets a
``UsageError`` saying so.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import SampleError, UsageError
from .types import LETTERS, Sample

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image accepted (width x height, read from the header): 64 megapixels."""

MAX_ASPECT_RATIO = 200
"""Most elongated image accepted (long side / short side): the vision processors refuse more
(Qwen2-VL's ``smart_resize`` raises above 200)."""

PLACEHOLDER = re.compile(r"<image (\d+)>")
_IMAGE_KEY = re.compile(r"^image_(\d+)$")
_KNOWN = {"id", "question", "options", "answer", "images", "vision_image", "meta"}


@dataclass(frozen=True)
class SampleSet:
    """A validated sample set: ``samples`` in file order, ``problems`` (SampleError) of the
    lines left out, ``name`` (file stem, or the folder name for ``data.jsonl``), ``sha256`` of
    the file's bytes."""

    samples: tuple[Sample, ...]
    problems: tuple[SampleError, ...]
    name: str
    sha256: str
    path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(self.samples))
        object.__setattr__(self, "problems", tuple(self.problems))

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def ids(self) -> list[str]:
        return [s.id for s in self.samples]


def parse_options(value: Any) -> tuple[str, ...]:
    """Options as a list or its string form ("['a', 'b']", via ast.literal_eval, never eval).

    A list holding one list is unwrapped (a quirk of real MMMU-Pro output files)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ValueError(f"options is a string that is not a list literal ({exc.__class__.__name__})") from None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"options must be a list, got {type(value).__name__}")
    if len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]  # "[['A', 'B', ...]]": a nested list, as in MMMU-Pro's validation_Accounting_29
    out = []
    for i, opt in enumerate(value):
        if isinstance(opt, bool) or not isinstance(opt, (str, int, float)):
            raise ValueError(f"option {i + 1} is {type(opt).__name__}, not text")
        out.append(str(opt))
    return tuple(out)


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


def check_image(path: Path) -> None:
    """Raise ValueError if the image is missing, not a regular file, empty, too large or too
    elongated (header), corrupt, or of a pixel type that cannot be shown as 8-bit RGB."""
    from PIL import Image

    if not path.is_file():
        raise ValueError(_not_a_file(path))
    if path.stat().st_size == 0:
        raise ValueError(f"image is empty (0 bytes): {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:  # reads the header only
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise ValueError(
                        f"image too large: {w}x{h} = {w * h / 1e6:.0f} megapixels "
                        f"(limit {MAX_IMAGE_PIXELS / 1e6:.0f}): {path}"
                    )
                if max(w, h) > MAX_ASPECT_RATIO * max(1, min(w, h)):
                    ratio = f"{max(w, h) / max(1, min(w, h)):.0f}:1"
                    raise ValueError(f"image {w}x{h} has an aspect ratio {ratio}, more than the {MAX_ASPECT_RATIO}:1 "
                                     f"the vision processors accept: {path}")
                mode = im.mode
                im.verify()
            if mode in _WIDE_MODES:  # the pixel range decides whether it maps to 8 bits
                open_rgb(path)
    except ValueError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large: {exc}: {path}") from None
    except Exception as exc:  # PIL raises many kinds for corrupt data
        raise ValueError(f"image is corrupt or not an image ({exc.__class__.__name__}: {exc}): {path}") from None


#: PIL modes of more than 8 bits per pixel, which ``convert("RGB")`` clips instead of scaling.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def open_rgb(path: Path):
    """The image as 8-bit RGB (PIL), 16-bit, 32-bit integer and float images scaled, not
    clipped: 16-bit by 65535 -> 255; 32-bit integer ones whose values lie in 0..65535 likewise
    (PNG's 16-bit grey opens so); float ones in [0, 1] by 255, in [0, 255] as they are.
    ValueError (naming the file and the range) for one that cannot be mapped without guessing."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
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
                         f"that maps to 8-bit colour without guessing: {path}")
    grey = np.clip(np.round(a / scale * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _resolve(value: Any, base: Path, key: str, check: bool) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty path string")
    p = Path(value)
    if p.is_absolute():
        return p
    for root in (base, base / "static"):
        if (root / p).exists():
            return root / p
    if check:
        raise ValueError(f"{key} not found: {value} (looked in {base} and {base / 'static'})")
    return base / p


def sample_from_dict(obj: Any, base: Path, check_images: bool = True) -> Sample:
    """Build one Sample from a parsed JSON line; ValueError names the cause."""
    if not isinstance(obj, dict):
        raise ValueError(f"line is a JSON {type(obj).__name__}, not an object")
    if "id" not in obj or obj["id"] is None:
        raise ValueError("missing 'id'")
    sid = obj["id"]
    if isinstance(sid, bool) or not isinstance(sid, (str, int)) or str(sid).strip() == "":
        raise ValueError(f"'id' must be a non-empty string, got {sid!r}")
    sid = str(sid)
    if "question" not in obj:
        raise ValueError("missing 'question'")
    question = obj["question"]
    if not isinstance(question, str):
        raise ValueError(f"'question' must be a string, got {type(question).__name__}")
    if "options" not in obj:
        raise ValueError("missing 'options'")
    options = parse_options(obj["options"])
    if len(options) < 2:
        raise ValueError(f"needs at least 2 options, has {len(options)}")
    if len(options) > len(LETTERS):
        raise ValueError(f"has {len(options)} options, more than the {len(LETTERS)} letters")

    answer = obj.get("answer")
    if answer is not None:
        if not isinstance(answer, str):
            raise ValueError(f"'answer' must be a letter, got {answer!r}")
        answer = answer.strip().upper() or None
    if answer is not None and (len(answer) != 1 or answer not in LETTERS[: len(options)]):
        raise ValueError(
            f"answer {obj.get('answer')!r} is not one of the option letters "
            f"{LETTERS[0]}-{LETTERS[len(options) - 1]} ({len(options)} options)"
        )

    numbered = sorted((int(m.group(1)), k) for k in obj if (m := _IMAGE_KEY.match(k)))
    raw_images: list[tuple[str, Any]] = [(k, obj[k]) for _, k in numbered if obj[k] not in (None, "")]
    if obj.get("images") not in (None, [], ""):
        if numbered:
            raise ValueError("has both 'images' and image_N fields")
        if not isinstance(obj["images"], list):
            raise ValueError("'images' must be a list of paths")
        raw_images = [(f"images[{i}]", v) for i, v in enumerate(obj["images"])]
    if numbered and [n for n, k in numbered if obj[k] not in (None, "")] != list(range(1, len(raw_images) + 1)):
        raise ValueError(f"image fields are not numbered 1..N: {[k for _, k in numbered]}")
    images = [_resolve(v, base, k, check_images) for k, v in raw_images]

    if not question.strip() and not images:
        raise ValueError("empty question and no image")
    for n in sorted({int(m) for m in PLACEHOLDER.findall(question)}):
        if n < 1 or n > len(images):
            raise ValueError(f"question refers to <image {n}> but the item has {len(images)} image(s)")

    vision = obj.get("vision_image")
    vision_path = _resolve(vision, base, "vision_image", check_images) if vision not in (None, "") else None

    if check_images:
        for p in images + ([vision_path] if vision_path else []):
            check_image(p)

    meta: dict[str, Any] = {}
    if isinstance(obj.get("meta"), dict):
        meta.update(obj["meta"])
    elif obj.get("meta") is not None:
        raise ValueError("'meta' must be an object")
    for k, v in obj.items():
        if k not in _KNOWN and not _IMAGE_KEY.match(k):
            meta[k] = v
    return Sample(sid, question, options, answer, tuple(images), vision_path, meta)


def _set_name(path: Path) -> str:
    return path.parent.name if path.stem in ("data", "test", "validation", "samples") and path.parent.name else path.stem


def load_samples(path: str | Path, on_error: str = "stop", limit: int | None = None,
                 check_images: bool = True) -> SampleSet:
    """Load and validate a JSONL sample set.

    on_error: "stop" raises the first SampleError; "skip" collects problems and goes on.
    limit: stop once this many valid samples are loaded (lines after are not read).
    """
    if on_error not in ("stop", "skip"):
        raise UsageError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    if limit is not None and limit < 0:
        raise UsageError(f"limit must be >= 0, got {limit}")
    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        raise UsageError(
            f"{path}: Hugging Face parquet layouts are not supported (pyarrow is not installed); "
            "export the data set to JSONL (id, question, options, answer, image_1...)"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"sample file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read sample file {path}: {exc}") from None

    if not data.strip():
        raise SampleError(str(path), "the sample file is empty: it holds no samples")
    base = path.parent
    samples: list[Sample] = []
    problems: list[SampleError] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if limit is not None and len(samples) >= limit:
            break
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        sid = None
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
            if isinstance(obj, dict) and isinstance(obj.get("id"), (str, int)):
                sid = str(obj["id"])
            sample = sample_from_dict(obj, base, check_images=check_images)
            if sample.id in seen:
                raise ValueError(f"duplicate id (first on line {seen[sample.id]})")
        except ValueError as exc:
            err = SampleError(f"{where} (id {sid})" if sid else where, str(exc))
            if on_error == "stop":
                raise err from None
            problems.append(err)
            continue
        seen[sample.id] = lineno
        samples.append(sample)
    return SampleSet(tuple(samples), tuple(problems), _set_name(path), hashlib.sha256(data).hexdigest(), path)
