"""An interactive report that opens from disk in a browser: one self-contained HTML file.

    from xai_bias.report import build_report
    build_report(["runs/demo.h5"], "report.html")      # python cli.py report runs/demo.h5 -o report.html

**Overview**: provenance of every trace; Tables 1 and 2 (``xai_bias.consistency``); the
estimator's per-layer image share, Δ, C(image), C(text) with bootstrap bands for every method
(toggle methods, conditions, traces: several traces are overlaid, one line style each); the
logit-lens curves; overall shares and Δ; suppression layers; the ablation rows; agreement
between methods; the estimator's warnings. Every number there comes from ``estimate_to_json``
and ``consistency.report`` — the report computes no statistic of its own.

**Sample explorer** (reads the trace): filter by condition, correctness, agreement of the
answers across conditions and the sample metadata (subject, probe kind, …), sort by each
method's per-record image share (the estimator's per-record definitions, via ``catalog``);
for one sample the answer row's attention over its image(s) per layer (a slider; each vision
token a tile in place, from ``/attention/map_grid``), the prompt tokens coloured by role or by
a per-role measurement (the trace holds attention mass and IG per role, not per token, and the
page says so), option log-probs under every condition, every other per-record dataset as bars
or curves (chosen by shape: Shapley, knockout, logit lens, …), and the chain-of-thought
response with its answer row (``/generation/answer_row``).

**Self-contained and safe**: no network, no CDN. The data is JSON in
``<script type="application/json">`` with ``<``, ``>``, ``&`` escaped, every string is rendered
with ``textContent``, and the page's Content Security Policy forbids every request
(``default-src 'none'``, images from ``data:`` only). Images are downscaled data URIs, one per
file. Past the size budget (``max_mb``, default 9.5 MB) the explorer shows a seeded random
subset of the samples and says so; its list is paged.

**Charting library: Chart.js 4.6.1** (MIT), vendored unchanged as ``vendor/chart.umd.min.js``
(210 kB, licence header kept; see ``vendor/README.md``). Chosen over uPlot (smaller, but no
grouped bar charts, legends or tooltips out of the box) and hand-written SVG (every axis,
legend, tooltip and log scale would be ours to write and test): Chart.js is widely used and
maintained, has line charts with filled bands, logarithmic axes, grouped bars, legends that
toggle series, and tooltips, and needs no network or build step.

Method and condition knowledge (labels, colours, datasets, per-record contributions) comes
only from ``catalog.catalog()`` and ``catalog.record_measures()``.
"""

from .build import DEFAULT_MAX_MB, ReportResult, build_report

__all__ = ["build_report", "ReportResult", "DEFAULT_MAX_MB"]
