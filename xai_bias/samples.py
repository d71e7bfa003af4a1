"""Sample sets: load and validate multiple-choice items from a JSONL file or a dataset table.

Dataset tables (``hf:ORG/NAME``, a hub-layout or ``save_to_disk`` folder, a ``.parquet`` file)
are read by ``xai_bias.table_samples`` in each benchmark's own column schema; the rest of this
docstring is about JSONL.

One JSON object a line, in DESIGN.md's Sample format, MMMU-Pro field names accepted::

    {"id": "validation_Music_11", "question": "Name ... <image 1>",
     "options": ["turn", "slide", ...]          # a list, or its string form "['turn', ...]"
     "answer": "F",                              # a letter, optional
     "image_1": "images/x_1.png", ...            # or "images": [...]; MMMU-Pro: image_1..image_7
     "vision_image": "vision/x.png",             # optional screenshot of question + options
     "video": "clips/x.mp4",                     # optional: a video file or a folder of frames;
                                                 #   or "videos": [...], or video_1..video_N
     "audio": "clips/x.wav",                     # optional: wav / flac / mp3 / ogg; or "audios"
                                                 #   / audio_1..audio_N
     "meta": {...}, "subject": "Music", ...}     # every other field goes to Sample.meta

Image paths are relative to the file's folder, else to its ``static/`` subfolder (the MMMU-Pro
layout); absolute paths are used as they are. ``<image N>`` placeholders stay in the question.

An item without ``id`` (the official repository's current ``mmmu-pro/tool/data.jsonl``) gets a
stable derived one: its image files' common stem without the ``_N`` suffix
(``images/test_Music_251_1.png`` -> ``test_Music_251``), else ``FILE:LINE``; one
``DerivedIdWarning`` per file says how many, and ``SampleSet.provenance["derived_ids"]`` counts them.

Every line is validated before any model work; each problem is a ``SampleError`` naming
``file:line``, the id and the cause: malformed JSON, non-UTF-8 bytes, a line that is not an
object, a missing or non-string id, a missing question, a question that is empty while the item
has no image (an empty question is allowed when images carry it), missing options, fewer than 2
options or more than there are letters, an answer letter outside the options, a placeholder
``<image N>`` with no N-th image, an image that is missing, empty (0 bytes), corrupt (PIL
``verify``) or larger than ``MAX_IMAGE_PIXELS`` (read from the header only), a video or audio
clip that is missing, empty, corrupt (decoded once: ``xai_bias.media``) or too long (audio over
``media.MAX_AUDIO_SECONDS``, video over ``media.MAX_VIDEO_SECONDS``), and a duplicate id.
With ``on_error="stop"`` the first problem raises; with ``"skip"`` problems are collected in
``SampleSet.problems`` and the item is left out.

"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import SampleError, UsageError
from .images import MAX_ASPECT_RATIO, MAX_IMAGE_PIXELS, check_image, load_rgb as open_rgb  # noqa: F401
from .types import LETTERS, ImageRef, MediaRef, Sample

PLACEHOLDER = re.compile(r"<image (\d+)>")
_IMAGE_KEY = re.compile(r"^image_(\d+)$")
_MEDIA_KEY = re.compile(r"^(video|audio)_(\d+)$")
_KNOWN = {"id", "question", "options", "answer", "images", "vision_image", "meta",
          "video", "videos", "audio", "audios"}


@dataclass(frozen=True)
class SampleSet:
    """A validated sample set: ``samples`` in file order, ``problems`` (SampleError) of the
    lines left out, ``name`` (file stem, or the folder name for ``data.jsonl``), ``sha256`` of
    the file's bytes (of the items' content for a dataset table), ``provenance``: where the
    items come from (dataset, config, split, revision, fingerprint, ...), written to the trace."""

    samples: tuple[Sample, ...]
    problems: tuple[SampleError, ...]
    name: str
    sha256: str
    path: Path | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

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


def _resolve(value: Any, base: Path, key: str, check: bool) -> Path | ImageRef | MediaRef:
    if isinstance(value, (ImageRef, MediaRef)):
        return value
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

    for n in sorted({int(m) for m in PLACEHOLDER.findall(question)}):
        if n < 1 or n > len(images):
            raise ValueError(f"question refers to <image {n}> but the item has {len(images)} image(s)")

    videos = _media_fields(obj, "video", base, check_images)
    audios = _media_fields(obj, "audio", base, check_images)
    if not question.strip() and not images and not videos and not audios:
        raise ValueError("empty question and no image, video or audio")

    vision = obj.get("vision_image")
    vision_path = _resolve(vision, base, "vision_image", check_images) if vision not in (None, "") else None

    if check_images:
        for p in images + ([vision_path] if vision_path else []):
            check_image(p, verify=not isinstance(p, ImageRef))  # a data-file cell: header only

    meta: dict[str, Any] = {}
    if isinstance(obj.get("meta"), dict):
        meta.update(obj["meta"])
    elif obj.get("meta") is not None:
        raise ValueError("'meta' must be an object")
    for k, v in obj.items():
        if k not in _KNOWN and not _IMAGE_KEY.match(k) and not _MEDIA_KEY.match(k):
            meta[k] = v
    return Sample(sid, question, options, answer, tuple(images), vision_path, meta, tuple(videos), tuple(audios))


def _media_fields(obj: dict, kind: str, base: Path, check: bool) -> list[Path | MediaRef]:
    """The item's ``kind`` clips ("video" / "audio"): one ``kind`` field, a ``kinds`` list, or
    ``kind_1..kind_N``, resolved like image paths and (``check``) decoded once to validate them."""
    from . import media

    numbered = sorted((int(m.group(2)), k) for k in obj if (m := _MEDIA_KEY.match(k)) and m.group(1) == kind)
    raw: list[tuple[str, Any]] = [(k, obj[k]) for _, k in numbered if obj[k] not in (None, "")]
    given = [key for key in (kind, f"{kind}s") if obj.get(key) not in (None, [], "")]
    if len(given) + bool(raw) > 1:
        raise ValueError(f"has more than one of {kind!r}, '{kind}s' and {kind}_N fields")
    if obj.get(kind) not in (None, ""):
        raw = [(kind, obj[kind])]
    elif obj.get(f"{kind}s") not in (None, [], ""):
        if not isinstance(obj[f"{kind}s"], list):
            raise ValueError(f"'{kind}s' must be a list of paths")
        raw = [(f"{kind}s[{i}]", v) for i, v in enumerate(obj[f"{kind}s"])]
    elif numbered and [n for n, k in numbered if obj[k] not in (None, "")] != list(range(1, len(raw) + 1)):
        raise ValueError(f"{kind} fields are not numbered 1..N: {[k for _, k in numbered]}")
    clips = [_resolve(v, base, k, check) for k, v in raw]
    if check:
        for clip in clips:
            (media.check_video if kind == "video" else media.check_audio)(clip)
    return clips


def _set_name(path: Path) -> str:
    return path.parent.name if path.stem in ("data", "test", "validation", "samples") and path.parent.name else path.stem


class DerivedIdWarning(UserWarning):
    """Items of a sample file had no id: stable ids were derived (one warning per file)."""


def derive_id(obj: dict, path: Path, lineno: int) -> str:
    """A stable id for an item without one: the common stem of its image files without the
    ``_N`` suffix of image N (``images/test_Music_251_1.png`` -> ``test_Music_251``), else
    ``FILE:LINE``."""
    named = [(int(m.group(1)), v) for k, v in obj.items() if (m := _IMAGE_KEY.match(k))]
    if isinstance(obj.get("images"), list):
        named += [(i + 1, v) for i, v in enumerate(obj["images"])]
    stems = set()
    for n, value in named:
        if isinstance(value, str) and value.strip():
            stem = Path(value).stem
            stems.add(stem[: -len(f"_{n}")] if stem.endswith(f"_{n}") and len(stem) > len(f"_{n}") else stem)
    return stems.pop() if len(stems) == 1 else f"{path.name}:{lineno}"


def load_samples(path: str | Path, on_error: str = "stop", limit: int | None = None,
                 check_images: bool = True, subset: str | None = None, split: str | None = None,
                 schema: str | None = None) -> SampleSet:
    """Load and validate a sample set: a JSONL file, or a dataset table (``hf:ORG/NAME``, a
    hub-layout or ``save_to_disk`` folder, a ``.parquet`` file; ``subset`` / ``split`` pick its
    config and split, ``schema`` its column schema when not detected; see ``table_samples``).

    on_error: "stop" raises the first SampleError; "skip" collects problems and goes on.
    limit: stop once this many valid samples are loaded (lines after are not read).
    """
    from .hf_data import is_table_spec

    if on_error not in ("stop", "skip"):
        raise UsageError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    if limit is not None and limit < 0:
        raise UsageError(f"limit must be >= 0, got {limit}")
    if is_table_spec(path):
        from .table_samples import load_table_samples

        return load_table_samples(path, subset, split, on_error=on_error, limit=limit, schema=schema)
    if subset or split:
        raise UsageError(f"{path}: --subset / --split apply to dataset tables (hf:..., a folder, .parquet), "
                         "not to a JSONL file")
    path = Path(path)
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
    derived = 0
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
            if isinstance(obj, dict) and obj.get("id") in (None, ""):
                new_id = derive_id(obj, path, lineno)
                obj = {**obj, "id": new_id if new_id not in seen else f"{path.name}:{lineno}", "id_derived": True}
                derived += 1
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
    if derived:
        warnings.warn(f"{path}: {derived} item(s) have no 'id'; derived stable ids from their image file names "
                      "(else FILE:LINE)", DerivedIdWarning, stacklevel=2)
    provenance = {"source": str(path), "kind": "jsonl", "derived_ids": derived}
    return SampleSet(tuple(samples), tuple(problems), _set_name(path), hashlib.sha256(data).hexdigest(), path,
                     provenance)
