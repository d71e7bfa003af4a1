"""Missing-modality conditions: what the model is shown for one sample (DESIGN.md table).

- ``complete``: the sample's images, question + options.
- ``text_white`` / ``text_black``: images of the same sizes, every pixel 255 / 0.
- ``text_noise``: same sizes, uniform noise in 0..255 from a generator seeded by a stable hash
  of (seed, sample id) (so reproducible, and different across samples).
- ``image_only``: the sample's ``vision_image``, else ``render_question_image(sample)``; the
  text is only ``IMAGE_ONLY_PROMPT`` (plus the answer-format sentence in ``cot`` mode).
- ``text_only``: no image; ``<image N>`` placeholders are removed from the question.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import difflib
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import UnknownNameError
from .registry import Registry
from .types import CONDITIONS, LETTERS, MODES, PromptView, Sample

DIRECT_INSTRUCTION = "Answer with the option's letter from the given choices directly."
COT_INSTRUCTION = (
    "Answer the preceding multiple choice question. The last line of your response should be of "
    "the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of options. "
    "Think step by step before answering."
)
IMAGE_ONLY_PROMPT = "Based on the provided images, please answer the question."
IMAGE_ONLY_COT_INSTRUCTION = (
    IMAGE_ONLY_PROMPT + " The last line of your response should be of the following format: "
    "'Answer: $LETTER' (without quotes) where LETTER is one of options. Think step by step before answering."
)

RENDER_WIDTH = 896
RENDER_FONT_SIZE = 28
_PLACEHOLDER = re.compile(r"\s*<image \d+>\s*")


def stable_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from (seed, parts) via SHA-256: stable across processes (not hash())."""
    key = "\x1f".join([str(int(seed))] + [str(p) for p in parts]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


def _image_sizes(sample: Sample) -> list[tuple[int, int]]:
    from PIL import Image

    sizes = []
    for p in sample.images:
        with Image.open(p) as im:  # header only
            sizes.append(im.size)
    return sizes


def _open_rgb(path: Path):
    from .samples import open_rgb

    return open_rgb(path)  # 16-bit / float images scaled, not clipped


def _complete(sample: Sample, seed: int) -> list:
    return [_open_rgb(p) for p in sample.images]


def _filled(value: int) -> Callable[[Sample, int], list]:
    def build(sample: Sample, seed: int) -> list:
        from PIL import Image

        return [Image.new("RGB", size, (value, value, value)) for size in _image_sizes(sample)]

    return build


def _noise(sample: Sample, seed: int) -> list:
    from PIL import Image

    rng = np.random.default_rng(stable_seed(seed, "text_noise", sample.id))
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
            for (w, h) in _image_sizes(sample)]


def _image_only(sample: Sample, seed: int) -> list:
    if sample.vision_image is not None:
        return [_open_rgb(sample.vision_image)]
    return [render_question_image(sample)]


def _none(sample: Sample, seed: int) -> list:
    return []


CONDITION_BUILDERS: Registry = Registry("condition")
for _name, _fn in (("complete", _complete), ("text_white", _filled(255)), ("text_black", _filled(0)),
                   ("text_noise", _noise), ("image_only", _image_only), ("text_only", _none)):
    CONDITION_BUILDERS.register(_name, _fn)
assert tuple(CONDITION_BUILDERS) == CONDITIONS


def check_condition(condition: str) -> str:
    """Return ``condition`` or raise UnknownNameError with a did-you-mean hint."""
    CONDITION_BUILDERS.get(condition)
    return condition


def condition_images(sample: Sample, condition: str, seed: int = 0) -> list:
    """The images (PIL RGB) shown under ``condition``, in placeholder order."""
    return CONDITION_BUILDERS.get(condition)(sample, seed)


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")  # DejaVu Sans ships with matplotlib: wide coverage
    if spec is not None and spec.origin:
        ttf = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if ttf.is_file():
            return ImageFont.truetype(str(ttf), size)
    return ImageFont.load_default(size=size)


def _wrap(text: str, font, width: float) -> list[str]:
    """Greedy word wrap by pixel width; words longer than a line are split."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            cand = f"{line} {word}" if line else word
            if font.getlength(cand) <= width:
                line = cand
                continue
            if line:
                lines.append(line)
            while len(word) > 1 and font.getlength(word) > width:  # split an over-long word
                cut = len(word) - 1
                while cut > 1 and font.getlength(word[:cut]) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def render_question_image(sample: Sample, width: int = RENDER_WIDTH, font_size: int = RENDER_FONT_SIZE,
                          include_images: bool = True, max_image_height: int = 480):
    """Question and lettered options rendered into one white RGB image, word-wrapped.

    Like MMMU-Pro's vision setting, the sample's own images are pasted below the question
    (each labelled ``<image N>``, scaled to fit) when ``include_images``; the options follow.
    Default 896 px wide with a 28 px font: legible at common VLM input resolutions.
    """
    from PIL import Image, ImageDraw

    font = _font(font_size)
    margin = font_size
    inner = width - 2 * margin
    line_h = int(font_size * 1.35)
    blocks: list[tuple[str, object]] = []  # ("text", (x, line)) or ("image", PIL)

    for line in _wrap(sample.question, font, inner):
        blocks.append(("text", (0, line)))
    if include_images:
        for i, p in enumerate(sample.images, start=1):
            im = _open_rgb(p)
            scale = min(1.0, inner / im.width, max_image_height / im.height)
            if scale < 1.0:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
            blocks.append(("gap", line_h // 3))
            blocks.append(("text", (0, f"<image {i}>")))
            blocks.append(("image", im))
    blocks.append(("gap", line_h // 2))
    for letter, opt in zip(LETTERS, sample.options):
        label = f"{letter}. "
        indent = font.getlength(label)
        wrapped = _wrap(opt, font, inner - indent) or [""]
        blocks.append(("text", (0, label + wrapped[0])))
        blocks.extend(("text", (indent, rest)) for rest in wrapped[1:])

    height = 2 * margin
    for kind, val in blocks:
        height += line_h if kind == "text" else (val if kind == "gap" else val.height + 4)  # type: ignore[union-attr]
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = margin
    for kind, val in blocks:
        if kind == "text":
            x, text = val  # type: ignore[misc]
            draw.text((margin + x, y), text, fill=(0, 0, 0), font=font)
            y += line_h
        elif kind == "gap":
            y += val  # type: ignore[operator]
        else:
            canvas.paste(val, (margin, y))  # type: ignore[arg-type]
            y += val.height + 4  # type: ignore[union-attr]
    return canvas


def make_view(sample: Sample, condition: str, mode: str = "direct", seed: int = 0) -> PromptView:
    """The PromptView of ``sample`` under ``condition`` and ``mode`` (direct | cot)."""
    check_condition(condition)
    if mode not in MODES:
        close = difflib.get_close_matches(str(mode), MODES, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown mode {mode!r}.{hint} Available: {', '.join(MODES)}.")
    images = tuple(condition_images(sample, condition, seed))
    letters = sample.letters
    if condition == "image_only":
        instruction = IMAGE_ONLY_PROMPT if mode == "direct" else IMAGE_ONLY_COT_INSTRUCTION
        return PromptView("", (), letters, instruction, images, sample.id, condition, mode)
    instruction = DIRECT_INSTRUCTION if mode == "direct" else COT_INSTRUCTION
    question = sample.question
    if condition == "text_only":
        question = _PLACEHOLDER.sub(" ", question).strip()
    return PromptView(question, sample.options, letters, instruction, images, sample.id, condition, mode)


__all__ = [
    "DIRECT_INSTRUCTION", "COT_INSTRUCTION", "IMAGE_ONLY_PROMPT", "IMAGE_ONLY_COT_INSTRUCTION",
    "CONDITION_BUILDERS", "check_condition", "condition_images", "render_question_image",
    "make_view", "stable_seed",
]
