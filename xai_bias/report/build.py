"""``build_report(paths, out)``: traces in, one self-contained HTML file out."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ..errors import OutputError, UsageError
from .catalog import catalog
from .encode import dumps
from .images import ImageStore
from .overview import overview
from .page import assets_bytes, render_page
from .records import ExplorerData
from .tokens import trace_tokenizer

DEFAULT_MAX_MB = 9.5
MARGIN = 64_000  # bytes kept free for the page's own markup


@dataclass(frozen=True)
class ReportResult:
    path: Path
    n_bytes: int
    notes: tuple[str, ...]


def _labels(traces) -> list[str]:
    from ..plots.data import short_label, unique_labels

    ids = [short_label(str(t.attrs.get("model_id", ""))) for t in traces]
    return unique_labels(ids, [Path(t.path) for t in traces])


def build_report(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, n_bootstrap: int = 1000,
                 seed: int = 0, max_mb: float = DEFAULT_MAX_MB, max_samples: int | None = None,
                 tokenizer: str | None = None, image_side: int = 256) -> ReportResult:
    """Write the report of ``paths`` (one or more traces, overlaid in the overview) to ``out``.

    n_bootstrap / seed: the estimator's resamples and seed (also seeds the explorer's subset);
    max_mb: size budget of the file (the explorer shows a seeded subset of samples past it);
    max_samples: at most this many samples per trace in the explorer; tokenizer: where to read
    token texts from (default: the trace's model, offline); image_side: longest side of the
    embedded images in pixels.
    """
    from ..store import open_trace

    if not paths:
        raise UsageError("report needs at least one trace")
    if max_mb <= 0 or (max_samples is not None and max_samples < 1) or image_side < 16 or n_bootstrap < 0:
        raise UsageError(f"report: --max-mb must be > 0, --max-samples >= 1, --image-side >= 16 and "
                         f"--bootstrap >= 0 (got {max_mb}, {max_samples}, {image_side}, {n_bootstrap})")
    out = Path(out)
    cat = catalog()
    traces = [open_trace(p) for p in paths]
    try:
        labels = _labels(traces)
        images = ImageStore(image_side)
        items, notes = [], []
        for label, t in zip(labels, traces):
            ov, ov_notes = overview(t, n_bootstrap, seed)
            items.append({"label": label, **ov, "notes": ov_notes})
            notes += [f"{label}: {n}" for n in ov_notes]
        fixed = assets_bytes() + len(dumps({"traces": items, "catalog": cat.to_json()})) + MARGIN
        budget = int(max_mb * 1e6) - fixed
        if budget <= 0:
            raise UsageError(f"report: --max-mb {max_mb} leaves no room for the explorer "
                             f"(the overview alone takes {fixed / 1e6:.2f} MB)")
        used = 0
        for k, (item, t) in enumerate(zip(items, traces)):
            tok, tok_note = trace_tokenizer(str(t.attrs.get("model_id", "")), tokenizer)
            share = (budget - used - images.n_bytes) // (len(traces) - k)  # what is left, split evenly
            ex = ExplorerData(t, cat, images, tok, seed).build(share, max_samples)
            used += len(dumps(ex))
            if tok_note:
                ex["notes"].append(tok_note)
            item["explorer"] = ex
            notes += [f"{item['label']}: {n}" for n in ex["notes"]]
    finally:
        for t in traces:
            t.close()
    payload = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "xai_bias_version": _version(), "n_bootstrap": n_bootstrap, "seed": seed,
        "catalog": cat.to_json(), "images": images.uris, "traces": items,
    }
    html = render_page(payload)
    _write(out, html)
    return ReportResult(out, len(html.encode("utf-8")), tuple(notes))


def _version() -> str:
    from .. import __version__

    return str(__version__)


def _write(out: Path, text: str) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a report is an ordinary file
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
