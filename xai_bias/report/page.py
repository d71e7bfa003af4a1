"""Assemble the HTML page: template + CSS + vendored Chart.js + the report's scripts + data
(internal).

The data goes into ``<script type="application/json" id="report-data">`` as JSON whose ``<``,
``>`` and ``&`` are unicode escapes (``encode.script_json``), so no sample text can end the
element; the scripts render every string with ``textContent``. The page's Content Security
Policy allows no network request at all (``default-src 'none'``; images only from ``data:``).
"""

from __future__ import annotations

import html
from functools import lru_cache
from importlib import resources
from typing import Any

from .encode import script_json

#: the report's scripts, concatenated in this order
SCRIPTS = ("util.js", "charts.js", "overview.js", "explorer.js", "main.js")
VENDOR = ("chart.umd.min.js",)


@lru_cache(maxsize=1)
def _assets() -> dict[str, str]:
    root = resources.files(__package__)
    out = {"template": (root / "assets" / "template.html").read_text("utf-8"),
           "css": (root / "assets" / "report.css").read_text("utf-8"),
           "vendor": "\n".join((root / "vendor" / name).read_text("utf-8") for name in VENDOR),
           "js": "\n".join((root / "assets" / name).read_text("utf-8") for name in SCRIPTS)}
    for key in ("css", "vendor", "js"):
        if "</script" in out[key].lower() or "<!--" in out[key]:
            raise RuntimeError(f"report asset {key!r} contains '</script' or '<!--' and cannot be inlined")
    return out


def assets_bytes() -> int:
    """Bytes the page takes without its data."""
    return sum(len(v.encode("utf-8")) for v in _assets().values())


def render_page(payload: dict[str, Any]) -> str:
    a = _assets()
    labels = ", ".join(t["label"] for t in payload["traces"])
    page = a["template"]
    for marker in ("@@TITLE@@", "@@CSS@@", "@@VENDOR@@", "@@JS@@", "@@DATA@@"):
        if page.count(marker) != 1:
            raise RuntimeError(f"report template must hold {marker} exactly once")
    head, tail = page.split("@@DATA@@")
    head = (head.replace("@@TITLE@@", html.escape(f"xai_bias report · {labels}"))
            .replace("@@CSS@@", a["css"]))
    tail = tail.replace("@@VENDOR@@", a["vendor"]).replace("@@JS@@", a["js"])
    return head + script_json(payload) + tail
