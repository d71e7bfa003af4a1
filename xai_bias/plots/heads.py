"""Fig. 3: head map — the image share of the answer row's attention per layer × head, one panel
per condition (the estimate's ``HeadMap``s)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import style as S
from ._common import condition_label, require
from .data import Source, short_label


def head_shares(source: Source, mode: str | None = None) -> dict[str, np.ndarray]:
    """condition -> ``[L, H]`` image share of attention (the estimate's ``HeadMap``s)."""
    mode = mode or source.main_mode()
    maps = {h.condition: np.asarray(h.share, float) for h in getattr(source.estimate, "heads", ()) or ()
            if h.mode == mode}
    require(bool(maps), "head map: the estimate has no head map (run with --methods attention; records "
                        "need image tokens)")
    return maps


def head_map(source: Source, mode: str | None = None) -> Figure:
    """Fig. 3: layer × head image share of attention, per condition (shared colour scale)."""
    mode = mode or source.main_mode()
    maps = head_shares(source, mode)
    with S.paper_style():
        n = len(maps)
        cols = min(n, 3)
        rows = int(np.ceil(n / cols))
        L, H = next(iter(maps.values())).shape
        width = S.SINGLE if cols == 1 else S.DOUBLE
        panel_h = min(2.4, max(1.3, (width / cols) * L / max(H, 1) * 0.55))
        fig = S.new_figure(width, panel_h * rows + 0.55)
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        vals = np.concatenate([m[np.isfinite(m)].ravel() for m in maps.values()])
        vmax = 100 * float(vals.max()) if vals.size else 100.0
        vmax = max(vmax, 1.0)
        im = None
        for k, (cond, m) in enumerate(maps.items()):
            ax = axes.flat[k]
            im = ax.imshow(100 * m, aspect="auto", origin="lower", cmap=S.SEQUENTIAL_CMAP, vmin=0, vmax=vmax,
                           interpolation="nearest", extent=(-0.5, H - 0.5, -0.5, L - 0.5))
            ax.set_title(condition_label(cond))
            ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            if k % cols == 0:
                ax.set_ylabel("layer (index)")
            if k // cols == rows - 1 or k + cols >= n:
                ax.set_xlabel("head (index)")
                ax.tick_params(labelbottom=True)
            for sp in ax.spines.values():
                sp.set_visible(False)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        cb = fig.colorbar(im, ax=list(axes.flat[:n]), shrink=0.95, aspect=30, pad=0.02)
        cb.set_label("image share of attention (%)")
        fig.suptitle(f"Attention to the image per head · {short_label(source.label)} · {mode}\n"
                     "share of the answer row's image + text attention")
    return fig
