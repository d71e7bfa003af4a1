"""Fig. 5: interventions — (a) the change in the answer log-probability when the answer row's
attention to the image is knocked out at each layer; (b) the logit lens: the answer letter's
probability read out after each layer, with the image (``complete``) and without it (``text_*``)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import style as S
from ._common import legend_below, condition_label, require
from .data import MissingData, Source, short_label


def add_note(fig: Figure, note: str) -> None:
    """Attach a note to a figure (render_all reports it)."""
    notes = getattr(fig, "_xai_bias_notes", [])
    notes.append(note)
    fig._xai_bias_notes = notes  # type: ignore[attr-defined]


def knockout_curves(source: Source, mode: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """condition -> (mean Δ log-prob [L], CI [L, 2]): minus the estimate's knockout "logprob drop"
    contribution of the image (records without image tokens are not measured)."""
    out = {}
    for t in getattr(source.estimate, "tables", ()) or ():
        if t.method == "knockout" and t.mode == mode and np.asarray(t.layers).size:
            c = np.asarray(t.contribution, float)[:, 0]
            ci = np.asarray(t.contribution_ci, float)[:, 0]
            out[t.condition] = (-c, -ci[:, ::-1])
    if not out:
        raise MissingData("knockout: the trace has no /intervention/knockout (run with --methods knockout)")
    return out


def lens_curves(source: Source, mode: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """condition -> (mean probability of the target letter [L], CI [L, 2]) from the estimate."""
    est_lens = [c for c in getattr(source.estimate, "lens", ()) or () if c.mode == mode]
    if not est_lens:
        raise MissingData("logit lens: the trace has no /intervention/logit_lens (run with --methods logit_lens)")
    return {c.condition: (np.asarray(c.prob, float), np.asarray(c.prob_ci, float)) for c in est_lens}


def _curve(ax, cond: str, mean: np.ndarray, ci: np.ndarray, k: int) -> None:
    x = np.arange(len(mean))
    c = S.condition_color(cond, k)
    ls = "-" if cond == "complete" else S.MODEL_LINESTYLES[1 + k % 3]
    ax.fill_between(x, ci[:, 0], ci[:, 1], color=c, alpha=0.15, linewidth=0)
    ax.plot(x, mean, ls, color=c, label=condition_label(cond), marker="o" if len(x) <= 12 else None)


def interventions(source: Source, mode: str | None = None) -> Figure:
    """Fig. 5: knockout (Δ answer log-prob per knocked-out layer) and logit lens (answer letter
    probability per layer, with and without the image). A missing half is left out with a note."""
    mode = mode or source.main_mode()
    notes = []
    try:
        ko = knockout_curves(source, mode)
    except MissingData as e:
        ko, notes = None, notes + [str(e)]
    try:
        lens = lens_curves(source, mode)
    except MissingData as e:
        lens, notes = None, notes + [str(e)]
    require(ko is not None or lens is not None, "; ".join(notes))
    panels = [p for p in (("ko", ko), ("lens", lens)) if p[1] is not None]
    with S.paper_style():
        n = len(panels)
        fig = S.new_figure(S.DOUBLE if n == 2 else S.SINGLE, 2.3)
        axes = fig.subplots(1, n, squeeze=False)[0]
        for k, (kind, curves) in enumerate(panels):
            ax = axes[k]
            for j, (cond, (mean, ci)) in enumerate(curves.items()):
                _curve(ax, cond, mean, ci, j)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
            ax.set_xlabel("layer (index)")
            if kind == "ko":
                ax.axhline(0, color="black", lw=0.6, zorder=1)
                ax.set_ylabel("Δ log p(answer) (nats)")
                ax.set_title("knockout of attention to the image")
            else:
                tops = [np.nanmax(np.r_[m, ci[:, 1]]) for m, ci in curves.values()]
                top = max([t for t in tops if np.isfinite(t)] or [1.0])
                ax.set_ylim(0, min(1.02, max(1e-3, top * 1.15)))
                ax.set_ylabel("p(answer letter) (probability)")
                ax.set_title("logit lens")
            if n == 2:
                S.panel_label(ax, "ab"[k])
        handles: dict = {}
        for ax in axes:  # one legend for both panels, below them, off the curves
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        legend_below(fig, list(handles.values()), list(handles), ncol=min(len(handles), 5))
        fig.suptitle(f"Interventions · {short_label(source.label)} · {mode}; bands: 95% CI")
    for note in notes:
        add_note(fig, note)
    return fig
