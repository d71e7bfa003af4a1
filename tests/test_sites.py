"""Hook sites as family data: every family resolves; a wrapped/renamed model whose sites all
differ from the generic rules works from one family entry; a model that does not fit gets an
error naming what was looked for; per-token inputs (the family's ``token_inputs``) make the
chain-of-thought measurement pass compute exactly what ``generate`` computed, for every family.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_attention import eager_attentions, maxerr, oracle
from xai_bias.instruments import load_methods
from xai_bias.instruments.base import METHODS, MethodSettings, Target
from xai_bias.models import (FAMILIES, SiteError, SiteSpec, TokenInput, collate, encode, forward, option_logprobs,
                             resolve_sites, tiny_vlm)
from xai_bias.models.spec import VLM, make_spec
from xai_bias.types import ROLE_INDEX, PromptView

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
load_methods()
IMAGE = ROLE_INDEX["image"]
_VLMS: dict = {}


def tiny(arch):
    if arch not in _VLMS:
        _VLMS[arch] = tiny_vlm(arch)
    return _VLMS[arch]


def _img(seed: int):
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(48, 64, 3) * 255).astype("uint8"))


VIEWS = (
    PromptView(question="Which shape is shown, and what colour is it?", options=("a red circle", "a blue square",
               "a green star"), letters=tuple("ABC"), instruction="Answer with the option's letter.",
               images=(_img(0),)),
    PromptView(question="Is it round?", options=("yes", "no"), letters=tuple("AB"), instruction="Answer.",
               images=(_img(1),)),
)


def model_state(model: torch.nn.Module) -> dict:
    """Every module's instance attributes (by identity; tensors by name only: a model's forward
    may rebind its own caches, e.g. Qwen's ``rope_deltas``) and its hook counts."""
    return {name: ({k: None if isinstance(v, torch.Tensor) else id(v) for k, v in vars(m).items()},
                   len(m._forward_hooks), len(m._forward_pre_hooks)) for name, m in model.named_modules()}


# ---------------------------------------------------------------------------------------------
# every registered family


@pytest.mark.parametrize("arch", FAMILIES.names())
def test_family_sites_resolve(arch):
    vlm = tiny(arch)
    model, sites = vlm.model, vlm.sites
    decoder = model.get_decoder()
    assert vlm.decoder is decoder and dict(model.named_modules())[sites.decoder] is decoder
    assert vlm.layers is decoder.layers and sites.n_layers == vlm.spec.n_layers
    assert vlm.attention_modules() == [layer.self_attn for layer in decoder.layers]
    assert vlm.final_norm is decoder.norm
    assert sites.text_config_of(model) is model.config.get_text_config() is decoder.config
    assert sites.image_token_ids == tuple(FAMILIES.get(arch).image_token_ids(vlm.tokenizer))
    assert {"input_ids", "attention_mask"} <= set(sites.token_inputs)


# ---------------------------------------------------------------------------------------------
# a wrapped, renamed model: one family entry


def _rename(module: torch.nn.Module, old: str, new: str, cache: dict) -> None:
    """Register ``module``'s child ``old`` as ``new``; the class keeps reading ``old`` through a
    property (so the model's own forward still works, but ``old`` is no registered submodule)."""
    child = getattr(module, old)
    delattr(module, old)
    setattr(module, new, child)
    cls = type(module)
    key = (cls, old, new)
    if key not in cache:
        cache[key] = type(cls.__name__, (cls,), {old: property(lambda self: getattr(self, new)),
                                                  "__module__": cls.__module__})
    module.__class__ = cache[key]


class WrappedVLM(torch.nn.Module):
    """A VLM wrapped one level deeper (no ``get_decoder``), fed ``images`` instead of
    ``pixel_values`` and a per-token ``keep`` mask instead of ``attention_mask``."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.generation_config = inner.generation_config

    def forward(self, images=None, keep=None, attention_mask=None, **kwargs):
        return self.inner(pixel_values=images, attention_mask=keep, **kwargs)

    def generate(self, images=None, keep=None, attention_mask=None, **kwargs):
        return self.inner.generate(pixel_values=images, attention_mask=keep, **kwargs)

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def set_attn_implementation(self, implementation):
        self.inner.set_attn_implementation(implementation)


class WrappedProcessor:
    """The family's processor, answering with ``images`` and ``keep`` (1 at every token)."""

    def __init__(self, processor):
        self._processor = processor

    def __getattr__(self, name):
        return getattr(self._processor, name)

    def __call__(self, *args, **kwargs):
        from transformers import BatchFeature

        out = dict(self._processor(*args, **kwargs))
        if "pixel_values" in out:
            out["images"] = out.pop("pixel_values")
        out["keep"] = torch.ones_like(out["input_ids"])
        return BatchFeature(out)


WRAPPED_SITES = SiteSpec(decoder="inner.model.text_model", layers="blocks", attention="attn",
                         final_norm="final_ln", pixel_keys=("images",),
                         token_inputs={"keep": TokenInput(pad=0, generated=1)})


def wrapped_vlm(sites: SiteSpec = WRAPPED_SITES) -> VLM:
    base = tiny_vlm("llava")
    inner = base.model
    cache: dict = {}
    _rename(inner.model, "language_model", "text_model", cache)
    decoder = inner.model.text_model
    _rename(decoder, "layers", "blocks", cache)
    _rename(decoder, "norm", "final_ln", cache)
    for layer in decoder.blocks:
        _rename(layer, "self_attn", "attn", cache)
    family = dataclasses.replace(base.family, name="llava_wrapped", sites=sites)
    model = WrappedVLM(inner).eval()
    return VLM(model=model, processor=WrappedProcessor(base.processor),
               spec=make_spec(family, inner, base.spec.image_token_id), family=family, model_id="wrapped")


def test_wrapped_model_defaults_do_not_fit():
    vlm = wrapped_vlm()
    with pytest.raises(SiteError, match="get_decoder"):
        resolve_sites(vlm.model)
    with pytest.raises(SiteError, match=r"'layers'.*blocks.*SiteSpec\(layers="):
        resolve_sites(vlm.model, SiteSpec(decoder="inner.model.text_model"))
    with pytest.raises(SiteError, match=r"final norm.*norm, final_layernorm, ln_f"):
        resolve_sites(vlm.model, SiteSpec(decoder="inner.model.text_model", layers="blocks"))
    with pytest.raises(SiteError, match="no submodule 'missing'"):
        resolve_sites(vlm.model, dataclasses.replace(WRAPPED_SITES, attention="missing"))
    with pytest.raises(SiteError, match="not in the tokenizer's vocabulary"):
        resolve_sites(vlm.model, dataclasses.replace(WRAPPED_SITES, image_tokens=("<no_such_token>",)),
                      ("<image>",), vlm.tokenizer)


def test_wrapped_model_every_instrument_runs():
    vlm = wrapped_vlm()
    inner = vlm.model.inner
    decoder = inner.model.text_model
    sites = vlm.sites
    assert (sites.decoder, sites.layers, sites.final_norm, sites.text_config) == (
        "inner.model.text_model", "blocks", "final_ln", "text_config")
    assert sites.attention == ("attn",) * 2 and vlm.attention_modules() == [b.attn for b in decoder.blocks]
    assert vlm.decoder is decoder and vlm.final_norm is decoder.final_ln

    encs = [encode(vlm, v) for v in VIEWS]
    assert "images" in encs[0].inputs and "keep" in encs[0].inputs
    batch = collate(vlm, encs)
    assert batch.pad[1] > 0 and torch.equal(batch.inputs["keep"], batch.inputs["attention_mask"])
    letters = [v.letters for v in VIEWS]
    batched = option_logprobs(vlm, batch, letters)
    for e, v, got in zip(encs, VIEWS, batched):
        np.testing.assert_allclose(got, option_logprobs(vlm, collate(vlm, [e]), [v.letters])[0], atol=1e-5)
    L, T = vlm.spec.n_layers, batch.seq_len
    # (transformers installs its own output-capturing hooks on the first output_attentions call)
    mass, _, _ = oracle(eager_attentions(vlm, batch), batch.role_matrix())
    state = model_state(vlm.model)
    with torch.no_grad():
        before = forward(vlm, batch)

    settings = MethodSettings.build(ig={"steps": 8}, attention={"save_maps": True, "flow": True},
                                    shapley={"baseline": "black"})
    methods = [METHODS.get(name).build(vlm, settings) for name in METHODS.names() if METHODS.get(name).runnable]
    import contextlib

    with contextlib.ExitStack() as stack:
        for m in methods:
            stack.enter_context(m.capture(batch))
        with torch.no_grad():
            scored = forward(vlm, batch)
    assert torch.equal(scored, before)
    targets = []
    for b, lp in enumerate(batched):
        ids = tuple(vlm.letter_token_ids(VIEWS[b].letters))
        targets.append(Target(batch.answer_pos, ids[int(np.argmax(lp))], ids))
    rows = [{} for _ in targets]
    for m in methods:
        for row, got in zip(rows, m.measure(batch, targets)):
            row.update(got)
    for b, row in enumerate(rows):
        assert maxerr(row["attention/mass"], mass[b, :, :, T - 1]) < 1e-6
        assert row["attribution/ig"].shape == (L + 1, len(ROLE_INDEX)) and row["attribution/ig"][0, IMAGE] > 0
        assert np.isfinite(row["attribution/shapley"]).all() and row["attribution/shapley"][0] != 0
        assert np.isfinite(row["intervention/knockout"]).all() and np.abs(row["intervention/knockout"]).max() > 0
        np.testing.assert_allclose(row["intervention/logit_lens"][-1], batched[b], atol=1e-5)
    with torch.no_grad():
        assert torch.equal(forward(vlm, batch), before)
    assert model_state(vlm.model) == state


def test_per_token_input_declaration_is_what_batching_uses():
    """Undeclared, ``keep`` is refused; declared with the wrong pad value, left padding changes the
    result; declared right (the family entry above), batched equals single (previous test)."""
    undeclared = wrapped_vlm(dataclasses.replace(WRAPPED_SITES, token_inputs={}))
    encs = [encode(undeclared, v) for v in VIEWS]
    with pytest.raises(SiteError, match=r"'keep'.*token_inputs"):
        collate(undeclared, encs)
    wrong = wrapped_vlm(dataclasses.replace(WRAPPED_SITES, token_inputs={"keep": TokenInput(pad=1, generated=1)}))
    encs = [encode(wrong, v) for v in VIEWS]
    batched = option_logprobs(wrong, collate(wrong, encs), [VIEWS[1].letters] * 2)[1]
    single = option_logprobs(wrong, collate(wrong, encs[1:]), [VIEWS[1].letters])[0]
    assert np.abs(batched - single).max() > 1e-3
    no_pixels = wrapped_vlm(dataclasses.replace(WRAPPED_SITES, pixel_keys=()))
    with pytest.raises(SiteError, match=r"'images'.*pixel_keys"):
        collate(no_pixels, [encode(no_pixels, VIEWS[0])])


# ---------------------------------------------------------------------------------------------
# per-token inputs on generated tokens: the cot measurement pass equals generate


def _generation_matches(vlm, n_new: int = 4) -> list[float]:
    from xai_bias.generation import extend_batch

    from tests.helpers import family_view

    encs = [encode(vlm, family_view(v, vlm.family)) for v in VIEWS]
    batch = collate(vlm, encs)
    inputs = {k: v for k, v in batch.inputs.items() if k != "position_ids"}
    with torch.no_grad():
        out = vlm.model.generate(**inputs, max_new_tokens=n_new, do_sample=False, output_scores=True,
                                 return_dict_in_generate=True, eos_token_id=None,
                                 pad_token_id=vlm.tokenizer.pad_token_id)
    T = batch.seq_len
    gen = out.sequences[:, T:]
    scores = torch.stack(out.scores, 1)  # [B, n_new, V]
    full = extend_batch(vlm, encs, [g.numpy() for g in gen])
    logits = forward(vlm, full)
    errs = []
    for b, enc in enumerate(encs):
        first = full.pad[b] + len(enc) - 1  # the row that emitted the first generated token
        errs.append(float((logits[b, first : first + n_new] - scores[b]).abs().max()))
    return errs


@pytest.mark.parametrize("arch", FAMILIES.names())
def test_cot_measurement_pass_equals_generate(arch):
    """Every row of the measurement pass over prompt + generation gives the logits ``generate``
    gave when it emitted that token (PaliGemma: generated tokens are its causal suffix, token
    type 1; with 0 they join the bidirectional prefix and the rows differ by ~1e-2)."""
    assert max(_generation_matches(tiny(arch))) < 1e-5


def test_cot_measurement_pass_equals_generate_wrapped():
    assert max(_generation_matches(wrapped_vlm())) < 1e-5
