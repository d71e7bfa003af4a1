"""``estimate(trace) -> Estimate``: modality contributions C(M_i), shares, Δ with bootstrap
intervals, the suppression layer, agreement between methods, and the missing-modality ablation.

Reads only the trace (no model). C(M) of a method × condition × mode is the mean over its
samples (records with status "ok" that hold the measurement) of the per-sample contribution
defined in ``contributions``; shares and Δ are computed from those means (ratio of means), for
the point estimate and for every bootstrap resample alike:

* share(M) = C⁺(M) / Σ C⁺ over the included modalities (image and text, plus "other" = sink +
  template only with ``include_other``), C⁺ = max(C, 0);
* Δ = C⁺(dominant) / C⁺(underutilized) between image and text, the dominant one being the larger
  point estimate (per layer and overall); inf when the underutilized contributes nothing;
  ``include_other`` changes shares, never Δ.

Intervals: percentile bootstrap over samples (seeded per method × condition × mode, vectorised
via count matrices; see ``bootstrap``). Paired measures (ablation, logit-lens effects) resample
samples of ``complete`` together with their partner records.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Sequence

import numpy as np

from ..errors import TraceError, UnknownNameError, UsageError
from ..types import CONDITIONS, MODES, ROLES
from . import contributions as cb
from .bootstrap import group_rng, nan_mean, percentile_ci, resample_counts, resampled_means, spearman
from .results import (MODALITY_COLUMNS, AblationRow, Agreement, Estimate, LensCurve, ModalityTable,
                      Overall, Suppression)
from .suppression import suppression_interval, suppression_layers

#: schema version this estimator understands (a newer trace is refused)
try:  # the store owns the constant
    from ..store._schema import SCHEMA_VERSION as _SCHEMA_VERSION
except Exception:  # pragma: no cover - store not importable
    _SCHEMA_VERSION = 1

METHOD_NAMES: tuple[str, ...] = ("attention", "ig", "shapley", "knockout", "logit_lens", "ablation")

#: trace datasets each method needs
NEEDS: dict[str, tuple[str, ...]] = {
    "attention": ("attention/mass",),
    "ig": ("attribution/ig",),
    "shapley": ("attribution/shapley",),
    "knockout": ("intervention/knockout",),
    "logit_lens": ("intervention/logit_lens",),
    "ablation": ("records/option_logprobs",),
}

#: methods whose verdict is causal (they change the input or the computation)
CAUSAL = ("shapley", "ablation")
#: methods that read the forward pass without intervening (their verdict is compared with the causal ones)
OBSERVATIONAL = (("attention", "mass"), ("attention", "per_token"), ("ig", "|ig| share"))


def estimate(
    trace: Any,
    methods: str | Sequence[str] = "all",
    condition: str | Sequence[str] | None = None,
    mode: str | Sequence[str] | None = None,
    include_other: bool = False,
    per_token: bool = True,
    n_bootstrap: int = 1000,
    seed: int = 0,
    suppression_fraction: float = 0.5,
    target: str = "predicted",
    alpha: float = 0.05,
) -> Estimate:
    """Estimate modality contributions from a trace (an open ``Trace`` or a path to one).

    methods: "all" (every method the trace holds) or names among attention, ig, shapley,
    knockout, logit_lens, ablation; a named method whose datasets are absent is refused.
    condition / mode: restrict to these (None = all present). include_other: count sink +
    template in the shares. per_token: also report attention per token. n_bootstrap: resamples
    (0 = no intervals). suppression_fraction: the suppression rule's fraction of the peak.
    target: letter whose log-prob/probability the ablation and logit lens follow — "predicted"
    (the ``complete`` record's prediction, the answer the model actually relied on; the gold
    letter when unparsed) or "gold" (the gold letter; the prediction when unknown).
    """
    if n_bootstrap < 0:
        raise UsageError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if not 0.0 < suppression_fraction < 1.0:
        raise UsageError(f"suppression_fraction must lie in (0, 1), got {suppression_fraction}")
    if target not in ("predicted", "gold"):
        raise UsageError(f"target must be 'predicted' or 'gold', got {target!r}")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must lie in (0, 1), got {alpha}")
    names = _method_names(methods)
    if isinstance(trace, (str, os.PathLike)):
        from ..store import open_trace

        source = os.fspath(trace)
        opened = open_trace(trace)
        try:
            return _Estimator(opened, source, names, methods == "all", condition, mode, include_other,
                              per_token, int(n_bootstrap), int(seed), float(suppression_fraction),
                              target, float(alpha)).run()
        finally:
            close = getattr(opened, "close", None)
            if callable(close):
                close()
    source = str(getattr(trace, "path", "") or "<trace>")
    return _Estimator(trace, source, names, methods == "all", condition, mode, include_other, per_token,
                      int(n_bootstrap), int(seed), float(suppression_fraction), target, float(alpha)).run()


def _method_names(methods: str | Sequence[str]) -> list[str]:
    if isinstance(methods, str):
        items = list(METHOD_NAMES) if methods == "all" else [m.strip() for m in methods.split(",") if m.strip()]
    else:
        items = list(methods)
    for m in items:
        if m not in METHOD_NAMES:
            close = difflib.get_close_matches(m, METHOD_NAMES, n=2, cutoff=0.5)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(f"unknown method {m!r}.{hint} Available: {', '.join(METHOD_NAMES)}, all.")
    return list(dict.fromkeys(items))


def _as_set(x: str | Sequence[str] | None) -> set[str] | None:
    if x is None:
        return None
    if isinstance(x, str):
        return {s.strip() for s in x.split(",") if s.strip()}
    return set(x)


def _order_key(cond: str, mode: str) -> tuple:
    ci = CONDITIONS.index(cond) if cond in CONDITIONS else len(CONDITIONS)
    mi = MODES.index(mode) if mode in MODES else len(MODES)
    return (ci, cond, mi, mode)


class _Estimator:
    def __init__(self, trace, source, names, all_methods, condition, mode, include_other, per_token,
                 n_boot, seed, fraction, target, alpha):
        self.t, self.source, self.names, self.all = trace, source, names, all_methods
        self.cond_filter, self.mode_filter = _as_set(condition), _as_set(mode)
        self.include_other, self.per_token = bool(include_other), bool(per_token)
        self.B, self.seed, self.fraction, self.target, self.alpha = n_boot, seed, fraction, target, alpha
        self.warnings: list[str] = []

    # ---------------------------------------------------------------- reading
    def _has(self, name: str) -> bool:
        return bool(self.t.has(name))

    def _col(self, name: str) -> np.ndarray:
        return np.asarray(self.t[name])

    def _str_col(self, name: str, default: str = "") -> np.ndarray:
        if not self._has(name):
            return np.full(self.R, default, dtype=object)
        return np.array([str(v) for v in self.t[name]], dtype=object)

    def _read(self) -> None:
        attrs = dict(self.t.attrs)
        self.attrs = attrs
        try:
            sv = int(attrs.get("schema_version", 1))
        except (TypeError, ValueError):
            raise TraceError(f"{self.source}: unreadable schema_version {attrs.get('schema_version')!r}") from None
        if sv > _SCHEMA_VERSION:
            raise TraceError(
                f"{self.source}: trace schema_version {sv} is newer than this xai_bias understands "
                f"(up to {_SCHEMA_VERSION}); upgrade xai_bias to estimate it")
        self.schema_version = sv
        self.R = int(self.t.n_records)
        roles = attrs.get("roles")
        self.roles = [str(r) for r in roles] if roles is not None and len(roles) else list(ROLES)
        self.cond = self._str_col("records/condition", "complete")
        self.mode = self._str_col("records/mode", "direct")
        self.sid = self._str_col("records/sample_id")
        self.answer = self._str_col("records/answer")
        self.pred = self._str_col("records/prediction")
        status = self._str_col("records/status", "ok")
        self.ok = status == "ok"
        self.correct = (np.asarray(self.t["records/correct"], dtype=bool) if self._has("records/correct")
                        else np.zeros(self.R, bool))
        for what, want, have in (("condition", self.cond_filter, self.cond), ("mode", self.mode_filter, self.mode)):
            held = sorted(set(have[self.ok]), key=lambda x: _order_key(x, x))
            for name in sorted(want or ()):
                if name not in held:
                    close = difflib.get_close_matches(name, held, n=2, cutoff=0.5)
                    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
                    raise UsageError(f"{self.source}: no usable record of {what} {name!r}.{hint} "
                                     f"The trace holds: {', '.join(held) or 'none'}")
        cf = self.cond_filter if self.cond_filter is not None else set(self.cond)
        mf = self.mode_filter if self.mode_filter is not None else set(self.mode)
        self.sel = self.ok & np.isin(self.cond, list(cf)) & np.isin(self.mode, list(mf))
        self._cond_names, self._cond_code = np.unique(self.cond.astype(str), return_inverse=True)
        self._mode_names, self._mode_code = np.unique(self.mode.astype(str), return_inverse=True)
        self._wcache: dict[tuple[str, ...], np.ndarray] = {}
        self.mode_sel = self.ok & np.isin(self.mode, list(mf))

    # ---------------------------------------------------------------- availability
    def _removal_conditions(self) -> list[str]:
        present = set(self.cond[self.mode_sel])
        conds = [c for c in cb.REMOVES if c in present]
        if self.cond_filter is not None and (self.cond_filter & set(cb.REMOVES)):
            conds = [c for c in conds if c in self.cond_filter]
        return conds

    def _paired_possible(self) -> bool:
        if self.cond_filter is not None and "complete" not in self.cond_filter and not (
                self.cond_filter & set(cb.REMOVES)):
            return False
        return bool(np.any(self.mode_sel & (self.cond == "complete"))) and bool(self._removal_conditions())

    def _available(self) -> tuple[list[str], list[str]]:
        use, skipped = [], []
        for m in self.names:
            missing = [d for d in NEEDS[m] if not self._has(d)]
            if m == "ablation" and not missing and not self._paired_possible():
                have = sorted(set(self.cond[self.mode_sel]))
                if self.all:
                    skipped.append(m)
                    continue
                raise TraceError(
                    f"{self.source}: method 'ablation' needs records of condition 'complete' and of at "
                    f"least one condition that removes a modality ({', '.join(cb.REMOVES)}) in the same "
                    f"mode; the selected records hold: {', '.join(have) or 'none'}")
            if missing:
                if self.all:
                    skipped.append(m)
                    continue
                held = [d for ds in NEEDS.values() for d in ds if self._has(d) and not d.startswith("records/")]
                raise TraceError(
                    f"{self.source}: method {m!r} needs dataset(s) {', '.join('/' + d for d in missing)}, "
                    f"absent from the trace (it holds: {', '.join('/' + d for d in held) or 'none of them'})")
            use.append(m)
        if not use:
            raise TraceError(f"{self.source}: the trace holds no measurement the estimator can use "
                             f"(looked for: {', '.join(METHOD_NAMES)})")
        return use, skipped

    # ---------------------------------------------------------------- main
    def run(self) -> Estimate:
        self._read()
        use, skipped = self._available()
        measures: list[cb.Measure] = []
        lens_curves: list[LensCurve] = []
        ablation_rows: list[AblationRow] = []
        for m in use:
            if m == "attention":
                rt = self._col("records/role_tokens") if self._has("records/role_tokens") else None
                if self.per_token and rt is None:
                    self.warnings.append("attention: /records/role_tokens absent, per-token mass not reported")
                measures += cb.attention_measures(self._col("attention/mass"), rt, self.roles, self.per_token)
            elif m == "ig":
                delta = self._col("attribution/ig_delta") if self._has("attribution/ig_delta") else None
                measures += cb.ig_measures(self._col("attribution/ig"), self.roles, delta)
            elif m == "shapley":
                groups = self._shapley_groups()
                ms, warn = cb.shapley_measures(self._col("attribution/shapley"), groups)
                self.warnings += warn
                measures += ms
            elif m == "knockout":
                measures += cb.knockout_measures(self._col("intervention/knockout"))
            elif m == "logit_lens":
                ms, curves = self._logit_lens()
                measures += ms
                lens_curves += curves
            elif m == "ablation":
                ms, rows = self._ablation()
                measures += ms
                ablation_rows += rows
        tables, supp, layer_curves, scores = [], [], {}, {}
        for meas in measures:
            t, s, curve, score = self._tables(meas)
            tables += t
            supp += s
            for key, val in curve.items():
                layer_curves.setdefault(key, []).append(val)
            for key, val in score.items():
                scores.setdefault(key, []).append(val)
        tables.sort(key=lambda t: (_order_key(t.condition, t.mode), METHOD_NAMES.index(t.method)))
        agreement = self._agreement(layer_curves, scores)
        self._verdict_warnings(tables)
        return Estimate(
            source=self.source, schema_version=self.schema_version,
            model_id=str(self.attrs.get("model_id", "")), methods=tuple(use), skipped=tuple(skipped),
            n_records=self.R, n_excluded=int((~self.ok).sum()), n_bootstrap=self.B, seed=self.seed,
            alpha=self.alpha, suppression_fraction=self.fraction, include_other=self.include_other,
            target=self.target, tables=tuple(tables), suppression=tuple(supp), lens=tuple(lens_curves),
            ablation=tuple(ablation_rows), agreement=tuple(agreement), warnings=tuple(self.warnings),
        )

    # ---------------------------------------------------------------- methods needing more than a column
    def _shapley_groups(self) -> list[str]:
        attrs = dict(self.t.dataset_attrs("attribution/shapley") or {})
        groups = attrs.get("groups")
        if groups is None:
            raise TraceError(f"{self.source}: /attribution/shapley lacks its 'groups' attribute "
                             "(which modality each column belongs to)")
        if isinstance(groups, str):
            groups = [g.strip() for g in groups.replace(",", " ").split()]
        groups = [g.decode() if isinstance(g, bytes) else str(g) for g in groups]
        width = self._col("attribution/shapley").shape[1]
        if len(groups) != width:
            raise TraceError(f"{self.source}: /attribution/shapley has {width} columns but "
                             f"{len(groups)} group names ({groups})")
        return groups

    def _letters(self) -> np.ndarray:
        """Target letter index per record: prediction then gold ("predicted"), or gold then prediction."""
        if self.target == "predicted":
            return cb.target_index(self.pred, self.answer)
        return cb.target_index(self.answer, self.pred)

    def _pairs(self):
        conds = self._removal_conditions()
        partners = cb.pair_index(self.sid, self.cond, self.mode, self.ok, conds)
        complete = self.mode_sel & (self.cond == "complete")
        return complete, partners

    def _logit_lens(self) -> tuple[list[cb.Measure], list[LensCurve]]:
        values = self._col("intervention/logit_lens").astype(np.float64)  # [R, L, K]
        dattrs = dict(self.t.dataset_attrs("intervention/logit_lens") or {})
        units = " ".join(str(dattrs.get(k, "")) for k in ("value", "values", "units", "unit", "kind")).lower()
        if "log" in units or (not units.strip() and np.isfinite(values).any() and np.nanmin(values) < 0):
            values = np.exp(values)  # log-softmax readout -> probability
        if values.ndim == 2:  # already the target letter's readout per layer
            values = values[:, :, None]
            self.warnings.append("logit_lens: the trace holds one value per layer (no per-letter readout); "
                                 "it is taken as the target letter's")
        letter = self._letters()
        if values.shape[2] == 1:
            letter = np.zeros_like(letter)
        # every condition follows the letter of its sample's ``complete`` record (the same answer
        # with and without a modality); records without one follow their own
        comp = cb.pair_index(self.sid, self.cond, self.mode, self.ok, ["complete"])["complete"]
        curve_letter = np.where(comp >= 0, letter[np.maximum(comp, 0)], letter)
        L = values.shape[1]
        p = cb.take_letter(values, np.arange(self.R), curve_letter)  # [R, L]
        curves = []
        for (c, m), rows in self._groups(self.sel & np.isfinite(p).any(1)):
            X = p[rows]
            pt = nan_mean(X)
            ci = self._boot_ci(X, ("logit_lens", "curve", c, m))
            curves.append(LensCurve(c, m, len(rows), np.arange(L), pt, ci))
        measures = []
        if self._paired_possible():
            complete, partners = self._pairs()
            d_img, d_txt, _ = cb.paired_effects(values, complete, letter, partners)
            X = np.stack([d_img, d_txt, np.full_like(d_img, np.nan)], -1)  # [R, L, 3]
            measures.append(cb.Measure(
                "logit_lens", "prob drop", np.arange(L), X, cb._nanmean_axis(X, 1), "effect",
                overall_rule="mean over layers",
                definition="drop of the target letter's logit-lens probability at the layer from "
                           "'complete' to the condition removing the modality (image: mean over "
                           + ", ".join(c for c in partners if cb.REMOVES[c] == "image") + ")",
                suppression=False, paired=True))
        return measures, curves

    def _ablation(self) -> tuple[list[cb.Measure], list[AblationRow]]:
        lp = self._col("records/option_logprobs").astype(np.float64)
        if lp.ndim == 1:
            lp = lp[:, None]
        letter = self._letters()
        complete, partners = self._pairs()
        d_img, d_txt, per = cb.paired_effects(lp, complete, letter, partners)
        Xo = np.stack([d_img, d_txt, np.full_like(d_img, np.nan)], -1)  # [R, 3]
        img_conds = [c for c in partners if cb.REMOVES[c] == "image"]
        measure = cb.Measure(
            "ablation", "logprob drop", np.arange(0), Xo[:, None, :][:, :0, :], Xo, "effect",
            overall_rule="layer-free",
            definition="drop of the target letter's log-prob from 'complete' to the condition removing "
                       f"the modality (image: mean over {', '.join(img_conds) or 'none'}; "
                       f"text: {'image_only' if 'image_only' in partners else 'not measured'})",
            paired=True)
        rows: list[AblationRow] = []
        correct = self.correct.astype(np.float64)
        modes = sorted(set(self.mode[complete]), key=lambda m: _order_key("", m))
        for m in modes:
            for c, idx in partners.items():
                i = np.flatnonzero(complete & (self.mode == m) & (idx >= 0))
                if not len(i):
                    continue
                j = idx[i]
                drop = per[c][i]
                acc_c, acc_x = correct[i], correct[j]
                X = np.stack([drop, acc_c - acc_x], 1)
                pt = nan_mean(X)
                ci = self._boot_ci(X, ("ablation", c, m))
                rows.append(AblationRow(
                    mode=m, condition=c, removes=cb.REMOVES[c], n_pairs=len(i),
                    logprob_drop=float(pt[0]), logprob_drop_ci=ci[0],
                    accuracy_complete=float(acc_c.mean()), accuracy_condition=float(acc_x.mean()),
                    accuracy_drop=float(pt[1]), accuracy_drop_ci=ci[1]))
        return [measure], rows

    # ---------------------------------------------------------------- grouping and bootstrap
    def _groups(self, rows_mask: np.ndarray) -> list[tuple[tuple[str, str], np.ndarray]]:
        """(condition, mode) -> record indices (ascending) among ``rows_mask``, in display order."""
        code = self._cond_code * len(self._mode_names) + self._mode_code
        rows = np.flatnonzero(rows_mask)
        out = []
        for k in np.unique(code[rows]):
            key = (str(self._cond_names[k // len(self._mode_names)]), str(self._mode_names[k % len(self._mode_names)]))
            out.append((key, rows[code[rows] == k]))
        return sorted(out, key=lambda kv: _order_key(*kv[0]))

    def _weights(self, n: int, key: tuple[str, ...]) -> np.ndarray:
        """Resample counts ``[B, n]``, seeded by ``key`` and n; cached, so the methods measured on
        the same records of a condition × mode share their resamples."""
        ck = key + (str(n),)
        if ck not in self._wcache:
            self._wcache[ck] = resample_counts(n, self.B, group_rng(self.seed, *ck))
        return self._wcache[ck]

    def _boot_ci(self, X: np.ndarray, key: tuple[str, ...]) -> np.ndarray:
        if self.B == 0 or len(X) == 0:
            return np.full(X.shape[1:] + (2,), np.nan)
        return percentile_ci(resampled_means(X, self._weights(len(X), key)), self.alpha)

    def _tables(self, meas: cb.Measure):
        X, Xo = meas.X, meas.Xo
        has = np.isfinite(Xo).any(1) | np.isfinite(X).reshape(len(X), -1).any(1)
        base = (self.mode_sel & (self.cond == "complete")) if meas.paired else self.sel
        wanted = ["image", "text"] + (["other"] if self.include_other else [])
        tables, supps, curves, scores = [], [], {}, {}
        Lp = len(meas.layers)
        for (c, m), rows in self._groups(base & has):
            n = len(rows)
            F = np.concatenate([X[rows].reshape(n, -1), Xo[rows]], 1)  # [n, (L'+1)*3]
            point = nan_mean(F).reshape(Lp + 1, 3)
            inc = np.array([mod in wanted and np.isfinite(point[-1, j]) for j, mod in enumerate(MODALITY_COLUMNS)])
            if not (inc[0] and inc[1]):
                inc[:] = False  # shares need both modalities (knockout measures the image only)
            # dominant: the larger of image and text; none when either is unmeasured or neither
            # contributes anything (both <= 0)
            dom_idx = np.where(np.isfinite(point[:, 0]) & np.isfinite(point[:, 1])
                               & (np.maximum(point[:, 0], point[:, 1]) > 0),
                               np.where(point[:, 0] >= point[:, 1], 0, 1), -1)
            share, delta = _derive(point, inc, dom_idx)
            if self.B > 0:
                boot = resampled_means(F, self._weights(n, ("group", c, m))).reshape(self.B, Lp + 1, 3)
                bshare, bdelta = _derive(boot, inc, dom_idx)
                cci, sci, dci = (percentile_ci(boot, self.alpha), percentile_ci(bshare, self.alpha),
                                 percentile_ci(bdelta, self.alpha))
            else:
                boot = bshare = None
                cci = np.full((Lp + 1, 3, 2), np.nan)
                sci = cci.copy()
                dci = np.full((Lp + 1, 2), np.nan)
            names = tuple(MODALITY_COLUMNS[d] if d >= 0 else "" for d in dom_idx)
            under = tuple(MODALITY_COLUMNS[1 - d] if d >= 0 else "" for d in dom_idx)
            overall = Overall(point[-1], cci[-1], share[-1], sci[-1], float(delta[-1]), dci[-1], names[-1], under[-1])
            note = meas.note
            if meas.signed is not None:
                signed = nan_mean(meas.signed[rows])
                note = "signed mean phi: " + ", ".join(
                    f"{mod} {v:+.4g}" for mod, v in zip(MODALITY_COLUMNS, signed) if np.isfinite(v))
            tables.append(ModalityTable(
                method=meas.method, measure=meas.measure, condition=c, mode=m, n_samples=n,
                included=tuple(mod for mod, i in zip(MODALITY_COLUMNS, inc) if i), layers=meas.layers,
                contribution=point[:Lp], contribution_ci=cci[:Lp], share=share[:Lp], share_ci=sci[:Lp],
                delta=delta[:Lp], delta_ci=dci[:Lp], dominant=names[:Lp], overall=overall,
                overall_rule=meas.overall_rule, definition=meas.definition, note=note))
            # suppression on the image-share curve
            if meas.suppression and inc[0] and Lp >= 2:
                pk, first, pv = suppression_layers(share[:Lp, 0], self.fraction)
                if bshare is not None:
                    _, bfirst, _ = suppression_layers(bshare[:, :Lp, 0], self.fraction)
                    interval, none = suppression_interval(bfirst, self.alpha)
                    interval = None if interval is None else (int(meas.layers[interval[0]]), int(meas.layers[interval[1]]))
                else:
                    interval, none = None, float("nan")
                supps.append(Suppression(
                    meas.method, meas.measure, c, m, self.fraction, int(meas.layers[int(pk)]), float(pv),
                    None if int(first) < 0 else int(meas.layers[int(first)]), interval, none, self.B))
            # agreement inputs
            name = _agreement_name(meas)
            if Lp >= 2:
                col = share[:Lp, 0] if inc[0] else point[:Lp, 0]
                curves[(c, m)] = (name, meas.layers, col)
            sc = np.full(self.R, np.nan)
            o = Xo[rows]
            with np.errstate(invalid="ignore", divide="ignore"):
                if meas.kind == "share" and inc[0]:
                    op = np.clip(o, 0, None)
                    den = np.where(inc, op, 0).sum(1)
                    sc[rows] = op[:, 0] / den
                else:
                    sc[rows] = np.where(np.isfinite(o[:, 1]), o[:, 0] - o[:, 1], o[:, 0])
            scores[(c, m)] = (name, sc)
        return tables, supps, curves, scores

    # ---------------------------------------------------------------- agreement and warnings
    def _agreement(self, layer_curves, scores) -> list[Agreement]:
        out: list[Agreement] = []
        for key in sorted(layer_curves, key=lambda k: _order_key(*k)):
            items = layer_curves[key]
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    (na, la, ca), (nb, lb, cbv) = items[a], items[b]
                    common = np.intersect1d(la[la >= 0], lb[lb >= 0])
                    if len(common) < 3:
                        continue
                    xa = ca[np.searchsorted(la, common)]
                    xb = cbv[np.searchsorted(lb, common)]
                    rho, n = spearman(xa, xb)
                    out.append(Agreement("layers", key[0], key[1], na, nb, n, rho))
        for key in sorted(scores, key=lambda k: _order_key(*k)):
            items = scores[key]
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    rho, n = spearman(items[a][1], items[b][1])
                    if n == 0:
                        continue
                    out.append(Agreement("samples", key[0], key[1], items[a][0], items[b][0], n, rho))
        return out

    def _verdict_warnings(self, tables: list[ModalityTable]) -> None:
        by_key: dict[tuple[str, str], list[ModalityTable]] = {}
        for t in tables:
            by_key.setdefault((t.condition, t.mode), []).append(t)
        for (c, m), ts in by_key.items():
            causal = [t for t in ts if t.method in CAUSAL and t.overall.dominant]
            obs = [t for t in ts if (t.method, t.measure) in OBSERVATIONAL and t.overall.dominant]
            for o in obs:
                for k in causal:
                    if o.overall.dominant != k.overall.dominant:
                        unsure = [t for t in (o, k) if _straddles(t.overall.share_ci[0])]
                        caveat = ("; the interval of " + " and of ".join(_agreement_name_t(t) for t in unsure)
                                  + " includes 0.5, so that ranking is uncertain") if unsure else ""
                        self.warnings.append(
                            f"{c}/{m}: {_agreement_name_t(o)} ranks {o.overall.dominant} above "
                            f"{o.overall.underutilized} (image share {_share_txt(o)}) but {k.method} ranks "
                            f"{k.overall.dominant} above {k.overall.underutilized} (image share {_share_txt(k)})"
                            f"{caveat}: attention and gradients show where the model looks, not what its "
                            "answer relies on; the causal method measures reliance")


def _straddles(ci) -> bool:
    lo, hi = float(ci[0]), float(ci[1])
    return np.isfinite(lo) and np.isfinite(hi) and lo <= 0.5 <= hi


def _share_txt(t: ModalityTable) -> str:
    lo, hi = t.overall.share_ci[0]
    ci = f", 95% CI {_fmt(lo)}–{_fmt(hi)}" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{_fmt(t.overall.share[0])}{ci}"


def _derive(C: np.ndarray, inc: np.ndarray, dom_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares [..., 3] and Δ [...] from contributions C [..., R', 3] (dominant fixed by ``dom_idx`` [R'])."""
    with np.errstate(invalid="ignore", divide="ignore"):
        Cp = np.clip(C, 0.0, None)
        if inc.any():
            den = np.where(inc, Cp, 0.0).sum(-1, keepdims=True)
            share = np.where(inc, Cp / den, np.nan)
        else:
            share = np.full(C.shape, np.nan)
        d = np.where(dom_idx >= 0, dom_idx, 0)
        cols = np.arange(3)
        dom = np.where(cols == d[:, None], Cp, 0.0).sum(-1)  # broadcasts over a leading resample axis
        und = np.where(cols == (1 - d)[:, None], Cp, 0.0).sum(-1)
        dom = np.where(np.isnan(np.take(Cp, 0, -1) + np.take(Cp, 1, -1)), np.nan, dom)
        delta = np.where(und > 0, dom / und, np.where(dom > 0, np.inf, np.nan))
        delta = np.where(dom_idx >= 0, delta, np.nan)
    return share, delta


def _agreement_name(meas: cb.Measure) -> str:
    return "attention/per_token" if meas.measure == "per_token" else meas.method


def _agreement_name_t(t: ModalityTable) -> str:
    return {"mass": "attention (mass)", "per_token": "attention (per token)"}.get(t.measure, t.method) \
        if t.method == "attention" else t.method


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.2f}"
