"""Missing-modality conditions as registered data: what the model is shown for one sample.

A ``Condition`` names how its images are built from the sample, which modality it removes
relative to ``complete`` (the ablation study pairs each condition with ``complete`` by that), what
text is shown, and its label. The runner (``make_view``), the estimator's ablation, Tables 1 and 2
and the figures all read the registry ``CONDITION_REGISTRY``; to add a condition, write one
``register_condition(Condition(...))`` (docs/CONTRACTS.md). The built-ins (DESIGN.md table):

- ``complete``: the sample's images, question + options.
- ``text_white`` / ``text_black``: images of the same sizes, every pixel 255 / 0.
- ``text_noise``: same sizes, uniform noise in 0..255 from a generator seeded by a stable hash
  of (seed, sample id) (so reproducible, and different across samples).
- ``image_only``: the sample's ``vision_image``, else ``render_question_image(sample)``; the
  text is only ``IMAGE_ONLY_PROMPT`` (plus the answer-format sentence in ``cot`` mode).
- ``text_only``: no image, video or audio; ``<image N>`` placeholders are removed from the question.

A condition also says what it does to a sample's video and audio clips (``videos`` / ``audios``
builders; the default keeps them, decoded by ``xai_bias.media``). The image conditions keep
them (``image_only`` and ``text_only`` show none); the video and audio conditions keep the
images and the other clip kind:

- ``audio_silent`` / ``audio_noise``: every audio clip replaced by silence / white noise of the
  same length (noise: Gaussian, scaled to the clip's RMS level, seeded by (seed, sample id));
  ``audio_removed``: no audio.
- ``video_frozen``: every frame is the clip's first frame (the motion is removed, the look kept);
  ``video_black``: black frames of the same size and number; ``video_shuffled``: the frames in a
  random order (seeded by (seed, sample id); never the original order when there are 2+ frames);
  ``video_removed``: no video.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import UnknownNameError
from .images import image_size, load_rgb
from .registry import Registry
from .types import CONDITIONS, LETTERS, MODALITIES, MODES, ImageRef, PromptView, Sample

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
    return [image_size(p) for p in sample.images]  # headers only


def _open_rgb(image: Path | ImageRef):
    return load_rgb(image)  # a file or a data-file cell (xai_bias.images)


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


# ------------------------------------------------------------------- video and audio builders


def _videos(sample: Sample) -> list:
    from .media import decode_video

    return [decode_video(v) for v in sample.videos]


def _audios(sample: Sample) -> list:
    from .media import decode_audio

    return [decode_audio(a) for a in sample.audios]


def keep_videos(sample: Sample, seed: int) -> list:
    """The sample's video clips as they are (``media.VideoClip``)."""
    return _videos(sample)


def keep_audios(sample: Sample, seed: int) -> list:
    """The sample's audio clips as they are (``media.AudioClip``)."""
    return _audios(sample)


def _video_frozen(sample: Sample, seed: int) -> list:
    return [v.with_frames(np.repeat(v.frames[:1], len(v), axis=0)) for v in _videos(sample)]


def _video_black(sample: Sample, seed: int) -> list:
    return [v.with_frames(np.zeros_like(v.frames)) for v in _videos(sample)]


def shuffled_order(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(n)`` that is not the identity when ``n >= 2``."""
    order = rng.permutation(n)
    while n >= 2 and np.array_equal(order, np.arange(n)):
        order = rng.permutation(n)
    return order


def _video_shuffled(sample: Sample, seed: int) -> list:
    rng = np.random.default_rng(stable_seed(seed, "video_shuffled", sample.id))
    return [v.with_frames(v.frames[shuffled_order(len(v), rng)]) for v in _videos(sample)]


def _audio_silent(sample: Sample, seed: int) -> list:
    from .media import AudioClip

    return [AudioClip(np.zeros_like(a.samples), a.rate, a.source) for a in _audios(sample)]


def _audio_noise(sample: Sample, seed: int) -> list:
    from .media import AudioClip

    rng = np.random.default_rng(stable_seed(seed, "audio_noise", sample.id))
    out = []
    for a in _audios(sample):
        rms = float(np.sqrt(np.mean(np.square(a.samples, dtype=np.float64)))) or 0.1
        noise = np.clip(rng.standard_normal(a.samples.shape[0]) * rms, -1.0, 1.0)
        out.append(AudioClip(noise.astype(np.float32), a.rate, a.source))
    return out


#: what text a condition shows: the question and options ("standard") or only the image-only
#: prompt, the question being inside the image ("vision", MMMU-Pro's vision setting)
TEXT_MODES = ("standard", "vision")


@dataclass(frozen=True)
class Condition:
    """One registered condition (data; see the module docstring).

    images: (sample, seed) -> the PIL RGB images shown, in placeholder order ([] for none).
    removes: the modality this condition removes relative to ``complete`` (a key of
      ``types.MODALITIES`` other than "other"), or None for ``complete`` itself / a condition
      that removes nothing; the ablation pairs every removing condition with ``complete``.
    text: ``"standard"`` (question + options; ``<image N>`` placeholders are dropped when no
      image is shown) or ``"vision"`` (only the image-only prompt).
    label: how tables and figures name it ("text + white image"); color: a figure colour (None:
      the next colour of the palette).
    videos / audios: (sample, seed) -> the video clips (``media.VideoClip``) / audio clips
      (``media.AudioClip``) shown, in order; the default keeps the sample's own.
    """

    name: str
    label: str
    images: Callable[[Sample, int], list]
    removes: str | None = None
    text: str = "standard"
    color: str | None = None
    description: str = ""
    videos: Callable[[Sample, int], list] = keep_videos
    audios: Callable[[Sample, int], list] = keep_audios

    def __post_init__(self) -> None:
        if self.removes is not None and (self.removes not in MODALITIES or self.removes == "other"):
            raise ValueError(f"condition {self.name!r}: removes={self.removes!r} is not a modality "
                             f"({', '.join(m for m in MODALITIES if m != 'other')})")
        if self.text not in TEXT_MODES:
            raise ValueError(f"condition {self.name!r}: text={self.text!r} not in {TEXT_MODES}")


CONDITION_REGISTRY: Registry[Condition] = Registry("condition")


def register_condition(condition: Condition) -> Condition:
    """Add ``condition`` to ``CONDITION_REGISTRY`` (a name already registered is an error)."""
    return CONDITION_REGISTRY.register(condition.name, condition)


for _c in (
    Condition("complete", "image + text", _complete, None, color="#0072B2",
              description="the sample's images, question + options"),
    Condition("text_white", "text + white image", _filled(255), "image", color="#56B4E9",
              description="images of the same sizes, every pixel 255"),
    Condition("text_black", "text + black image", _filled(0), "image", color="#000000",
              description="images of the same sizes, every pixel 0"),
    Condition("text_noise", "text + noise image", _noise, "image", color="#999999",
              description="same sizes, uniform noise seeded by (seed, sample id)"),
    Condition("image_only", "image only", _image_only, "text", text="vision", color="#009E73",
              description="the vision screenshot (or the question rendered into an image) and the "
                          "image-only prompt", videos=_none, audios=_none),
    Condition("text_only", "text only", _none, "image", color="#E69F00",
              description="no image, video or audio; placeholders removed", videos=_none, audios=_none),
    Condition("audio_silent", "text + silent audio", _complete, "audio", color="#7FB3D5",
              description="every audio clip replaced by silence of the same length", audios=_audio_silent),
    Condition("audio_noise", "text + noise audio", _complete, "audio", color="#B2B2B2",
              description="every audio clip replaced by Gaussian noise at its RMS level, seeded by "
                          "(seed, sample id)", audios=_audio_noise),
    Condition("audio_removed", "text without audio", _complete, "audio", color="#F0C27B",
              description="no audio clip", audios=_none),
    Condition("video_frozen", "text + frozen video", _complete, "video", color="#5D8AA8",
              description="every frame is the clip's first frame (the motion removed)", videos=_video_frozen),
    Condition("video_black", "text + black video", _complete, "video", color="#333333",
              description="black frames of the same size and number", videos=_video_black),
    Condition("video_shuffled", "text + shuffled video", _complete, "video", color="#C9A0DC",
              description="the frames in a random order, seeded by (seed, sample id)", videos=_video_shuffled),
    Condition("video_removed", "text without video", _complete, "video", color="#D4A017",
              description="no video clip", videos=_none),
):
    register_condition(_c)
assert tuple(CONDITION_REGISTRY)[: len(CONDITIONS)] == CONDITIONS


def get_condition(name: str) -> Condition:
    """The registered condition ``name`` (UnknownNameError with a did-you-mean hint)."""
    return CONDITION_REGISTRY.get(name)


def check_condition(condition: str) -> str:
    """Return ``condition`` or raise UnknownNameError with a did-you-mean hint."""
    get_condition(condition)
    return condition


def condition_names() -> list[str]:
    """Every registered condition, in registration order (the display order of tables/figures)."""
    return CONDITION_REGISTRY.names()


def condition_order(names) -> list[str]:
    """``names`` in registration order, unknown names (e.g. from another harness) last, sorted."""
    have = set(names)
    known = [c for c in CONDITION_REGISTRY.names() if c in have]
    return known + sorted(have - set(known))


def removes(condition: str) -> str | None:
    """The modality ``condition`` removes relative to ``complete`` (None: unknown or none)."""
    return CONDITION_REGISTRY.get(condition).removes if condition in CONDITION_REGISTRY else None


def condition_label(condition: str, modalities: tuple[str, ...] | None = None) -> str:
    """The registered label; ``complete`` names the study's modalities when they are given and
    are not the image alone ("audio + text" in an audio study, "image + text" otherwise)."""
    if condition == "complete" and modalities and tuple(modalities) != ("image",):
        return " + ".join([*modalities, "text"])
    return CONDITION_REGISTRY.get(condition).label if condition in CONDITION_REGISTRY else condition


def condition_images(sample: Sample, condition: str, seed: int = 0) -> list:
    """The images (PIL RGB) shown under ``condition``, in placeholder order."""
    return get_condition(condition).images(sample, seed)


def condition_media(sample: Sample, condition: str, seed: int = 0) -> tuple[list, list]:
    """The video clips and audio clips shown under ``condition`` (``media.VideoClip`` /
    ``media.AudioClip``), in order."""
    cond = get_condition(condition)
    return cond.videos(sample, seed), cond.audios(sample, seed)


_MEDIA_PLACEHOLDER = re.compile(r"\s*<(video|audio) \d+>\s*")


def run_modalities(samples, conditions) -> tuple[str, ...]:
    """The non-text modalities a run of ``conditions`` over ``samples`` can show, in
    ``types.MODALITIES`` order: image (a sample image, or a condition that shows the question as
    an image), video, audio (a sample clip)."""
    conds = [get_condition(c) for c in conditions]
    have = set()
    for s in samples:
        if s.images or s.vision_image is not None:
            have.add("image")
        if s.videos:
            have.add("video")
        if s.audios:
            have.add("audio")
    if any(c.text == "vision" for c in conds) and samples:
        have.add("image")
    return tuple(m for m in MODALITIES if m in have)


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


def make_view(sample: Sample, condition: str, mode: str = "direct", seed: int = 0,
              style: str = "lmms_eval") -> PromptView:
    """The PromptView of ``sample`` under ``condition`` and ``mode`` (direct | cot), with the
    instructions of the prompt ``style`` (``xai_bias.prompt_styles``; it also sets the layout)."""
    from .prompt_styles import get_style

    check_condition(condition)
    if mode not in MODES:
        close = difflib.get_close_matches(str(mode), MODES, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown mode {mode!r}.{hint} Available: {', '.join(MODES)}.")
    cond = get_condition(condition)
    protocol = get_style(style)
    images = tuple(cond.images(sample, seed))
    videos, audios = tuple(cond.videos(sample, seed)), tuple(cond.audios(sample, seed))
    letters = sample.letters
    if cond.text == "vision":
        instruction = protocol.instruction(mode, vision=True)
        return PromptView("", (), letters, instruction, images, sample.id, condition, mode, style, videos, audios)
    instruction = protocol.instruction(mode)
    question = _MEDIA_PLACEHOLDER.sub(" ", sample.question).strip() if (sample.videos or sample.audios) \
        else sample.question
    if not images:
        question = _PLACEHOLDER.sub(" ", question).strip()
    return PromptView(question, sample.options, letters, instruction, images, sample.id, condition, mode, style,
                      videos, audios)


__all__ = [
    "DIRECT_INSTRUCTION", "COT_INSTRUCTION", "IMAGE_ONLY_PROMPT", "IMAGE_ONLY_COT_INSTRUCTION",
    "Condition", "CONDITION_REGISTRY", "register_condition", "get_condition", "check_condition",
    "condition_names", "condition_order", "condition_label", "removes", "condition_images", "condition_media",
    "run_modalities", "keep_videos", "keep_audios", "shuffled_order",
    "render_question_image", "make_view", "stable_seed",
]
