"""The report in a real headless Chromium (one page load for the module): no console error, no
request but the file itself, sample text with <script> renders as text, the explorer's controls
change what is shown (sample, layer, filters, sort, token colouring), the overview's toggles
change its charts, and a screenshot of each view is saved and is not blank."""

from __future__ import annotations

import pytest

from tests.browser import canvas_png, distinct_colours, require_chromium
from tests.report_traces import EVIL_ID, XSS, write_tokenizer, write_trace


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    exe = require_chromium()
    from xai_bias.report import build_report
    from xai_bias.report.browser import open_report

    d = tmp_path_factory.mktemp("browser")
    a = write_trace(d / "a.h5", n=12)
    b = write_trace(d / "b.h5", n=12, seed=1, model_id="org/other-model", image_bias=0.4, evil=False)
    out = d / "report.html"
    build_report([a, b], out, n_bootstrap=50, tokenizer=str(write_tokenizer(d / "tokenizer.json")))
    with open_report(out, executable=exe) as (page, log):
        yield {"page": page, "log": log, "url": out.resolve().as_uri(), "dir": d}


@pytest.fixture
def page(loaded):
    """The loaded page; after each test, the page must not have logged a problem."""
    yield loaded["page"]
    assert loaded["log"].problems == []


def explorer(page):
    page.click("#tab-explorer")
    page.wait_for_function("document.documentElement.dataset.explorerReady === '1'")


def rows(page) -> list[str]:
    return page.eval_on_selector_all("#explorer-list tbody tr", "trs => trs.map(t => t.dataset.sample)")


def test_loads_without_errors_or_requests(loaded, page):
    log = loaded["log"]
    assert log.console == [] and log.errors == []
    assert log.requests == [loaded["url"]] and log.blocked == []
    assert page.evaluate("performance.getEntriesByName('xai-ready').length") == 1
    assert page.locator("#layer-charts canvas").count() >= 5  # attention ×2, IG, knockout, logit lens ×2


def test_script_in_sample_text_renders_as_text(page):
    explorer(page)
    page.select_option("#filter-correct", "any")
    page.fill("#search", "script")
    page.click("#explorer-list tbody tr >> nth=0")
    assert page.text_content("#sample-title").startswith(f"Sample {EVIL_ID}")
    assert XSS in page.text_content("#tokens")
    assert "<b>art</b>" in page.text_content("#explorer-detail")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("script").count() == 3 and page.locator("#explorer-detail b").count() == 0
    page.fill("#search", "")


def test_another_sample_or_layer_changes_the_overlay(page):
    explorer(page)
    ids = rows(page)
    page.click("#explorer-list tbody tr >> nth=0")
    first = canvas_png(page, "canvas.overlay")
    title = page.text_content("#sample-title")
    page.click("#explorer-list tbody tr >> nth=2")
    assert page.text_content("#sample-title") != title and ids[2] in page.text_content("#sample-title")
    assert canvas_png(page, "canvas.overlay") != first
    shots = {}
    for layer in ("0", "3"):
        page.fill("#layer-slider", layer)
        page.dispatch_event("#layer-slider", "input")
        assert page.get_attribute("canvas.overlay", "data-layer") == layer
        assert page.text_content("#layer-value").strip().startswith(layer)
        shots[layer] = canvas_png(page, "canvas.overlay")
    assert shots["0"] != shots["3"]


def test_filters_and_sort_change_the_list(page):
    explorer(page)
    n_all = len(rows(page))
    page.select_option("#filter-correct", "no")
    wrong = rows(page)
    badges = page.eval_on_selector_all("#explorer-list tbody tr td:nth-child(3) span:first-child",
                                       "bs => bs.map(b => b.className)")
    assert 0 < len(wrong) < n_all and all("no" in b.split() for b in badges)
    page.select_option("#filter-correct", "any")
    page.select_option("#filter-agree", "all")
    letters = page.eval_on_selector_all("#explorer-list tbody tr",
                                        "trs => trs.map(t => [...t.querySelectorAll('td:nth-child(3) span')].map(s => s.textContent))")
    assert letters and all(len(set(x)) == 1 for x in letters)
    page.select_option("#filter-agree", "any")
    page.select_option("[data-facet=kind]", "hint")
    assert 0 < len(rows(page)) < n_all
    page.select_option("[data-facet=kind]", "")
    page.select_option("#sort", "attention:mass@desc")
    order = rows(page)
    scores = page.evaluate("""ids => { const ex = XB.explorer; return ids.map(s => {
        const si = ex.sampleIds.indexOf(s); return ex.ex.records.scores['attention:mass'][ex.rec(si, 'complete')]; }); }""", order)
    assert scores == sorted(scores, reverse=True) and order != sorted(order)
    page.select_option("#sort", "id")


def test_token_colouring_switches(page):
    explorer(page)
    page.click("#explorer-list tbody tr >> nth=0")
    colours = lambda: page.eval_on_selector_all("#tokens .tok", "ts => ts.map(t => t.style.background)")
    by_role = colours()
    page.select_option("#token-mode", "attention/mass")
    by_mass = colours()
    assert by_mass != by_role and len(set(by_mass)) > 2
    assert "per role" in page.text_content("#token-card")
    page.select_option("#token-mode", "role")


def test_overview_toggles_change_the_charts(page):
    page.click("#tab-overview")
    count = lambda: page.locator("#layer-charts .card").count()
    datasets = lambda: page.evaluate("Chart.getChart(document.querySelector('#layer-charts canvas')).data.datasets.length")
    cards, n_sets = count(), datasets()
    page.uncheck("#layer-controls fieldset[data-group=methods] input >> nth=1")
    assert count() == cards - 1
    page.check("#layer-controls fieldset[data-group=methods] input >> nth=1")
    page.uncheck("#layer-controls fieldset[data-group=conditions] input >> nth=0")
    assert datasets() < n_sets
    page.check("#layer-controls fieldset[data-group=conditions] input >> nth=0")
    dashes = page.evaluate("Chart.getChart(document.querySelector('#layer-charts canvas')).data.datasets"
                           ".filter(d => !d._band).map(d => d.borderDash.length)")
    assert 0 in dashes and any(x > 0 for x in dashes)  # the second trace is overlaid, dashed
    page.uncheck("#layer-controls fieldset[data-group=traces] input >> nth=1")
    assert datasets() == n_sets // 2
    page.check("#layer-controls fieldset[data-group=traces] input >> nth=1")
    page.select_option("#metric", "delta")
    assert page.evaluate("Chart.getChart(document.querySelector('#layer-charts canvas')).options.scales.y.type") == "logarithmic"
    page.select_option("#metric", "share")


def test_explorer_switches_trace(page):
    explorer(page)
    page.select_option("#trace-select", "1")
    assert EVIL_ID not in rows(page) and len(rows(page)) == 12
    page.select_option("#trace-select", "0")


def test_screenshots_of_both_views(loaded, page):
    d = loaded["dir"]
    page.click("#tab-overview")
    page.screenshot(path=str(d / "overview.png"), full_page=True)
    explorer(page)
    page.click("#explorer-list tbody tr >> nth=0")
    page.screenshot(path=str(d / "explorer.png"), full_page=True)
    assert distinct_colours(d / "overview.png") > 50 and distinct_colours(d / "explorer.png") > 50
