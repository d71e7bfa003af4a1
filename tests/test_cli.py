"""End to end through the CLI: attribute -> trace -> inspect, resume, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cli
from xai_bias.types import ROLES
from xai_bias.store import open_trace

from .helpers import write_samples

MODEL = "tiny:qwen2_5_vl"


def attribute(*extra: str) -> int:
    return cli.main(["attribute", "--model", MODEL, "--no-progress", *extra])


def test_attribute_then_inspect(tmp_path, capsys):
    samples = write_samples(tmp_path)
    out = tmp_path / "t.h5"
    assert attribute("--samples", str(samples), "--out", str(out),
                     "--conditions", "complete,text_white,image_only", "--methods", "attention",
                     "--batch-size", "4") == 0
    assert "wrote 18 record(s)" in capsys.readouterr().out
    with open_trace(out) as t:
        assert t.n_records == 18
        assert set(t["records/condition"]) == {"complete", "text_white", "image_only"}
        mass = t["attention/mass"]
        assert mass.shape[0] == 18 and mass.shape[-1] == len(ROLES)
        np.testing.assert_allclose(mass.sum(-1), 1.0, atol=1e-4)  # each head's row sums to 1
        assert t.attrs["model_id"] and t.attrs["n_layers"] == mass.shape[1]
    assert cli.main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "18" in text and "text_white" in text
    assert cli.main(["inspect", str(out), "--record", "0", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["sample_id"] == "s0"
    assert cli.main(["inspect", str(out), "--sample", "s1"]) == 0
    assert "s1" in capsys.readouterr().out


def test_mmmu_pro_items_with_skip(tmp_path, mmmu_pro_path, capsys):
    out = tmp_path / "m.h5"
    assert attribute("--samples", str(mmmu_pro_path), "--limit", "20", "--on-error", "skip",
                     "--out", str(out), "--options", "4", "--methods", "",
                     "--conditions", "complete,text_white,image_only") == 0
    with open_trace(out) as t:
        assert t.n_records >= 1
        lp = t["records/option_logprobs"]
        n_finite = np.isfinite(lp).sum(1)
        assert (n_finite >= 2).all() and (n_finite <= 4).all()  # "standard 4": at most 4 options
        for row, n in zip(lp, n_finite):  # scored options first, NaN padding after
            assert np.isfinite(row[:n]).all()
        assert set(t["records/prediction"]) <= set("ABCD")
    assert cli.main(["inspect", str(out)]) == 0


def test_existing_output_is_kept_without_resume(tmp_path, capsys):
    samples = write_samples(tmp_path, n=2)
    out = tmp_path / "t.h5"
    assert attribute("--samples", str(samples), "--out", str(out)) == 0
    before = out.read_bytes()
    code = attribute("--samples", str(samples), "--out", str(out))
    err = capsys.readouterr().err
    assert code == 5 and "--resume" in err and str(out) in err
    assert out.read_bytes() == before


def test_resume_continues_without_duplicates(tmp_path):
    samples = write_samples(tmp_path, n=5)
    out, ref = tmp_path / "r.h5", tmp_path / "ref.h5"
    # --limit 2 ends on a batch boundary, so the batches match an uninterrupted run's
    assert attribute("--samples", str(samples), "--out", str(out), "--limit", "2", "--batch-size", "2") == 0
    assert attribute("--samples", str(samples), "--out", str(out), "--resume", "--batch-size", "2") == 0
    assert attribute("--samples", str(samples), "--out", str(ref), "--batch-size", "2") == 0
    with open_trace(out) as a, open_trace(ref) as b:
        assert a.keys() == b.keys()
        np.testing.assert_array_equal(a["records/option_logprobs"], b["records/option_logprobs"])


@pytest.mark.parametrize("argv, code, needle", [
    (["attribute", "--model", "tiny:qwen25_vl"], 2, "qwen2_5_vl"),
    (["attribute", "--probe", "hint_conflit"], 2, "hint_conflict"),
    (["attribute", "--methods", "atention"], 2, "attention"),
    (["attribute", "--conditions", "text_whte"], 2, "text_white"),
])
def test_unknown_names_suggest(argv, code, needle, capsys, tmp_path):
    assert cli.main([*argv, "--out", str(tmp_path / "x.h5")]) == code
    err = capsys.readouterr().err
    assert "Did you mean" in err and needle in err
    assert not (tmp_path / "x.h5").exists()


def test_models_and_probes_listings(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for fam in ("qwen2_vl", "qwen2_5_vl", "llava", "gemma3", "paligemma", "internvl"):
        assert fam in out
    assert cli.main(["probes"]) == 0
    out = capsys.readouterr().out
    for probe in ("hint_conflict", "easy_vqa", "mmmu_pro"):
        assert probe in out


def test_chain_of_thought_mode(tmp_path):
    """cot: generate, parse, and measure at the row that emitted the answer in one pass over
    prompt + generation; the response and the generated tokens' roles are in the trace."""
    samples = write_samples(tmp_path, n=2)
    out = tmp_path / "cot.h5"
    assert attribute("--samples", str(samples), "--out", str(out), "--mode", "cot",
                     "--max-new-tokens", "6", "--conditions", "complete",
                     "--methods", "attention,logit_lens", "--parse-fallback", "random") == 0
    with open_trace(out) as t:
        assert set(t["records/mode"]) == {"cot"}
        assert all(r for r in t["records/response"])  # something was generated
        assert set(t["records/prediction"]) <= set("ABCD") and all(t["records/prediction"])  # random fallback
        roles = t["records/token_roles"]
        assert all((r == 6).sum() >= 1 for r in roles)  # generated tokens carry the generated role
        assert t.has("attention/mass_generated") and t.has("intervention/logit_lens")
        np.testing.assert_allclose(t["attention/mass"].sum(-1), 1.0, atol=1e-4)
