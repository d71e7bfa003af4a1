"""Attention-mass instrument: oracle tests against eager ``output_attentions=True``.

For every tiny family (fp32) the captured mass, maps and flow equal the quantities computed
from the full eager attention matrices within 1e-6, on a left-padded batch; a sliding-window layer
(Gemma 3 with a window smaller than the prompt) is covered; logits under capture are bit-identical
to plain sdpa; and nothing stays registered or switched after the context (also on error).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from xai_bias.instruments.attention import (
    MAP_MAX_IMAGES,
    MAP_WIDTH,
    AttentionMethod,
    capture_attention,
    image_positions,
)
from xai_bias.instruments.base import METHODS, MethodSettings, Target
from xai_bias.models import FAMILIES
from xai_bias.types import N_ROLES, ROLE_INDEX, PromptView

ARCHS = FAMILIES.names()  # every registered family
TOL = 1e-6
GEN = ROLE_INDEX["generated"]
IMAGE = ROLE_INDEX["image"]

_VLMS: dict = {}


def _families():
    from xai_bias.models import FAMILIES

    return FAMILIES


def get_vlm(arch: str):
    if arch not in _VLMS:
        from xai_bias.models import tiny_vlm

        _VLMS[arch] = tiny_vlm(arch)
    return _VLMS[arch]


def _image(seed: int, size=(112, 112)):
    from PIL import Image

    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype("uint8"))


def make_encoded(vlm, n_items: int = 2):
    """Two prompts of different length (batched, the second is left-padded), each with one image
    (a clip of the family's modality for a video or audio family)."""
    from xai_bias.models import encode
    from tests.helpers import family_view

    views = [
        PromptView(question="Which shape is shown in the picture, and what is its colour?",
                   options=("a red circle", "a blue square", "a green triangle", "a yellow star"),
                   letters=tuple("ABCD"),
                   instruction="Answer with the option's letter from the given choices directly.",
                   images=(_image(0),)),
        PromptView(question="Is it round?", options=("yes", "no"), letters=tuple("AB"),
                   instruction="Answer.", images=(_image(1),)),
    ][:n_items]
    return [encode(vlm, family_view(v, vlm.family.name)) for v in views]


def make_batch(vlm, n_items: int = 2):
    from xai_bias.models import collate

    return collate(vlm, make_encoded(vlm, n_items))


def with_generation(vlm, n_gen=(5, 3)):
    """The cot measurement batch of ``make_encoded``'s prompts, built by the runner's own code
    (``generation.extend_batch``): item b followed by n_gen[b] generated tokens (role
    ``generated``), left-padded."""
    from xai_bias.generation import extend_batch

    letters = vlm.letter_token_ids(list("ABCD"))
    gen = [np.array([letters[(b + i) % len(letters)] for i in range(n)]) for b, n in enumerate(n_gen)]
    return extend_batch(vlm, make_encoded(vlm, len(n_gen)), gen)


def plain_logits(vlm, batch):
    with torch.no_grad():
        return vlm.model(**batch.inputs, use_cache=False).logits


def eager_attentions(vlm, batch) -> np.ndarray:
    """``[B, L, H, T, T]`` float64 from eager attention with ``output_attentions=True`` (text
    decoder switched to eager through ``set_attn_implementation``; the vision tower untouched)."""
    model = vlm.model
    before = model.config.get_text_config()._attn_implementation
    model.set_attn_implementation({"text_config": "eager"})
    try:
        assert model.config.get_text_config()._attn_implementation == "eager"
        with torch.no_grad():
            out = model(**batch.inputs, use_cache=False, output_attentions=True)
    finally:
        model.set_attn_implementation({"text_config": before})
    att = [a for a in out.attentions if a is not None]
    assert len(att) == vlm.spec.n_layers, f"{len(att)} attention maps for {vlm.spec.n_layers} layers"
    return torch.stack(att, 1).double().numpy()


def onehot(role_matrix: np.ndarray) -> np.ndarray:
    oh = np.zeros((*role_matrix.shape, N_ROLES))
    b, t = np.nonzero(role_matrix >= 0)
    oh[b, t, role_matrix[b, t]] = 1
    return oh


def oracle(att: np.ndarray, roles: np.ndarray):
    """(per-row mass [B, L, H, T, R], maps [B, L, T, T] head-mean, flow [B, L, R, R])."""
    oh = onehot(roles)
    mass = np.einsum("blhqk,bkr->blhqr", att, oh)
    maps = att.mean(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        flow = np.einsum("blqr,bqa->blar", mass.mean(2), oh) / oh.sum(1)[:, None, :, None]
    return mass, maps, flow


def maxerr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    return float(np.nanmax(np.abs(a - b))) if a.size else 0.0


def no_override_left(vlm, before: dict) -> None:
    """No observation active and every config's implementation as before (the one registered
    name stays registered, by design: it dispatches only inside an observation)."""
    from xai_bias.models import attention_hook

    assert attention_hook._ACTIVE.get() == ()
    assert _impls(vlm) == before


def _impls(vlm) -> dict:
    out = {}
    for name, mod in vlm.model.named_modules():
        cfg = getattr(mod, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation_internal"):
            out[name] = cfg._attn_implementation_internal
    out["<top>"] = vlm.model.config._attn_implementation_internal
    return out


# ------------------------------------------------------------------------------------------
# oracle: every family, left-padded batch, mass + maps + flow, logits bit-identical


@pytest.mark.parametrize("arch", ARCHS)
def test_oracle_family(arch):
    vlm = get_vlm(arch)
    batch = make_batch(vlm)
    roles = batch.role_matrix()
    B, T = roles.shape
    assert batch.pad[1] > 0, "the second item must be left-padded"
    from tests.helpers import media_kind

    MEDIA = ROLE_INDEX[media_kind(arch)]
    assert (roles == MEDIA).any(axis=1).all(), "every item has image (or clip) tokens"
    # rows per item: the answer row first, then an image row, a question row, the sink
    rows = []
    for b in range(B):
        pick = [T - 1, int(np.flatnonzero(roles[b] == MEDIA)[-1]),
                int(np.flatnonzero(roles[b] == ROLE_INDEX["question"])[0]), batch.pad[b]]
        rows.append(pick if b == 0 else pick[:3])  # ragged on purpose
    before = _impls(vlm)
    ref = plain_logits(vlm, batch)
    with capture_attention(vlm, rows, roles, maps=True, flow=True) as cap:
        with torch.no_grad():
            got = vlm.model(**batch.inputs, use_cache=False).logits
    assert torch.equal(ref, got), "logits under capture differ from plain sdpa"
    no_override_left(vlm, before)
    assert (cap.n_calls == 1).all()

    mass, maps, flow = oracle(eager_attentions(vlm, batch), roles)
    L, H = vlm.spec.n_layers, vlm.spec.n_heads
    assert cap.row_mass.shape == (B, L, H, 4, N_ROLES)
    for b in range(B):
        for j, pos in enumerate(rows[b]):
            assert maxerr(cap.mass_at(b, pos), mass[b, :, :, pos]) < TOL, (arch, b, pos)
        # padding keys get no mass; each row's roles sum to 1
        np.testing.assert_allclose(cap.row_mass[b].sum(-1), 1.0, atol=1e-5)
    assert maxerr(cap.maps, maps[:, :, T - 1, :]) < TOL
    assert maxerr(cap.flow, flow) < TOL
    # mean over the valid rows
    for b in range(B):
        want = np.mean([mass[b, :, :, p] for p in rows[b]], axis=0)
        assert maxerr(cap.mass[b], want) < TOL


@pytest.mark.parametrize("arch", ARCHS)
def test_method_direct_and_cot(arch):
    """The METHODS entry: direct mode from the scoring pass; cot mode (answer row + mean over
    generated rows) from one pass over prompt + generation; both against the eager oracle."""
    from xai_bias.models import forward

    vlm = get_vlm(arch)
    settings = MethodSettings.build(attention={"save_maps": True, "flow": True})
    method = METHODS.get("attention").build(vlm, settings)
    assert isinstance(method, AttentionMethod) and method.name == "attention"
    L, H = vlm.spec.n_layers, vlm.spec.n_heads

    # direct
    batch = make_batch(vlm)
    roles = batch.role_matrix()
    T = roles.shape[1]
    with method.capture(batch):
        forward(vlm, batch)
    targets = [Target(answer_pos=batch.answer_pos, token_id=0, letter_ids=())] * len(batch)
    rows = method.measure(batch, targets)
    mass, maps, flow = oracle(eager_attentions(vlm, batch), roles)
    from tests.helpers import media_kind

    kind = media_kind(arch)
    MAP = "attention/maps" if kind == "image" else f"attention/maps_{kind}"

    def media_positions(batch, b):
        if kind == "image":
            return image_positions(vlm, batch, b)
        return np.flatnonzero(batch.role_matrix()[b] == ROLE_INDEX[kind])

    for b, row in enumerate(rows):
        assert row["attention/mass"].shape == (L, H, N_ROLES) and row["attention/mass"].dtype == np.float32
        assert maxerr(row["attention/mass"], mass[b, :, :, T - 1]) < TOL
        img = media_positions(batch, b)
        assert img.size and row[MAP].shape == (L, MAP_WIDTH)
        assert np.isnan(row[MAP][:, img.size:]).all()
        assert maxerr(row[MAP][:, : img.size], maps[b][:, T - 1][:, img]) < TOL
        if kind == "image":
            grid = row["attention/map_grid"]
            assert grid.shape == (MAP_MAX_IMAGES, 2) and grid.dtype == np.int32
            assert int(np.prod(grid, axis=1).sum()) == img.size
        else:
            grid = row[f"attention/{kind}_grid"]
            assert grid.dtype == np.int32 and int(grid[:, 1 if kind == "video" else 0].sum()) == img.size
        assert maxerr(row["attention/flow"], flow[b]) < TOL
        assert "attention/mass_generated" not in row
    # without a capture, measure runs its own pass and gets the same numbers
    again = METHODS.get("attention").build(vlm, settings).measure(batch, targets)
    for a, b in zip(rows, again):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])

    # chain of thought: answer rows somewhere inside the generation
    full = with_generation(vlm, n_gen=(5, 3))
    froles = full.role_matrix()
    FT = froles.shape[1]
    answer = [FT - 3, FT - 2]  # rows that emit a generated token
    with method.capture(full):
        forward(vlm, full)
    targets = [Target(answer_pos=a, token_id=0, letter_ids=()) for a in answer]
    rows = method.measure(full, targets)
    fmass, fmaps, fflow = oracle(eager_attentions(vlm, full), froles)
    without_capture = METHODS.get("attention").build(vlm, settings).measure(full, targets)
    for b, row in enumerate(rows):
        gen = np.flatnonzero(froles[b] == GEN)
        assert gen.size == (5, 3)[b]
        assert maxerr(row["attention/mass"], fmass[b, :, :, answer[b]]) < TOL
        assert maxerr(row["attention/mass_generated"], fmass[b][:, :, gen].mean(2)) < TOL
        img = media_positions(full, b)
        assert maxerr(row[MAP][:, : img.size], fmaps[b][:, answer[b]][:, img]) < TOL
        assert maxerr(row["attention/flow"], fflow[b]) < TOL
        assert not np.isnan(row["attention/flow"][:, GEN]).any()
        for k in ("attention/mass", "attention/mass_generated", MAP, "attention/flow"):
            assert maxerr(without_capture[b][k], row[k]) < TOL, k
    attrs = method.dataset_attrs()
    assert {"attention/mass", MAP, "attention/flow"} <= set(attrs)
    assert "query_row" in attrs["attention/mass"] and "normalisation" in attrs["attention/mass"]


# ------------------------------------------------------------------------------------------
# sliding window (Gemma 3 text decoder with a window smaller than the prompt)


def _gemma3_text(window: int = 6):
    from transformers import Gemma3TextConfig, Gemma3ForCausalLM

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                           sliding_window=window, layer_types=["sliding_attention", "full_attention"] * 2,
                           max_position_embeddings=256, attn_implementation="sdpa")
    return Gemma3ForCausalLM(cfg).eval()


def test_sliding_window_gemma3_text():
    model = _gemma3_text(window=6)
    B, T = 2, 24
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 128, (B, T), generator=g)
    am = torch.ones(B, T, dtype=torch.long)
    am[1, :7] = 0
    roles = np.random.RandomState(0).randint(0, 6, (B, T))
    roles[:, 0] = 0
    roles[1, :7] = -1
    roles[1, 7] = 0
    rows = [[T - 1, 10, 3], [T - 1, 12, 8]]
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=am).logits
        with capture_attention(model, rows, roles, maps=True, flow=True) as cap:
            got = model(input_ids=ids, attention_mask=am).logits
        assert torch.equal(ref, got)
        model.config._attn_implementation = "eager"
        out = model(input_ids=ids, attention_mask=am, output_attentions=True)
        model.config._attn_implementation = "sdpa"
    att = torch.stack(out.attentions, 1).double().numpy()
    # the window really cuts: the answer row sees nothing further back than 6 tokens on layer 0
    assert att[0, 0, :, T - 1, : T - 6].max() == 0 and att[0, 1, :, T - 1, : T - 6].max() > 0
    mass, maps, flow = oracle(att, roles)
    for b in range(B):
        for pos in rows[b]:
            assert maxerr(cap.mass_at(b, pos), mass[b, :, :, pos]) < TOL
    assert maxerr(cap.maps, maps[:, :, T - 1]) < TOL
    assert maxerr(cap.flow, flow) < TOL


def test_sliding_window_gemma3_vlm():
    vlm = get_vlm("gemma3")
    tc = vlm.model.config.get_text_config()
    if "sliding_attention" not in tc.layer_types:
        pytest.skip("tiny gemma3 has no sliding-window layer")
    batch = make_batch(vlm)
    roles = batch.role_matrix()
    T = roles.shape[1]
    old = tc.sliding_window
    window = max(2, T // 4)
    tc.sliding_window = window  # masks read the window at forward time
    try:
        with capture_attention(vlm, [T - 1] * len(batch), roles, maps=True, flow=True) as cap:
            with torch.no_grad():
                vlm.model(**batch.inputs, use_cache=False)
        att = eager_attentions(vlm, batch)
    finally:
        tc.sliding_window = old
    sliding = [i for i, t in enumerate(tc.layer_types) if t == "sliding_attention"]
    assert att[0, sliding[0], :, T - 1, : T - window].max() == 0
    mass, maps, flow = oracle(att, roles)
    assert maxerr(cap.mass, mass[:, :, :, T - 1]) < TOL
    assert maxerr(cap.maps, maps[:, :, T - 1]) < TOL
    assert maxerr(cap.flow, flow) < TOL


# ------------------------------------------------------------------------------------------
# restoration, errors, dtypes


def test_restored_after_exception():
    vlm = get_vlm("qwen2_5_vl")
    batch = make_batch(vlm)
    before = _impls(vlm)
    ref = plain_logits(vlm, batch)
    with pytest.raises(RuntimeError, match="boom"):
        with capture_attention(vlm, [batch.answer_pos] * len(batch), batch.role_matrix()):
            assert vlm.model.config.get_text_config()._attn_implementation.startswith("xai_bias")
            # the vision tower keeps its own implementation
            vc = getattr(vlm.model.config, "vision_config", None)
            if vc is not None:
                assert not str(vc._attn_implementation).startswith("xai_bias")
            with torch.no_grad():
                vlm.model(**batch.inputs, use_cache=False)
            raise RuntimeError("boom")
    no_override_left(vlm, before)
    assert torch.equal(plain_logits(vlm, batch), ref)
    # an error raised by the capture itself (wrong role matrix) also restores
    with pytest.raises(ValueError, match="key roles"):
        with capture_attention(vlm, [0, 0], np.zeros((2, 3), np.int8)):
            with torch.no_grad():
                vlm.model(**batch.inputs, use_cache=False)
    no_override_left(vlm, before)
    with pytest.raises(ValueError, match="outside"):
        with capture_attention(vlm, [10_000, 0], batch.role_matrix()):
            pass
    no_override_left(vlm, before)


def test_nested_and_unique_names():
    vlm = get_vlm("qwen2_5_vl")
    batch = make_batch(vlm)
    roles = batch.role_matrix()
    T = roles.shape[1]
    before = _impls(vlm)
    with capture_attention(vlm, [T - 1] * 2, roles) as outer:
        with capture_attention(vlm, [T - 2] * 2, roles) as inner:
            with torch.no_grad():
                vlm.model(**batch.inputs, use_cache=False)
        assert inner.impl_name == outer.impl_name == "sdpa + selected softmax rows"  # not the nested name
    no_override_left(vlm, before)
    assert inner.row_mass is not None and (inner.n_calls == 1).all()
    # both observations saw the one pass, each its own rows
    assert outer.row_mass is not None and (outer.n_calls == 1).all()
    mass, _, _ = oracle(eager_attentions(vlm, batch), roles)
    assert maxerr(outer.mass, mass[:, :, :, T - 1]) < TOL and maxerr(inner.mass, mass[:, :, :, T - 2]) < TOL


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(dtype):
    """bf16 / fp16 models: logits bit-identical to plain sdpa in that dtype, rows computed in
    fp32 (sum to 1), close to the fp32 oracle."""
    import copy

    vlm = get_vlm("qwen2_5_vl")
    batch = make_batch(vlm)
    roles = batch.role_matrix()
    T = roles.shape[1]
    half = dataclasses.replace(vlm, model=copy.deepcopy(vlm.model).to(dtype), dtype=dtype)
    inputs = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in batch.inputs.items()}
    hb = dataclasses.replace(batch, inputs=inputs)
    ref = plain_logits(half, hb)
    with capture_attention(half, [T - 1] * 2, roles, maps=True, flow=True) as cap:
        with torch.no_grad():
            got = half.model(**hb.inputs, use_cache=False).logits
    assert torch.equal(ref, got)
    assert cap.row_mass.dtype == np.float32 and np.isfinite(cap.row_mass).all()
    np.testing.assert_allclose(cap.row_mass.sum(-1), 1.0, atol=1e-5)
    mass, _, _ = oracle(eager_attentions(vlm, batch), roles)
    assert maxerr(cap.mass, mass[:, :, :, T - 1]) < 0.05


def test_maps_width_setting_and_trace_roundtrip(tmp_path):
    """A narrower map width truncates with a warning; the rows go through the trace writer."""
    from xai_bias.models import forward

    vlm = get_vlm("qwen2_5_vl")
    batch = make_batch(vlm)
    n_img = min(image_positions(vlm, batch, b).size for b in range(len(batch)))
    settings = MethodSettings.build(attention={"save_maps": True, "map_width": n_img - 1, "map_max_images": 2})
    method = METHODS.get("attention").build(vlm, settings)
    with method.capture(batch):
        forward(vlm, batch)
    targets = [Target(answer_pos=batch.answer_pos, token_id=0, letter_ids=())] * len(batch)
    with pytest.warns(UserWarning, match="--attention-map-width"):
        rows = method.measure(batch, targets)
    assert rows[0]["attention/maps"].shape == (vlm.spec.n_layers, n_img - 1)
    assert rows[0]["attention/map_grid"].shape == (2, 2)
    assert method.dataset_attrs()["attention/maps"]["width"] == n_img - 1

    from xai_bias import store
    from xai_bias.types import Record

    path = tmp_path / "t.h5"
    recs = [Record(sample_id=f"s{i}", condition="complete", mode="direct", answer="A", prediction="A",
                   correct=True, measurements=row) for i, row in enumerate(rows)]
    with store.TraceWriter(path, {"model_id": "tiny"}) as w:
        for name, attrs in method.dataset_attrs().items():
            w.set_dataset_attrs(name, **attrs)
        for r in recs:
            w.append(r)
    with store.open_trace(path) as t:
        for name in ("attention/mass", "attention/maps", "attention/map_grid"):
            np.testing.assert_array_equal(t.column(name), np.stack([r[name] for r in rows]))
        assert t.column("attention/mass").shape == (2, vlm.spec.n_layers, vlm.spec.n_heads, N_ROLES)


def test_rows_from_2d_padding_mask_match_4d_mask():
    """Wrapping a flash-style implementation (2-D padding mask + causal + sliding window kwarg)
    gives the same rows as the 4-D boolean mask sdpa gets."""
    from xai_bias.instruments.attention_capture import _Observer

    torch.manual_seed(0)
    B, H, Hkv, T, d = 2, 4, 2, 12, 8
    q, k = torch.randn(B, H, T, d), torch.randn(B, Hkv, T, d)
    pad = torch.ones(B, T, dtype=torch.long)
    pad[1, :4] = 0
    m4 = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None] & pad[:, None, None, :].bool()
    window = torch.arange(T)[None, :] > torch.arange(T)[:, None] - 3

    class Attn:
        is_causal = True

    obs = _Observer(1, np.zeros((1, 1), np.int64), np.ones((1, 1), bool), np.zeros((B, T)), False, False, 4)
    rows = torch.tensor([[11, 5], [11, 6]])
    for m, w in ((m4, None), (m4 & window[None, None], 3)):
        want = obs._probs(Attn(), q, k, m, rows, 0.3, True, None, None)
        got = obs._probs(Attn(), q, k, pad, rows, 0.3, True, None, w)
        assert torch.equal(want, got)
        np.testing.assert_allclose(want.sum(-1).numpy(), 1.0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# the runner's chain-of-thought path, end to end, against the eager oracle


@pytest.mark.parametrize("arch", ARCHS)
def test_runner_cot_attention_equals_eager(arch, tmp_path):
    """``Runner`` in cot mode (generate, parse, one measurement pass over prompt + generation with
    the method's capture): the recorded answer-row mass and the mean over generated rows equal
    eager attention on that very pass."""
    from xai_bias.conditions import make_view
    from xai_bias.generation import emitting_row, extend_batch
    from xai_bias.models import encode
    from xai_bias.run import RunConfig, Runner, WorkItem
    from xai_bias.types import Sample
    from tests.helpers import write_image

    from tests.helpers import family_sample

    vlm = get_vlm(arch)
    samples = [family_sample(Sample(id=f"s{i}", question=q, options=("red", "blue", "green"), answer="A",
                                    images=(write_image(tmp_path / f"i{i}.png", i),)), arch, tmp_path)
               for i, q in enumerate(("<image 1> What colour is the shape?", "<image 1> Which?"))]
    # a random tiny model rarely writes "Answer: X": the random fallback gives every record a letter
    # (an unparsed response has no answer row and no measurement)
    config = RunConfig(out=tmp_path / "t.h5", mode="cot", methods=("attention",), max_new_tokens=6,
                       progress=False, parse_fallback="random")
    items = [WorkItem(s, "complete", "cot") for s in samples]
    records = Runner(vlm, config).run_batch(items)
    assert all(r.status == "ok" for r in records), [r.status for r in records]
    # the same pass, rebuilt from what the records hold
    encs = [encode(vlm, make_view(s, "complete", "cot", seed=config.seed)) for s in samples]
    gens = [np.asarray(r.input_ids[len(e):], np.int64) for r, e in zip(records, encs)]
    assert all(g.size for g in gens)
    full = extend_batch(vlm, encs, gens)
    roles = full.role_matrix()
    mass, _, _ = oracle(eager_attentions(vlm, full), roles)
    for b, (rec, enc, gen) in enumerate(zip(records, encs, gens)):
        assert rec.meta["answer_token"]["measured"]
        row = emitting_row(full, b, len(enc), gen, rec.meta["answer_token"].get("offset"))
        assert maxerr(rec.measurements["attention/mass"], mass[b, :, :, row]) < TOL
        gen_rows = np.flatnonzero(roles[b] == GEN)
        assert maxerr(rec.measurements["attention/mass_generated"], mass[b][:, :, gen_rows].mean(2)) < TOL
