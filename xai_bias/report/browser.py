"""Open a report in the system's headless Chromium (for the tests, the benchmark and the README
screenshots; not needed to build or read a report).

Needs the ``playwright`` package (the ``dev`` extra) and a Chromium installed by the system
(Debian: ``apt-get install chromium``); playwright's own browser downloads are never used.
Every launch gets a fresh temporary profile (``--user-data-dir``), and any request other than
the report file itself is recorded and aborted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """Path of the system Chromium ($XAI_BIAS_CHROMIUM first), or None."""
    env = os.environ.get("XAI_BIAS_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLog:
    """What the page did: console messages (type, text), uncaught errors, requests made."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and blocked requests."""
        return ([f"console {t}: {m}" for t, m in self.console if t in ("error", "warning")]
                + [f"page error: {e}" for e in self.errors] + [f"request: {u}" for u in self.blocked])


@contextlib.contextmanager
def open_report(path: str | os.PathLike, width: int = 1400, height: int = 1000,
                executable: str | None = None) -> Iterator[tuple[Any, PageLog]]:
    """(playwright page, log) with the report loaded and its first render done."""
    from playwright.sync_api import sync_playwright

    exe = executable or find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found (apt-get install chromium, or set XAI_BIAS_CHROMIUM)")
    url = Path(path).resolve().as_uri()
    log = PageLog()
    with tempfile.TemporaryDirectory(prefix="xai-report-profile-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=exe, headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.on("console", lambda m: log.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            page.on("request", lambda r: log.requests.append(r.url))

            def route(r: Any) -> None:
                if r.request.url.split("#")[0] == url:
                    r.continue_()
                else:
                    log.blocked.append(r.request.url)
                    r.abort()

            ctx.route("**/*", route)
            page.goto(url)
            page.wait_for_function("document.documentElement.dataset.ready === '1'", timeout=30_000)
            yield page, log
        finally:
            ctx.close()
