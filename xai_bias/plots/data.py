"""What the figures read: opened traces with their estimates (internal to ``xai_bias.plots``).

A ``Source`` is one trace, its label (the model id) and the estimate of it. The estimate comes
from ``xai_bias.estimate.estimate``; when that cannot run, a small fallback here computes the
per-layer modality tables, suppression layers and logit-lens curves straight from the trace
arrays, with the same result types (``xai_bias.estimate.results``) and the same rules (shares of
image vs text, 95 % percentile bootstrap over samples, suppression = first layer after the peak
below half the peak).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..types import MODALITIES, ROLES


class MissingData(Exception):
    """A figure's data is absent from the trace(s); the message is the note shown to the user."""


@dataclass
class Source:
    """One trace as the figures see it."""

    path: Path
    label: str  # model id, made unique across the sources
    trace: Any  # xai_bias.store.Trace
    estimate: Any = None  # xai_bias.estimate.results.Estimate (or the fallback's equivalent)
    notes: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- record helpers
    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(getattr(self.trace, "roles", ()) or self.trace.attrs.get("roles") or ROLES)

    def modality_index(self) -> dict[str, list[int]]:
        roles = self.roles
        return {m: [roles.index(r) for r in rs if r in roles] for m, rs in MODALITIES.items()}

    def ok(self) -> np.ndarray:
        """Boolean [R]: records whose status is "ok"."""
        return np.asarray(self.trace["records/status"]) == "ok"

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.trace[name])

    def conditions(self) -> list[str]:
        from ..types import CONDITIONS

        have = set(self.column("records/condition")[self.ok()].tolist())
        return [c for c in CONDITIONS if c in have] + sorted(have - set(CONDITIONS))

    def modes(self) -> list[str]:
        have = set(self.column("records/mode")[self.ok()].tolist())
        return [m for m in ("direct", "cot") if m in have] + sorted(have - {"direct", "cot"})

    def main_mode(self) -> str:
        modes = self.modes()
        return modes[0] if modes else "direct"

    def rows(self, condition: str | None = None, mode: str | None = None) -> np.ndarray:
        """Indices of the ok records of ``condition`` × ``mode``."""
        mask = self.ok()
        if condition is not None:
            mask &= self.column("records/condition") == condition
        if mode is not None:
            mask &= self.column("records/mode") == mode
        return np.flatnonzero(mask)


def unique_labels(labels: Sequence[str], paths: Sequence[Path]) -> list[str]:
    """Model ids, disambiguated by file stem where two traces share one."""
    out = []
    for i, (lab, p) in enumerate(zip(labels, paths)):
        if sum(1 for x in labels if x == lab) > 1:
            lab = f"{lab} ({Path(p).stem})" if lab else Path(p).stem
        out.append(lab or Path(p).stem)
    return out


def short_label(label: str) -> str:
    """Last path component of a model id ("org/name" -> "name")."""
    return label.rstrip("/").split("/")[-1] if "/" in label else label


# ==================================================================== fallback estimator
def _rng(seed: int, *key: str) -> np.random.Generator:
    h = zlib.crc32("\x1f".join(key).encode("utf-8"))
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, h])


def bootstrap_means(X: np.ndarray, n_boot: int, seed: int = 0, key: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``X [n, ...]`` over samples (NaN ignored) and the resampled means ``[B, ...]``."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    flat = X.reshape(n, -1)
    fin = np.isfinite(flat)
    val = np.where(fin, flat, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = val.sum(0) / fin.sum(0)
        if n_boot <= 0 or n == 0:
            return mean.reshape(X.shape[1:]), np.zeros((0,) + X.shape[1:])
        rng = _rng(seed, *key)
        W = np.zeros((n_boot, n))
        for s in range(0, n_boot, 250):
            b = min(250, n_boot - s)
            idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
            W[s:s + b] = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        boot = (W @ val) / (W @ fin.astype(np.float64))
    return mean.reshape(X.shape[1:]), boot.reshape((n_boot,) + X.shape[1:])


def percentile_ci(boot: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """``[..., 2]`` percentile interval over axis 0 (NaN where no resample is finite)."""
    if boot.shape[0] == 0:
        return np.full(boot.shape[1:] + (2,), np.nan)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2], axis=0, method="inverted_cdf")
    return np.moveaxis(q, 0, -1)


def _shares(c: np.ndarray) -> np.ndarray:
    """Shares over image + text of contributions ``[..., 3]`` (other -> NaN)."""
    c = np.clip(c, 0, None)
    tot = c[..., 0] + c[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.stack([c[..., 0] / tot, c[..., 1] / tot, np.full(tot.shape, np.nan)], -1)
    return s


def _ratio(c: np.ndarray) -> np.ndarray:
    """C(image) / C(text) of contributions ``[..., 3]`` (clipped at 0)."""
    c = np.clip(c, 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c[..., 0] / c[..., 1]


def _suppression(curve: np.ndarray, fraction: float = 0.5) -> tuple[int, int]:
    """(peak index, first index after the peak below fraction × peak, or -1)."""
    c = np.asarray(curve, dtype=np.float64)
    if not np.isfinite(c).any():
        return -1, -1
    peak = int(np.nanargmax(c))
    after = np.flatnonzero((np.arange(len(c)) > peak) & np.isfinite(c) & (c < fraction * c[peak]))
    return peak, int(after[0]) if after.size else -1


def _modality_rows(src: Source, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-record modality contributions ``[R, L', 3]`` and layer numbers ``[L']`` of a per-layer
    role dataset (attention mass: mean over heads; IG: rows = embeddings, layers)."""
    tr = src.trace
    if not tr.has(name):
        return None
    X = np.asarray(tr[name], dtype=np.float64)
    if name == "attention/mass":
        if X.ndim != 4:
            return None
        with np.errstate(invalid="ignore"):
            X = np.nanmean(X, axis=2) if X.shape[2] else X[:, :, 0]
        layers = np.arange(X.shape[1])
    else:  # attribution/ig [R, L+1, roles]
        if X.ndim != 3:
            return None
        layers = np.arange(X.shape[1]) - 1
    mi = src.modality_index()
    C = np.stack([X[..., idx].sum(-1) if idx else np.zeros(X.shape[:-1]) for idx in
                  (mi["image"], mi["text"], mi["other"])], -1)
    # rows that lack the measurement are all-NaN: keep them NaN
    missing = ~np.isfinite(X).any(-1)
    C[missing] = np.nan
    return C, layers


def fallback_estimate(src: Source, n_bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05) -> Any:
    """An ``Estimate`` of the per-layer methods (attention, IG) and the logit lens, computed here."""
    from ..estimate.results import Estimate, LensCurve, ModalityTable, Overall, Suppression

    tables, supp, lens = [], [], []
    methods = []
    for method, name, measure in (("attention", "attention/mass", "mass"), ("ig", "attribution/ig", "|ig| share")):
        got = _modality_rows(src, name)
        if got is None:
            continue
        methods.append(method)
        C, layers = got
        for mode in src.modes():
            for cond in src.conditions():
                idx = src.rows(cond, mode)
                Xc = C[idx]
                Xc = Xc[np.isfinite(Xc).any((1, 2))] if len(Xc) else Xc
                if len(Xc) == 0:
                    continue
                mean, boot = bootstrap_means(Xc, n_bootstrap, seed, (method, cond, mode))
                share, bshare = _shares(mean), _shares(boot)
                ratio, bratio = _ratio(mean), _ratio(boot)
                dom = tuple("image" if r >= 1 else "text" if np.isfinite(r) else "" for r in ratio)
                delta = np.where(ratio >= 1, ratio, 1 / ratio)
                bdelta = np.where(ratio[None] >= 1, bratio, 1 / bratio)
                om, ob = mean.mean(0), boot.mean(1) if len(boot) else boot
                oshare = _shares(om)
                orat = float(_ratio(om))
                overall = Overall(
                    contribution=om, contribution_ci=percentile_ci(ob, alpha), share=oshare,
                    share_ci=percentile_ci(_shares(ob), alpha),
                    delta=orat if orat >= 1 else 1 / orat, delta_ci=np.full(2, np.nan),
                    dominant="image" if orat >= 1 else "text", underutilized="text" if orat >= 1 else "image")
                t = ModalityTable(
                    method=method, measure=measure, condition=cond, mode=mode, n_samples=len(Xc),
                    included=("image", "text"), layers=layers, contribution=mean,
                    contribution_ci=percentile_ci(boot, alpha), share=share,
                    share_ci=percentile_ci(bshare, alpha), delta=delta,
                    delta_ci=percentile_ci(bdelta, alpha), dominant=dom, overall=overall,
                    overall_rule="mean over layers", definition=f"{measure} (plots fallback)")
                tables.append(t)
                peak, first = _suppression(share[:, 0])
                bfirst = np.array([_suppression(b[:, 0])[1] for b in bshare]) if len(bshare) else np.zeros(0, int)
                has = bfirst >= 0
                interval = None
                if has.any():
                    lo, hi = np.quantile(bfirst[has], [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
                    interval = (int(layers[int(lo)]), int(layers[int(hi)]))
                supp.append(Suppression(
                    method=method, measure=measure, condition=cond, mode=mode, fraction=0.5,
                    peak_layer=int(layers[peak]) if peak >= 0 else -1,
                    peak_share=float(share[peak, 0]) if peak >= 0 else float("nan"),
                    layer=int(layers[first]) if first >= 0 else None, interval=interval,
                    no_suppression=float(1 - has.mean()) if len(bfirst) else float("nan"),
                    n_resamples=len(bfirst)))
    if src.trace.has("intervention/logit_lens"):
        methods.append("logit_lens")
        P = lens_probabilities(src)
        if P is not None:
            for mode in src.modes():
                for cond in src.conditions():
                    idx = src.rows(cond, mode)
                    X = P[idx]
                    X = X[np.isfinite(X).any(1)] if len(X) else X
                    if len(X) == 0:
                        continue
                    mean, boot = bootstrap_means(X, n_bootstrap, seed, ("logit_lens", cond, mode))
                    lens.append(LensCurve(condition=cond, mode=mode, n_samples=len(X),
                                          layers=np.arange(X.shape[1]), prob=mean,
                                          prob_ci=percentile_ci(boot, alpha)))
    return Estimate(
        source=str(src.path), schema_version=int(src.trace.attrs.get("schema_version", 1)),
        model_id=str(src.trace.attrs.get("model_id", "")), methods=tuple(methods), skipped=(),
        n_records=src.trace.n_records, n_excluded=int((~src.ok()).sum()), n_bootstrap=n_bootstrap,
        seed=seed, alpha=alpha, suppression_fraction=0.5, include_other=False, target="gold",
        tables=tuple(tables), suppression=tuple(supp), lens=tuple(lens), ablation=(), agreement=())


def target_index(src: Source) -> np.ndarray:
    """Per record, the index of the target letter: the gold answer where known, otherwise the
    ``complete`` prediction of the same sample and mode (else the record's own prediction); -1
    when none."""
    from ..types import LETTERS

    sid, cond, mode = (src.column(f"records/{c}") for c in ("sample_id", "condition", "mode"))
    ans, pred = src.column("records/answer"), src.column("records/prediction")
    complete_pred = {(s, m): p for s, c, m, p in zip(sid, cond, mode, pred) if c == "complete" and p}
    out = np.full(len(sid), -1)
    for i, (s, m, a, p) in enumerate(zip(sid, mode, ans, pred)):
        letter = a or complete_pred.get((s, m)) or p
        if letter and letter in LETTERS:
            out[i] = LETTERS.index(letter)
    return out


def lens_probabilities(src: Source) -> np.ndarray | None:
    """``[R, L]`` probability of the target letter per layer from /intervention/logit_lens
    (log-probabilities are exponentiated; NaN where no target is known)."""
    X = np.asarray(src.trace["intervention/logit_lens"], dtype=np.float64)
    if X.ndim == 2:  # already the target's readout per layer
        P = X
    elif X.ndim == 3:
        t = target_index(src)
        P = np.full(X.shape[:2], np.nan)
        ok = (t >= 0) & (t < X.shape[2])
        P[ok] = X[np.flatnonzero(ok), :, t[ok]]
    else:
        return None
    fin = P[np.isfinite(P)]
    attrs = {}
    try:
        attrs = src.trace.dataset_attrs("intervention/logit_lens")
    except Exception:
        pass
    kind = " ".join(str(attrs.get(k, "")) for k in ("value", "values", "kind", "unit", "units")).lower()
    if "log" in kind or (fin.size and fin.max() <= 0 and fin.min() < 0):
        P = np.exp(P)
    return P
