"""Vectorised, seeded bootstrap over samples (numpy only).

A resample draws n sample indices with replacement; instead of materialising ``X[idx]`` the
draw is kept as a count matrix ``W [B, n]`` (how often each sample was drawn), so the resampled
means of every column are one matrix product ``W @ X / n``. NaN entries (a sample without that
measurement) are skipped: mean = ``W @ nan_to_num(X) / W @ isfinite(X)``. The same ``W`` is
applied to every statistic of a group, so share, Δ and suppression layer of one resample come
from the same drawn samples.
"""

from __future__ import annotations

import zlib

import numpy as np

#: resamples per block (bounds the memory of the count matrix: block × n float64)
_BLOCK = 250


def group_rng(seed: int, *key: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable hash of ``key`` (independent of which other
    groups or methods are estimated)."""
    h = zlib.crc32("\x1f".join(key).encode("utf-8"))
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, h])


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Count matrix ``[n_boot, n]`` float32 (exact small integers): row b counts how often each
    sample is drawn."""
    out = np.empty((n_boot, n), dtype=np.float32)
    for start in range(0, n_boot, _BLOCK):
        b = min(_BLOCK, n_boot - start)
        idx = rng.integers(0, n, size=(b, n), dtype=np.int64)
        idx += (np.arange(b, dtype=np.int64) * n)[:, None]
        out[start:start + b] = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
    return out


def nan_mean(X: np.ndarray) -> np.ndarray:
    """Column means of ``X [n, ...]`` ignoring NaN (NaN where a column has no finite value)."""
    X = np.asarray(X, dtype=np.float64)
    finite = np.isfinite(X)
    cnt = finite.sum(0)
    tot = np.where(finite, X, 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def resampled_means(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Means of ``X [n, ...]`` under each resample of ``W [B, n]`` -> ``[B, ...]`` (float64;
    the products run in float32, ample for interval bounds)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    flat = X.reshape(n, -1)
    finite = np.isfinite(flat)
    W = W.astype(np.float32, copy=False)
    # centre the columns first so float32 sums lose nothing that matters
    centre = nan_mean(flat)
    centre = np.where(np.isfinite(centre), centre, 0.0)
    dev = np.where(finite, flat - centre, 0.0).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        if finite.all():
            out = (W @ dev).astype(np.float64) / n + centre
        else:
            cnt = (W @ finite.astype(np.float32)).astype(np.float64)
            out = (W @ dev).astype(np.float64) / cnt + centre
            out[cnt == 0] = np.nan
    return out.reshape((W.shape[0],) + X.shape[1:])


def percentile_ci(values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Percentile interval over axis 0 of ``values [B, ...]`` -> ``[..., 2]`` (low, high).

    NaN resamples are ignored. Bounds are observed values (the "inverted_cdf" rule: the smallest
    value whose empirical CDF reaches the level), so an infinite Δ of some resamples gives an
    infinite bound, never NaN from interpolation.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape[1:] + (2,), np.nan)
    if v.shape[0] == 0:
        return out
    srt = np.sort(v, axis=0)  # NaN last
    k = (~np.isnan(srt)).sum(0)  # non-NaN resamples per entry (±inf count)
    for j, q in enumerate((alpha / 2, 1 - alpha / 2)):
        pos = np.clip(np.ceil(q * k).astype(np.int64) - 1, 0, max(v.shape[0] - 1, 0))
        val = np.take_along_axis(srt, pos[None], 0)[0]
        out[..., j] = np.where(k > 0, val, np.nan)
    return out


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), 1-based, of a 1-d array."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_block = np.r_[True, xs[1:] != xs[:-1]] if len(xs) else np.zeros(0, bool)
    block = np.cumsum(new_block) - 1
    pos = np.arange(1, len(x) + 1, dtype=np.float64)
    mean_rank = np.bincount(block, pos) / np.bincount(block)
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = mean_rank[block]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Spearman rank correlation over the entries finite in both; (rho, n). NaN when n < 3 or
    either side is constant."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), n
    ra, rb = rankdata(a[ok]), rankdata(b[ok])
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    if den == 0:
        return float("nan"), n
    return float((ra * rb).sum() / den), n
