"""Per-layer figures: layer-wise contributions (fig. 1), Δ per layer (fig. 2), method agreement
(fig. 7). Each takes one or more ``Source`` (trace + estimate) and returns a Figure; several
sources are overlaid, told apart by line style and labelled by model."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import style as S
from ._common import (condition_label, grid_shape, layer_axis, layer_tables, legend_below, method_label,
                      primary_modality,
                      pick_mode, require, suppression_layer_value, suppression_of)
from ..estimate.results import MODALITY_COLUMNS
from .data import Source, short_label


def _methods(sources: Sequence[Source], condition: str, mode: str) -> list[str]:
    out: list[str] = []
    for s in sources:
        for m in layer_tables(s.estimate, condition, mode):
            if m not in out:
                out.append(m)
    return out


def _all_layers(sources: Sequence[Source], method: str, condition: str, mode: str) -> np.ndarray:
    got = [np.asarray(t.layers) for s in sources
           if (t := layer_tables(s.estimate, condition, mode).get(method)) is not None]
    return np.unique(np.concatenate(got)) if got else np.zeros(0)


def _share_modalities(t) -> list[str]:
    """The modalities whose shares a table has (image and text in an image-text study)."""
    from ..estimate.results import MODALITY_COLUMNS

    return [m for m in MODALITY_COLUMNS if m in t.included and m != "other"]


def layer_contributions(sources: Sequence[Source], condition: str = "complete", mode: str | None = None) -> Figure:
    """Fig. 1: each measured modality's share per layer (95 % bootstrap bands), one panel per
    method (image and text in an image-text study)."""
    mode = mode or pick_mode(sources)
    methods = _methods(sources, condition, mode)
    require(bool(methods), f"layer-wise contributions: no per-layer method (attention, ig) for "
                           f"condition {condition!r} in the trace(s)")
    with S.paper_style():
        rows, cols = grid_shape(len(methods))
        width = S.SINGLE if cols == 1 else S.DOUBLE
        fig = S.new_figure(width, 1.75 * rows + 0.45)
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        multi = len(sources) > 1
        seen: dict[str, None] = {}
        for k, method in enumerate(methods):
            ax = axes.flat[k]
            for j, src in enumerate(sources):
                t = layer_tables(src.estimate, condition, mode).get(method)
                if t is None:
                    continue
                x = np.asarray(t.layers, float)
                ls = S.MODEL_LINESTYLES[j % len(S.MODEL_LINESTYLES)]
                for mod in _share_modalities(t):
                    mi = MODALITY_COLUMNS.index(mod)
                    seen.setdefault(mod, None)
                    y = 100 * np.asarray(t.share, float)[:, mi]
                    ci = 100 * np.asarray(t.share_ci, float)[:, mi]
                    c = S.MODALITY_COLORS.get(mod, S.color_cycle(mi))
                    ax.fill_between(x, ci[:, 0], ci[:, 1], color=c, alpha=0.18 if not multi else 0.12,
                                    linewidth=0)
                    ax.plot(x, y, ls, color=c, marker=S.MODEL_MARKERS[j % 4] if len(x) <= 12 else None)
            ax.axhline(50, color=S.OKABE_ITO["grey"], lw=0.6, ls=(0, (2, 2)), zorder=0)
            ax.set_ylim(-2, 102)
            ax.set_title(method_label(method))
            layer_axis(ax, _all_layers(sources, method, condition, mode), embeddings_row=method == "ig")
            if k % cols == 0:
                ax.set_ylabel(f"share of {' + '.join(seen) or 'the modalities'} (%)")
        for ax in list(axes.flat)[len(methods):]:
            ax.set_visible(False)
        handles = [Line2D([], [], color=S.MODALITY_COLORS.get(mod, "black"), label=mod) for mod in seen]
        if multi:
            handles += [Line2D([], [], color="black", ls=S.MODEL_LINESTYLES[j % 4],
                               marker=S.MODEL_MARKERS[j % 4], label=short_label(s.label))
                        for j, s in enumerate(sources)]
        legend_below(fig, handles, [h.get_label() for h in handles], ncol=min(len(handles), 4))
        sub = f"{condition_label(condition)}, {mode}; bands: 95% bootstrap CI"
        fig.suptitle(("Modality share per layer" if multi else
                      f"Modality share per layer · {short_label(sources[0].label)}") + f"\n{sub}")
    return fig


def ratio_pair(t) -> tuple[str, str] | None:
    """(a, b) when the table compares exactly two modalities (a the non-text one): the curve is
    C(a)/C(b); None with three or more (the curve is then Δ itself)."""
    mods = _share_modalities(t)
    if len(mods) != 2:
        return None
    a = next((m for m in mods if m != "text"), mods[0])
    return a, next(m for m in mods if m != a)


def _ratio_curve(t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """C(a)/C(b) of the table's two modalities (``ratio_pair``) per layer and its interval, from
    the table's Δ (dominant/underutilized); with more modalities, Δ itself."""
    x = np.asarray(t.layers, float)
    delta = np.asarray(t.delta, float)
    ci = np.asarray(t.delta_ci, float)
    pair = ratio_pair(t)
    if pair is None:
        return x, delta, ci
    dom = list(t.dominant)
    r = np.full(len(x), np.nan)
    lo, hi = np.full(len(x), np.nan), np.full(len(x), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, d in enumerate(dom):
            if d == pair[0]:
                r[i], lo[i], hi[i] = delta[i], ci[i, 0], ci[i, 1]
            elif d == pair[1]:
                r[i], lo[i], hi[i] = 1 / delta[i], 1 / ci[i, 1], 1 / ci[i, 0]
    return x, r, np.stack([lo, hi], -1)


def delta_per_layer(sources: Sequence[Source], condition: str = "complete", mode: str | None = None) -> Figure:
    """Fig. 2: the imbalance C(image)/C(text) per layer on a log scale (Δ = 1 line, the
    suppression layer marked), one panel per method; several traces overlaid by colour. With two
    other modalities (audio/text, video/text) the same ratio of that pair; with three or more
    modalities, Δ = C(dominant)/C(underutilized) itself."""
    mode = mode or pick_mode(sources)
    methods = _methods(sources, condition, mode)
    require(bool(methods), f"Δ per layer: no per-layer method (attention, ig) for condition "
                           f"{condition!r} in the trace(s)")
    with S.paper_style():
        rows, cols = grid_shape(len(methods))
        width = S.SINGLE if cols == 1 else S.DOUBLE
        fig = S.new_figure(width, 1.8 * rows + 0.5)
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        multi = len(sources) > 1
        lo_all, hi_all = [], []
        pairs: dict[tuple[str, str] | None, None] = {}
        for k, method in enumerate(methods):
            ax = axes.flat[k]
            ax.set_yscale("log")
            ax.axhline(1.0, color="black", lw=0.7, ls="-", zorder=1)
            for j, src in enumerate(sources):
                t = layer_tables(src.estimate, condition, mode).get(method)
                if t is None:
                    continue
                x, r, ci = _ratio_curve(t)
                pairs.setdefault(ratio_pair(t), None)
                c = S.model_color(j) if multi else S.method_color(method, k)
                fin = r[np.isfinite(r) & (r > 0)]
                lo_all += fin.tolist()
                hi_all += fin.tolist()
                band = np.where(np.isfinite(ci) & (ci > 0), ci, np.nan)
                ax.fill_between(x, band[:, 0], band[:, 1], color=c, alpha=0.18, linewidth=0)
                ax.plot(x, np.where(r > 0, r, np.nan), S.MODEL_LINESTYLES[j % 4], color=c,
                        marker=S.MODEL_MARKERS[j % 4] if len(x) <= 12 else None)
                sup = suppression_layer_value(suppression_of(src.estimate, method, condition, mode), t)
                if sup is not None:
                    ax.axvline(sup, color=c, lw=0.9, ls=(0, (4, 2)), zorder=1)
                    ax.annotate(f"L{sup:g}", xy=(sup, 0), xycoords=("data", "axes fraction"),
                                xytext=(2, 2 + 8 * j), textcoords="offset points", ha="left", va="bottom",
                                color=c, fontsize=6.5)
            ax.set_title(method_label(method))
            layer_axis(ax, _all_layers(sources, method, condition, mode), embeddings_row=method == "ig")
            if k % cols == 0:
                pair = next(iter(pairs), ("image", "text")) if len(pairs) == 1 else None
                ax.set_ylabel(f"C({pair[0]}) / C({pair[1]}) (ratio, log)" if pair else
                              "Δ = C(dominant) / C(underutilized) (log)")
        for ax in list(axes.flat)[len(methods):]:
            ax.set_visible(False)
        if lo_all:
            lo, hi = min(lo_all + [1.0]), max(hi_all + [1.0])
            lo, hi = max(lo / 1.6, 1e-4), min(hi * 1.6, 1e4)
            span = max(np.log10(hi / lo), 0.6)
            mid = np.sqrt(lo * hi)
            for ax in axes.flat:
                ax.set_ylim(min(lo, mid / 10 ** (span / 2)), max(hi, mid * 10 ** (span / 2)))
        ax0 = axes.flat[0]
        pair = next(iter(pairs)) if len(pairs) == 1 else None
        if pair is not None:
            ax0.annotate(f"{pair[0]}\ndominant ↑", xy=(1, 1), xycoords=("axes fraction", "data"), xytext=(-2, 3),
                         textcoords="offset points", ha="right", va="bottom", fontsize=6.5,
                         color="#444444")
            ax0.annotate(f"{pair[1]}\ndominant ↓", xy=(1, 1), xycoords=("axes fraction", "data"), xytext=(-2, -3),
                         textcoords="offset points", ha="right", va="top", fontsize=6.5,
                         color="#444444")
        handles = []
        if multi:
            handles = [Line2D([], [], color=S.model_color(j), ls=S.MODEL_LINESTYLES[j % 4],
                              marker=S.MODEL_MARKERS[j % 4], label=short_label(s.label))
                       for j, s in enumerate(sources)]
        handles.append(Line2D([], [], color="grey", ls=(0, (4, 2)), label="suppression layer"))
        legend_below(fig, handles, [h.get_label() for h in handles])
        title = "Imbalance Δ per layer" if multi else f"Imbalance Δ per layer · {short_label(sources[0].label)}"
        fig.suptitle(f"{title}\n{condition_label(condition)}, {mode}; Δ = 1: balanced; bands: 95% CI")
    return fig


#: axis words for the estimator's units
UNIT_WORDS = {"logprob_change": "nats", "logprob": "nats", "probability": "probability", "share": "share"}


def _agreement_curves(est, condition: str, mode: str) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """method -> (layers, image curve, axis label): image shares (%) of the share methods, and the
    image contribution of per-layer methods without shares (knockout: log-prob drop, nats)."""
    out: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    for m, t in layer_tables(est, condition, mode).items():
        j = primary_modality(t)
        out[m] = (np.asarray(t.layers), 100 * np.asarray(t.share, float)[:, j],
                  f"{method_label(m)}: {MODALITY_COLUMNS[j]} share (%)")
    for t in getattr(est, "tables", ()) or ():
        if t.method in out or t.condition != condition or t.mode != mode or np.asarray(t.layers).size < 2:
            continue
        j = primary_modality(t)
        c = np.asarray(t.contribution, float)[:, j]
        if np.isfinite(c).sum() >= 3:
            unit = UNIT_WORDS.get(t.units, t.units or "units")
            out[t.method] = (np.asarray(t.layers), c, f"{t.method}: {MODALITY_COLUMNS[j]} {t.measure} ({unit})")
    return out


def method_agreement(source: Source, condition: str = "complete", mode: str | None = None) -> Figure:
    """Fig. 7: per-layer image measures of the methods against each other: (a) the image-share
    curves overlaid, (b) Spearman's ρ between every pair of methods over the layers they share
    (the estimate's ρ where it has one), (c) the layers of one pair as a scatter (a share method
    against knockout where the trace has it: what the model looks at vs what its answer needs)."""
    mode = mode or source.main_mode()
    tables = layer_tables(source.estimate, condition, mode)
    curves = _agreement_curves(source.estimate, condition, mode)
    require(len(curves) >= 2, f"method agreement: needs two per-layer methods for condition "
                              f"{condition!r}; the trace has {sorted(curves) or 'none'}")
    methods = list(curves)
    rho_est = {}
    for ag in getattr(source.estimate, "agreement", ()) or ():
        if ag.kind == "layers" and ag.condition == condition and ag.mode == mode:
            rho_est[(ag.method_a, ag.method_b)] = (ag.spearman, ag.n)
            rho_est[(ag.method_b, ag.method_a)] = (ag.spearman, ag.n)

    def pair(a: str, b: str):
        (la, ya, _), (lb, yb, _) = curves[a], curves[b]
        common = np.intersect1d(la[la >= 0], lb[lb >= 0])
        xa, xb = ya[np.searchsorted(la, common)], yb[np.searchsorted(lb, common)]
        # the estimate's ρ (it holds every pair sharing 3+ layers); none: undefined
        rho, nn = rho_est.get((a, b), (float("nan"), int((np.isfinite(xa) & np.isfinite(xb)).sum())))
        return common, xa, xb, rho, nn

    most = max(len(pair(a, b)[0]) for i, a in enumerate(methods) for b in methods[i + 1:])
    require(most >= 3, f"method agreement: the methods share {most} layer(s); rank agreement needs at least 3")
    share_methods = [m for m in methods if m in tables]
    if "knockout" in curves and share_methods:
        first = (share_methods[0], "knockout")
    else:
        first = (methods[0], methods[1])
    with S.paper_style():
        fig = S.new_figure(S.DOUBLE, 2.35)
        gs = fig.add_gridspec(1, 3, width_ratios=[1.15, 1.0, 1.0])
        letters = iter("abc")
        ax = fig.add_subplot(gs[0, 0])
        if tables:
            for m, t in tables.items():
                x = np.asarray(t.layers, float)
                c = S.method_color(m)
                j = primary_modality(t)
                ci = 100 * np.asarray(t.share_ci, float)[:, j]
                ax.fill_between(x, ci[:, 0], ci[:, 1], color=c, alpha=0.15, linewidth=0)
                ax.plot(x, 100 * np.asarray(t.share, float)[:, j], color=c, label=method_label(m))
            ax.set_ylabel(f"{MODALITY_COLUMNS[primary_modality(next(iter(tables.values())))]} share (%)")
            layer_axis(ax, x)
            ax.set_ylim(-2, 102)
            ax.legend(loc="upper right", fontsize=6.5)
        else:
            ax.axis("off")
        ax.set_title(f"{MODALITY_COLUMNS[primary_modality(next(iter(tables.values())))] if tables else 'image'} "
                     "share per layer")
        S.panel_label(ax, next(letters))
        # (b) rho matrix
        ax = fig.add_subplot(gs[0, 1])
        k = len(methods)
        R = np.full((k, k), np.nan)
        for i in range(k):
            R[i, i] = 1.0
            for j in range(i + 1, k):
                R[i, j] = R[j, i] = pair(methods[i], methods[j])[3]
        im = ax.imshow(R, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        for i in range(k):
            for j in range(k):
                v = R[i, j]
                ax.text(j, i, "–" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=6.5,
                        color="white" if np.isfinite(v) and abs(v) > 0.6 else "black")
        ax.set_xticks(range(k))
        ax.set_xticklabels([S.method_short_label(m) for m in methods], rotation=30, ha="right")
        ax.set_yticks(range(k))
        ax.set_yticklabels([S.method_short_label(m) for m in methods])
        for sp in ax.spines.values():
            sp.set_visible(False)
        ax.tick_params(length=0)
        cb = fig.colorbar(im, ax=ax, shrink=0.85, aspect=20, pad=0.02)
        cb.set_label("Spearman ρ over layers")
        ax.set_title("rank agreement")
        S.panel_label(ax, next(letters))
        # (c) scatter of one pair
        ax = fig.add_subplot(gs[0, 2])
        a, b = first
        common, xa, xb, rho, nn = pair(a, b)
        sc = ax.scatter(xa, xb, c=common, cmap=S.SEQUENTIAL_CMAP, s=16, edgecolors="black", linewidths=0.3,
                        vmin=0, vmax=max(1, int(common.max()) if common.size else 1), zorder=3)
        if "share" in curves[a][2] and "share" in curves[b][2] and common.size:
            lim = [min(np.nanmin(xa), np.nanmin(xb)), max(np.nanmax(xa), np.nanmax(xb))]
            pad = max(2.0, 0.08 * (lim[1] - lim[0]))
            lim = [lim[0] - pad, lim[1] + pad]
            ax.plot(lim, lim, color=S.OKABE_ITO["grey"], lw=0.6, ls=(0, (2, 2)), zorder=1)
            ax.set_xlim(lim)
            ax.set_ylim(lim)
        ax.set_xlabel(curves[a][2])
        ax.set_ylabel(curves[b][2])
        ax.set_title(f"ρ = {rho:.2f} over {nn} layers" if np.isfinite(rho) else f"ρ undefined ({nn} layers)")
        S.panel_label(ax, next(letters))
        cb = fig.colorbar(sc, ax=ax, shrink=0.85, aspect=20, pad=0.02)
        cb.set_label("layer (index)")
        fig.suptitle(f"Agreement of the methods · {short_label(source.label)} · "
                     f"{condition_label(condition)}, {mode}")
    return fig
