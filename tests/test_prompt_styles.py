"""Prompt protocols: lmms_eval (images at their placeholders, options included) and the official
MMMU-Pro inference ([image] placeholders, images after the text in mention order, prompts.yaml)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import cli
from xai_bias.conditions import make_view
from xai_bias.errors import UnknownNameError
from xai_bias.models import encode, tiny_vlm
from xai_bias.models.prompting import segments
from xai_bias.prompt_styles import PROMPT_STYLES, PromptStyle
from xai_bias.types import PromptView, Sample

DIRECT = "Answer with the option's letter from the given choices directly."
OFFICIAL_DIRECT = "Answer with the option letter from the given choices directly."
# test_Music_251 of MMMU-Pro: the options are images
IMAGE_OPTIONS = PromptView("<image 1> is a substitution for how many parts?",
                           ("<image 4>", "<image 2>", "<image 5>", "<image 3>"), tuple("ABCD"), DIRECT,
                           tuple(range(5)))


def test_lmms_eval_puts_option_images_after_their_letters():
    assert segments(IMAGE_OPTIONS) == [
        ("image", 0), ("question", " is a substitution for how many parts?"), ("template", "\n"),
        ("options", "A. "), ("image", 3), ("options", "\nB. "), ("image", 1), ("options", "\nC. "), ("image", 4),
        ("options", "\nD. "), ("image", 2), ("template", "\n"), ("instruction", DIRECT)]
    # a family that needs its images first keeps them first; the options keep their labels
    first = segments(IMAGE_OPTIONS, images_first=True)
    assert first[:5] == [("image", k) for k in range(5)]
    assert ("options", "A. <image 4>\nB. <image 2>\nC. <image 5>\nD. <image 3>") in first


def test_lmms_eval_layout_of_plain_items_is_unchanged():
    view = PromptView("<image 1> What is shown?", ("cat", "dog"), ("A", "B"), DIRECT, ("img",))
    assert segments(view) == [("image", 0), ("question", " What is shown?"), ("template", "\n"),
                              ("options", "A. cat\nB. dog"), ("template", "\n"), ("instruction", DIRECT)]
    no_tag = PromptView("What is shown?", ("cat", "dog"), ("A", "B"), DIRECT, ("img",))
    assert segments(no_tag)[0] == ("image", 0)  # an image no placeholder mentions goes first
    twice = PromptView("Compare <image 1> with <image 1>.", ("x", "y"), ("A", "B"), DIRECT, ("img",))
    assert [r for r, _ in segments(twice)].count("image") == 1  # shown once, at its first mention


def test_mmmu_pro_layout_is_the_official_one():
    items = segments(IMAGE_OPTIONS, style="mmmu_pro")
    assert items == [
        ("question", "[image] is a substitution for how many parts?"), ("template", "\n"),
        ("options", "A. [image]\nB. [image]\nC. [image]\nD. [image]"), ("template", "\n"), ("instruction", DIRECT),
        ("image", 0), ("image", 3), ("image", 1), ("image", 4), ("image", 2)]  # mention order
    repeated = PromptView("<image 2> then <image 1> then <image 2>", ("x", "y"), ("A", "B"), "go", ("a", "b", "c"))
    assert [k for r, k in segments(repeated, style="mmmu_pro") if r == "image"] == [1, 0, 1, 2]


def test_instructions_per_style_mode_and_setting():
    s = Sample("q1", "<image 1> What?", ("a", "b"), "A", ())
    pro = PROMPT_STYLES.get("mmmu_pro")
    assert make_view(s, "text_only", style="mmmu_pro").instruction == OFFICIAL_DIRECT
    assert make_view(s, "text_only").instruction == DIRECT
    assert make_view(s, "text_only", "cot", style="mmmu_pro").instruction.startswith("Answer the preceding multiple")
    assert pro.instruction("direct", vision=True).startswith(OFFICIAL_DIRECT + " The last line of your response")
    assert pro.instruction("cot", vision=True).startswith("Write out the multiple-choice question in the image")
    assert make_view(s, "text_only", style="mmmu_pro").style == "mmmu_pro"
    with pytest.raises(UnknownNameError, match="mmmu_pro"):
        make_view(s, "text_only", style="mmmu-pro")
    with pytest.raises(ValueError, match="placeholder"):
        PromptStyle("x", "d", "c", "vd", "vc", layout="after_text")


def test_mmmu_pro_prompt_through_the_tokenizer():
    vlm = tiny_vlm("qwen2_5_vl")
    imgs = tuple(Image.new("RGB", (56, 56), (50 * k, 0, 0)) for k in range(5))
    view = PromptView(IMAGE_OPTIONS.question, IMAGE_OPTIONS.options, tuple("ABCD"), OFFICIAL_DIRECT, imgs,
                      style="mmmu_pro")
    enc = encode(vlm, view)
    assert "[image] is a substitution for how many parts?\nA. [image]\nB. [image]" in enc.text
    assert enc.text.index(OFFICIAL_DIRECT) < enc.text.index("<|vision_start|>")  # images after the text
    # the images went in mention order (1, 4, 2, 5, 3): the same pixels as a view whose
    # placeholders already come in that order
    order = [0, 3, 1, 4, 2]
    ordered = PromptView("<image 1> is a substitution for how many parts?",
                         ("<image 2>", "<image 3>", "<image 4>", "<image 5>"), tuple("ABCD"), OFFICIAL_DIRECT,
                         tuple(imgs[k] for k in order), style="mmmu_pro")
    again = encode(vlm, ordered)
    assert enc.n_images == 5 and again.text == enc.text
    assert torch.equal(enc.inputs["pixel_values"], again.inputs["pixel_values"])
    plain = encode(vlm, PromptView(*[getattr(ordered, f) for f in ("question", "options", "letters", "instruction")],
                                   imgs, style="mmmu_pro"))
    assert not torch.equal(enc.inputs["pixel_values"], plain.inputs["pixel_values"])


def test_prompt_style_flag(tmp_path, capsys):
    from .helpers import write_samples

    samples = write_samples(tmp_path, n=2)
    assert cli.main(["attribute", "--model", "tiny:qwen2_5_vl", "--no-progress", "--samples", str(samples),
                     "--prompt-style", "mmmu-pro", "--out", str(tmp_path / "x.h5")]) == 2
    assert "Did you mean 'mmmu_pro'" in capsys.readouterr().err
