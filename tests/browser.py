"""Shared setup of the report's browser tests: the system Chromium or a clear verdict (a failure
under CI=true, where .ci/run installs it; a skip naming the missing package elsewhere)."""

from __future__ import annotations

import os

import pytest


def require_chromium() -> str:
    from xai_bias.report.browser import find_chromium

    exe = find_chromium()
    if exe is None:
        msg = ("no Chromium on this machine: the report's browser tests need Debian's chromium package "
               "(apt-get install -y chromium; .ci/run installs it)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " — failing because CI=true", pytrace=False)
        pytest.skip(msg)
    return exe


def canvas_png(page, selector: str) -> str:
    return page.eval_on_selector(selector, "c => c.toDataURL('image/png')")


def distinct_colours(png_path) -> int:
    from PIL import Image

    with Image.open(png_path) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])
