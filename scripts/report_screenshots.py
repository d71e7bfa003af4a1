"""Screenshots of the report's two views for the README (figures/report-overview.png,
figures/report-explorer.png), taken in the system's headless Chromium.

    python cli.py attribute --save-maps                                             # runs/demo.h5
    python cli.py attribute --model demo-balanced --save-maps --out runs/demo-balanced.h5
    python cli.py report runs/demo.h5 runs/demo-balanced.h5 -o runs/report.html
    python scripts/report_screenshots.py runs/report.html --sample evqa-test-9086-conflicting-triangle
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_bias.report.browser import open_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--out", default="figures")
    ap.add_argument("--sample", help="the sample shown in the explorer (default: the first)")
    ap.add_argument("--layer", type=int, help="the layer shown (default: the last)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open_report(args.report, width=1400, height=1000) as (page, log):
        bottom = page.evaluate("document.querySelector('#layer-charts').getBoundingClientRect().bottom + scrollY")
        page.screenshot(path=str(out / "report-overview.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": 1400, "height": bottom + 16})
        page.click("#tab-explorer")
        page.wait_for_function("document.documentElement.dataset.explorerReady === '1'")
        if args.sample:
            page.fill("#search", args.sample)
            page.click("#explorer-list tbody tr >> nth=0")
        if args.layer is not None:
            page.fill("#layer-slider", str(args.layer))
            page.dispatch_event("#layer-slider", "input")
        page.wait_for_timeout(300)  # the image under the tiles decodes asynchronously
        bottom = page.evaluate("document.querySelector('#explorer-detail').getBoundingClientRect().bottom + scrollY")
        page.screenshot(path=str(out / "report-explorer.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": 1400, "height": bottom + 16})
        if log.problems:
            raise SystemExit(f"the page logged problems: {log.problems}")
    print(f"wrote {out / 'report-overview.png'} and {out / 'report-explorer.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
