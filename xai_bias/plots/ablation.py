"""Fig. 6: the missing-modality ablation study — (a) Table 1 as grouped bars (accuracy per
condition with its Wilson interval, drop from ``complete`` annotated), (b) Table 2 as an overlap
diagram of how often the predictions of image + text, text (without the image) and image only
agree. Both come from the estimate (``Estimate.accuracy``, ``Estimate.consistency``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Patch

from . import style as S
from ._common import condition_label, require
from .data import Source, short_label


@dataclass(frozen=True)
class Overlap:
    """Agreement of predictions between conditions over ``n`` samples present in all of them
    (Table 2's "consistent" fractions).

    conditions: the 2 or 3 conditions compared (complete, a text condition, image only).
    pairwise: {(a, b): fraction of samples where a and b predict the same letter}
    all: fraction where all compared conditions agree (None with two conditions).
    """

    conditions: tuple[str, ...]
    n: int
    pairwise: dict
    all: float | None


def accuracy_rows(source: Source, mode: str) -> list:
    """The estimate's ``AccuracyStat``s of ``mode`` (conditions in registry order)."""
    return [a for a in getattr(source.estimate, "accuracy", ()) or () if a.mode == mode]


def overlap(source: Source, mode: str) -> Overlap | None:
    """Table 2 of ``mode`` (the estimate's ``ConsistencyTable``) as an ``Overlap``."""
    table = next((t for t in getattr(source.estimate, "consistency", ()) or () if t.mode == mode), None)
    if table is None or table.n == 0:
        return None
    pairwise = {r.conditions: r.consistent_pct / 100 for r in table.rows if len(r.conditions) == 2}
    every = next((r.consistent_pct / 100 for r in table.rows if len(r.conditions) == 3), None)
    return Overlap(tuple(c for _, c in table.roles), table.n, pairwise, every)


def _bars(ax, sources: Sequence[Source], tables: list[list]) -> None:
    conds: list[str] = []
    for rows in tables:
        for r in rows:
            if r.condition not in conds:
                conds.append(r.condition)
    multi = len(sources) > 1
    n = len(sources)
    width = 0.8 / n
    x = np.arange(len(conds))
    for j, (src, rows) in enumerate(zip(sources, tables)):
        by = {r.condition: r for r in rows}
        base = by.get("complete")
        for i, c in enumerate(conds):
            r = by.get(c)
            if r is None:
                continue
            xi = x[i] - 0.4 + width * (j + 0.5)
            color = S.model_color(j) if multi else S.condition_color(c, i)
            ax.bar(xi, 100 * r.accuracy, width * 0.92, color=color, edgecolor="black", linewidth=0.4,
                   hatch=S.HATCHES[j % 4] if multi else None)
            ax.errorbar(xi, 100 * r.accuracy, yerr=[[max(0.0, 100 * (r.accuracy - r.ci[0]))],
                                                       [max(0.0, 100 * (r.ci[1] - r.accuracy))]],
                        color="black", lw=0.6, capsize=1.5)
            top = 100 * r.ci[1] + 1.5
            if base is not None and c != "complete":
                d = 100 * (r.accuracy - base.accuracy)
                label = f"{d:+.0f}".replace("-", "\u2212")
                ax.text(xi, top, label if multi else f"{label} pp", ha="center", va="bottom", fontsize=6.5)
    ax.set_xticks(x)
    ax.set_xticklabels([S.condition_bar_label(c) for c in conds], fontsize=6.5)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 132 if multi else 118)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(f"accuracy per condition (change vs {condition_label('complete')})")
    if multi:
        ax.legend(handles=[Patch(facecolor=S.model_color(j), edgecolor="black", linewidth=0.4,
                                 hatch=S.HATCHES[j % 4], label=short_label(s.label))
                           for j, s in enumerate(sources)], loc="upper left",
                  ncol=min(len(sources), 3), borderaxespad=0.2, columnspacing=1.0)


def _venn(ax, ov: Overlap, title: str) -> None:
    ax.set_aspect("equal")
    ax.axis("off")
    r = 1.0
    if len(ov.conditions) == 3:
        centres = [(-0.55, 0.32), (0.55, 0.32), (0.0, -0.63)]
    else:
        centres = [(-0.5, 0.0), (0.5, 0.0)]
    colors = [S.condition_color(c, i) for i, c in enumerate(ov.conditions)]
    for (cx, cy), col in zip(centres, colors):
        ax.add_patch(Circle((cx, cy), r, facecolor=col, alpha=0.22, edgecolor=col, linewidth=1.0))
    for k, ((cx, cy), c) in enumerate(zip(centres, ov.conditions)):
        # label outside, away from the centre of mass
        mx, my = np.mean([p[0] for p in centres]), np.mean([p[1] for p in centres])
        v = np.array([cx - mx, cy - my])
        v = v / (np.linalg.norm(v) or 1)
        if len(ov.conditions) == 2:
            v = np.array([v[0] * 0.5, 0.0])
            lx, ly = cx + v[0] * 1.2, cy
        else:
            lx, ly = cx + v[0] * 0.55, cy + v[1] * 0.55
        ax.text(lx, ly, condition_label(c).replace(" + ", "\n+ ").replace(" image", "\nimage"),
                ha="center", va="center", fontsize=6.5, color="black")
    pcs = list(ov.pairwise.items())
    for (a, b), val in pcs:
        ia, ib = ov.conditions.index(a), ov.conditions.index(b)
        px = (centres[ia][0] + centres[ib][0]) / 2
        py = (centres[ia][1] + centres[ib][1]) / 2
        if len(ov.conditions) == 3:
            mx, my = np.mean([p[0] for p in centres]), np.mean([p[1] for p in centres])
            v = np.array([px - mx, py - my])
            v = v / (np.linalg.norm(v) or 1)
            px, py = px + v[0] * 0.22, py + v[1] * 0.22
        ax.text(px, py, f"{100 * val:.0f}%", ha="center", va="center", fontsize=7, fontweight="bold")
    if ov.all is not None:
        mx, my = np.mean([p[0] for p in centres]), np.mean([p[1] for p in centres])
        ax.text(mx, my, f"{100 * ov.all:.0f}%\nall", ha="center", va="center", fontsize=7, fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
    xs = [p[0] for p in centres]
    ys = [p[1] for p in centres]
    ax.set_xlim(min(xs) - r - 0.05, max(xs) + r + 0.05)
    ax.set_ylim(min(ys) - r - 0.05, max(ys) + r + 0.05)
    ax.set_title(title, fontsize=7)


def ablation(sources: Sequence[Source], mode: str | None = None) -> Figure:
    """Fig. 6: accuracy per condition (grouped bars, several traces side by side) and, per trace,
    the agreement of the predictions across image + text, text and image only."""
    mode = mode or sources[0].main_mode()
    tables = [accuracy_rows(s, mode) for s in sources]
    require(any(len(t) >= 2 for t in tables),
            "ablation: needs accuracy for at least two conditions (records with a gold answer) in the trace(s)")
    overlaps = [overlap(s, mode) for s in sources]
    with S.paper_style():
        nv = sum(o is not None for o in overlaps)
        fig = S.new_figure(S.DOUBLE if nv else S.SINGLE, 2.6 if nv <= 1 else 2.8)
        gs = fig.add_gridspec(1, 1 + nv, width_ratios=[1.5] + [1.0] * nv)
        ax = fig.add_subplot(gs[0, 0])
        _bars(ax, sources, tables)
        if nv:
            S.panel_label(ax, "a")
        k = 1
        for src, ov in zip(sources, overlaps):
            if ov is None:
                continue
            vax = fig.add_subplot(gs[0, k])
            title = f"answer agreement (n = {ov.n})"
            if len(sources) > 1:
                title = f"{short_label(src.label)} (n = {ov.n})"
            _venn(vax, ov, title)
            if k == 1:
                S.panel_label(vax, "b")
            k += 1
        title = "Missing-modality ablation" + ("" if len(sources) > 1 else f" · {short_label(sources[0].label)}")
        fig.suptitle(f"{title} · {mode}; error bars: 95% Wilson CI"
                     + ("; circles: % of samples whose answers agree" if nv else ""))
    if not nv:
        from .interventions import add_note

        add_note(fig, "ablation: no overlap diagram (needs image + text and a text or image-only condition "
                      "on the same samples)")
    return fig
