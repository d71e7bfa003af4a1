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
from ..types import MODES, ROLES
from . import contributions as cb
from .bootstrap import group_rng, nan_mean, percentile_ci, resample_counts, resampled_means, spearman
from .results import (MODALITY_COLUMNS, AccuracyStat, Agreement, Estimate, ModalityTable, Overall, Suppression)
from .suppression import suppression_interval, suppression_layers


def method_names() -> list[str]:
    """Every registered method (``xai_bias.instruments.METHODS``), in registration order."""
    from ..instruments.base import load_methods

    return load_methods().names()


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

    methods: "all" (every registered method whose datasets the trace holds) or names of
    registered methods (``method_names()``); a named method whose datasets are absent is refused.
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
    args = (names, methods == "all", condition, mode, include_other, per_token, int(n_bootstrap), int(seed),
            float(suppression_fraction), target, float(alpha))
    if isinstance(trace, (str, os.PathLike)):
        from ..store import open_trace

        with open_trace(trace) as opened:
            return _Estimator(opened, os.fspath(trace), *args).run()
    return _Estimator(trace, str(getattr(trace, "path", "") or "<trace>"), *args).run()


def per_record_measures(trace: Any, methods: str | Sequence[str] = "all", per_token: bool = True
                        ) -> tuple[list[cb.Measure], list[str]]:
    """Every method's per-record contributions (its ``Measure``s, before any averaging: the
    per-sample values a per-sample view shows), and a note for each method the trace cannot
    support. The same definitions ``estimate`` averages; nothing is aggregated here."""
    from ..instruments.base import METHODS

    est = _Estimator(trace, str(getattr(trace, "path", "") or "<trace>"), _method_names(methods), True, None,
                     None, False, per_token, 0, 0, 0.5, "predicted", 0.05)
    est._read()
    measures, notes = [], []
    for name in est.names:
        spec = METHODS.get(name)
        if spec.contributions is None or any(not est.has(d) for d in spec.needs):
            continue
        try:
            measures += spec.contributions(est).measures
        except cb.NotApplicable as exc:
            notes.append(f"{name}: {exc}")
    return measures, notes


def _method_names(methods: str | Sequence[str]) -> list[str]:
    known = method_names()
    if isinstance(methods, str):
        items = list(known) if methods == "all" else [m.strip() for m in methods.split(",") if m.strip()]
    else:
        items = list(methods)
    for m in items:
        if m not in known:
            close = difflib.get_close_matches(m, known, n=2, cutoff=0.5)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(f"unknown method {m!r}.{hint} Available: {', '.join(known)}, all.")
    return list(dict.fromkeys(items))


def _as_set(x: str | Sequence[str] | None) -> set[str] | None:
    if x is None:
        return None
    if isinstance(x, str):
        return {s.strip() for s in x.split(",") if s.strip()}
    return set(x)


def _order_key(cond: str, mode: str) -> tuple:
    from ..conditions import CONDITION_REGISTRY

    names = CONDITION_REGISTRY.names()
    ci = names.index(cond) if cond in names else len(names)
    mi = MODES.index(mode) if mode in MODES else len(MODES)
    return (ci, cond, mi, mode)


class _Estimator:
    """Runs the estimate and is the ``EstimatorView`` the methods' contribution functions read
    (``contributions.EstimatorView``: record columns, datasets, pairing, grouping, bootstrap)."""

    def __init__(self, trace, source, names, all_methods, condition, mode, include_other, per_token,
                 n_boot, seed, fraction, target, alpha):
        self.t, self.source, self.names, self.all = trace, source, names, all_methods
        self.cond_filter, self.mode_filter = _as_set(condition), _as_set(mode)
        self.include_other, self.per_token = bool(include_other), bool(per_token)
        self.B, self.seed, self.fraction, self.target, self.alpha = n_boot, seed, fraction, target, alpha
        self.warnings: list[str] = []

    # ---------------------------------------------------------------- the view
    def has(self, name: str) -> bool:
        return bool(self.t.has(name))

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.t[name])

    def dataset_attrs(self, name: str) -> dict[str, Any]:
        return dict(self.t.dataset_attrs(name) or {})

    def removes(self, condition: str) -> str | None:
        from ..conditions import removes

        return removes(condition)

    @staticmethod
    def mode_order(mode: str) -> tuple:
        return _order_key("", mode)

    def _str_col(self, name: str, default: str = "") -> np.ndarray:
        if not self.has(name):
            return np.full(self.R, default, dtype=object)
        return np.array([str(v) for v in self.t[name]], dtype=object)

    def _read(self) -> None:
        from ..store._schema import SCHEMA_VERSION

        attrs = dict(self.t.attrs)
        self.attrs = attrs
        try:
            sv = int(attrs.get("schema_version", 1))
        except (TypeError, ValueError):
            raise TraceError(f"{self.source}: unreadable schema_version {attrs.get('schema_version')!r}") from None
        if sv > SCHEMA_VERSION:
            raise TraceError(
                f"{self.source}: trace schema_version {sv} is newer than this xai_bias understands "
                f"(up to {SCHEMA_VERSION}); upgrade xai_bias to estimate it")
        self.schema_version = sv
        self.R = int(self.t.n_records)
        roles = attrs.get("roles")
        self.roles = [str(r) for r in roles] if roles is not None and len(roles) else list(ROLES)
        self.condition = self._str_col("records/condition", "complete")
        self.mode = self._str_col("records/mode", "direct")
        self.sample_id = self._str_col("records/sample_id")
        self.answer = self._str_col("records/answer")
        self.prediction = self._str_col("records/prediction")
        self.ok = self._str_col("records/status", "ok") == "ok"
        self.correct = (np.asarray(self.t["records/correct"], dtype=bool) if self.has("records/correct")
                        else np.zeros(self.R, bool))
        for what, want, have in (("condition", self.cond_filter, self.condition), ("mode", self.mode_filter, self.mode)):
            held = sorted(set(have[self.ok]), key=lambda x: _order_key(x, x))
            for name in sorted(want or ()):
                if name not in held:
                    close = difflib.get_close_matches(name, held, n=2, cutoff=0.5)
                    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
                    raise UsageError(f"{self.source}: no usable record of {what} {name!r}.{hint} "
                                     f"The trace holds: {', '.join(held) or 'none'}")
        cf = self.cond_filter if self.cond_filter is not None else set(self.condition)
        mf = self.mode_filter if self.mode_filter is not None else set(self.mode)
        self.sel = self.ok & np.isin(self.condition, list(cf)) & np.isin(self.mode, list(mf))
        self._cond_names, self._cond_code = np.unique(self.condition.astype(str), return_inverse=True)
        self._mode_names, self._mode_code = np.unique(self.mode.astype(str), return_inverse=True)
        self._wcache: dict[tuple[str, ...], np.ndarray] = {}
        self.mode_sel = self.ok & np.isin(self.mode, list(mf))
        #: [R, n_mod] prompt tokens per modality (None without /records/role_tokens)
        self.mod_tokens = (cb.sum_roles(np.asarray(self.t["records/role_tokens"], dtype=np.float64),
                                        cb.modality_role_index(self.roles))
                           if self.has("records/role_tokens") else None)

    def removal_conditions(self) -> list[str]:
        """Conditions present (in the selected modes) that remove a modality, in registry order."""
        present = {c for c in set(self.condition[self.mode_sel]) if self.removes(c)}
        if self.cond_filter is not None and (self.cond_filter & present):
            present &= self.cond_filter
        return sorted(present, key=lambda c: _order_key(c, ""))

    def paired_possible(self) -> bool:
        if self.cond_filter is not None and "complete" not in self.cond_filter and not (
                self.cond_filter & set(self.removal_conditions())):
            return False
        return bool(np.any(self.mode_sel & (self.condition == "complete"))) and bool(self.removal_conditions())

    def letters(self) -> np.ndarray:
        """Target letter index per record: prediction then gold ("predicted"), or gold then prediction."""
        if self.target == "predicted":
            return cb.target_index(self.prediction, self.answer)
        return cb.target_index(self.answer, self.prediction)

    def pairs(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        partners = cb.pair_index(self.sample_id, self.condition, self.mode, self.ok, self.removal_conditions())
        return self.mode_sel & (self.condition == "complete"), partners

    # ---------------------------------------------------------------- main
    def run(self) -> Estimate:
        from ..instruments.base import METHODS

        self._read()
        use, skipped = [], []
        measures: list[cb.Measure] = []
        got = cb.Contributions()
        for name in self.names:
            spec = METHODS.get(name)
            missing = [d for d in spec.needs if not self.has(d)]
            try:
                if missing:
                    held = [d for s in METHODS.names() for d in METHODS.get(s).needs
                            if self.has(d) and not d.startswith("records/")]
                    raise cb.NotApplicable(
                        f"method {name!r} needs dataset(s) {', '.join('/' + d for d in missing)}, absent from the "
                        f"trace (it holds: {', '.join('/' + d for d in held) or 'none of them'})")
                if spec.contributions is None:
                    raise cb.NotApplicable(f"method {name!r} registers no contribution function")
                part = spec.contributions(self)
            except cb.NotApplicable as exc:
                if self.all:
                    skipped.append(name)
                    continue
                raise TraceError(f"{self.source}: {exc}") from None
            use.append(name)
            measures += part.measures
            got.lens += part.lens
            got.ablation += part.ablation
            got.heads += part.heads
            self.warnings += part.warnings
        if not use and not self.all:
            raise TraceError(f"{self.source}: the trace holds no measurement the estimator can use "
                             f"(looked for: {', '.join(self.names)})")
        if not use:
            self.warnings.append("the trace holds no measurement the estimator can use (predictions only)")
        tables, supp, layer_curves, scores = [], [], {}, {}
        for meas in measures:
            t, s, curve, score = self._tables(meas)
            tables += t
            supp += s
            for key, val in curve.items():
                layer_curves.setdefault(key, []).append(val)
            for key, val in score.items():
                scores.setdefault(key, []).append(val)
        order = METHODS.names()
        tables.sort(key=lambda t: (_order_key(t.condition, t.mode), order.index(t.method)))
        agreement = self._agreement(layer_curves, scores)
        self._verdict_warnings(tables, measures)
        return Estimate(
            source=self.source, schema_version=self.schema_version,
            model_id=str(self.attrs.get("model_id", "")), methods=tuple(use), skipped=tuple(skipped),
            n_records=self.R, n_excluded=int((~self.ok).sum()), n_bootstrap=self.B, seed=self.seed,
            alpha=self.alpha, suppression_fraction=self.fraction, include_other=self.include_other,
            target=self.target, tables=tuple(tables), suppression=tuple(supp), lens=tuple(got.lens),
            ablation=tuple(got.ablation), agreement=tuple(agreement), warnings=tuple(self.warnings),
            heads=tuple(got.heads), accuracy=tuple(self._accuracy()), consistency=tuple(self._consistency()),
        )

    # ---------------------------------------------------------------- the study's tables
    def _predictions(self):
        from ..consistency import as_predictions

        keep = np.flatnonzero(self.mode_sel)
        return as_predictions([(self.sample_id[i], self.condition[i], self.mode[i], self.prediction[i],
                                self.answer[i]) for i in keep])

    def _accuracy(self) -> list[AccuracyStat]:
        """Table 1 per condition × mode with Wilson intervals (the figures' bars)."""
        from ..consistency import accuracy_table

        preds = self._predictions()
        if not preds:
            return []
        out = []
        for r in accuracy_table(preds).rows:
            if r.n == 0:
                continue
            out.append(AccuracyStat(r.condition, r.mode, r.n, r.correct, r.accuracy, wilson(r.correct, r.n), r.diff))
        return out

    def _consistency(self) -> list[Any]:
        """Table 2 per mode: complete vs the condition without the image (else the video, else the
        audio) and the one without the text, as ``consistency`` picks them by default."""
        from ..consistency import NON_TEXT, consistency_table, default_pair

        preds = self._predictions()
        out = []
        for m in sorted({p.mode for p in preds}, key=self.mode_order):
            present = {p.condition for p in preds if p.mode == m}
            text = default_pair(present, NON_TEXT, prefer="text_white")
            image = default_pair(present, "text", prefer="image_only")
            if "complete" not in present or text is None:
                continue
            out.append(consistency_table(preds, "complete", text, image, mode=m))
        return out

    # ---------------------------------------------------------------- grouping and bootstrap
    def groups(self, rows_mask: np.ndarray) -> list[tuple[tuple[str, str], np.ndarray]]:
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

    def boot_ci(self, X: np.ndarray, key: tuple[str, ...]) -> np.ndarray:
        if self.B == 0 or len(X) == 0:
            return np.full(X.shape[1:] + (2,), np.nan)
        return percentile_ci(resampled_means(X, self._weights(len(X), key)), self.alpha)

    def _present(self, meas: cb.Measure, rows: np.ndarray, point: np.ndarray) -> np.ndarray:
        """[n_mod] bool: content modalities (not "other") the table measures: a finite overall
        value and, where the trace counts tokens per role, tokens of the modality in at least one
        of the group's records (a modality the prompts do not hold is absent, not a zero)."""
        present = np.array([mod != "other" for mod in MODALITY_COLUMNS]) & np.isfinite(point[-1])
        if self.mod_tokens is not None:
            present &= (self.mod_tokens[rows] > 0).any(0)
        return present

    def _tables(self, meas: cb.Measure):
        X, Xo = meas.X, meas.Xo
        K = len(MODALITY_COLUMNS)
        has = np.isfinite(Xo).any(1) | np.isfinite(X).reshape(len(X), -1).any(1)
        base = (self.mode_sel & (self.condition == "complete")) if meas.paired else self.sel
        other = MODALITY_COLUMNS.index("other")
        tables, supps, curves, scores = [], [], {}, {}
        Lp = len(meas.layers)
        for (c, m), rows in self.groups(base & has):
            n = len(rows)
            F = np.concatenate([X[rows].reshape(n, -1), Xo[rows]], 1)  # [n, (L'+1)*K]
            point = nan_mean(F).reshape(Lp + 1, K)
            present = self._present(meas, rows, point)
            absent = ~present & (np.arange(K) != other)
            point[:, absent] = np.nan  # an absent modality is not measured (not a zero)
            F.reshape(n, Lp + 1, K)[:, :, absent] = np.nan
            # shares need two modalities (knockout measures the image only); "other" only on request
            inc = present.copy() if present.sum() >= 2 else np.zeros(K, bool)
            if inc.any() and self.include_other and np.isfinite(point[-1, other]):
                inc[other] = True
            dom_idx, und_idx = _ranking(point, present)
            share, delta = _derive(point, inc, dom_idx, und_idx)
            if self.B > 0:
                boot = resampled_means(F, self._weights(n, ("group", c, m))).reshape(self.B, Lp + 1, K)
                bshare, bdelta = _derive(boot, inc, dom_idx, und_idx)
                cci, sci, dci = (percentile_ci(boot, self.alpha), percentile_ci(bshare, self.alpha),
                                 percentile_ci(bdelta, self.alpha))
            else:
                boot = bshare = None
                cci = np.full((Lp + 1, K, 2), np.nan)
                sci = cci.copy()
                dci = np.full((Lp + 1, 2), np.nan)
            names = tuple(MODALITY_COLUMNS[d] if d >= 0 else "" for d in dom_idx)
            under = tuple(MODALITY_COLUMNS[u] if u >= 0 else "" for u in und_idx)
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
                overall_rule=meas.overall_rule, definition=meas.definition, note=note,
                units=meas.units, modalities=tuple(mod for mod, p in zip(MODALITY_COLUMNS, present) if p)))
            # suppression on each non-text modality's share curve (the modalities that can be
            # suppressed in favour of the text)
            for j, mod in enumerate(MODALITY_COLUMNS):
                if not (meas.suppression and inc[j] and mod not in ("text", "other") and Lp >= 2):
                    continue
                pk, first, pv = suppression_layers(share[:Lp, j], self.fraction)
                if bshare is not None:
                    _, bfirst, _ = suppression_layers(bshare[:, :Lp, j], self.fraction)
                    interval, none = suppression_interval(bfirst, self.alpha)
                    interval = None if interval is None else (int(meas.layers[interval[0]]), int(meas.layers[interval[1]]))
                else:
                    interval, none = None, float("nan")
                supps.append(Suppression(
                    meas.method, meas.measure, c, m, self.fraction, int(meas.layers[int(pk)]), float(pv),
                    None if int(first) < 0 else int(meas.layers[int(first)]), interval, none, self.B, mod))
            # agreement inputs: the first non-text modality measured (the image, where there is one)
            j = next((j for j, mod in enumerate(MODALITY_COLUMNS) if present[j] and mod != "text"), None)
            if j is None:
                continue
            name = _agreement_name(meas)
            if Lp >= 2:
                col = share[:Lp, j] if inc[j] else point[:Lp, j]
                curves[(c, m)] = (name, meas.layers, col)
            sc = np.full(self.R, np.nan)
            o = Xo[rows]
            t = MODALITY_COLUMNS.index("text")
            with np.errstate(invalid="ignore", divide="ignore"):
                if meas.kind == "share" and inc[j]:
                    op = np.clip(o, 0, None)
                    den = np.where(inc, op, 0).sum(1)
                    sc[rows] = op[:, j] / den
                else:
                    sc[rows] = np.where(present[t] & np.isfinite(o[:, t]), o[:, j] - o[:, t], o[:, j])
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

    def _verdict_warnings(self, tables: list[ModalityTable], measures: list[cb.Measure]) -> None:
        from ..instruments.base import METHODS

        observational = {(x.method, x.measure) for x in measures if x.observational}
        by_key: dict[tuple[str, str], list[ModalityTable]] = {}
        for t in tables:
            by_key.setdefault((t.condition, t.mode), []).append(t)
        for (c, m), ts in by_key.items():
            causal = [t for t in ts if METHODS.get(t.method).kind == "causal" and t.overall.dominant]
            obs = [t for t in ts if (t.method, t.measure) in observational and t.overall.dominant]
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


def _ranking(point: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``point [R', K]``: the dominant (largest C⁺) and the underutilized (smallest
    C⁺) of the ``present`` modalities finite in that row; -1 where fewer than two are measured or
    none contributes anything (all <= 0). Ties go to the earlier column (image before text)."""
    cand = present[None, :] & np.isfinite(point)
    Cp = np.where(cand, np.clip(point, 0.0, None), np.nan)
    ok = (cand.sum(1) >= 2) & (np.nanmax(np.where(cand, Cp, -np.inf), axis=1) > 0)
    big = np.where(cand, Cp, -np.inf)
    small = np.where(cand, Cp, np.inf)
    dom = np.where(ok, np.argmax(big, axis=1), -1)
    und = np.where(ok, np.argmin(np.where(np.arange(point.shape[1]) == dom[:, None], np.inf, small), axis=1), -1)
    return dom, und


def _derive(C: np.ndarray, inc: np.ndarray, dom_idx: np.ndarray, und_idx: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Shares [..., K] and Δ [...] from contributions C [..., R', K] (dominant / underutilized
    fixed by ``dom_idx`` / ``und_idx`` [R'], from the point estimate)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        Cp = np.clip(C, 0.0, None)
        if inc.any():
            den = np.where(inc, Cp, 0.0).sum(-1, keepdims=True)
            share = np.where(inc, Cp / den, np.nan)
        else:
            share = np.full(C.shape, np.nan)
        d, u = np.where(dom_idx >= 0, dom_idx, 0), np.where(und_idx >= 0, und_idx, 0)
        dom = np.take_along_axis(Cp, np.broadcast_to(d[:, None], Cp.shape[:-1] + (1,)), -1)[..., 0]
        und = np.take_along_axis(Cp, np.broadcast_to(u[:, None], Cp.shape[:-1] + (1,)), -1)[..., 0]
        delta = np.where(und > 0, dom / und, np.where(dom > 0, np.inf, np.nan))
        delta = np.where(np.isnan(dom) | np.isnan(und), np.nan, delta)
        delta = np.where(dom_idx >= 0, delta, np.nan)
    return share, delta


def _agreement_name(meas: cb.Measure) -> str:
    return "attention/per_token" if meas.measure == "per_token" else meas.method


def _agreement_name_t(t: ModalityTable) -> str:
    return {"mass": "attention (mass)", "per_token": "attention (per token)"}.get(t.measure, t.method) \
        if t.method == "attention" else t.method


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, float(centre - half)), min(1.0, float(centre + half)))


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.2f}"
