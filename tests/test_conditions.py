"""Conditions (images shown, prompt text), the rendered image_only input, option reduction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_bias.conditions import (COT_INSTRUCTION, DIRECT_INSTRUCTION, IMAGE_ONLY_PROMPT, condition_images,
                                 make_view, render_question_image, stable_seed)
from xai_bias.errors import UnknownNameError, UsageError
from xai_bias.options import reduce_options
from xai_bias.types import CONDITIONS, PromptView, Sample

from .conftest import require_shared, require_tool  # noqa: F401

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MMMU = SHARED / "data" / "mmmu_pro_tool" / "data.jsonl"


@pytest.fixture()
def sample(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(a)
    Image.new("L", (17, 23), 99).save(b)  # grey-scale: converted to RGB
    return Sample("s1", "Compare <image 1> with <image 2>. Which is red?",
                  ("the first", "the second", "both", "neither"), "A", (a, b))


def arr(im) -> np.ndarray:
    return np.asarray(im)


def test_condition_images(sample):
    complete = condition_images(sample, "complete", seed=0)
    assert [im.size for im in complete] == [(40, 30), (17, 23)] and all(im.mode == "RGB" for im in complete)
    assert arr(complete[0])[0, 0].tolist() == [200, 10, 10] and arr(complete[1])[0, 0].tolist() == [99] * 3
    for cond, value in (("text_white", 255), ("text_black", 0)):
        ims = condition_images(sample, cond, seed=0)
        assert [im.size for im in ims] == [(40, 30), (17, 23)]
        assert all(im.mode == "RGB" and (arr(im) == value).all() for im in ims)
    noise = condition_images(sample, "text_noise", seed=0)
    assert [im.size for im in noise] == [(40, 30), (17, 23)]
    a = arr(noise[0])
    assert a.dtype == np.uint8 and a.min() < 20 and a.max() > 235 and 100 < a.mean() < 155  # uniform 0..255
    assert condition_images(sample, "text_only", seed=0) == []
    only = condition_images(sample, "image_only", seed=0)
    assert len(only) == 1 and only[0].width == 896


def test_noise_seeded_per_sample(sample):
    again = condition_images(sample, "text_noise", seed=0)
    first = condition_images(sample, "text_noise", seed=0)
    assert all((arr(x) == arr(y)).all() for x, y in zip(first, again))  # reproducible
    other_seed = condition_images(sample, "text_noise", seed=1)
    assert not (arr(first[0]) == arr(other_seed[0])).all()
    other = Sample("s2", sample.question, sample.options, "A", sample.images)
    assert not (arr(first[0]) == arr(condition_images(other, "text_noise", seed=0)[0])).all()
    assert not (arr(first[0])[:17, :17] == arr(first[1])[:17, :17]).all()  # images of one sample differ
    assert stable_seed(0, "x") == 18280232841950264645  # SHA-256 based: stable across processes


def test_make_view(sample):
    v = make_view(sample, "complete")
    assert isinstance(v, PromptView) and v.question == sample.question and v.options == sample.options
    assert v.letters == ("A", "B", "C", "D") and v.instruction == DIRECT_INSTRUCTION and len(v.images) == 2
    assert (v.sample_id, v.condition, v.mode) == ("s1", "complete", "direct")
    assert make_view(sample, "text_black", mode="cot").instruction == COT_INSTRUCTION
    t = make_view(sample, "text_only")
    assert t.images == () and "<image" not in t.question and t.question == "Compare with . Which is red?"
    io = make_view(sample, "image_only")
    assert io.question == "" and io.options == () and io.letters == ("A", "B", "C", "D")
    assert io.instruction == IMAGE_ONLY_PROMPT and len(io.images) == 1
    cot = make_view(sample, "image_only", mode="cot")
    assert cot.instruction.startswith(IMAGE_ONLY_PROMPT) and "'Answer: $LETTER'" in cot.instruction
    for c in CONDITIONS:
        assert make_view(sample, c).condition == c


def test_unknown_names(sample):
    with pytest.raises(UnknownNameError, match="Did you mean 'text_white'"):
        make_view(sample, "text_whit")
    with pytest.raises(UnknownNameError, match="Did you mean 'cot'"):
        make_view(sample, "complete", mode="cott")
    with pytest.raises(UnknownNameError):
        condition_images(sample, "blank", 0)


def test_vision_image_used(sample, tmp_path):
    shot = tmp_path / "shot.png"
    Image.new("RGB", (300, 200), (0, 0, 255)).save(shot)
    s = Sample("v", "q", ("a", "b"), "A", sample.images, vision_image=shot)
    (im,) = condition_images(s, "image_only", 0)
    assert im.size == (300, 200) and arr(im)[5, 5].tolist() == [0, 0, 255]


def _ink_columns(im) -> np.ndarray:
    dark = (arr(im.convert("L")) < 128)
    return np.flatnonzero(dark.any(axis=0))


def test_render_question_image(sample):
    long_word = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 2
    s = Sample("r", "A fairly long question that must wrap over several lines of the rendered image so that "
               f"it stays legible: which of the following is right? {long_word}",
               tuple(f"option number {i} with some text" for i in range(10)), "C")
    im = render_question_image(s)
    im.save("/tmp/xai_bias_render_test.png")
    assert im.mode == "RGB" and im.width == 896
    cols = _ink_columns(im)
    assert cols.min() >= 20 and cols.max() <= 896 - 20  # wrapped within the margins
    rows = np.flatnonzero((arr(im.convert("L")) < 128).any(axis=1))
    assert im.height > 14 * 28 and rows.max() < im.height - 10  # 10 option lines + question lines fit
    with_images = render_question_image(sample)
    assert with_images.height > render_question_image(sample, include_images=False).height
    # red pixels of the sample's first image are pasted in
    assert ((arr(with_images)[..., 0] > 150) & (arr(with_images)[..., 1] < 50)).sum() >= 40 * 30 * 0.9


def test_render_real_item_legible():
    require_shared(MMMU)
    from xai_bias.samples import load_samples

    s = load_samples(MMMU, on_error="skip", limit=1).samples[0]
    im = render_question_image(s)
    im.save("/tmp/xai_bias_render_mmmu.png")  # looked at: question, image and options A-J legible
    assert im.width == 896 and 600 < im.height < 1200


# ---------------------------------------------------------------- option variants

def test_reduce_options():
    s = Sample("x1", "q", tuple(f"o{i}" for i in range(10)), "G")
    r = reduce_options(s, k=4, seed=0)
    assert len(r.options) == 4 and r.options[r.answer_index] == "o6"  # answer kept
    orig = r.meta["original_options"]
    assert "G" in orig and list(orig) == sorted(orig)  # original relative order kept
    assert r.options == tuple(f"o{'ABCDEFGHIJ'.index(L)}" for L in orig)
    assert r.meta["original_answer"] == "G" and r.meta["option_variant"] == "standard4"
    assert reduce_options(s, k=4, seed=0) == r  # seeded
    draws = {reduce_options(s, k=4, seed=k).meta["original_options"] for k in range(8)}
    assert len(draws) > 1  # the seed matters
    other = Sample("x2", "q", s.options, "G")
    assert any(reduce_options(Sample(f"id{i}", "q", s.options, "G"), 4).meta["original_options"] != orig
               for i in range(5)) and reduce_options(other, 4).answer is not None
    assert reduce_options(s, k=10) is s and reduce_options(Sample("y", "q", ("a", "b", "c"), "B"), 4).options == ("a", "b", "c")
    no_answer = reduce_options(Sample("z", "q", s.options, None), k=4)
    assert len(no_answer.options) == 4 and no_answer.answer is None
    with pytest.raises(UsageError):
        reduce_options(s, k=1)


def test_reduce_options_all_answers_kept():
    for i, ans in enumerate("ABCDEFGHIJ"):
        s = Sample(f"s{i}", "q", tuple(f"o{j}" for j in range(10)), ans)
        r = reduce_options(s, k=4, seed=3)
        assert r.options[r.answer_index] == f"o{i}"
