"""Extension points without touching a package file (issue 12, "done when"):

- a new instrument defined here (gradient × input at the merged embeddings and every layer's
  residual stream), registered with one ``register_method`` call, appears in ``attribute
  --methods`` (with its own settings flag), ``inspect``, ``estimate`` (with its contributions)
  and ``figures``;
- a new condition (``text_blur``: a Gaussian-blurred image), registered with one
  ``register_condition`` call, appears in the ablation and in Tables 1 and 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import cli
from xai_bias.conditions import CONDITION_REGISTRY, Condition, condition_images, register_condition
from xai_bias.estimate import estimate, role_share_contributions
from xai_bias.instruments import METHODS, DatasetSpec, MethodSpec, Settings, register_method, setting
from xai_bias.instruments._embeds import DecoderMethod, role_sums, target_logprob_fn
from xai_bias.types import N_ROLES

from .helpers import write_samples

MODEL = "tiny:qwen2_5_vl"


# --------------------------------------------------------------------------------------------
# a new instrument, defined here


@dataclass(frozen=True)
class GradXInputSettings(Settings):
    signed: bool = setting(False, "sum the signed products per token instead of their magnitudes")


class GradTimesInput(DecoderMethod):
    """|gradient × activation| share per role at the merged embeddings and after every layer."""

    name = "grad_x_input"

    def measure(self, batch, targets):
        out = []
        for item in self.items(batch, targets, "mean"):
            f = target_logprob_fn(self.vlm, item.call, item.answer_pos, item.token_id)
            acts = []

            def keep(module, args, output):
                h = output[0] if isinstance(output, tuple) else output
                h.retain_grad()
                acts.append(h)

            handles = [layer.register_forward_hook(keep) for layer in self.vlm.layers]
            try:
                x = item.call.embeds.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    f(x).sum().backward()
            finally:
                for h in handles:
                    h.remove()
            rows = []
            for h, g in [(x, x.grad)] + [(a, a.grad) for a in acts]:
                prod = (g * h).detach().float()[0].sum(-1).numpy()  # [T]
                tok = prod if self.options.signed else np.abs(prod)
                sums = role_sums(tok, item.roles, N_ROLES)
                rows.append(sums / max(np.abs(sums).sum(), 1e-30))
            out.append({"attribution/grad_x_input": np.stack(rows).astype(np.float32)})  # [L+1, n_roles]
        return out


SPEC = MethodSpec(
    name="grad_x_input", label="gradient × input", short_label="grad×input", kind="observational",
    instrument=GradTimesInput, settings=GradXInputSettings, color="#999999",
    datasets=(DatasetSpec("attribution/grad_x_input", "[L+1, n_roles]", "share",
                          "|gradient × activation| share per role; row 0 = merged input embeddings",
                          role_axis=1, layer_axis=0, first_layer=-1),),
    contributions=role_share_contributions(
        "attribution/grad_x_input", "grad_x_input", "|g·x| share",
        "|gradient × activation| share of the modality's roles", overall="first", first_layer=-1),
)


@pytest.fixture
def grad_x_input():
    register_method(SPEC)
    try:
        yield SPEC
    finally:
        METHODS.remove(SPEC.name)


def test_a_new_instrument_is_one_registration(grad_x_input, tmp_path, capsys):
    samples = write_samples(tmp_path, n=4)
    out = tmp_path / "gxi.h5"
    # its settings field is a flag of `attribute`, with its help text
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["attribute"].format_help()
    assert "--grad-x-input-signed" in help_text and "sum the signed products" in help_text
    assert cli.main(["attribute", "--model", MODEL, "--samples", str(samples), "--out", str(out),
                     "--conditions", "complete,text_white", "--methods", "attention,grad_x_input",
                     "--no-progress"]) == 0
    capsys.readouterr()

    # inspect: the dataset describes itself (method, units, per-layer image / text)
    assert cli.main(["inspect", str(out), "--record", "0", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    m = rec["measurements"]["attribution/grad_x_input"]
    assert m["method"] == "grad_x_input" and m["units"] == "share"
    L = len(m["per_layer"]) - 1
    assert m["per_layer"][0]["layer"] == "embed" and L >= 2
    assert cli.main(["inspect", str(out), "--record", "0"]) == 0
    assert "gradient × input; share" in capsys.readouterr().out

    # estimate: its contributions, per layer, with shares that sum to 1 over image + text
    est = estimate(out, n_bootstrap=50)
    assert "grad_x_input" in est.methods
    t = est.table("grad_x_input", "complete", "direct")
    assert list(t.layers) == list(range(-1, L)) and t.n_samples == 4
    np.testing.assert_allclose(t.share[:-1, 0] + t.share[:-1, 1], 1.0, atol=1e-6)
    assert t.contribution[:-1, 0].min() > 0  # the tiny model's answer depends on its image
    # after the last layer only the answer row (a template token) feeds the output: no share
    assert np.isnan(t.share[-1]).all() and t.contribution[-1, :2].tolist() == [0.0, 0.0]
    assert any(s.method == "grad_x_input" for s in est.suppression)
    assert cli.main(["estimate", str(out), "--method", "grad_x_input", "--bootstrap", "20"]) == 0
    assert "grad_x_input (|g·x| share) · complete · direct" in capsys.readouterr().out

    # figures: a panel of its own in the layer-wise figure
    from xai_bias.plots import layer_contributions, open_sources

    (src,) = open_sources([out], n_bootstrap=0)
    titles = [ax.get_title() for ax in layer_contributions([src]).axes]
    assert "gradient × input" in titles
    assert cli.main(["figures", str(out), "--format", "png", "--bootstrap", "0"]) == 0
    assert (tmp_path / "gxi-figures" / "fig1_layers.png").is_file()


def test_plugin_settings_are_validated_and_recorded(grad_x_input, tmp_path, capsys):
    samples = write_samples(tmp_path, n=2)
    out = tmp_path / "signed.h5"
    assert cli.main(["attribute", "--model", MODEL, "--samples", str(samples), "--out", str(out),
                     "--conditions", "complete", "--methods", "grad_x_input", "--grad-x-input-signed",
                     "--no-progress"]) == 0
    from xai_bias.store import open_trace

    with open_trace(out) as t:
        settings = json.loads(t.attrs["settings"]) if isinstance(t.attrs["settings"], str) else t.attrs["settings"]
    assert settings["method_settings"]["grad_x_input"] == {"signed": True}


def test_estimator_only_methods_are_not_instruments(tmp_path, capsys):
    samples = write_samples(tmp_path, n=2)
    code = cli.main(["attribute", "--model", MODEL, "--samples", str(samples), "--out", str(tmp_path / "x.h5"),
                     "--methods", "ablation", "--no-progress"])
    assert code == 2 and "computed by 'estimate'" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------------------------
# a new condition, defined here


def _blurred(sample, seed):
    from PIL import ImageFilter

    return [im.filter(ImageFilter.GaussianBlur(radius=8)) for im in condition_images(sample, "complete", seed)]


BLUR = Condition("text_blur", "text + blurred image", _blurred, removes="image",
                 description="the sample's images under a Gaussian blur (radius 8 px)")


@pytest.fixture
def text_blur():
    register_condition(BLUR)
    try:
        yield BLUR
    finally:
        CONDITION_REGISTRY.remove(BLUR.name)


def test_a_new_condition_is_one_registration(text_blur, tmp_path, capsys):
    samples = write_samples(tmp_path, n=5)
    out = tmp_path / "blur.h5"
    assert cli.main(["attribute", "--model", MODEL, "--samples", str(samples), "--out", str(out),
                     "--conditions", "complete,text_blur,image_only", "--methods", "", "--no-progress"]) == 0
    capsys.readouterr()
    est = estimate(out, n_bootstrap=20)
    rows = {a.condition: a for a in est.ablation}
    assert rows["text_blur"].removes == "image" and rows["text_blur"].n_pairs == 5
    assert "text_blur" in est.table("ablation").definition  # the image drop averages it
    assert [a.condition for a in est.accuracy] == ["complete", "image_only", "text_blur"]  # registry order
    (table2,) = est.consistency
    assert dict(table2.roles) == {"Complete": "complete", "Text": "text_blur", "Image": "image_only"}

    # Tables 1 and 2: the new condition appears in both, by default
    assert cli.main(["consistency", str(out)]) == 0
    text = capsys.readouterr().out
    table1, table2_text = text.split("## Table 2")
    assert "| text_blur |" in table1
    assert "Text = text_blur" in table2_text and "Image = image_only" in table2_text
    # and in the ablation figure, under its label
    from xai_bias.plots import ablation, open_sources

    (src,) = open_sources([out], n_bootstrap=0)
    fig = ablation([src])
    labels = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert "text +\nblurred\nimage" in labels
