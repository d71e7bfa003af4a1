"""Prompt protocols: the instructions and the image layout a reported number was measured with.

One registered ``PromptStyle`` per protocol (``PROMPT_STYLES``; ``--prompt-style NAME``). A
style gives the instruction for each mode (direct | cot) and setting (standard: question and
options as text; vision: the ``image_only`` condition, question and options inside the image),
and how ``models.prompting.segments`` lays the images out:

- ``lmms_eval`` (default; the seed paper's basic prompts): images stand where their
  ``<image N>`` placeholders are, in the question *and in the options* (an option "<image 3>"
  shows image 3 after its letter, "A. [image]"); an image mentioned more than once is shown at
  its first mention, later mentions stay as text; images no placeholder mentions go before the
  text. Instructions: "Answer with the option's letter from the given choices directly." (cot:
  the step-by-step "Answer: $LETTER" format); ``image_only``: "Based on the provided images,
  please answer the question."
- ``mmmu_pro``: the official MMMU-Pro inference (``mmmu-pro/infer/infer_transformers.py`` of
  the MMMU-Benchmark/MMMU repository): every ``<image N>`` in question and options becomes
  ``[image]``, the prompt is ``question \\n options \\n instruction`` and the images follow the
  text in mention order (an image mentioned twice is shown twice, as the official code does;
  images no placeholder mentions, which the official code would drop, follow those). The
  instructions are the official ``mmmu-pro/infer/prompts.yaml`` ones for direct/CoT x
  standard/vision; the vision setting's prompt is the instruction alone, then the screenshot.

A model family that needs its images before the text (``family.images_first``) keeps that
constraint under every style: the images go first, in the style's order.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conditions import COT_INSTRUCTION, DIRECT_INSTRUCTION, IMAGE_ONLY_COT_INSTRUCTION, IMAGE_ONLY_PROMPT
from .errors import UsageError
from .registry import Registry

LAYOUTS = ("inline", "after_text")
_ANSWER_FORMAT = ("The last line of your response should be of the following format: 'Answer: $LETTER' "
                  "(without quotes) where LETTER is one of options.")


@dataclass(frozen=True)
class PromptStyle:
    """One prompt protocol (see the module docstring).

    ``layout``: "inline" (images at their placeholders) or "after_text" (placeholders replaced
    by ``placeholder``, images after the text in mention order). ``source`` cites the protocol.
    """

    name: str
    direct: str
    cot: str
    vision_direct: str
    vision_cot: str
    layout: str = "inline"
    placeholder: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"prompt style {self.name!r}: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout == "after_text" and not self.placeholder:
            raise ValueError(f"prompt style {self.name!r}: the after_text layout needs a placeholder text")

    def instruction(self, mode: str, vision: bool = False) -> str:
        """The instruction for ``mode`` (direct | cot); ``vision`` for the image_only condition."""
        if mode not in ("direct", "cot"):
            raise UsageError(f"unknown mode {mode!r}; choose direct or cot")
        if vision:
            return self.vision_direct if mode == "direct" else self.vision_cot
        return self.direct if mode == "direct" else self.cot


PROMPT_STYLES: Registry = Registry("prompt style")
DEFAULT_STYLE = "lmms_eval"

PROMPT_STYLES.register("lmms_eval", PromptStyle(
    name="lmms_eval", direct=DIRECT_INSTRUCTION, cot=COT_INSTRUCTION,
    vision_direct=IMAGE_ONLY_PROMPT, vision_cot=IMAGE_ONLY_COT_INSTRUCTION, layout="inline",
    source="lmms-eval MMMU-style prompts with images at their placeholders; the seed paper's basic "
           "image-only prompt (Zheng et al. 2025)",
))
PROMPT_STYLES.register("mmmu_pro", PromptStyle(
    name="mmmu_pro",
    direct="Answer with the option letter from the given choices directly.",
    cot=COT_INSTRUCTION,
    vision_direct="Answer with the option letter from the given choices directly. " + _ANSWER_FORMAT,
    vision_cot=("Write out the multiple-choice question in the image and then solve it. " + _ANSWER_FORMAT
                + " Think step by step before answering."),
    layout="after_text", placeholder="[image]",
    source="MMMU-Benchmark/MMMU mmmu-pro/infer/infer_transformers.py and mmmu-pro/infer/prompts.yaml "
           "(Yue et al. 2024, MMMU-Pro)",
))


def get_style(name: str) -> PromptStyle:
    """The registered style ``name`` (UnknownNameError with a did-you-mean hint otherwise)."""
    return PROMPT_STYLES.get(name)


__all__ = ["PromptStyle", "PROMPT_STYLES", "DEFAULT_STYLE", "LAYOUTS", "get_style"]
