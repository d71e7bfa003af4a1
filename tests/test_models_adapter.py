"""Model adapter on tiny offline models of every family: load, save/load, roles, scoring, batching."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from xai_bias.errors import UnknownNameError
from xai_bias.models import (FAMILIES, collate, encode, forward, load_vlm, make_tokenizer, option_logprobs, predict,
                             tiny_vlm)
from xai_bias.models.prompting import segments
from xai_bias.types import ROLE_INDEX, PromptView

ARCHS = FAMILIES.names()
# PaliGemma's processor builds its BC labels with an old numpy idiom
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
INSTR = "Answer with the option's letter from the given choices directly."

torch.set_num_threads(1)


def _img(w, h, color):
    return Image.new("RGB", (w, h), color)


def views(arch: str | None = None) -> list[PromptView]:
    """The test prompts (as family ``arch`` takes them: clips instead of images for a video or
    audio family)."""
    from tests.helpers import family_view

    if arch is not None:
        return [family_view(v, arch) for v in views()]
    red, green = _img(64, 48, (200, 10, 10)), _img(40, 90, (0, 100, 10)).convert("L")  # grayscale too
    return [
        PromptView(question="What color is <image 1> here?", options=("red", "blue", "green"),
                   letters=tuple("ABC"), instruction=INSTR, images=(red,)),
        PromptView(question="What shape is it?", options=("circle", "square"), letters=tuple("AB"),
                   instruction=INSTR, condition="text_only"),
        PromptView(question="", options=(), letters=tuple("ABCD"),
                   instruction="Based on the provided images, please answer the question.",
                   images=(green, red), condition="image_only"),
    ]


_CACHE: dict[str, object] = {}


def tiny(arch):
    if arch not in _CACHE:
        _CACHE[arch] = tiny_vlm(arch)
    return _CACHE[arch]


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_model_loads(arch):
    vlm = tiny(arch)
    spec = vlm.spec
    assert spec.family == arch and spec.arch in FAMILIES.get(arch).model_types
    assert 2 <= spec.n_layers <= 4 and len(vlm.layers) == spec.n_layers
    assert not vlm.model.training
    fam = FAMILIES.get(arch)
    want = vlm.tokenizer.convert_tokens_to_ids(fam.image_token) if fam.image_token else -1
    assert spec.image_token_id == want
    ids = vlm.letter_token_ids(list("ABCDEFGHIJ"))
    assert len(set(ids)) == 10
    for letter, tid in zip("ABCDEFGHIJ", ids):
        assert vlm.tokenizer.decode([tid]).strip() == letter


@pytest.mark.parametrize("arch", ARCHS)
def test_roles(arch):
    vlm = tiny(arch)
    for view in views(arch):
        enc = encode(vlm, view)
        ids = enc.input_ids.numpy()
        roles = enc.roles
        assert len(roles) == len(ids) and roles.role[0] == ROLE_INDEX["sink"]
        image_pos = set(np.flatnonzero(np.isin(ids, FAMILIES.get(arch).image_token_ids(vlm.tokenizer))))
        assert set(roles.positions("image")) == image_pos - {0}
        # the count equals the processor's expansion: one placeholder per vision token
        n_vision = sum(r * c for r, c in enc.image_grids)
        assert len(image_pos) == n_vision
        assert len(enc.image_grids) == len(view.images)
        # a template that trims its text items (Gemma 3 / 4) drops the spaces next to an image
        trim = str.strip if "| trim" in (FAMILIES.get(arch).chat_template or "") else (lambda t: t)
        question = "".join(trim(t) for r, t in segments(view, FAMILIES.get(arch).images_first) if r == "question")
        assert vlm.tokenizer.decode(ids[roles.mask("question")]) == question
        options = "\n".join(f"{L}. {o}" for L, o in zip("ABCDEFGHIJ", view.options))
        assert vlm.tokenizer.decode(ids[roles.mask("options")]) == options
        assert vlm.tokenizer.decode(ids[roles.mask("instruction")]) == view.instruction
        assert roles.counts()[ROLE_INDEX["generated"]] == 0
        # clips: their roles are exactly the placeholders the processor inserted for them
        for kind in ("video", "audio"):
            own = getattr(vlm.sites, f"{kind}_token_ids")
            if own:
                assert set(roles.positions(kind)) == set(np.flatnonzero(np.isin(ids, own)))
            assert (roles.counts()[ROLE_INDEX[kind]] > 0) == bool(getattr(view, f"{kind}s"))


@pytest.mark.parametrize("arch", ARCHS)
def test_scoring_and_batching(arch):
    vlm = tiny(arch)
    vs = views(arch)
    encs = [encode(vlm, v) for v in vs]
    assert len({len(e) for e in encs}) >= 2  # padding is exercised
    singles = [option_logprobs(vlm, collate(vlm, [e]), [v.letters])[0] for e, v in zip(encs, vs)]
    batch = collate(vlm, encs)
    assert batch.answer_pos == batch.inputs["input_ids"].shape[1] - 1
    rm = batch.role_matrix()
    assert rm.shape == tuple(batch.inputs["input_ids"].shape)
    for i, p in enumerate(batch.pad):
        assert (rm[i, :p] == -1).all() and (rm[i, p:] >= 0).all()
    batched = option_logprobs(vlm, batch, [v.letters for v in vs])
    for s, b, v in zip(singles, batched, vs):
        assert s.shape == (len(v.letters),) and s.dtype == np.float32
        assert np.isfinite(s).all() and (s < 0).all()
        np.testing.assert_allclose(b, s, atol=1e-5, rtol=0)
        assert predict(s, v.letters) == v.letters[int(np.argmax(s))]
    # option log-probs are the log-softmax of forward()'s logits at the answer position
    logits = forward(vlm, collate(vlm, [encs[0]]))
    full = torch.log_softmax(logits[0, -1].float(), -1)
    ids = vlm.letter_token_ids(vs[0].letters)
    np.testing.assert_allclose(full[ids].numpy(), singles[0], atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip(arch, tmp_path):
    vlm = tiny(arch)
    vlm.save(tmp_path)
    assert list(tmp_path.glob("*.safetensors"))
    back = load_vlm(tmp_path, device="cpu", dtype="auto")
    assert back.spec == vlm.spec and back.dtype == torch.float32 and not back.model.training
    assert type(back.processor).__name__ == type(vlm.processor).__name__
    assert back.model.config._attn_implementation == "sdpa"
    for view in views(arch):
        a, b = encode(vlm, view), encode(back, view)
        assert torch.equal(a.input_ids, b.input_ids)
        assert np.array_equal(a.roles.role, b.roles.role)
        la, lb = forward(vlm, collate(vlm, [a])), forward(back, collate(back, [b]))
        assert torch.equal(la, lb)


def test_unsupported_architecture_lists_families(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mllama"}))
    with pytest.raises(UnknownNameError) as err:
        load_vlm(tmp_path)
    for name in ARCHS:
        assert name in str(err.value)


def test_unknown_tiny_arch_did_you_mean():
    with pytest.raises(UnknownNameError, match="qwen2_5_vl"):
        tiny_vlm("qwen25_vl")


def test_trust_remote_code_only_when_asked(tmp_path, monkeypatch):
    import transformers

    vlm = tiny("qwen2_5_vl")
    vlm.save(tmp_path)
    seen = []
    cls = getattr(transformers, FAMILIES.get("qwen2_5_vl").model_class)
    orig_model, orig_tok = cls.from_pretrained.__func__, transformers.AutoTokenizer.from_pretrained.__func__

    def model_fp(klass, *a, **kw):
        assert kw.get("use_safetensors") is True and kw.get("attn_implementation") == "sdpa"
        seen.append(("model", "trust_remote_code" in kw, kw.get("trust_remote_code")))
        return orig_model(klass, *a, **kw)

    def tok_fp(klass, *a, **kw):
        seen.append(("tokenizer", "trust_remote_code" in kw, kw.get("trust_remote_code")))
        return orig_tok(klass, *a, **kw)

    monkeypatch.setattr(cls, "from_pretrained", classmethod(model_fp))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", classmethod(tok_fp))
    load_vlm(tmp_path, device="cpu")
    assert seen and all(not present for _, present, _ in seen)
    seen.clear()
    load_vlm(tmp_path, device="cpu", trust_remote_code=True)
    assert seen and all(present and value is True for _, present, value in seen)


def test_make_tokenizer_word_level():
    tok = make_tokenizer("qwen2_5_vl", ["Is", "zebra", "taller", "giraffe"])
    assert tok.unk_token_id in tok.encode("Xylophone", add_special_tokens=False)
    text = "Is the zebra taller than the giraffe?\nA. yes"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text
    for letter in "ABCDEFGHIJ":
        assert len(tok.encode(letter, add_special_tokens=False)) == 1
    for special in ("<|vision_start|>", "<|image_pad|>", "<|im_start|>"):
        assert re.fullmatch(r"\d+", str(tok.convert_tokens_to_ids(special)))
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id
    assert "<|im_start|>" in tok.chat_template


def test_families_cover_the_issue():
    for name in ("qwen2_vl", "qwen2_5_vl", "llava", "llava_onevision", "idefics3", "gemma3", "paligemma", "internvl"):
        assert name in FAMILIES and FAMILIES.get(name).description
    from xai_bias.models.families import family_for_model_type

    assert family_for_model_type("smolvlm").model_class == "SmolVLMForConditionalGeneration"
    assert FAMILIES.get("gemma3") is family_for_model_type("gemma3")


def test_gemma3_has_sliding_window_layer():
    spec = tiny("gemma3").spec
    assert spec.sliding_window_layers and len(spec.sliding_window_layers) < spec.n_layers
    assert spec.n_kv_heads < spec.n_heads  # GQA


def test_dtype_and_device_auto_on_cpu(monkeypatch):
    from xai_bias.models import resolve_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_dtype("auto") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    vlm = tiny_vlm("qwen2_5_vl").to(device="cpu", dtype="bf16")
    assert vlm.dtype == torch.bfloat16 and next(vlm.model.parameters()).dtype == torch.bfloat16
    view = views()[0]
    lp = option_logprobs(vlm, collate(vlm, [encode(vlm, view)]), [view.letters])[0]
    assert np.isfinite(lp).all()


def test_qwen_mm_token_type_ids_mark_image_tokens():
    vlm = tiny("qwen2_5_vl")
    enc = encode(vlm, views()[0])
    tt = enc.inputs["mm_token_type_ids"][0].numpy()
    assert np.array_equal(np.flatnonzero(tt == 1), enc.roles.positions("image"))
    batch = collate(vlm, [encode(vlm, v) for v in views()])
    assert "position_ids" not in batch.inputs  # mrope positions come from the model (mask-aware)
    assert batch.inputs["image_grid_thw"].shape == (3, 3)


def test_image_placement():
    vlm = tiny("qwen2_5_vl")
    red, green = _img(64, 48, (200, 10, 10)), _img(40, 90, (0, 100, 10))
    # <image 2> placed in the text; image 1 has no placeholder -> before the text; <image 9> stays text
    view = PromptView(question="What is <image 2> or <image 9> here", options=("a", "b"), letters=("A", "B"),
                      instruction=INSTR, images=(red, green))
    items = segments(view)
    assert items[0] == ("image", 0) and ("image", 1) in items
    enc = encode(vlm, view)
    assert enc.text.index("What") < enc.text.rindex("<|vision_start|>") < enc.text.index(" or ")
    assert enc.image_grids == ((2, 2), (3, 2))  # image 1 first, then image 2
    ids = enc.input_ids.numpy()
    assert vlm.tokenizer.decode(ids[enc.roles.mask("question")]) == "What is  or <image 9> here"


def _subword_tokenizer(arch: str, style: str):
    """A trained-in-process BPE tokenizer like the real checkpoints' (byte-level or SentencePiece-like)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from xai_bias.models.tokenizers import CORPUS

    fam = FAMILIES.get(arch)
    tok = Tokenizer(models.BPE(unk_token=fam.unk_token))
    if style == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
        alphabet = []
    corpus = [" ".join(CORPUS), " ".join(f"{c}." for c in "ABCDEFGHIJ")] * 3 + [v.question + "\n" + "\n".join(v.options) + "\n" + v.instruction for v in views()]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=list(fam.special_tokens), initial_alphabet=alphabet)
    tok.train_from_iterator(corpus, trainer)
    named = {k: v for k, v in fam.named_tokens.items() if v is not None}
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, **named)
    hf.chat_template = fam.chat_template
    return hf


@pytest.mark.parametrize("arch,style", [("qwen2_5_vl", "bytelevel"), ("llava", "metaspace"), ("gemma3", "metaspace")])
def test_roles_with_subword_tokenizers(arch, style):
    """Roles stay right when tokens merge spaces/newlines with words (real BPE / SentencePiece)."""
    from xai_bias.models.processors import build_processor
    from xai_bias.models.spec import VLM

    base = tiny(arch)
    tok = _subword_tokenizer(arch, style)
    proc = build_processor(base.family, tok, base.processor.image_processor, base.family.chat_template,
                           dict(base.family.tiny_processor))
    vlm = VLM(model=base.model, processor=proc, spec=base.spec, family=base.family, model_id="subword")
    image_ids = base.family.image_token_ids(tok)
    for view in views():
        enc = encode(vlm, view)
        ids = enc.input_ids.numpy()
        assert set(enc.roles.positions("image")) == set(np.flatnonzero(np.isin(ids, image_ids))) - {0}
        trim = str.strip if "| trim" in (base.family.chat_template or "") else (lambda t: t)
        question = "".join(trim(t) for r, t in segments(view, base.family.images_first) if r == "question")
        norm = lambda t: " ".join(t.split())  # noqa: E731
        assert norm(tok.decode(ids[enc.roles.mask("question")])) == norm(question)
        options = "\n".join(f"{L}. {o}" for L, o in zip("ABCDEFGHIJ", view.options))
        assert norm(tok.decode(ids[enc.roles.mask("options")])) == norm(options)
        assert norm(tok.decode(ids[enc.roles.mask("instruction")])) == norm(view.instruction)


@pytest.mark.parametrize("arch", ARCHS)
def test_text_only_batch_matches_singles(arch):
    vlm = tiny(arch)
    vs = [PromptView(question="What shape is it?", options=("circle", "square"), letters=("A", "B"),
                     instruction=INSTR, condition="text_only"),
          PromptView(question="Which color is the largest of all the objects shown here?",
                     options=("red", "blue", "green", "black"), letters=tuple("ABCD"), instruction=INSTR,
                     condition="text_only")]
    encs = [encode(vlm, v) for v in vs]
    batched = option_logprobs(vlm, collate(vlm, encs), [v.letters for v in vs])
    for e, v, b in zip(encs, vs, batched):
        np.testing.assert_allclose(b, option_logprobs(vlm, collate(vlm, [e]), [v.letters])[0], atol=1e-5, rtol=0)
