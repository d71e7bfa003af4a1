"""The suppression layer: where the image share fades.

Rule: find the peak of the image-share curve (the first layer holding the maximum), then the
first layer *after* the peak at which the share falls below ``fraction`` × peak (default half).
No such layer -> no suppression. The same rule is applied to every bootstrap resample of the
curve; the interval is the percentile interval of the layer over the resamples that show
suppression, and the share of resamples without one is reported beside it.
"""

from __future__ import annotations

import numpy as np


def suppression_layers(curves: np.ndarray, fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For curves ``[..., L]``: (peak index [...], suppression index [...] or -1, peak value).

    NaN entries never count as peak nor as a fall below the threshold.
    """
    c = np.asarray(curves, dtype=np.float64)
    L = c.shape[-1]
    filled = np.where(np.isfinite(c), c, -np.inf)
    peak = np.argmax(filled, axis=-1)
    peak_val = np.take_along_axis(filled, peak[..., None], -1)[..., 0]
    after = np.arange(L) > peak[..., None]
    below = np.isfinite(c) & (c < fraction * peak_val[..., None])
    hit = after & below
    first = np.where(hit.any(-1), np.argmax(hit, axis=-1), -1)
    peak_val = np.where(np.isfinite(peak_val), peak_val, np.nan)
    return peak, first, peak_val


def suppression_interval(first: np.ndarray, alpha: float = 0.05) -> tuple[tuple[int, int] | None, float]:
    """Percentile interval of the suppression indices of resamples (``-1`` = none), and the share
    of resamples without suppression."""
    first = np.asarray(first)
    if first.size == 0:
        return None, float("nan")
    has = first >= 0
    none_share = float(1.0 - has.mean())
    if not has.any():
        return None, none_share
    lo, hi = np.quantile(first[has], [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return (int(lo), int(hi)), none_share
