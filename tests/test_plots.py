"""Figures (xai_bias.plots): every figure renders from small hand-made traces, is not blank,
changes with the data, is byte-identical when rendered twice, and a missing dataset gives a
note instead of an error. matplotlib + numpy + h5py only (no models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xai_bias.plots import style as S
from xai_bias.types import LETTERS, N_ROLES, ROLE_INDEX, Record

L, H, GRID = 6, 4, (4, 4)
IMG, Q, OPT, INS, SINK, TPL = (ROLE_INDEX[r] for r in ("image", "question", "options", "instruction", "sink", "template"))


def write_image(path: Path) -> Path:
    from PIL import Image

    a = np.full((64, 64, 3), 255, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    a[(yy - 40) ** 2 + (xx - 22) ** 2 < 14 ** 2] = (0, 114, 178)
    Image.fromarray(a).save(path)
    return path


def make_trace(path: Path, model_id: str = "demo-biased", bias: float = 1.0, n: int = 12, seed: int = 0,
               conditions=("complete", "text_white", "image_only"), methods=("attention", "ig", "knockout",
                                                                          "logit_lens", "maps"),
               image: Path | None = None, mode: str = "direct") -> Path:
    """A small synthetic trace: L=6 layers, H=4 heads, 4 options. ``bias`` scales the image share
    (1 = image-heavy early layers that fade after layer 2)."""
    from xai_bias.store import TraceWriter

    rng = np.random.default_rng(seed)
    attrs = {"model_id": model_id, "model_arch": "synthetic", "n_layers": L, "n_heads": H, "seed": seed}
    profile = bias * np.array([0.25, 0.45, 0.55, 0.2, 0.08, 0.05])  # image share of attention per layer
    with TraceWriter(path, attrs) as w:
        for s in range(n):
            answer = LETTERS[s % 4]
            for cond in conditions:
                has_img = cond != "text_only"
                k = {"complete": 1.0, "text_white": 0.35, "text_black": 0.3, "text_noise": 0.4,
                     "image_only": 1.4, "text_only": 0.0}[cond]
                meas = {}
                img_share = np.clip(profile * k + rng.normal(0, 0.02, L), 0.01, 0.95)
                if "attention" in methods:
                    mass = np.zeros((L, H, N_ROLES), np.float32)
                    head_w = np.linspace(0.4, 1.6, H)
                    for h in range(H):
                        im = np.clip(img_share * head_w[h], 0, 0.9)
                        mass[:, h, SINK] = 0.3 * (1 - im)
                        mass[:, h, TPL] = 0.1 * (1 - im)
                        mass[:, h, IMG] = im
                        mass[:, h, Q] = 0.3 * (1 - im)
                        mass[:, h, OPT] = 0.2 * (1 - im)
                        mass[:, h, INS] = 0.1 * (1 - im)
                    meas["attention/mass"] = mass
                if "ig" in methods:
                    ig = np.zeros((L + 1, N_ROLES), np.float32)
                    ig_img = np.clip(np.r_[0.3, img_share * 0.8 + 0.05], 0, 0.9)
                    ig[:, IMG] = ig_img
                    ig[:, Q] = (1 - ig_img) * 0.6
                    ig[:, OPT] = (1 - ig_img) * 0.3
                    ig[:, SINK] = (1 - ig_img) * 0.1
                    meas["attribution/ig"] = ig
                if "knockout" in methods:
                    meas["intervention/knockout"] = (-2.0 * img_share + rng.normal(0, 0.05, L)).astype(np.float32)
                if "logit_lens" in methods:
                    p_ans = np.clip(np.linspace(0.25, 0.9 if cond == "complete" else 0.5, L) * (0.6 + 0.4 * bias)
                                    + rng.normal(0, 0.02, L), 0.01, 0.97)
                    lens = np.repeat(((1 - p_ans) / 3)[:, None], 4, 1)
                    lens[:, LETTERS.index(answer)] = p_ans
                    meas["intervention/logit_lens"] = np.log(lens).astype(np.float32)  # log-softmax, as written
                if "maps" in methods and has_img:
                    gy, gx = np.mgrid[: GRID[0], : GRID[1]]
                    blob = np.exp(-((gy - 2.5) ** 2 + (gx - 1.3) ** 2) / 1.5).ravel()
                    maps = np.stack([img_share[l] * (blob * (1 - l / L) + (l / L) / blob.size) for l in range(L)])
                    maps = maps / maps.sum(1, keepdims=True) * img_share[:, None]
                    padded = np.full((L, 24), np.nan, np.float32)  # [L, width], NaN after the image tokens
                    padded[:, : maps.shape[1]] = maps
                    meas["attention/maps"] = padded
                    grid = np.zeros((3, 2), np.int32)  # [max_images, 2], zero rows after the last image
                    grid[0] = GRID
                    meas["attention/map_grid"] = grid
                # accuracy: complete best, drops without the image, scaled by bias
                p_correct = {"complete": 0.9, "text_white": 0.9 - 0.5 * bias, "text_black": 0.35,
                             "text_noise": 0.4, "image_only": 0.55, "text_only": 0.3}[cond]
                correct = rng.random() < p_correct
                pred = answer if correct else LETTERS[(LETTERS.index(answer) + 1 + s % 3) % 4]
                lp = np.log(np.full(4, 0.1, np.float32))
                lp[LETTERS.index(pred)] = np.log(0.7)
                roles = np.array([SINK] + [TPL] * 3 + [IMG] * (16 if has_img else 0) + [Q] * 8 + [OPT] * 8 + [INS] * 4,
                                 np.int8)
                meta = {"qtype": "shape"}
                if image is not None:
                    meta["image"] = str(image)
                w.append(Record(
                    sample_id=f"s{s:03d}", condition=cond, mode=mode, answer=answer, prediction=pred,
                    correct=bool(correct), option_logprobs=lp.astype(np.float32),
                    role_tokens=np.bincount(roles, minlength=N_ROLES).astype(np.int32), meta=meta,
                    input_ids=np.arange(len(roles), dtype=np.int32), token_roles=roles, measurements=meas))
    return path


# ------------------------------------------------------------------------------ fixtures
ALL = ("fig1_layers", "fig2_delta", "fig3_heads", "fig4_overlays", "fig5_interventions", "fig6_ablation",
       "fig7_agreement")
NB = 40  # bootstrap resamples: enough to draw bands, fast


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    img = write_image(d / "shape.png")
    return {
        "img": img,
        "biased": make_trace(d / "biased.h5", "org/demo-biased", bias=1.0, image=img),
        "balanced": make_trace(d / "balanced.h5", "org/demo-balanced", bias=0.45, seed=1, image=img),
    }


@pytest.fixture(scope="module")
def rendered(traces, tmp_path_factory):
    from xai_bias.plots import render_all

    out = {}
    for key, path, fmts in (("a", traces["biased"], ("pdf", "png")), ("a2", traces["biased"], ("pdf", "png")),
                            ("b", traces["balanced"], ("png",))):
        d = tmp_path_factory.mktemp(f"fig_{key}")
        out[key] = (d, render_all([path], out=d, formats=fmts, n_bootstrap=NB))
    return out


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float64)


# ------------------------------------------------------------------------------ tests
@pytest.mark.slow
def test_every_figure_is_written_and_not_blank(rendered):
    d, res = rendered["a"]
    assert not [n for n in res.notes if n.startswith("skipped")], res.notes
    for name in ALL:
        for fmt in ("pdf", "png"):
            p = d / f"{name}.{fmt}"
            assert p in res.written and p.stat().st_size > 2000, p
        px = _pixels(d / f"{name}.png")
        assert px.std() > 20, f"{name}: PNG looks blank (pixel std {px.std():.1f})"
        assert (px < 200).mean() > 0.02, f"{name}: almost nothing drawn"
        assert (d / f"{name}.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.slow
def test_sizes_are_paper_widths(rendered):
    from PIL import Image

    d, _ = rendered["a"]
    widths = {name: Image.open(d / f"{name}.png").size[0] for name in ALL}
    assert set(widths.values()) <= {round(3.3 * 200), round(6.9 * 200)}, widths


@pytest.mark.slow
def test_rendering_twice_gives_identical_bytes(rendered):
    (d1, r1), (d2, r2) = rendered["a"], rendered["a2"]
    assert [p.name for p in r1.written] == [p.name for p in r2.written]
    for p in r1.written:
        assert p.read_bytes() == (d2 / p.name).read_bytes(), f"{p.name} differs between two renders"
    pdf = (d1 / "fig1_layers.pdf").read_bytes()
    assert b"CreationDate" not in pdf and b"ModDate" not in pdf


@pytest.mark.slow
def test_figures_change_when_the_data_changes(rendered):
    (da, _), (db, rb) = rendered["a"], rendered["b"]
    assert not [n for n in rb.notes if n.startswith("skipped")], rb.notes
    for name in ALL:
        a, b = (da / f"{name}.png").read_bytes(), (db / f"{name}.png").read_bytes()
        assert a != b, f"{name} did not change with the data"


def test_comparison_overlays_traces_labelled_by_model(traces, tmp_path):
    from xai_bias.plots import render_all

    res = render_all([traces["biased"], traces["balanced"]], out=tmp_path, formats=("png",), n_bootstrap=NB,
                     only=("fig1_layers", "fig6_ablation", "fig3_heads"))
    names = sorted(p.name for p in res.written)
    assert names == ["fig1_layers.png", "fig3_heads-demo-balanced.png",
                     "fig3_heads-demo-biased.png", "fig6_ablation.png"], names
    single = render_all([traces["biased"]], out=tmp_path / "one", formats=("png",), n_bootstrap=NB,
                        only=("fig1_layers",))
    assert (tmp_path / "fig1_layers.png").read_bytes() != single.written[0].read_bytes()


def test_comparison_figures_name_the_models(traces):
    from xai_bias.plots import ablation, layer_contributions, open_sources

    sources = open_sources([traces["biased"], traces["balanced"]], n_bootstrap=0)
    for fig in (layer_contributions(sources), ablation(sources)):
        texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
        assert any("demo-biased" in t for t in texts) and any("demo-balanced" in t for t in texts)


def test_every_axis_is_labelled(traces):
    from xai_bias.plots import (ablation, delta_per_layer, head_map, image_overlays, interventions,
                                layer_contributions, method_agreement, open_sources)

    sources = open_sources([traces["biased"]], n_bootstrap=0)
    s = sources[0]
    for fig in (layer_contributions(sources), delta_per_layer(sources), head_map(s), image_overlays(s),
                interventions(s), ablation(sources), method_agreement(s)):
        for ax in fig.axes:
            if not ax.get_visible() or not ax.axison:
                continue
            if ax.get_label() == "<colorbar>":
                assert ax.get_ylabel() or ax.get_xlabel()
                continue
            xt = [t.get_text() for t in ax.get_xticklabels()]
            if ax.get_xlabel() == "" and not any(xt):  # shared axis without its own tick labels
                continue
            assert ax.get_xlabel() or all(xt), f"{fig.get_suptitle()!r}: unlabelled x axis"
            yt = [t.get_text() for t in ax.get_yticklabels()]
            assert ax.get_ylabel() or not any(yt) or all(not t[:1].isdigit() and not t.startswith("−") for t in yt), \
                f"{fig.get_suptitle()!r}: unlabelled y axis"


def test_missing_data_gives_notes_not_errors(tmp_path):
    from xai_bias.plots import render_all

    bare = make_trace(tmp_path / "bare.h5", methods=(), conditions=("complete",), n=4)
    res = render_all([bare], out=tmp_path / "out", formats=("png",), n_bootstrap=NB)
    assert res.written == []
    skipped = {n.split(":")[0] for n in res.notes if n.startswith("skipped")}
    assert skipped == {f"skipped {name}" for name in ALL}, res.notes
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_partial_data_renders_what_exists(tmp_path):
    from xai_bias.plots import render_all

    # attention maps but no image path in the metadata; no knockout; logit lens only
    p = make_trace(tmp_path / "part.h5", methods=("attention", "maps", "logit_lens"),
                   conditions=("complete", "text_black"), n=6)
    res = render_all([p], out=tmp_path / "out", formats=("png",), n_bootstrap=NB,
                     only=("fig1_layers", "fig4_overlays", "fig5_interventions"))
    names = {q.stem for q in res.written}
    assert names == {"fig1_layers", "fig4_overlays", "fig5_interventions"}, res.notes
    assert any("fig4_overlays" in n and "could not be located" in n for n in res.notes), res.notes
    assert any("fig5_interventions" in n and "knockout" in n for n in res.notes), res.notes
    assert _pixels(tmp_path / "out" / "fig4_overlays.png").std() > 20


def test_sample_choice_and_unknown_sample(traces, tmp_path):
    from xai_bias.plots import render_all

    res = render_all([traces["biased"]], out=tmp_path, formats=("png",), n_bootstrap=0, sample="s003",
                     only=("fig4_overlays",))
    assert [p.name for p in res.written] == ["fig4_overlays.png"]
    first = render_all([traces["biased"]], out=tmp_path / "first", formats=("png",), n_bootstrap=0,
                       only=("fig4_overlays",))
    assert res.written[0].read_bytes() != first.written[0].read_bytes()
    missing = render_all([traces["biased"]], out=tmp_path / "x", formats=("png",), n_bootstrap=0,
                         sample="nope", only=("fig4_overlays",))
    assert missing.written == [] and "nope" in missing.notes[0]


def test_bad_format_is_a_usage_error(traces, tmp_path):
    from xai_bias.errors import UsageError
    from xai_bias.plots import render_all

    with pytest.raises(UsageError):
        render_all([traces["biased"]], out=tmp_path, formats=("gif",))


def test_cli_figures_command(tmp_path, capsys):
    import argparse

    from xai_bias.commands import cmd_figures

    p = make_trace(tmp_path / "records_only.h5", methods=(), conditions=("complete", "image_only"), n=4)
    args = argparse.Namespace(paths=[str(p)], out=str(tmp_path / "figs"), format=("png",), sample=None,
                              bootstrap=0, seed=0)
    assert cmd_figures(args) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "note: skipped fig1_layers" in out
    assert [q.name for q in (tmp_path / "figs").iterdir()] == ["fig6_ablation.png"]


def test_a_failing_estimate_is_an_error_not_a_second_estimator(traces, tmp_path):
    """Regression (issue 12.4): figures had a private estimator that silently took over when
    ``estimate`` raised, with other rules. Now the error surfaces and nothing is drawn."""
    from xai_bias.plots import render_all

    def broken(trace, **kw):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        render_all([traces["biased"]], out=tmp_path / "out", formats=("png",), n_bootstrap=NB, estimator=broken)
    assert not (tmp_path / "out").exists()


def test_figures_draw_the_estimate_and_pass_the_seed(traces, tmp_path):
    """The plotted layer shares are the estimate's numbers, and --seed reaches its bootstrap."""
    from xai_bias.estimate import estimate
    from xai_bias.plots import layer_contributions, open_sources, render_all

    seen = []

    def spy(trace, **kw):
        seen.append(kw)
        return estimate(trace, **kw)

    render_all([traces["biased"]], out=tmp_path, formats=("png",), n_bootstrap=7, seed=123, estimator=spy,
               only=("fig1_layers",))
    assert seen == [{"n_bootstrap": 7, "seed": 123}]
    (src,) = open_sources([traces["biased"]], n_bootstrap=0)
    fig = layer_contributions([src])
    for ax in fig.axes:
        title = ax.get_title()
        method = next((t.method for t in src.estimate.tables if t.condition == "complete"
                       and S.method_label(t.method) == title), None)
        if method is None:
            continue
        t = src.estimate.table(method, "complete", "direct")
        image_line = ax.get_lines()[0]
        np.testing.assert_allclose(image_line.get_ydata(), 100 * t.share[:, 0])


def test_figures_default_folder_is_next_to_the_trace(traces, tmp_path, capsys):
    """Regression (issue 12.5): `figures runs/demo.h5` wrote into the repository's figures/."""
    import shutil

    import cli

    trace = tmp_path / "runs" / "demo.h5"
    trace.parent.mkdir()
    shutil.copy(traces["biased"], trace)
    assert cli.main(["figures", str(trace), "--format", "png", "--bootstrap", "0"]) == 0
    out = tmp_path / "runs" / "demo-figures"
    assert (out / "fig1_layers.png").is_file()
    assert f"wrote {out}" in capsys.readouterr().out


def test_svg_is_deterministic_too(traces, tmp_path):
    from xai_bias.plots import render_all

    a = render_all([traces["biased"]], out=tmp_path / "a", formats=("svg",), n_bootstrap=0, only=("fig3_heads",))
    b = render_all([traces["biased"]], out=tmp_path / "b", formats=("svg",), n_bootstrap=0, only=("fig3_heads",))
    assert a.written[0].read_bytes() == b.written[0].read_bytes()
