"""Helpers shared by the figure modules (internal)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import style as S
from .data import MissingData, Source


def layer_tables(est: Any, condition: str = "complete", mode: str | None = None) -> dict[str, Any]:
    """method -> the first per-layer ModalityTable of ``condition`` (× ``mode``) that has a finite
    share (methods in the estimate's order)."""
    out: dict[str, Any] = {}
    if est is None:
        return out
    for t in getattr(est, "tables", ()):
        if t.method in out or t.condition != condition or (mode is not None and t.mode != mode):
            continue
        layers = np.asarray(t.layers)
        if layers.size < 2:
            continue
        if not np.isfinite(np.asarray(t.share, dtype=float)).any():
            continue
        out[t.method] = t
    return out


def pick_mode(sources: Sequence[Source]) -> str:
    modes = [s.main_mode() for s in sources]
    return modes[0] if modes else "direct"


method_label = S.method_label
condition_label = S.condition_label


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return int(math.ceil(n / cols)), cols


def layer_axis(ax, layers: np.ndarray, embeddings_row: bool = False) -> None:
    """Integer layer ticks over the table's layers; "emb" for the input-embeddings row (-1)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    layers = np.asarray(layers, float)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlabel("layer (index)")
    if layers.size:
        ax.set_xlim(layers.min() - 0.3, layers.max() + 0.3)
    if embeddings_row and layers.size and layers.min() < 0:
        from matplotlib.ticker import FixedLocator

        top = int(layers.max())
        step = max(1, int(math.ceil((top + 1) / 5)))
        ax.xaxis.set_major_locator(FixedLocator([-1] + list(range(0, top + 1, step))))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "emb" if round(v) == -1 else f"{v:g}"))


def suppression_of(est: Any, method: str, condition: str, mode: str) -> Any:
    for s in getattr(est, "suppression", ()) or ():
        if s.method == method and s.condition == condition and s.mode == mode:
            return s
    return None


def suppression_layer_value(sup: Any, table: Any) -> float | None:
    """The suppression layer as a layer number on ``table``'s x axis (None: no suppression)."""
    if sup is None or sup.layer is None:
        return None
    return float(sup.layer)


def require(cond: bool, note: str) -> None:
    if not cond:
        raise MissingData(note)


def finite(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=float)


def legend_below(fig, handles, labels, ncol: int | None = None) -> None:
    """One figure legend under the panels."""
    if not handles:
        return
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol or min(len(labels), 4),
               frameon=False, columnspacing=1.2, handlelength=1.8)


def primary_modality(t: Any) -> int:
    """Column of the modality a figure follows for a table: the first measured modality other
    than the text (the image in an image-text study)."""
    from ..estimate.results import MODALITY_COLUMNS

    mods = [m for m in getattr(t, "modalities", ()) if m != "text"] or ["image"]
    return MODALITY_COLUMNS.index(mods[0])
