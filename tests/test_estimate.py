"""The estimator on hand-made traces whose C(M_i), Δ and suppression layer are known by
construction (numpy only, no models): per-token normalisation, the sink/template switch,
Shapley / knockout / logit lens / ablation definitions, agreement and the attention-vs-causal
warning, refusals, bootstrap coverage, and a 10,000-record timing."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from xai_bias.errors import TraceError, UnknownNameError
from xai_bias.estimate import estimate, estimate_to_json, format_estimate
from xai_bias.store import TraceWriter, open_trace
from xai_bias.types import ROLE_INDEX, ROLES, Record

S, T, IMG, Q, O, INS, GEN = (ROLE_INDEX[r] for r in ("sink", "template", "image", "question", "options",
                                                       "instruction", "generated"))
#: token counts per role: sink 1, template 9 (other = 10), image 100, question 10, options 6,
#: instruction 4 (text = 20); none of the other roles
ROLE_TOKENS = np.zeros(len(ROLES), np.int32)
ROLE_TOKENS[[S, T, IMG, Q, O, INS]] = [1, 9, 100, 10, 6, 4]

# per-layer attention mass (head mean) by construction, L = 4
IMG_MASS = np.array([0.2, 0.6, 0.3, 0.1])
TXT_MASS = np.array([0.4, 0.2, 0.15, 0.5])  # split over question / options / instruction
SINK, TEMPLATE = 0.25, 0.05  # other = 0.30 at every layer


def _mass_row(jitter: float, H: int = 2) -> np.ndarray:
    """[L, H, n_roles]: heads differ (±0.05 on sink and template) but their mean is exact."""
    L = len(IMG_MASS)
    m = np.zeros((L, H, len(ROLES)), np.float32)
    for h in range(H):
        sign = 1 if h % 2 == 0 else -1
        m[:, h, S] = SINK - sign * 0.05
        m[:, h, T] = TEMPLATE + sign * 0.05
        m[:, h, IMG] = IMG_MASS + jitter
        m[:, h, Q] = TXT_MASS * 0.5 - jitter
        m[:, h, O] = TXT_MASS * 0.3
        m[:, h, INS] = TXT_MASS * 0.2
    return m


def _rec(sid, condition="complete", mode="direct", pred="A", answer="A", lp=None, status="ok", **meas):
    lp = np.array([-0.1, -3.0, -3.5, -4.0] if lp is None else lp, np.float32)
    return Record(sample_id=sid, condition=condition, mode=mode, answer=answer, prediction=pred,
                  correct=(pred == answer), status=status, option_logprobs=lp,
                  role_tokens=ROLE_TOKENS.copy(), measurements=meas)


def _write(path, records, dataset_attrs=None):
    with TraceWriter(path, {"model_id": "synthetic", "roles": list(ROLES), "n_layers": 4, "n_heads": 2}) as w:
        for name, attrs in (dataset_attrs or {}).items():
            w.set_dataset_attrs(name, **attrs)
        w.extend(records)
    return path


def _attention_trace(tmp_path, n=6):
    # symmetric jitter: the sample mean is exactly the constructed value
    jit = np.linspace(-0.01, 0.01, n)
    recs = [_rec(f"s{i}", **{"attention/mass": _mass_row(jit[i])}) for i in range(n)]
    return _write(tmp_path / "att.h5", recs)


# ----------------------------------------------------------------------------- attention
def test_attention_mass_per_token_and_sink_switch(tmp_path):
    path = _attention_trace(tmp_path)
    est = estimate(path, methods="attention", n_bootstrap=200)
    t = est.table("attention", measure="mass")
    assert t.n_samples == 6 and list(t.layers) == [0, 1, 2, 3]
    np.testing.assert_allclose(t.contribution[:, 0], IMG_MASS, atol=1e-6)
    np.testing.assert_allclose(t.contribution[:, 1], TXT_MASS, atol=1e-6)
    np.testing.assert_allclose(t.contribution[:, 2], SINK + TEMPLATE, atol=1e-6)  # always reported
    share = IMG_MASS / (IMG_MASS + TXT_MASS)
    np.testing.assert_allclose(t.share[:, 0], share, atol=1e-6)
    assert np.isnan(t.share[:, 2]).all() and t.included == ("image", "text")
    # Δ = C(dominant) / C(underutilized), dominant named per layer
    assert t.dominant == ("text", "image", "image", "text")
    np.testing.assert_allclose(t.delta, [2.0, 3.0, 2.0, 5.0], rtol=1e-5)
    # intervals bracket the point estimate
    assert np.all(t.share_ci[:, 0, 0] <= t.share[:, 0] + 1e-9) and np.all(t.share[:, 0] <= t.share_ci[:, 0, 1] + 1e-9)
    # overall = mean over layers
    np.testing.assert_allclose(t.overall.contribution[:2], [IMG_MASS.mean(), TXT_MASS.mean()], atol=1e-6)
    assert t.overall.dominant == "text" and t.overall.underutilized == "image"
    np.testing.assert_allclose(t.overall.delta, TXT_MASS.mean() / IMG_MASS.mean(), rtol=1e-5)

    # per token: image mass / 100 image tokens, text mass / 20 text tokens
    p = est.table("attention", measure="per_token")
    np.testing.assert_allclose(p.contribution[:, 0], IMG_MASS / 100, atol=1e-8)
    np.testing.assert_allclose(p.contribution[:, 1], TXT_MASS / 20, atol=1e-8)
    np.testing.assert_allclose(p.contribution[:, 2], (SINK + TEMPLATE) / 10, atol=1e-8)
    assert all(d == "text" for d in p.dominant)
    np.testing.assert_allclose(p.delta, (TXT_MASS / 20) / (IMG_MASS / 100), rtol=1e-5)

    # the sink/template switch changes the shares (denominator), never Δ
    e2 = estimate(path, methods="attention", include_other=True, n_bootstrap=50)
    t2 = e2.table("attention", measure="mass")
    assert t2.included == ("image", "text", "other")
    np.testing.assert_allclose(t2.share[:, 0], IMG_MASS / (IMG_MASS + TXT_MASS + SINK + TEMPLATE), atol=1e-6)
    np.testing.assert_allclose(t2.share[:, 2], (SINK + TEMPLATE) / (IMG_MASS + TXT_MASS + SINK + TEMPLATE), atol=1e-6)
    np.testing.assert_allclose(t2.delta, t.delta)


def test_suppression_layer(tmp_path):
    path = _attention_trace(tmp_path)
    est = estimate(path, methods="attention", per_token=False, n_bootstrap=300, suppression_fraction=0.5)
    s = est.suppression_of("attention", measure="mass")
    # image share per layer 1/3, 3/4, 2/3, 1/6: peak at layer 1; 2/3 is not below 3/8; 1/6 is
    assert s.peak_layer == 1 and s.peak_share == pytest.approx(0.75, abs=1e-5)
    assert s.layer == 3 and s.interval == (3, 3) and s.no_suppression == 0.0
    # a fraction of 0.95 (threshold 0.7125) already fires at layer 2
    s7 = estimate(path, methods="attention", per_token=False, n_bootstrap=50,
                  suppression_fraction=0.95).suppression_of("attention", measure="mass")
    assert s7.layer == 2


def test_no_suppression_when_share_keeps_rising(tmp_path):
    recs = []
    for i in range(4):
        m = np.zeros((4, 1, len(ROLES)), np.float32)
        m[:, 0, IMG] = [0.1, 0.2, 0.3, 0.4]
        m[:, 0, Q] = 0.3
        recs.append(_rec(f"s{i}", **{"attention/mass": m}))
    est = estimate(_write(tmp_path / "t.h5", recs), methods="attention", n_bootstrap=20)
    s = est.suppression_of("attention", measure="mass")
    assert s.peak_layer == 3 and s.layer is None and s.interval is None and s.no_suppression == 1.0


# ----------------------------------------------------------------------------- other methods
def test_ig_shapley_knockout_by_construction(tmp_path):
    recs = []
    for i in range(5):
        ig = np.zeros((5, len(ROLES)), np.float32)  # L + 1 rows, row 0 = input embeddings
        ig[:, IMG] = [0.6, 0.5, 0.4, 0.2, 0.1]
        ig[:, Q] = [0.2, 0.3, 0.4, 0.6, 0.7]
        ig[:, S] = 0.2
        sh = np.array([0.1, -0.5, -0.3], np.float32)  # groups image, question, options
        ko = np.array([-0.5, -0.2, 0.0, 0.0], np.float32)  # change of the answer log-prob
        recs.append(_rec(f"s{i}", **{"attribution/ig": ig, "attribution/ig_delta": np.float32(0.01),
                                     "attribution/shapley": sh, "intervention/knockout": ko}))
    path = _write(tmp_path / "m.h5", recs,
                  {"attribution/shapley": {"groups": ["image", "question", "options"], "baseline": "mean"}})
    est = estimate(path, n_bootstrap=100)
    assert set(est.methods) == {"ig", "shapley", "knockout"} and "attention" in est.skipped

    ig = est.table("ig")
    assert list(ig.layers) == [-1, 0, 1, 2, 3]
    np.testing.assert_allclose(ig.share[:, 0], [0.75, 0.625, 0.5, 0.25, 0.125], atol=1e-6)
    np.testing.assert_allclose(ig.overall.share[0], 0.75, atol=1e-6)  # overall = embeddings row
    assert ig.overall.dominant == "image" and ig.overall.delta == pytest.approx(3.0, rel=1e-5)
    assert "convergence" in ig.note

    sh = est.table("shapley")
    assert len(sh.layers) == 0
    # |phi|: image 0.1, text |-0.5 - 0.3| = 0.8
    np.testing.assert_allclose(sh.overall.contribution[:2], [0.1, 0.8], atol=1e-6)
    np.testing.assert_allclose(sh.overall.share[0], 0.1 / 0.9, atol=1e-6)
    assert sh.overall.dominant == "text" and sh.overall.delta == pytest.approx(8.0, rel=1e-5)
    assert "text -0.8" in sh.note

    ko = est.table("knockout")
    np.testing.assert_allclose(ko.contribution[:, 0], [0.5, 0.2, 0.0, 0.0], atol=1e-6)
    assert np.isnan(ko.contribution[:, 1]).all() and np.isnan(ko.delta).all() and np.isnan(ko.share).all()
    np.testing.assert_allclose(ko.overall.contribution[0], 0.175, atol=1e-6)

    # per-layer agreement: ig's image share and knockout's image drop both fall with depth
    ag = {(g.kind, g.method_a, g.method_b): g for g in est.agreement}
    assert ag[("layers", "ig", "knockout")].spearman == pytest.approx(0.9486832980505138)
    text = format_estimate(est)
    assert "shapley (|phi|) · complete · direct" in text and "emb" in text


def _ablation_records(sid, base, t_only, t_white, i_only, lens=None, mode="direct"):
    """Log-prob of the target letter A per condition; B is wrong."""
    out = []
    for cond, a in (("complete", base), ("text_only", t_only), ("text_white", t_white), ("image_only", i_only)):
        lp = [a, -5.0, -5.0, -5.0]
        pred = "A" if a > -5.0 else "B"
        # the logit lens stores log-softmax readouts (its DatasetSpec's units: "logprob")
        meas = {} if lens is None else {"intervention/logit_lens": np.log(np.maximum(lens[cond], 1e-30))}
        out.append(_rec(sid, cond, mode, pred=pred, answer="A", lp=lp, **meas))
    return out


def test_ablation_and_logit_lens(tmp_path):
    recs = []
    lens = {c: np.zeros((3, 4), np.float32) for c in ("complete", "text_only", "text_white", "image_only")}
    lens["complete"][:, 0] = [0.3, 0.6, 0.9]
    lens["text_only"][:, 0] = [0.3, 0.5, 0.7]
    lens["text_white"][:, 0] = [0.3, 0.5, 0.5]
    lens["image_only"][:, 0] = [0.2, 0.2, 0.1]
    for i in range(4):
        # drops: text_only 0.4, text_white 0.2 (image: mean 0.3), image_only 6.0 (text)
        recs += _ablation_records(f"s{i}", -0.1, -0.5, -0.3, -6.1, lens)
    recs.append(_rec("broken", "complete", status="error: out of memory"))
    path = _write(tmp_path / "abl.h5", recs)
    est = estimate(path, n_bootstrap=100)
    assert est.n_excluded == 1 and set(est.methods) == {"logit_lens", "ablation"}
    t = est.table("ablation")
    assert t.n_samples == 4
    np.testing.assert_allclose(t.overall.contribution[:2], [0.3, 6.0], atol=1e-5)
    assert t.overall.dominant == "text" and t.overall.delta == pytest.approx(20.0, rel=1e-4)
    rows = {a.condition: a for a in est.ablation}
    assert rows["text_only"].logprob_drop == pytest.approx(0.4, abs=1e-5)
    assert rows["text_white"].removes == "image" and rows["image_only"].removes == "text"
    # image_only answers B (log-prob -6.1 < -5): accuracy 1 -> 0
    assert rows["image_only"].accuracy_complete == 1.0 and rows["image_only"].accuracy_condition == 0.0
    assert rows["image_only"].accuracy_drop == 1.0 and rows["text_only"].accuracy_drop == 0.0

    curves = {c.condition: c for c in est.lens}
    np.testing.assert_allclose(curves["complete"].prob, [0.3, 0.6, 0.9], atol=1e-6)
    np.testing.assert_allclose(curves["image_only"].prob, [0.2, 0.2, 0.1], atol=1e-6)
    ll = est.table("logit_lens")
    np.testing.assert_allclose(ll.contribution[:, 0], [0.0, 0.1, 0.3], atol=1e-6)  # mean(only, white)
    np.testing.assert_allclose(ll.contribution[:, 1], [0.1, 0.4, 0.8], atol=1e-6)

    # condition filter: ablation against text_only alone
    e2 = estimate(path, methods="ablation", condition="text_only", n_bootstrap=20)
    assert [a.condition for a in e2.ablation] == ["text_only"]
    assert np.isnan(e2.table("ablation").overall.contribution[1])  # text not measured then


def test_groups_by_condition_and_mode(tmp_path):
    recs = []
    for mode, img in (("direct", 0.6), ("cot", 0.2)):
        for cond in ("complete", "text_white"):
            for i in range(3):
                m = np.zeros((2, 1, len(ROLES)), np.float32)
                m[:, 0, IMG] = img if cond == "complete" else img / 2
                m[:, 0, Q] = 0.2
                recs.append(_rec(f"s{i}", cond, mode, **{"attention/mass": m}))
    path = _write(tmp_path / "g.h5", recs)
    est = estimate(path, methods=["attention"], per_token=False, n_bootstrap=10)
    keys = [(t.condition, t.mode) for t in est.tables]
    assert keys == [("complete", "direct"), ("complete", "cot"), ("text_white", "direct"), ("text_white", "cot")]
    assert est.table("attention", "complete", "cot").overall.share[0] == pytest.approx(0.5)
    assert est.table("attention", "text_white", "direct").overall.share[0] == pytest.approx(0.6)
    only = estimate(path, methods="attention", condition="complete", mode="cot", per_token=False, n_bootstrap=10)
    assert [(t.condition, t.mode) for t in only.tables] == [("complete", "cot")]


# ----------------------------------------------------------------------------- agreement
def test_attention_disagreeing_with_shapley_warns(tmp_path):
    """The measured pattern of issue 7: the hint-following model looks at the image (attention
    image share > 0.5) while its answer rests on the text (Shapley image share 0.02)."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(20):
        m = np.zeros((4, 2, len(ROLES)), np.float32)
        m[:, :, IMG] = 0.52 + rng.normal(0, 0.02)
        m[:, :, Q] = 0.3
        sh = np.array([0.02 + rng.normal(0, 0.005), 0.98], np.float32)
        recs.append(_rec(f"s{i}", **{"attention/mass": m, "attribution/shapley": sh}))
    path = _write(tmp_path / "w.h5", recs, {"attribution/shapley": {"groups": ["image", "text"]}})
    est = estimate(path, n_bootstrap=100)
    assert est.table("attention", measure="mass").overall.dominant == "image"
    assert est.table("shapley").overall.dominant == "text"
    assert any("attention (mass) ranks image above text" in w and "shapley ranks text" in w for w in est.warnings)
    samples = [g for g in est.agreement if g.kind == "samples" and {g.method_a, g.method_b} == {"attention", "shapley"}]
    assert samples and samples[0].n == 20 and -1 <= samples[0].spearman <= 1
    assert "warnings" in format_estimate(est)


# ----------------------------------------------------------------------------- refusals
def test_refuses_absent_method_unknown_method_and_newer_schema(tmp_path):
    path = _attention_trace(tmp_path)
    with pytest.raises(TraceError, match=r"'shapley' needs dataset\(s\) /attribution/shapley"):
        estimate(path, methods="shapley")
    with pytest.raises(TraceError, match="ablation"):
        estimate(path, methods="ablation")
    with pytest.raises(UnknownNameError, match="Did you mean 'shapley'"):
        estimate(path, methods="shapely")
    # newer schema: refused by the reader (file) and by the estimator (any Trace-like object)
    import h5py

    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(TraceError, match="99"):
        estimate(path)

    class Newer:
        attrs = {"schema_version": 2}
        n_records = 0

        def has(self, name):
            return False

    with pytest.raises(TraceError, match="newer"):
        estimate(Newer())


def test_accepts_open_trace_and_json_round_trip(tmp_path):
    path = _attention_trace(tmp_path)
    with open_trace(path) as tr:
        est = estimate(tr, n_bootstrap=50)
    d = estimate_to_json(est)
    text = json.dumps(d, allow_nan=False)  # strictly valid JSON
    back = json.loads(text)
    t = back["tables"][0]
    assert t["method"] == "attention" and t["measure"] == "mass"
    assert t["layers"][1]["share"]["image"] == pytest.approx(0.75, abs=1e-6)
    assert t["layers"][1]["dominant"] == "image"
    assert back["suppression"][0]["layer"] == 3
    out = format_estimate(est)
    assert "image share [95% CI]" in out and "suppression layer: 3" in out


# ----------------------------------------------------------------------------- bootstrap
class ArrayTrace:
    """Minimal in-memory object with the Trace API (estimate accepts any such object)."""

    def __init__(self, columns, n):
        self.columns, self.n_records = columns, n
        self.attrs = {"schema_version": 1, "roles": list(ROLES), "model_id": "array"}

    def has(self, name):
        return name in self.columns

    def __getitem__(self, name):
        return self.columns[name]

    def dataset_attrs(self, name):
        return {}


def _array_trace(mass, cond=None, mode=None):
    R = mass.shape[0]
    return ArrayTrace({
        "records/sample_id": np.array([f"s{i}" for i in range(R)]),
        "records/condition": np.array(["complete"] * R) if cond is None else cond,
        "records/mode": np.array(["direct"] * R) if mode is None else mode,
        "records/status": np.array(["ok"] * R),
        "records/role_tokens": np.tile(ROLE_TOKENS, (R, 1)),
        "attention/mass": mass,
    }, R)


def test_bootstrap_interval_covers_the_true_mean():
    rng = np.random.default_rng(1)
    reps, n, truth = 200, 40, 0.3
    hits = 0
    for r in range(reps):
        mass = np.zeros((n, 1, 1, len(ROLES)), np.float32)
        mass[:, 0, 0, IMG] = rng.gamma(4.0, truth / 4.0, n)  # skewed, mean 0.3
        mass[:, 0, 0, Q] = 0.5
        est = estimate(_array_trace(mass), methods="attention", per_token=False, n_bootstrap=1000, seed=r)
        lo, hi = est.table("attention").contribution_ci[0, 0]
        hits += lo <= truth <= hi
    rate = hits / reps
    print(f"bootstrap coverage of the 95% interval: {rate:.3f} over {reps} repetitions")
    assert 0.88 <= rate <= 0.99


def test_seeded_and_reproducible(tmp_path):
    path = _attention_trace(tmp_path)
    a = estimate(path, n_bootstrap=100, seed=3).table("attention").share_ci
    b = estimate(path, n_bootstrap=100, seed=3).table("attention").share_ci
    c = estimate(path, n_bootstrap=100, seed=4).table("attention").share_ci
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ten_thousand_records_in_seconds():
    rng = np.random.default_rng(0)
    R, L, H = 10_000, 28, 4
    mass = rng.random((R, L, H, len(ROLES)), dtype=np.float32)
    mass /= mass.sum(-1, keepdims=True)
    cond = np.where(np.arange(R) % 2 == 0, "complete", "text_only")
    tr = _array_trace(mass, cond=cond)
    tr.columns["records/sample_id"] = np.array([f"s{i // 2}" for i in range(R)])
    tr.columns["attribution/shapley"] = rng.normal(size=(R, 2)).astype(np.float32)
    tr.columns["intervention/knockout"] = rng.normal(size=(R, L)).astype(np.float32)
    tr.columns["records/option_logprobs"] = np.log(rng.dirichlet(np.ones(4), R)).astype(np.float32)
    tr.columns["records/prediction"] = np.array(["A"] * R)
    tr.columns["records/answer"] = np.array(["A"] * R)
    tr.dataset_attrs = lambda name: {"groups": ["image", "text"]}
    t0 = time.perf_counter()
    est = estimate(tr, n_bootstrap=1000)
    dt = time.perf_counter() - t0
    print(f"estimate on {R} records x {L} layers, 1000 resamples: {dt:.2f} s "
          f"({len(est.tables)} tables)")
    assert est.table("attention").n_samples == R // 2


def test_mixed_trace_agreement_ablation_and_latex(tmp_path):
    """Attention, Shapley and the ablation on one trace: the ablation's per-sample score sits on
    the complete records, so it enters the per-sample agreement; unknown filters are refused."""
    from xai_bias.errors import UsageError
    from xai_bias.estimate import format_estimate_latex

    rng = np.random.default_rng(2)
    recs = []
    for i in range(12):
        reliance = rng.random()  # how much sample i rests on the image
        m = np.zeros((3, 1, len(ROLES)), np.float32)
        m[:, 0, IMG] = 0.1 + 0.5 * reliance
        m[:, 0, Q] = 0.4
        sh = np.array([reliance, 1 - reliance], np.float32)
        recs.append(_rec(f"s{i}", **{"attention/mass": m, "attribution/shapley": sh}))
        recs.append(_rec(f"s{i}", "text_only", lp=[-0.1 - 3 * reliance, -5, -5, -5]))
        recs.append(_rec(f"s{i}", "image_only", lp=[-0.1 - 3 * (1 - reliance), -5, -5, -5]))
    path = _write(tmp_path / "mix.h5", recs, {"attribution/shapley": {"groups": ["image", "text"]}})
    est = estimate(path, n_bootstrap=100)
    assert set(est.methods) == {"attention", "shapley", "ablation"}
    rho = {(g.method_a, g.method_b): g.spearman for g in est.agreement if g.kind == "samples"}
    assert rho[("attention", "shapley")] == pytest.approx(1.0)
    assert rho[("shapley", "ablation")] == pytest.approx(1.0)
    assert rho[("attention", "ablation")] == pytest.approx(1.0)
    tex = format_estimate_latex(est)
    assert r"\begin{tabular}" in tex and "text\\_only" in tex
    with pytest.raises(UsageError, match="Did you mean 'complete'"):
        estimate(path, condition="complet")
    with pytest.raises(UsageError, match="mode 'cot'"):
        estimate(path, mode="cot")


# ----------------------------------------------------------------------------- n modalities
AUD, VID = ROLE_INDEX["audio"], ROLE_INDEX["video"]


def _nmod_row(img: float, aud: float, txt: float, L: int = 3) -> np.ndarray:
    """[L, 1, n_roles]: layer l has image img*(l+1), audio aud*(l+1), text txt, sink the rest."""
    m = np.zeros((L, 1, len(ROLES)), np.float32)
    for l in range(L):
        m[l, 0, IMG], m[l, 0, AUD], m[l, 0, Q] = img * (l + 1), aud * (l + 1), txt
        m[l, 0, S] = 1 - m[l, 0].sum()
    return m


def _nmod_record(sid, img, aud, txt, has_image=True, **kw):
    tokens = np.zeros(len(ROLES), np.int32)
    tokens[[S, Q, AUD]] = [1, 10, 50]
    tokens[IMG] = 20 if has_image else 0
    r = _rec(sid, **kw, **{"attention/mass": _nmod_row(img if has_image else 0.0, aud, txt)})
    return Record(**{**{f: getattr(r, f) for f in ("sample_id", "condition", "mode", "answer", "prediction", "correct",
                                                      "status", "option_logprobs", "measurements")},
                     "role_tokens": tokens})


def test_three_modalities_by_hand(tmp_path):
    """Image, audio and text (hand-made): shares over the three, Δ = largest / smallest, the
    dominant and underutilized named, suppression per non-text modality."""
    recs = [_nmod_record(f"s{i}", 0.10, 0.05, 0.30) for i in range(4)]
    est = estimate(_write(tmp_path / "three.h5", recs), methods="attention", n_bootstrap=50, per_token=False)
    t = est.table("attention", measure="mass")
    assert t.modalities == ("image", "text", "audio") and t.included == ("image", "text", "audio")
    col = {m: i for i, m in enumerate(("image", "text", "other", "video", "audio"))}
    # layer 0: image .10, text .30, audio .05 -> shares .222/.667/.111, Δ = .30/.05 = 6
    np.testing.assert_allclose(t.share[0, [col["image"], col["text"], col["audio"]]], [0.1 / 0.45, 0.3 / 0.45, 0.05 / 0.45],
                               atol=1e-6)
    assert t.dominant[0] == "text" and t.delta[0] == pytest.approx(6.0, rel=1e-5)
    # layer 2: image .30, text .30, audio .15 -> image ties text (the earlier column wins), Δ = .30/.15
    assert t.dominant[2] == "image" and t.delta[2] == pytest.approx(2.0, rel=1e-5)
    assert t.overall.underutilized == "audio"
    assert np.isnan(t.contribution[:, col["video"]]).all()  # no video role tokens: not measured, not 0
    assert {s.modality for s in est.suppression} == {"image", "audio"}


def test_audio_text_study_without_image(tmp_path):
    """Audio and text only: the image (no tokens) is absent, Δ compares audio and text, and the
    ablation pairs a registered audio-removing condition with complete."""
    from xai_bias.conditions import CONDITION_REGISTRY, Condition, register_condition

    register_condition(Condition("audio_silenced_test", "text + silence", lambda s, seed: [], removes="audio"))
    try:
        recs = []
        for i in range(4):
            recs.append(_nmod_record(f"s{i}", 0.0, 0.15, 0.40, has_image=False, lp=[-0.2, -3, -3, -3]))
            recs.append(_nmod_record(f"s{i}", 0.0, 0.15, 0.40, has_image=False, condition="audio_silenced_test",
                                     lp=[-1.2, -3, -3, -3]))
        est = estimate(_write(tmp_path / "audio.h5", recs), n_bootstrap=50, per_token=False)
        t = est.table("attention", measure="mass")
        assert t.modalities == ("text", "audio") and np.isnan(t.contribution[:, 0]).all()
        assert t.overall.dominant == "text" and t.overall.underutilized == "audio"
        np.testing.assert_allclose(t.overall.delta, 0.40 / 0.30, rtol=1e-5)  # mean audio over layers = .30
        (row,) = est.ablation
        assert row.removes == "audio" and row.logprob_drop == pytest.approx(1.0, abs=1e-5)
        abl = est.table("ablation")
        assert abl.overall.contribution[4] == pytest.approx(1.0, abs=1e-5)  # the audio column
        assert "audio: audio_silenced_test" in abl.definition
        text = format_estimate(est)
        assert "C(audio)" in text and "C(image)" not in text.split("== attention (mass)")[1].split("==")[0]
    finally:
        CONDITION_REGISTRY.remove("audio_silenced_test")


def test_knockout_follows_the_modality_it_cut(tmp_path):
    """/intervention/knockout says whose keys were cut (attr ``modality``): the estimator puts the
    drop in that modality's column (audio here), and records without audio tokens are left out."""
    recs = [_nmod_record(f"s{i}", 0.0, 0.15, 0.40, has_image=False,
                         **{"intervention/knockout": np.array([-0.5, -0.1, -0.3], np.float32)}) for i in range(3)]
    path = _write(tmp_path / "ko.h5", recs, {"intervention/knockout": {"modality": "audio"}})
    t = estimate(path, methods="knockout", n_bootstrap=20).table("knockout")
    assert t.modalities == ("audio",) and "attention to the audio" in t.definition
    np.testing.assert_allclose(t.contribution[:, 4], [0.5, 0.1, 0.3], atol=1e-6)  # the audio column
    assert np.isnan(t.contribution[:, 0]).all()
