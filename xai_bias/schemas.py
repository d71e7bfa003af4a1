"""Column schemas of the modality-bias benchmarks: how one dataset row becomes one Sample item.

Each registered ``Schema`` names the columns it needs, its image columns, and turns a row
(text columns as Python values, images as lazy ``ImageRef``) into a sample item in the JSONL
form of ``xai_bias.samples`` (so every item goes through the same validation), or skips a row
that is not a multiple-choice item with an image (with the reason, counted in provenance).
The schemas follow the datasets' own cards (the README ``dataset_info`` of each Hugging Face
dataset, read with the search tool) and the official loaders:

- ``mmmu`` — ``MMMU/MMMU_Pro`` configs ``standard (10 options)`` / ``standard (4 options)``
  (id, question, options as a string list, explanation, image_1..image_7, image_type, answer,
  topic_difficulty, subject) and ``MMMU/MMMU`` (per-subject configs; id, question, options,
  explanation, image_1..image_7, img_type, answer, topic_difficulty, question_type, subfield;
  ``question_type == "open"`` rows are skipped).
- ``mmmu_pro_vision`` — ``MMMU/MMMU_Pro`` config ``vision`` (id, image, options, answer,
  subject): the screenshot holds question and options; it is the item's image and its
  ``vision_image``.
- ``mmstar`` — ``Lin-Chen/MMStar`` (index, question, image, answer, category, l2_category,
  meta_info): the options are inline in the question ("...\\nOptions: A: x, B: y, C: z, D: w")
  and are split off it.
- ``mmbench`` — ``lmms-lab/MMBench`` config ``en`` (index, question, hint, A, B, C, D, answer,
  category, image, source, L2-category, comment, split): options are the non-empty A..D
  columns; a ``hint`` (text the model may lean on) goes before the question as lmms-eval's
  MMBench task puts it ("{hint}\\n{question}"), and ``meta`` keeps ``hint_text`` and
  ``has_hint`` so a study can tell the items apart.
- ``ai2d`` — ``lmms-lab/ai2d`` (question, options, answer as the option's index, image; no id
  column: the id is the row number, as lmms-eval's ``doc_id``).
- ``scienceqa`` — ``derek-thomas/ScienceQA`` and ``lmms-lab/ScienceQA`` config
  ``ScienceQA-IMG`` (image, question, choices, answer as an index, hint, task, grade, subject,
  topic, category, skill, lecture, solution): rows without an image are skipped (the image
  subset); the ``hint`` is the item's context, put before the question as lmms-eval's task does
  ("Context: {hint}\\n{question}"), and kept in ``meta`` like MMBench's. The id is the row
  number in the split (before the text-only rows are skipped).
- ``media_mc`` — any multiple-choice table with ``video`` and / or ``audio`` columns (datasets
  ``Video`` / ``Audio`` features, ``struct<bytes, path>`` cells read as lazy ``MediaRef``s) and
  question, options (a list or its string form), answer (a letter or an option index), optional
  id and image; checked last, and only fits a table that has a ``video`` or ``audio`` column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import SampleError
from .registry import Registry
from .types import LETTERS, ImageRef

Row = Mapping[str, Any]
ImageGetter = Callable[[str], "ImageRef | None"]
Item = "dict[str, Any] | str"  # a sample item, or the reason the row is skipped


@dataclass(frozen=True)
class Schema:
    """One dataset's columns. ``required``: must all be present; ``excludes``: columns whose
    presence means another schema; ``to_item(row, image, index)`` -> item dict or skip reason."""

    name: str
    required: tuple[str, ...]
    image_columns: tuple[str, ...]
    to_item: Callable[[Row, ImageGetter, int], Any]
    datasets: str
    excludes: tuple[str, ...] = ()
    media_columns: tuple[str, ...] = ()  # Audio / Video columns (the getter gives MediaRefs)
    any_of: tuple[str, ...] = ()  # at least one of these columns must be present

    def missing(self, columns: Any) -> list[str]:
        gone = [c for c in self.required if c not in columns]
        if self.any_of and not any(c in columns for c in self.any_of):
            gone.append(" or ".join(self.any_of))
        return gone

    def fits(self, columns: Any) -> bool:
        return not self.missing(columns) and not any(c in columns for c in self.excludes)


SCHEMAS: Registry = Registry("dataset schema")


def _text(value: Any) -> str:
    """A cell as text; None and pandas' NaN strings become ""."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    return "" if text.strip().lower() == "nan" else text


def _meta(row: Row, drop: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in drop}


def _with_hint(question: str, hint: str, template: str) -> tuple[str, dict[str, Any]]:
    hint = hint.strip()
    meta = {"hint_text": hint, "has_hint": bool(hint)}
    return (template.format(hint=hint, question=question) if hint else question), meta


def _index_answer(value: Any, n: int) -> str:
    """An answer given as the option's index (0-based, int or digit string) -> its letter."""
    try:
        k = int(str(value).strip())
    except ValueError:
        raise ValueError(f"answer {value!r} is not an option index") from None
    if not 0 <= k < n:
        raise ValueError(f"answer index {k} is outside the {n} options")
    return LETTERS[k]


def _mmmu(row: Row, image: ImageGetter, index: int) -> Any:
    if _text(row.get("question_type")).strip().lower() == "open":
        return "open question (not multiple choice)"
    item: dict[str, Any] = {"id": row["id"], "question": row["question"], "options": row["options"],
                            "answer": row["answer"]}
    for k in range(1, 8):
        ref = image(f"image_{k}")
        if ref is not None:
            item[f"image_{k}"] = ref
    item["meta"] = _meta(row, ("id", "question", "options", "answer"))
    return item


def _mmmu_pro_vision(row: Row, image: ImageGetter, index: int) -> Any:
    shot = image("image")
    item: dict[str, Any] = {"id": row["id"], "question": "", "options": row["options"], "answer": row["answer"],
                            "meta": _meta(row, ("id", "options", "answer"))}
    if shot is not None:
        item["image_1"] = shot
        item["vision_image"] = shot
    return item


_MMSTAR_SPLIT = re.compile(r"\s*Options:\s*", re.IGNORECASE)


def mmstar_options(question: str) -> tuple[str, list[str]]:
    """Split MMStar's inline options off the question: "Q?\\nOptions: A: x, B: y" -> ("Q?", [x, y])."""
    parts = _MMSTAR_SPLIT.split(question)
    if len(parts) < 2:
        raise ValueError("no 'Options: A: ..., B: ...' in the question")
    stem, text = "Options:".join(parts[:-1]).rstrip(), parts[-1]
    if not text.startswith("A: "):
        raise ValueError(f"options do not start with 'A: ': {text[:40]!r}")
    options, pos = [], 3
    for letter in LETTERS[1:]:
        cut = text.find(f", {letter}: ", pos)
        if cut < 0:
            break
        options.append(text[pos:cut])
        pos = cut + len(f", {letter}: ")
    options.append(text[pos:].rstrip())
    return stem, [o.strip() for o in options]


def _mmstar(row: Row, image: ImageGetter, index: int) -> Any:
    question, options = mmstar_options(_text(row["question"]))
    item = {"id": str(row["index"]), "question": question, "options": options, "answer": row["answer"],
            "meta": _meta(row, ("index", "question", "answer"))}
    ref = image("image")
    if ref is not None:
        item["image_1"] = ref
    return item


def _mmbench(row: Row, image: ImageGetter, index: int) -> Any:
    options = []
    for letter in LETTERS:
        value = _text(row.get(letter))
        if not value:
            break
        options.append(value)
    question, hint_meta = _with_hint(_text(row["question"]), _text(row.get("hint")), "{hint}\n{question}")
    item = {"id": str(row["index"]), "question": question, "options": options, "answer": row["answer"],
            "meta": {**_meta(row, ("index", "question", "answer", "hint", *LETTERS)), **hint_meta}}
    ref = image("image")
    if ref is not None:
        item["image_1"] = ref
    return item


def _ai2d(row: Row, image: ImageGetter, index: int) -> Any:
    options = list(row["options"] or [])
    item = {"id": str(index), "question": row["question"], "options": options,
            "answer": _index_answer(row["answer"], len(options)), "meta": {"row": index}}
    ref = image("image")
    if ref is not None:
        item["image_1"] = ref
    return item


def _scienceqa(row: Row, image: ImageGetter, index: int) -> Any:
    ref = image("image")
    if ref is None:
        return "no image (a text-only ScienceQA item)"
    choices = list(row["choices"] or [])
    question, hint_meta = _with_hint(_text(row["question"]), _text(row.get("hint")), "Context: {hint}\n{question}")
    meta = {**_meta(row, ("question", "choices", "answer", "hint", "lecture", "solution")), **hint_meta, "row": index}
    return {"id": str(index), "question": question, "options": choices,
            "answer": _index_answer(row["answer"], len(choices)), "image_1": ref, "meta": meta}


def _media_mc(row: Row, clip: ImageGetter, index: int) -> Any:
    """A multiple-choice item whose ``video`` / ``audio`` (and optional ``image``) columns carry
    the non-text modalities; options as a list (or its string form), the answer a letter or an
    index."""
    options = row["options"]
    if isinstance(options, str):
        from .samples import parse_options

        options = list(parse_options(options))
    options = list(options or [])
    answer = row["answer"]
    if isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        answer = _index_answer(answer, len(options))
    item: dict[str, Any] = {"id": str(row.get("id", index)), "question": _text(row["question"]),
                            "options": options, "answer": answer,
                            "meta": _meta(row, ("id", "question", "options", "answer"))}
    for column in ("video", "audio", "image"):
        ref = clip(column)
        if ref is not None:
            item["image_1" if column == "image" else column] = ref
    if not any(k in item for k in ("video", "audio", "image_1")):
        return "no video, audio or image"
    return item


for _schema in (
    Schema("mmmu_pro_vision", ("id", "image", "options", "answer"), ("image",), _mmmu_pro_vision,
           "MMMU/MMMU_Pro (vision)", excludes=("question",)),
    Schema("mmmu", ("id", "question", "options", "answer", "image_1"), tuple(f"image_{k}" for k in range(1, 8)),
           _mmmu, "MMMU/MMMU_Pro (standard), MMMU/MMMU"),
    Schema("mmbench", ("index", "question", "hint", "A", "B", "answer", "image"), ("image",), _mmbench,
           "lmms-lab/MMBench (en)"),
    Schema("mmstar", ("index", "question", "image", "answer"), ("image",), _mmstar, "Lin-Chen/MMStar",
           excludes=("A", "hint")),
    Schema("scienceqa", ("question", "choices", "answer", "image"), ("image",), _scienceqa,
           "derek-thomas/ScienceQA, lmms-lab/ScienceQA (ScienceQA-IMG)"),
    Schema("ai2d", ("question", "options", "answer", "image"), ("image",), _ai2d, "lmms-lab/ai2d",
           excludes=("id",)),
    Schema("media_mc", ("question", "options", "answer"), ("image",), _media_mc,
           "multiple-choice items with video / audio columns (datasets Video / Audio features)",
           media_columns=("video", "audio"), any_of=("video", "audio")),
):
    SCHEMAS.register(_schema.name, _schema)


def detect_schema(columns: Any, origin: str, name: str | None = None) -> Schema:
    """The schema ``name``, or the first registered one the columns fit; SampleError naming the
    missing columns (of the named or the closest schema) and the file otherwise."""
    columns = set(columns)
    if name is not None:
        schema = SCHEMAS.get(name)
        if schema.missing(columns):
            raise SampleError(origin, f"not in the {schema.name} schema ({schema.datasets}): missing column(s) "
                                      f"{', '.join(schema.missing(columns))}; it has {', '.join(sorted(columns))}")
        return schema
    for key in SCHEMAS:
        if SCHEMAS.get(key).fits(columns):
            return SCHEMAS.get(key)
    closest = max((SCHEMAS.get(k) for k in SCHEMAS), key=lambda s: len(s.required) - len(s.missing(columns)))
    raise SampleError(origin, f"columns {', '.join(sorted(columns))} fit no known dataset schema; closest is "
                              f"{closest.name} ({closest.datasets}), missing column(s) "
                              f"{', '.join(closest.missing(columns)) or '(none; it has a column that rules it out)'}")


__all__ = ["Schema", "SCHEMAS", "detect_schema", "mmstar_options"]
