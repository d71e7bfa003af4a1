"""End to end on the bundled demo model (slow): `attribute` in direct and chain-of-thought mode,
`report` over both traces, the page in headless Chromium — no console error, the prompt tokens
decoded by the model's own tokenizer, the sample's real image under the attention tiles, and
the chain-of-thought answer row marked in the response."""

from __future__ import annotations

import pytest

from tests.browser import require_chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory):
    exe = require_chromium()
    import cli
    from xai_bias.report.browser import open_report

    d = tmp_path_factory.mktemp("demo-report")
    common = ["--limit", "3", "--conditions", "complete,text_white", "--no-progress", "--save-maps"]
    assert cli.main(["attribute", *common, "--methods", "attention,shapley,logit_lens", "--out", str(d / "direct.h5")]) == 0
    # the demo model rarely writes "Answer: X" in 8 tokens: the random fallback gives each record a
    # letter to measure (an unparsed response has no answer row)
    assert cli.main(["attribute", *common, "--methods", "attention", "--mode", "cot", "--max-new-tokens", "8",
                     "--parse-fallback", "random", "--out", str(d / "cot.h5")]) == 0
    out = d / "report.html"
    assert cli.main(["report", str(d / "direct.h5"), str(d / "cot.h5"), "-o", str(out), "--bootstrap", "50"]) == 0
    with open_report(out, executable=exe) as (page, log):
        yield page, log, d


def test_cot_trace_records_its_answer_row(demo_page):
    from xai_bias.store import open_trace
    from xai_bias.types import ROLE_INDEX

    with open_trace(demo_page[2] / "cot.h5") as t:
        rows, metas = t["generation/answer_row"], t["records/meta"]
        for i in range(t.n_records):
            ids, roles, pred = t["records/input_ids"][i], t["records/token_roles"][i], t["records/prediction"][i]
            prompt_len = int((roles != ROLE_INDEX["generated"]).sum())
            assert pred  # every record got a letter (parse fallback)
            assert prompt_len - 1 <= rows[i] < len(ids)
            if metas[i]["answer_token"].get("offset") is None:  # letter not emitted: the last generated row
                assert rows[i] == len(ids) - 1
            else:  # the row before the emitted letter token, which is a generated token
                assert roles[rows[i] + 1] == ROLE_INDEX["generated"]


def test_demo_report_in_the_browser(demo_page):
    page, log, _ = demo_page
    page.click("#tab-explorer")
    page.wait_for_function("document.documentElement.dataset.explorerReady === '1'")
    assert "Answer with the option's letter" in page.text_content("#tokens")  # the demo tokenizer's words
    assert page.get_attribute("canvas.overlay", "data-drawn") == "yes"
    assert page.evaluate("XB.data.images.length") >= 3  # the easy-VQA images, embedded
    assert page.locator("#tokens .tok.answer-row").count() == 1  # direct: the last prompt position
    page.select_option("#trace-select", "1")
    page.click("#explorer-list tbody tr >> nth=0")
    assert page.locator("#response-tokens .tok.answer-row").count() == 1
    assert "answer row" in page.text_content("#response-card")
    assert log.problems == []
