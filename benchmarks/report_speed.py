"""Size and speed of the HTML report (``python cli.py report``) in headless Chromium.

    python benchmarks/report_speed.py runs/demo.h5 [MORE.h5 ...] --reps 5 [--synthetic 600,28,24]
        [--budget-mb 3] --json benchmarks/report_speed.json

For each trace (and with ``--budget-mb X`` once more under that size budget): builds the report
(wall time), records its size in bytes, then opens it ``--reps`` times in a fresh page of the
system Chromium (same browser process) and takes, per load, the time from navigation start to

* ``interactive``: the latest of the report's own mark ``xai-ready`` (overview rendered, every
  control live), the first contentful paint and the load event,
* ``explorer``: the time the first switch to the sample explorer takes (list + first sample),
* ``sample``: the median time to show another sample (5 clicks),

with a baseline measured in the same run: an empty HTML page's load event. Medians over reps.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_bias.report import build_report  # noqa: E402
from xai_bias.report.browser import CHROMIUM_FLAGS, find_chromium  # noqa: E402

MEASURE = """() => {
  const ready = performance.getEntriesByName('xai-ready')[0].startTime;
  let t = performance.now();
  XB.show('explorer');
  const explorer = performance.now() - t;
  const ex = XB.explorer, times = [];
  for (let k = 1; k <= 5 && k < ex.current.length; k++) {
    t = performance.now(); ex.select(ex.current[k]); times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {ready, explorer, sample: times.length ? times[Math.floor(times.length / 2)] : null,
          dom_interactive: nav.domInteractive, load_end: nav.loadEventEnd, fcp: fcp ? fcp.startTime : null,
          interactive: Math.max(ready, nav.loadEventEnd, fcp ? fcp.startTime : 0)};
}"""


def synthetic_trace(path: Path, n_samples: int, n_layers: int, grid: int, seed: int = 0) -> Path:
    """A random trace shaped like a mid-size VLM's (``n_layers`` layers, 8 heads, one image of
    ``grid`` × ``grid`` vision tokens, three conditions): attention mass and maps, Shapley,
    knockout, logit lens; one shared image file. For size and speed only (the values mean nothing)."""
    from PIL import Image

    from xai_bias.store import TraceWriter
    from xai_bias.types import LETTERS, N_ROLES, ROLE_INDEX, Record

    rng = np.random.default_rng(seed)
    img = path.with_suffix(".png")
    Image.fromarray(rng.integers(0, 256, (336, 336, 3), dtype=np.uint8)).save(img)
    n_img, H = grid * grid, 8
    roles = np.array([ROLE_INDEX["sink"]] + [ROLE_INDEX["template"]] * 20 + [ROLE_INDEX["image"]] * n_img
                     + [ROLE_INDEX["question"]] * 60 + [ROLE_INDEX["options"]] * 40 + [ROLE_INDEX["instruction"]] * 15,
                     np.int8)
    ids = rng.integers(0, 150_000, len(roles)).astype(np.int32)
    with TraceWriter(path, {"model_id": "synthetic/mid-size", "n_layers": n_layers, "n_heads": H}) as w:
        w.set_dataset_attrs("attribution/shapley", groups=["image", "text"])
        for s in range(n_samples):
            for cond in ("complete", "text_white", "image_only"):
                mass = rng.dirichlet(np.ones(N_ROLES), size=(n_layers, H)).astype(np.float32)
                maps = rng.dirichlet(np.ones(n_img), size=n_layers).astype(np.float32) * mass[:, :, ROLE_INDEX["image"]].mean(1, keepdims=True)
                lp = np.log(rng.dirichlet(np.ones(4))).astype(np.float32)
                w.append(Record(
                    sample_id=f"s{s:05d}", condition=cond, mode="direct", answer=LETTERS[s % 4],
                    prediction=LETTERS[int(np.argmax(lp))], correct=bool(np.argmax(lp) == s % 4), option_logprobs=lp,
                    role_tokens=np.bincount(roles, minlength=N_ROLES).astype(np.int32),
                    meta={"subject": ("math", "art", "physics")[s % 3], "images": [str(img)]},
                    input_ids=ids, token_roles=roles,
                    measurements={"attention/mass": mass, "attention/maps": maps,
                                  "attention/map_grid": np.array([[grid, grid]], np.int32),
                                  "attribution/shapley": rng.normal(0, 1, 2).astype(np.float32),
                                  "intervention/knockout": rng.normal(0, 0.1, n_layers).astype(np.float32),
                                  "intervention/logit_lens": np.log(rng.dirichlet(np.ones(4), size=n_layers)).astype(np.float32)}))
    return path


def load_times(browser, url: str, reps: int) -> list[dict]:
    out = []
    for _ in range(reps):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.ready === '1'", timeout=60_000)
        page.wait_for_load_state("load")
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0", timeout=60_000)
        got = page.evaluate(MEASURE)
        if errors:
            raise RuntimeError(f"{url}: page errors {errors}")
        out.append(got)
        page.close()
    return out


def baseline_times(browser, folder: Path, reps: int) -> list[float]:
    blank = folder / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body></body></html>")
    out = []
    for _ in range(reps):
        page = browser.new_page()
        page.goto(blank.resolve().as_uri())
        out.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
        page.close()
    return out


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--budget-mb", type=float, help="also build each report under this size budget")
    ap.add_argument("--synthetic", metavar="SAMPLES,LAYERS,GRID",
                    help="also measure a random trace of this shape (e.g. 600,28,24: 1,800 records, 576 image tokens)")
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    results = {"machine": f"{platform.machine()} · {platform.processor() or platform.platform()}",
               "python": platform.python_version(), "reps": args.reps, "bootstrap": args.bootstrap, "cases": []}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        folder = Path(tmp)
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=list(CHROMIUM_FLAGS))
        results["chromium"] = browser.version
        results["baseline_blank_load_ms"] = baseline_times(browser, folder, args.reps)
        traces = list(args.traces)
        if args.synthetic:
            n, layers, grid = (int(x) for x in args.synthetic.split(","))
            t0 = time.perf_counter()
            traces.append(str(synthetic_trace(folder / f"synthetic-{n}x{layers}x{grid}.h5", n, layers, grid)))
            print(f"wrote {traces[-1]} in {time.perf_counter() - t0:.0f} s")
        cases = [(t, None) for t in traces] + ([(t, args.budget_mb) for t in traces] if args.budget_mb else [])
        for trace, budget in cases:
            out = folder / f"{Path(trace).stem}-{budget or 'default'}.html"
            t0 = time.perf_counter()
            kw = {"max_mb": budget} if budget else {}
            res = build_report([trace], out, n_bootstrap=args.bootstrap, **kw)
            build_s = time.perf_counter() - t0
            data_notes = [n for n in res.notes if "explorer shows" in n]
            loads = load_times(browser, out.resolve().as_uri(), args.reps)
            case = {"trace": str(trace), "budget_mb": budget, "bytes": res.n_bytes, "build_s": build_s,
                    "subsampled": data_notes[0] if data_notes else "", "loads": loads}
            for key in ("interactive", "ready", "fcp", "load_end", "explorer", "sample", "dom_interactive"):
                case[f"median_{key}_ms"] = med([x[key] for x in loads])
            results["cases"].append(case)
            print(f"{trace} (budget {budget or 'default'}): {res.n_bytes:,} bytes, build {build_s:.1f} s, "
                  f"interactive {case['median_interactive_ms']:.0f} ms (ready mark {case['median_ready_ms']:.0f}, "
                  f"first paint {case['median_fcp_ms']:.0f}, load {case['median_load_end_ms']:.0f}), "
                  f"explorer +{case['median_explorer_ms']:.0f} ms, "
                  f"another sample {case['median_sample_ms'] or 0:.0f} ms {data_notes[0] if data_notes else ''}")
        browser.close()
    base = med(results["baseline_blank_load_ms"])
    results["median_baseline_ms"] = base
    print(f"baseline: empty page load {base:.0f} ms (median of {args.reps})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
