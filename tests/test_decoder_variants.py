"""Decoder variants the family tests do not reach offline.

Hybrid decoders: layers without attention (LFM2's short convolutions) resolve to ``None`` sites;
the attention capture observes the attention layers only (equal to eager there, NaN elsewhere), the
knockout cuts only where there is attention (NaN for a window without it), the logit lens reads
every layer. On a tiny LFM2-VL decoder built from its config (its image processor needs
torchvision, so the family itself is not supported here; text-only inputs). Llama 4: chunked local
attention, checked against eager on its tiny decoder (same reason)."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xai_bias.instruments.attention_capture import capture_attention
from xai_bias.models import SiteError, SiteSpec
from xai_bias.models.decoder import record_decoder_call
from xai_bias.models.sites import resolve_sites
from xai_bias.types import ROLE_INDEX

LAYER_TYPES = ["conv", "full_attention", "conv", "full_attention"]
LFM2_SITES = SiteSpec(attention_free=("conv",), final_norm="embedding_norm")


@functools.lru_cache(maxsize=None)
def lfm2():
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration

    cfg = Lfm2VlConfig(
        text_config=dict(model_type="lfm2", vocab_size=120, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, layer_types=LAYER_TYPES),
        vision_config=dict(model_type="siglip2_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, patch_size=14, num_patches=16),
        image_token_id=5)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return Lfm2VlForConditionalGeneration(cfg).eval()


def _inputs(T=12, B=2):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(10, 120, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    if B > 1:
        mask[1, :3] = 0  # left padding
    return ids, mask


def test_conv_layers_need_the_declaration_and_resolve_to_none():
    model = lfm2()
    with pytest.raises(SiteError, match="conv"):
        resolve_sites(model)
    sites = resolve_sites(model, LFM2_SITES)
    assert sites.attention == (None, "self_attn", None, "self_attn")
    assert sites.attention_layers == (1, 3) and sites.n_layers == 4
    mods = sites.attention_of(model)
    assert mods[0] is None and mods[1] is model.model.language_model.layers[1].self_attn


def test_capture_equals_eager_on_attention_layers_and_is_nan_elsewhere():
    model = lfm2()
    vlm = SimpleNamespace(model=model, sites=resolve_sites(model, LFM2_SITES))
    ids, mask = _inputs()
    roles = np.where(mask.numpy() > 0, ROLE_INDEX["question"], -1)
    roles[:, 4:7] = ROLE_INDEX["image"]
    T = ids.shape[1]
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
        with capture_attention(vlm, T - 1, roles) as cap:
            got = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(ref, got)
    assert cap.n_calls.tolist() == [0, 1, 0, 1]
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            att = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")
    eager = {i: a for i, a in zip(vlm.sites.attention_layers, [a for a in att if a is not None])}
    for b in range(2):
        mass = cap.mass_at(b, T - 1)  # [L, H, n_roles]
        assert np.isnan(mass[[0, 2]]).all()
        for layer, a in eager.items():
            p = a[b, :, T - 1].double().numpy()  # [H, T]
            want = np.stack([p[:, roles[b] == r].sum(-1) for r in range(mass.shape[-1])], -1)
            assert np.abs(mass[layer] - want).max() < 1e-6


def test_knockout_cuts_attention_layers_only():
    from xai_bias.instruments.intervention import knockout, logit_lens

    model = lfm2()
    sites = resolve_sites(model, LFM2_SITES)
    vlm = SimpleNamespace(model=model, sites=sites, decoder=sites.decoder_of(model), layers=sites.layers_of(model),
                          final_norm=sites.final_norm_of(model))
    ids, mask = _inputs(B=1)
    mask[:] = 1
    roles = np.full(ids.shape[1], ROLE_INDEX["question"])
    roles[2:8] = ROLE_INDEX["image"]
    with torch.no_grad(), record_decoder_call(vlm) as rec:
        logits = model(input_ids=ids, attention_mask=mask).logits
    T = ids.shape[1]
    token = int(logits[0, -1].argmax())
    delta = knockout(vlm, rec.call, roles, T - 1, token)
    assert np.isnan(delta[[0, 2]]).all() and np.isfinite(delta[[1, 3]]).all() and (delta[[1, 3]] != 0).any()
    wide = knockout(vlm, rec.call, roles, T - 1, token, window=2)
    assert np.isfinite(wide).all()  # every window of 2 holds an attention layer
    lens = logit_lens(vlm, rec.call, [T - 1], [[token]])[0]
    assert lens.shape == (4, 1) and np.isfinite(lens).all()
    np.testing.assert_allclose(lens[-1, 0], torch.log_softmax(logits[0, -1].double(), -1)[token].item(), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Llama 4: chunked local attention (attention_chunk_size) in 3 of 4 layers, MoE feed-forward


@functools.lru_cache(maxsize=None)
def llama4():
    from transformers import Llama4Config, Llama4ForConditionalGeneration

    text = dict(vocab_size=120, hidden_size=64, intermediate_size=128, intermediate_size_mlp=128, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=2,
                num_experts_per_tok=1, attention_chunk_size=4, interleave_moe_layer_step=2,
                no_rope_layers=[1, 1, 1, 0], use_qk_norm=True)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14, vision_output_dim=32, projector_input_dim=32, projector_output_dim=32)
    cfg = Llama4Config(text_config=text, vision_config=vision)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return Llama4ForConditionalGeneration(cfg).eval()


def test_llama4_chunked_attention_capture_equals_eager():
    """The capture sees the chunked mask the decoder builds for its chunked layers: every row's mass
    equals eager attention's (keys outside the row's chunk carry none)."""
    model = llama4()
    sites = resolve_sites(model, SiteSpec(decoder="language_model.model"))
    assert model.config.text_config.layer_types[:3] == ["chunked_attention"] * 3
    vlm = SimpleNamespace(model=model, sites=sites)
    # the text model alone: in transformers 5.24 Llama4ForConditionalGeneration.forward ends in an
    # AttributeError ('MoeCausalLMOutputWithPast' has no 'image_outputs') whenever return_dict is on
    lm = model.language_model
    ids, mask = _inputs(T=11)
    roles = np.where(mask.numpy() > 0, ROLE_INDEX["question"], -1)
    roles[:, 1:5] = ROLE_INDEX["image"]  # keys in the first chunk only
    rows = [5, 8, 10]
    with torch.no_grad():
        ref = lm(input_ids=ids, attention_mask=mask).logits
        with capture_attention(vlm, [rows, rows], roles) as cap:
            got = lm(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(ref, got) and cap.n_calls.tolist() == [1, 1, 1, 1]
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            att = lm(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")
    for b in range(2):
        for row in rows:
            mass = cap.mass_at(b, row)
            for layer, a in enumerate(att):
                p = a[b, :, row].double().numpy()
                want = np.stack([p[:, roles[b] == r].sum(-1) for r in range(mass.shape[-1])], -1)
                assert np.abs(mass[layer] - want).max() < 1e-6, (b, row, layer)
            # rows 8 and 10 lie in later chunks: the chunked layers give the image keys no attention
            if row >= 8:
                assert mass[:3, :, ROLE_INDEX["image"]].max() == 0 and mass[3, :, ROLE_INDEX["image"]].min() > 0
