"""The HTML report's content, without a browser: self-contained, the overview carries the
estimator's and the consistency module's numbers unchanged, sample text is escaped, the size
budget subsamples whole samples (seeded, with a note), per-record values are the trace's, and
the CLI's exit codes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.report_traces import EVIL_ID, GRID, L, VOCAB, XSS, report_data, write_tokenizer, write_trace
from xai_bias.report import build_report

NB = 50


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    trace = write_trace(d / "a.h5", n=10)
    tok = write_tokenizer(d / "tokenizer.json")
    out = d / "report.html"
    res = build_report([trace], out, n_bootstrap=NB, seed=3, tokenizer=str(tok))
    html = out.read_text("utf-8")
    return {"dir": d, "trace": trace, "out": out, "res": res, "html": html, "data": report_data(html), "tok": tok}


def test_self_contained(built):
    html = built["html"]
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<(link|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"<script[^>]*\bsrc=", html, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    # the only URLs are the licence comments of the vendored Chart.js
    urls = set(re.findall(r"https?://[^\s\"')]+", html))
    assert urls <= {"https://www.chartjs.org", "https://github.com/kurkle/color#readme"}, urls
    assert html.count("<script") == 3  # data, Chart.js, the report
    assert built["res"].n_bytes == len(built["out"].read_bytes())


def test_overview_is_the_estimate_and_tables_unchanged(built):
    from xai_bias import consistency as cons
    from xai_bias.estimate import estimate, estimate_to_json
    from xai_bias.store import open_trace

    tr = built["data"]["traces"][0]
    with open_trace(built["trace"]) as t:
        want = json.loads(json.dumps(estimate_to_json(estimate(t, n_bootstrap=NB, seed=3))))
        tables = json.loads(cons.report(cons.rows_from_trace(t), fmt="json"))
    want["source"] = tr["estimate"]["source"]
    assert tr["estimate"] == want
    assert tr["tables"] == tables
    assert tr["provenance"]["attrs"]["model_id"] == "org/tiny-report-model"


def test_sample_text_cannot_leave_the_data_element(built):
    html = built["html"]
    start = html.index('id="report-data">')
    body = html[start:html.index("</script>", start)]
    assert "<" not in body[len('id="report-data">'):] and ">" not in body[len('id="report-data">'):]
    assert XSS not in html and "</script><script>" not in html
    data = built["data"]
    ex = data["traces"][0]["explorer"]
    assert EVIL_ID in ex["samples"]["id"]  # the text survives intact, only its encoding changed
    assert any(XSS in str(m.get("subject")) for m in ex["samples"]["meta"])
    assert XSS in "".join(ex["vocab"].values())


def test_explorer_rows_are_the_trace(built):
    from xai_bias.store import open_trace

    ex = built["data"]["traces"][0]["explorer"]
    rec = ex["records"]
    with open_trace(built["trace"]) as t:
        assert rec["index"] == list(range(t.n_records))
        assert rec["prediction"] == [str(x) for x in t["records/prediction"]]
        i = 4
        mass = t["attention/mass"][i].mean(1)  # [L, roles], head mean
        roles = list(t.attrs["roles"])
        img = mass[:, roles.index("image")]
        txt = mass[:, [roles.index(r) for r in ("question", "options", "instruction")]].sum(1)
        # the per-record image share the list sorts by: the estimator's overall (mean over layers) share
        assert rec["scores"]["attention:mass"][i] == pytest.approx(img.mean() / (img.mean() + txt.mean()), rel=1e-3)
        assert rec["layer_scores"]["attention:mass"][i] == pytest.approx((img / (img + txt)).tolist(), rel=1e-3)
        series = {s["name"]: s for s in ex["series"]}
        assert series["attention/mass"]["kind"] == "roles" and series["attribution/ig"]["layer_offset"] == 1
        assert series["intervention/knockout"]["kind"] == "layers"
        assert series["intervention/logit_lens"]["kind"] == "letters"
        assert series["attribution/shapley"]["kind"] == "groups"
        assert series["attribution/shapley"]["groups"] == ["image", "text"]
        assert series["attribution/ig_delta"]["kind"] == "scalar"
        assert series["attention/maps"]["kind"] == "map"
        np.testing.assert_allclose(np.array(rec["series"]["attention/mass"][i]), mass, rtol=1e-3)
        m = rec["series"]["attention/maps"][i]
        assert m["n"] == GRID[0] * GRID[1] and m["grid"] == [list(GRID)]
        q = np.frombuffer(__import__("base64").b64decode(m["q"]), np.uint8).reshape(L, -1)
        raw = t["attention/maps"][i][:, : m["n"]]
        np.testing.assert_allclose(q / 255 * np.array(m["max"])[:, None], raw, atol=raw.max() / 255)
        assert m["sum"] == pytest.approx(raw.sum(1).tolist(), rel=1e-3)
    # tokens: image runs collapsed, roles one digit each, texts from the tokenizer
    toks, rl = rec["tokens"][0], rec["roles"][0]
    assert -GRID[0] * GRID[1] in toks and len(toks) == len(rl)
    assert {ex["vocab"][str(x)] for x in toks if x >= 0} <= set(VOCAB)


def test_images_embedded_once_per_file(built):
    data = built["data"]
    rec = data["traces"][0]["explorer"]["records"]
    used = [i for imgs in rec["images"] for i in imgs]
    assert None not in used and len(data["images"]) == 10 == len(set(used))
    assert all(u.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for u in data["images"])


def test_size_budget_keeps_whole_samples_and_says_so(tmp_path):
    trace = write_trace(tmp_path / "big.h5", n=40)
    a = build_report([trace], tmp_path / "a.html", n_bootstrap=0, max_mb=0.45)
    b = build_report([trace], tmp_path / "b.html", n_bootstrap=0, max_mb=0.45)
    assert a.n_bytes <= 0.45e6
    ex = report_data((tmp_path / "a.html").read_text("utf-8"))["traces"][0]["explorer"]
    assert 0 < ex["n_samples_shown"] < ex["n_samples"] == 40
    assert ex["notes"][0].startswith(f"The explorer shows {ex['n_samples_shown']} of 40 samples")
    assert any("explorer shows" in n for n in a.notes)
    shown = set(ex["samples"]["id"])
    for s in shown:  # every condition of a shown sample is there
        assert sorted(c for c, x in zip(ex["records"]["condition"], ex["records"]["sample"]) if x == s) == \
            sorted(["complete", "text_white", "image_only"])
    ex_b = report_data((tmp_path / "b.html").read_text("utf-8"))["traces"][0]["explorer"]
    assert ex_b["samples"]["id"] == ex["samples"]["id"]  # seeded
    # the overview still uses every record
    assert report_data((tmp_path / "a.html").read_text("utf-8"))["traces"][0]["estimate"]["n_records"] == 120
    other = write_trace(tmp_path / "other.h5", n=40, seed=1, model_id="org/other", evil=False)
    both = build_report([trace, other], tmp_path / "both.html", n_bootstrap=0, max_mb=0.6)
    assert both.n_bytes <= 0.6e6  # the budget holds for the file, whatever the number of traces
    shown = [t["explorer"]["n_samples_shown"] for t in report_data((tmp_path / "both.html").read_text("utf-8"))["traces"]]
    assert all(0 < n < 40 for n in shown)
    c = build_report([trace], tmp_path / "c.html", n_bootstrap=0, max_samples=5)
    ex_c = report_data((tmp_path / "c.html").read_text("utf-8"))["traces"][0]["explorer"]
    assert ex_c["n_samples_shown"] == 5 and "--max-samples 5" in ex_c["notes"][0]
    assert c.n_bytes < a.n_bytes


def test_no_tokenizer_shows_ids_with_a_note(tmp_path):
    trace = write_trace(tmp_path / "t.h5", n=3, model_id="org/not-on-this-machine")
    res = build_report([trace], tmp_path / "r.html", n_bootstrap=0)
    ex = report_data((tmp_path / "r.html").read_text("utf-8"))["traces"][0]["explorer"]
    assert ex["vocab"] is None
    assert any("shown as ids" in n and "org/not-on-this-machine" in n for n in ex["notes"])
    assert any("shown as ids" in n for n in res.notes)


def test_missing_image_is_a_note_not_an_error(tmp_path):
    trace = write_trace(tmp_path / "t.h5", n=3)
    (tmp_path / "img0.png").unlink()
    build_report([trace], tmp_path / "r.html", n_bootstrap=0)
    ex = report_data((tmp_path / "r.html").read_text("utf-8"))["traces"][0]["explorer"]
    assert ex["records"]["images"][0] == [None]
    assert any("img0.png" in n and "could not be embedded" in n for n in ex["notes"])


def test_predictions_only_trace_still_reports(tmp_path):
    from xai_bias.store import TraceWriter
    from xai_bias.types import N_ROLES, Record

    path = tmp_path / "p.h5"
    with TraceWriter(path, {"model_id": "m", "n_layers": 2, "n_heads": 1}) as w:
        for s in range(3):
            for c in ("complete", "text_white", "image_only"):
                w.append(Record(sample_id=f"s{s}", condition=c, mode="direct", answer="A", prediction="AB"[s % 2],
                                correct=s % 2 == 0, option_logprobs=np.log([0.6, 0.4]).astype(np.float32),
                                role_tokens=np.zeros(N_ROLES, np.int32), meta={}))
    res = build_report([path], tmp_path / "r.html", n_bootstrap=0)
    tr = report_data((tmp_path / "r.html").read_text("utf-8"))["traces"][0]
    assert tr["tables"]["accuracy"]["rows"] and tr["estimate"] is not None  # ablation from option log-probs
    assert res.n_bytes > 0


@pytest.mark.parametrize("argv, code", [
    (["report", "{d}/missing.h5"], 4),
    (["report", "{trace}", "--max-mb", "0"], 2),
    (["report", "{trace}", "--bootstrap", "-1"], 2),
    (["report", "{trace}", "--tokenizer", "{d}/no-such-tokenizer"], 2),
    (["report", "{trace}", "-o", "{trace}/report.html"], 5),
])
def test_cli_exit_codes(built, capsys, argv, code):
    import cli

    args = [a.format(d=built["dir"], trace=built["trace"]) for a in argv]
    assert cli.main(args) == code
    assert "error:" in capsys.readouterr().err


def test_cli_writes_the_report(built, tmp_path, capsys):
    import cli

    out = tmp_path / "sub" / "r.html"
    assert cli.main(["report", str(built["trace"]), "-o", str(out), "--bootstrap", "0", "--tokenizer",
                     str(built["tok"])]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert report_data(out.read_text("utf-8"))["traces"][0]["label"] == "tiny-report-model"


def test_rows_are_read_in_cheap_blocks():
    from xai_bias.report.series import blocks

    got = [b.tolist() for b in blocks(np.array([0, 1, 2, 9, 50, 51, 200] + list(range(300, 400))))]
    assert got[:4] == [[0, 1, 2, 9], [50, 51], [200], list(range(300, 364))] and got[4] == list(range(364, 400))
