"""easy-VQA (PyPI ``easy-vqa``, MIT) turned into multiple-choice Samples, with optional hints.

easy-VQA holds 64x64 images of one coloured shape (4,000 train / 1,000 test images) and
questions about the shape, its colour, and presence (yes/no). Each question becomes a
multiple-choice item whose options come in a FIXED order per question type (``OPTIONS``):

- ``shape``: circle, rectangle, triangle
- ``color``: the eight colours
- ``yesno``: yes, no

A hint is one sentence appended to the question that names one of the options, e.g.
``"what color is the shape? Hint: the shape is probably blue."``. Its kind is ``"correct"``
(names the answer), ``"conflicting"`` (names another option: it contradicts the image) or
``"none"`` (no hint). Images are referenced by path inside the installed package.

This module is shared by the probe suites (``hint_conflict``, ``easy_vqa``) and the demo
models' training script (``scripts/train_demo.py``), so that training items and probe items
are built by the same code.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from xai_bias.types import LETTERS, Sample

SHAPES: tuple[str, ...] = ("circle", "rectangle", "triangle")
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "teal", "brown", "gray", "black")
YESNO: tuple[str, ...] = ("yes", "no")
QTYPES: tuple[str, ...] = ("shape", "color", "yesno")
OPTIONS: dict[str, tuple[str, ...]] = {"shape": SHAPES, "color": COLORS, "yesno": YESNO}
HINT_KINDS: tuple[str, ...] = ("correct", "conflicting", "none")
SPLITS: tuple[str, ...] = ("train", "test")

_HINT_TEMPLATES = {
    "shape": "Hint: the shape is probably a {}.",
    "color": "Hint: the shape is probably {}.",
    "yesno": "Hint: the answer is probably {}.",
}


@dataclass(frozen=True)
class Question:
    """One easy-VQA question (before options and hint are attached)."""

    split: str
    index: int  # position in the split's questions.json
    text: str
    answer: str  # answer word ("circle", "blue", "yes", ...)
    image_id: int
    qtype: str  # shape | color | yesno
    negated: bool  # yes/no questions with "not" / "is no"

    @property
    def options(self) -> tuple[str, ...]:
        return OPTIONS[self.qtype]


def _easy_vqa():
    try:
        import easy_vqa
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ImportError("the easy-VQA probes need the 'easy-vqa' package: pip install easy-vqa") from exc
    return easy_vqa


def question_type(text: str, answer: str) -> str:
    if answer in YESNO:
        return "yesno"
    if answer in SHAPES:
        return "shape"
    if answer in COLORS:
        return "color"
    raise ValueError(f"unknown easy-VQA answer {answer!r} for question {text!r}")


def is_negated(text: str) -> bool:
    return " not " in f" {text} " or text.startswith("is no ")


@lru_cache(maxsize=None)
def questions(split: str) -> tuple[Question, ...]:
    """All questions of ``split`` ("train" or "test"), in the package's order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    ev = _easy_vqa()
    texts, answers, image_ids = ev.get_train_questions() if split == "train" else ev.get_test_questions()
    return tuple(
        Question(split, i, t, a, int(im), question_type(t, a), a in YESNO and is_negated(t))
        for i, (t, a, im) in enumerate(zip(texts, answers, image_ids))
    )


@lru_cache(maxsize=None)
def image_paths(split: str) -> dict[int, Path]:
    """image id -> PNG path inside the installed easy-vqa package."""
    ev = _easy_vqa()
    paths = ev.get_train_image_paths() if split == "train" else ev.get_test_image_paths()
    return {int(k): Path(v) for k, v in paths.items()}


@lru_cache(maxsize=None)
def image_labels(split: str) -> dict[int, tuple[str | None, str | None]]:
    """image id -> (shape, colour); None where the data does not tell (a few shapes).

    Read off the split's questions: an answer to a shape or colour question, a yes/no answer
    that says the named attribute is present, or, for shapes, the one shape left when the
    others are ruled out. A colour no question names is read from the image itself: easy-VQA
    paints the shape in one exact palette colour, learnt here from the labelled images.
    """
    shape: dict[int, str] = {}
    color: dict[int, str] = {}
    not_shape: dict[int, set[str]] = {}
    for q in questions(split):
        words = q.text.rstrip("?").split()
        named_shapes = [w for w in words if w in SHAPES]
        named_colors = [w for w in words if w in COLORS]
        if q.qtype == "shape":
            shape[q.image_id] = q.answer
            color.update({q.image_id: w for w in named_colors})
        elif q.qtype == "color":
            color[q.image_id] = q.answer
            shape.update({q.image_id: w for w in named_shapes})
        elif (q.answer == "yes") != q.negated:  # the named attribute is present
            shape.update({q.image_id: w for w in named_shapes})
            color.update({q.image_id: w for w in named_colors})
        else:
            not_shape.setdefault(q.image_id, set()).update(named_shapes)
    for i, ruled_out in not_shape.items():
        left = [s for s in SHAPES if s not in ruled_out]
        if i not in shape and len(left) == 1:
            shape[i] = left[0]
    paths = image_paths(split)
    if any(i not in color for i in paths):
        palette = {}
        for i, c in list(color.items())[:200]:
            palette[_shape_rgb(paths[i])] = c
        for i in paths:
            if i not in color and _shape_rgb(paths[i]) in palette:
                color[i] = palette[_shape_rgb(paths[i])]
    return {i: (shape.get(i), color.get(i)) for i in sorted(paths)}


def _shape_rgb(path: Path) -> tuple[int, int, int]:
    """The shape's colour: the most frequent pixel colour after the background."""
    from PIL import Image

    with Image.open(path) as im:
        colors = im.convert("RGB").getcolors(64 * 64)
    colors.sort(reverse=True)
    return tuple(colors[1][1])


def hint_sentence(qtype: str, option: str) -> str:
    """The hint naming ``option``, e.g. "Hint: the shape is probably a circle."."""
    return _HINT_TEMPLATES[qtype].format(option)


def pick_hint(q: Question, kind: str, rng: random.Random) -> str | None:
    """The option a hint of ``kind`` names for ``q`` (None for ``"none"``)."""
    if kind == "none":
        return None
    if kind == "correct":
        return q.answer
    if kind == "conflicting":
        return rng.choice([o for o in q.options if o != q.answer])
    if kind == "uniform":  # any option, the answer included (balanced model's training hints)
        return rng.choice(q.options)
    raise ValueError(f"unknown hint kind {kind!r}")


def make_sample(q: Question, hint: str | None, *, id_prefix: str = "evqa", extra_meta: dict | None = None) -> Sample:
    """A multiple-choice Sample for ``q`` whose text carries a hint naming ``hint`` (or none)."""
    opts = q.options
    if hint is not None and hint not in opts:
        raise ValueError(f"hint {hint!r} is not an option of {q.text!r}")
    kind = "none" if hint is None else ("correct" if hint == q.answer else "conflicting")
    text = q.text if hint is None else f"{q.text} {hint_sentence(q.qtype, hint)}"
    meta = {
        "source": "easy_vqa",
        "split": q.split,
        "question_index": q.index,
        "image_id": q.image_id,
        "qtype": q.qtype,
        "negated": q.negated,
        "hint": kind,
        "hint_option": hint or "",
        "answer_text": q.answer,
    }
    meta.update(extra_meta or {})
    suffix = "" if hint is None else f"-{kind}-{hint}"
    return Sample(
        id=f"{id_prefix}-{q.split}-{q.index}{suffix}",
        question=text,
        options=opts,
        answer=LETTERS[opts.index(q.answer)],
        images=(image_paths(q.split)[q.image_id],),
        meta=meta,
    )


def vocabulary() -> list[str]:
    """Every word (and punctuation mark) the easy-VQA items can contain, sorted.

    Questions, option words, and hint sentences, split into words and punctuation marks.
    """
    words: set[str] = set()

    def add(text: str) -> None:
        words.update(_split_words(text))

    for split in SPLITS:
        for q in questions(split):
            add(q.text)
    for qtype, opts in OPTIONS.items():
        for o in opts:
            add(o)
            add(hint_sentence(qtype, o))
    return sorted(words)


def _split_words(text: str) -> list[str]:
    return re.findall(r"[\w']+|[^\w\s]", text)


def stratified_questions(split: str, seed: int, cells: Sequence[tuple[str, str]] | None = None) -> dict[str, list[Question]]:
    """Questions of ``split`` grouped by question type, each group shuffled with ``seed``."""
    rng = random.Random(f"{split}-{seed}")
    groups: dict[str, list[Question]] = {t: [] for t in QTYPES}
    for q in questions(split):
        groups[q.qtype].append(q)
    for t in QTYPES:
        rng.shuffle(groups[t])
    return groups


def sample_set_sha256(samples: Iterable[Sample]) -> str:
    """Content hash of a list of Samples (ids, text, options, answers, image file names)."""
    h = hashlib.sha256()
    for s in samples:
        rec = [s.id, s.question, list(s.options), s.answer, [p.name for p in s.images], dict(s.meta)]
        h.update(json.dumps(rec, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def make_sample_set(samples: list[Sample], name: str):
    """Wrap Samples in ``xai_bias.samples.SampleSet`` (the ablation study's container)."""
    from xai_bias.samples import SampleSet

    return SampleSet(samples=tuple(samples), problems=(), name=name, sha256=sample_set_sha256(samples))


def probe_samples(split: str, n: int, seed: int, kinds: Sequence[str]) -> list[Sample]:
    """``n`` items of ``split``, balanced over ``kinds`` x question types (round robin).

    Item k has hint kind ``kinds[k % len(kinds)]`` and question type
    ``QTYPES[(k // len(kinds)) % 3]``, so any prefix is balanced. Each question is used once;
    a conflicting hint's option is drawn with a seed per (seed, question). The list stops early
    when a question type runs out.
    """
    groups = stratified_questions(split, seed)
    taken = {t: 0 for t in QTYPES}
    out: list[Sample] = []
    for k in range(n):
        kind = kinds[k % len(kinds)]
        qtype = QTYPES[(k // len(kinds)) % len(QTYPES)]
        if taken[qtype] >= len(groups[qtype]):
            break
        q = groups[qtype][taken[qtype]]
        taken[qtype] += 1
        hint = pick_hint(q, kind, random.Random(f"hint-{seed}-{split}-{q.index}"))
        out.append(make_sample(q, hint))
    return out


def check_build_args(probe: str, limit: int | None, path: str | None) -> None:
    from xai_bias.errors import UsageError

    if path is not None:
        raise UsageError(f"probe {probe!r} reads the installed easy-vqa package and takes no path (got {path!r})")
    if limit is not None and limit < 1:
        raise UsageError(f"probe {probe!r}: --limit must be at least 1 (got {limit})")
