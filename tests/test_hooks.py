"""The hook primitive (``models.trace``), the attention observation and nnsight's clean-up: each
keeps / edits what it says, and leaves the model exactly as it was — every module's instance
attributes and hooks, and bit-identical logits — also when the block or a hook fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_sites import VIEWS, model_state, tiny
from xai_bias.models import collate, encode, observe_attention, trace
from xai_bias.models.hooks import passthrough, with_hidden_input

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def setup():
    vlm = tiny("qwen2_5_vl")
    batch = collate(vlm, [encode(vlm, v) for v in VIEWS])
    return vlm, batch


def run(vlm, batch, **kwargs):
    with torch.no_grad():
        return vlm.model(**batch.inputs, use_cache=False, **kwargs)


def layer_sites(vlm):
    return {str(i): layer for i, layer in enumerate(vlm.layers)}


def test_trace_keeps_inputs_and_outputs(setup):
    vlm, batch = setup
    ref = run(vlm, batch, output_hidden_states=True)
    hidden = ref.hidden_states  # hidden[i] = input of layer i; hidden[L] = norm(last output)
    state = model_state(vlm.model)
    with trace(layer_sites(vlm), inputs=True, outputs=True) as seen:
        out = run(vlm, batch)
    assert torch.equal(out.logits, ref.logits)
    assert model_state(vlm.model) == state
    L = len(vlm.layers)
    for i in range(L):
        assert seen[str(i)].calls == 1
        assert torch.equal(seen[str(i)].hidden, hidden[i])
        assert "attention_mask" in seen[str(i)].kwargs or len(seen[str(i)].args) > 1
    for i in range(L - 1):
        out_i = seen[str(i)].output
        assert torch.equal(out_i[0] if isinstance(out_i, tuple) else out_i, hidden[i + 1])
    last = seen[str(L - 1)].output
    assert torch.equal(vlm.final_norm(last[0] if isinstance(last, tuple) else last), hidden[L])


def test_trace_stop_at_input_and_after_output(setup):
    vlm, batch = setup
    layers = layer_sites(vlm)
    with trace(layers) as outer:  # counts the calls
        with trace({"decoder": vlm.decoder}, inputs=True, stop=True) as seen:
            run(vlm, batch)
            pytest.fail("the forward pass was not stopped")  # pragma: no cover
    assert seen["decoder"].calls == 1 and "inputs_embeds" in seen["decoder"].kwargs
    assert all(rec.calls == 0 for rec in outer.values())  # the decoder's layers never ran
    with trace(layers) as outer:
        with trace({"0": vlm.layers[0]}, outputs=True, stop=True) as seen:
            run(vlm, batch)
    assert seen["0"].output is not None and outer["0"].calls == 1 and outer["1"].calls == 0


def test_trace_stop_belongs_to_its_trace(setup):
    """An outer trace's stop passes through an inner trace (which does not swallow it)."""
    vlm, batch = setup
    with trace({"0": vlm.layers[0]}, inputs=True, stop=True) as outer:
        with trace({"1": vlm.layers[1]}, inputs=True, stop=True) as inner:
            run(vlm, batch)
        pytest.fail("the inner trace swallowed the outer trace's stop")  # pragma: no cover
    assert outer["0"].calls == 1 and inner["1"].calls == 0


def test_trace_edit_and_replace(setup):
    vlm, batch = setup
    ref = run(vlm, batch, output_hidden_states=True)
    h0 = ref.hidden_states[0]
    # replacing layer 0 by a pass-through and feeding layer 1 its own input: same as layer 0 skipped
    with trace(layer_sites(vlm), inputs=True) as seen, trace({"0": vlm.layers[0]}, replace=passthrough(False)):
        skipped = run(vlm, batch).logits
    assert torch.equal(seen["1"].hidden, h0) and not torch.equal(skipped, ref.logits)
    # editing layer 1's input to what layer 0 really outputs restores the logits exactly
    h1 = ref.hidden_states[1]
    with trace({"0": vlm.layers[0]}, replace=passthrough(False)), \
            trace({"1": vlm.layers[1]}, edit_input=lambda n, a, k: with_hidden_input(a, k, h1)):
        assert torch.equal(run(vlm, batch).logits, ref.logits)
    # an output edit changes what follows
    with trace({"1": vlm.layers[1]}, edit_output=lambda n, out: out * 0):
        zeroed = run(vlm, batch).logits
    assert not torch.equal(zeroed, ref.logits)
    assert torch.equal(run(vlm, batch).logits, ref.logits)


@pytest.mark.parametrize("where", ["block", "edit_input", "edit_output", "replace"])
def test_trace_removed_on_error(setup, where):
    vlm, batch = setup
    ref = run(vlm, batch).logits
    state = model_state(vlm.model)

    def boom(*args):
        raise RuntimeError("boom")

    kwargs = {where: boom} if where != "block" else {"inputs": True, "outputs": True}
    with pytest.raises(RuntimeError, match="boom"):
        with trace(layer_sites(vlm), **kwargs):
            run(vlm, batch)
            raise RuntimeError("boom")
    assert model_state(vlm.model) == state
    assert torch.equal(run(vlm, batch).logits, ref)


def test_trace_keeps_gradients_through_edits(setup):
    vlm, batch = setup
    ref = run(vlm, batch, output_hidden_states=True)
    h = ref.hidden_states[1].clone().requires_grad_(True)
    with trace({"1": vlm.layers[1]}, edit_input=lambda n, a, k: with_hidden_input(a, k, h)):
        out = vlm.model(**batch.inputs, use_cache=False).logits
    out[:, -1].sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0


def test_observe_attention_restores_on_error_and_switches_the_text_decoder_only(setup):
    from xai_bias.models.attention_hook import OBSERVED, _ACTIVE, current_implementation

    vlm, batch = setup
    ref = run(vlm, batch).logits
    text, vision = vlm.model.config.get_text_config(), vlm.model.config.vision_config
    before = (current_implementation(text), current_implementation(vision))
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        with observe_attention(vlm, lambda layer, *rest: seen.append(layer)):
            assert current_implementation(text) == OBSERVED and current_implementation(vision) == before[1]
            assert torch.equal(run(vlm, batch).logits, ref)
            raise RuntimeError("boom")
    assert seen == list(range(len(vlm.layers)))
    assert (current_implementation(text), current_implementation(vision)) == before and _ACTIVE.get() == ()
    # an observer that fails leaves nothing switched either
    with pytest.raises(ValueError, match="observer"):
        with observe_attention(vlm, lambda *a: (_ for _ in ()).throw(ValueError("observer"))):
            run(vlm, batch)
    assert current_implementation(text) == before[0] and _ACTIVE.get() == ()
    assert torch.equal(run(vlm, batch).logits, ref)
    # one name, registered once however many observations ran (public mapping views)
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    for interface in (ALL_ATTENTION_FUNCTIONS, ALL_MASK_ATTENTION_FUNCTIONS):
        assert [k for k in interface if k.startswith("xai_bias")] == [OBSERVED]


def test_observed_name_outside_an_observation_is_an_error(setup):
    """The registered name never silently computes something when no observation is active."""
    from xai_bias.models.attention_hook import OBSERVED, _register

    vlm, batch = setup
    _register()
    vlm.model.set_attn_implementation({"text_config": OBSERVED})
    try:
        with pytest.raises(RuntimeError, match="outside any observe_attention"):
            run(vlm, batch)
    finally:
        vlm.model.set_attn_implementation({"text_config": "sdpa"})


def test_nnsight_traced_leaves_the_model_exactly_as_it_was(setup):
    from xai_bias.instruments.intervention import traced

    vlm, batch = setup
    ref = run(vlm, batch).logits
    state = model_state(vlm.model)
    decoder = vlm.decoder
    with traced(decoder) as model:
        assert "forward" in vars(decoder)  # nnsight's controller is installed...
        with torch.no_grad(), model.trace(inputs_embeds=torch.zeros(1, 3, vlm.spec.hidden_size)):
            pass
    assert model_state(vlm.model) == state  # ...and gone, with everything nnsight added
    with pytest.raises(RuntimeError, match="boom"):
        with traced(decoder):
            raise RuntimeError("boom")
    assert model_state(vlm.model) == state
    assert torch.equal(run(vlm, batch).logits, ref)
    # an instance forward that was there before (an accelerate wrapper, say) is put back
    own = vlm.layers[0].forward
    vlm.layers[0].forward = own
    try:
        state = model_state(vlm.model)
        with traced(decoder):
            assert vars(vlm.layers[0])["forward"] is not own
        assert model_state(vlm.model) == state and vars(vlm.layers[0])["forward"] is own
    finally:
        del vlm.layers[0].forward
    assert np.isfinite(ref.numpy()).all()
