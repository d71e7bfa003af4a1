"""Intervention instruments (nnsight attention knockout, logit lens) on tiny models.

Proved here: knockout at every layer at once equals masking the image keys out of the attention
mask by hand (for the answer row; on a left-padded item, and on a chain-of-thought answer row);
windows; an item without image tokens gets 0; the logit lens's last layer equals the model's own
final log-probs (every family, and at a cot answer row); nnsight's wrappers and no hooks stay on
the model (logits bit-identical afterwards), also when the traced block fails; nnsight is not
imported by ``import xai_bias``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_attribution import ARCHS, VIEWS, cot_batch, get_vlm, item_of, make_batch, targets_for
from xai_bias.instruments.base import METHODS, MethodSettings, Target
from xai_bias.models import output_head
from xai_bias.instruments.intervention import cut_mask, knockout, logit_lens, traced
from xai_bias.types import ROLE_INDEX, PromptView

IMAGE = ROLE_INDEX["image"]


def by_hand_knockout(vlm, item) -> float:
    """Δ log-prob with the answer row's image keys removed from a hand-built 4-D attention mask
    (causal ∧ padding ∧ not (answer row, image key)) passed straight to the decoder, so every
    layer sees it."""
    call = item.call
    T = call.embeds.shape[1]
    valid = torch.as_tensor(item.roles >= 0)
    mask = torch.ones(T, T, dtype=torch.bool).tril() & valid[None, :]
    mask[torch.arange(T), torch.arange(T)] = True  # padding rows attend to themselves (no NaN)
    cut = mask.clone()
    cut[item.answer_pos, torch.as_tensor(np.flatnonzero(item.roles == IMAGE))] = False
    head = output_head(vlm)
    out = []
    with torch.no_grad():
        for m in (mask, cut):
            h = call.run(vlm.decoder, call.embeds, attention_mask=m[None, None])[:, item.answer_pos]
            out.append(float(torch.log_softmax(head(h).float(), -1)[0, item.token_id]))
    return out[1] - out[0]


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "llava"])
def test_knockout_all_layers_equals_mask_by_hand(arch):
    vlm = get_vlm(arch)
    batch = make_batch(vlm, 2)  # item 1 is left-padded
    targets, _ = targets_for(vlm, batch)
    L = vlm.spec.n_layers
    for b in range(2):
        item = item_of(vlm, batch, targets, b)
        got = knockout(vlm, item.call, item.roles, item.answer_pos, item.token_id, window=L, starts=[0])
        want = by_hand_knockout(vlm, item)
        assert abs(want) > 1e-4  # the cut matters on this random model
        assert got[0] == pytest.approx(want, abs=1e-5)


def test_knockout_cot_answer_row_equals_mask_by_hand():
    vlm = get_vlm()
    batch = cot_batch(vlm)
    pos = batch.answer_pos - 1
    targets, _ = targets_for(vlm, batch, answer_pos=pos)
    item = item_of(vlm, batch, targets)
    L = vlm.spec.n_layers
    got = knockout(vlm, item.call, item.roles, pos, item.token_id, window=L, starts=[0])
    assert got[0] == pytest.approx(by_hand_knockout(vlm, item), abs=1e-5)


def test_knockout_method_windows_and_attrs():
    vlm = get_vlm()
    batch = make_batch(vlm, 2)
    targets, _ = targets_for(vlm, batch)
    L = vlm.spec.n_layers
    one = METHODS.get("knockout").build(vlm, MethodSettings.build(knockout={"window": 1})).measure(batch, targets)
    for b in range(2):
        row = one[b]["intervention/knockout"]
        assert row.shape == (L,) and row.dtype == np.float32 and np.isfinite(row).all()
        item = item_of(vlm, batch, targets, b)
        # chunked (2 rows per pass) and unchunked batches over layers agree
        ref = knockout(vlm, item.call, item.roles, item.answer_pos, item.token_id, window=1, chunk=None)
        small = knockout(vlm, item.call, item.roles, item.answer_pos, item.token_id, window=1, chunk=2)
        np.testing.assert_allclose(row, ref, atol=1e-6)
        np.testing.assert_allclose(small, ref, atol=1e-5)
    method = METHODS.get("knockout").build(vlm, MethodSettings.build(knockout={"window": L}))
    full = method.measure(batch, targets)
    item = item_of(vlm, batch, targets, 0)
    assert full[0]["intervention/knockout"][0] == pytest.approx(by_hand_knockout(vlm, item), abs=1e-5)
    # a window clipped at the last layer equals the window-1 cut there
    assert full[0]["intervention/knockout"][L - 1] == pytest.approx(one[0]["intervention/knockout"][L - 1], abs=1e-5)
    assert method.dataset_attrs()["intervention/knockout"]["window"] == L


def test_knockout_without_image_tokens_is_zero():
    from xai_bias.models import collate, encode

    vlm = get_vlm()
    view = PromptView(question="Is it round?", options=("yes", "no"), letters=tuple("AB"), instruction="Answer.")
    batch = collate(vlm, [encode(vlm, view)])
    ids = tuple(vlm.letter_token_ids("AB"))
    rows = METHODS.get("knockout").build(vlm, MethodSettings()).measure(batch, [Target(batch.answer_pos, ids[0], ids)])
    assert np.all(rows[0]["intervention/knockout"] == 0)


def test_cut_mask_formats():
    keys = torch.tensor([1, 2])
    m = cut_mask(None, [1], 3, keys, 2, 4, torch.float32, torch.device("cpu"))
    assert m.dtype == torch.bool and m.shape == (2, 1, 4, 4)
    assert torch.equal(m[0, 0], torch.ones(4, 4, dtype=torch.bool).tril())
    assert not m[1, 0, 3, 1] and not m[1, 0, 3, 2] and m[1, 0, 3, 0] and m[1, 0, 3, 3]
    add = torch.zeros(1, 1, 4, 4)
    f = cut_mask(add, [0], 3, keys, 1, 4, torch.float32, torch.device("cpu"))
    assert f[0, 0, 3, 1] == torch.finfo(torch.float32).min and f[0, 0, 3, 0] == 0
    assert torch.all(add == 0)  # the layer's own mask is not edited in place


@pytest.mark.parametrize("arch", ARCHS)
def test_logit_lens_last_layer_equals_model_every_family(arch):
    from xai_bias.models import forward, option_logprobs

    vlm = get_vlm(arch)
    batch = make_batch(vlm, 2)
    targets, _ = targets_for(vlm, batch)
    with torch.no_grad():
        before = forward(vlm, batch)
    method = METHODS.get("logit_lens").build(vlm, MethodSettings())
    rows = method.measure(batch, targets)
    own = option_logprobs(vlm, batch, [v.letters for v in VIEWS[:2]])
    for b in range(2):
        lens = rows[b]["intervention/logit_lens"]
        assert lens.shape == (vlm.spec.n_layers, len(VIEWS[b].letters)) and lens.dtype == np.float32
        np.testing.assert_allclose(lens[-1], own[b], atol=1e-5)
        assert np.all(lens <= 0)
    ko = METHODS.get("knockout").build(vlm, MethodSettings()).measure(batch, targets)
    assert all(np.isfinite(r["intervention/knockout"]).all() for r in ko)
    # nnsight's controllers are gone and the logits are bit-identical
    assert not any("forward" in m.__dict__ for m in vlm.decoder.modules())
    with torch.no_grad():
        assert torch.equal(forward(vlm, batch), before)


def test_logit_lens_cot_answer_row():
    vlm = get_vlm()
    batch = cot_batch(vlm)
    pos = batch.answer_pos - 2
    targets, logp = targets_for(vlm, batch, answer_pos=pos)
    item = item_of(vlm, batch, targets)
    lens = logit_lens(vlm, item.call, [pos], [targets[0].letter_ids])[0]
    np.testing.assert_allclose(lens[-1], logp[0, pos, list(targets[0].letter_ids)].numpy(), atol=1e-5)
    # an earlier layer reads something else
    assert np.abs(lens[0] - lens[-1]).max() > 1e-5


def test_traced_removes_nnsight_wrappers_on_error():
    vlm = get_vlm()
    decoder = vlm.decoder
    with pytest.raises(RuntimeError, match="boom"):
        with traced(decoder):
            assert "forward" in decoder.__dict__
            raise RuntimeError("boom")
    assert not any("forward" in m.__dict__ or "__nnsight__" in m.__dict__ for m in decoder.modules())
