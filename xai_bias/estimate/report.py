"""Plain-text tables and a JSON form of an ``Estimate`` (the same numbers in both)."""

from __future__ import annotations

import math
from typing import Any


from ..consistency import to_dict
from .results import MODALITY_COLUMNS, Estimate, ModalityTable, Overall


# ---------------------------------------------------------------------------- JSON
def _num(x: Any) -> Any:
    """JSON-safe number: NaN -> None, ±inf -> "inf" / "-inf"."""
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _pair(a) -> list:
    return [_num(a[0]), _num(a[1])]


def _by_mod(v, ci=None) -> dict:
    if ci is None:
        return {m: _num(v[j]) for j, m in enumerate(MODALITY_COLUMNS)}
    return {m: _pair(ci[j]) for j, m in enumerate(MODALITY_COLUMNS)}


def _overall_json(o: Overall) -> dict:
    return {
        "contribution": _by_mod(o.contribution), "contribution_ci": _by_mod(None, o.contribution_ci),
        "share": _by_mod(o.share), "share_ci": _by_mod(None, o.share_ci),
        "delta": _num(o.delta), "delta_ci": _pair(o.delta_ci),
        "dominant": o.dominant, "underutilized": o.underutilized,
    }


def _table_json(t: ModalityTable) -> dict:
    rows = []
    for i, layer in enumerate(t.layers):
        rows.append({
            "layer": int(layer),
            "contribution": _by_mod(t.contribution[i]), "contribution_ci": _by_mod(None, t.contribution_ci[i]),
            "share": _by_mod(t.share[i]), "share_ci": _by_mod(None, t.share_ci[i]),
            "delta": _num(t.delta[i]), "delta_ci": _pair(t.delta_ci[i]), "dominant": t.dominant[i],
        })
    return {
        "method": t.method, "measure": t.measure, "condition": t.condition, "mode": t.mode,
        "n_samples": t.n_samples, "included": list(t.included), "definition": t.definition,
        "overall_rule": t.overall_rule, "note": t.note, "units": t.units, "modalities": list(t.modalities),
        "layers": rows,
        "overall": _overall_json(t.overall),
    }


def estimate_to_json(est: Estimate) -> dict:
    """The estimate as a JSON-serialisable dict (NaN -> null, ±inf -> "inf"/"-inf"); layer -1 is
    IG's input-embeddings row; modality keys are image, text, other."""
    return {
        "source": est.source, "schema_version": est.schema_version, "model_id": est.model_id,
        "methods": list(est.methods), "skipped": list(est.skipped), "n_records": est.n_records,
        "n_excluded": est.n_excluded, "n_bootstrap": est.n_bootstrap, "seed": est.seed,
        "alpha": est.alpha, "suppression_fraction": est.suppression_fraction,
        "include_other": est.include_other, "target": est.target,
        "tables": [_table_json(t) for t in est.tables],
        "suppression": [{
            "method": s.method, "measure": s.measure, "condition": s.condition, "mode": s.mode,
            "fraction": s.fraction, "peak_layer": s.peak_layer, "peak_share": _num(s.peak_share),
            "layer": s.layer, "interval": None if s.interval is None else list(s.interval),
            "no_suppression": _num(s.no_suppression), "n_resamples": s.n_resamples, "modality": s.modality,
        } for s in est.suppression],
        "logit_lens": [{
            "condition": c.condition, "mode": c.mode, "n_samples": c.n_samples,
            "layers": [int(x) for x in c.layers], "prob": [_num(x) for x in c.prob],
            "prob_ci": [_pair(x) for x in c.prob_ci],
        } for c in est.lens],
        "ablation": [{
            "mode": a.mode, "condition": a.condition, "removes": a.removes, "n_pairs": a.n_pairs,
            "logprob_drop": _num(a.logprob_drop), "logprob_drop_ci": _pair(a.logprob_drop_ci),
            "accuracy_complete": _num(a.accuracy_complete), "accuracy_condition": _num(a.accuracy_condition),
            "accuracy_drop": _num(a.accuracy_drop), "accuracy_drop_ci": _pair(a.accuracy_drop_ci),
        } for a in est.ablation],
        "agreement": [{
            "kind": g.kind, "condition": g.condition, "mode": g.mode, "method_a": g.method_a,
            "method_b": g.method_b, "n": g.n, "spearman": _num(g.spearman),
        } for g in est.agreement],
        "heads": [{
            "method": h.method, "condition": h.condition, "mode": h.mode, "n_samples": h.n_samples,
            "share": [[_num(x) for x in row] for row in h.share],
        } for h in est.heads],
        "accuracy": [{
            "condition": a.condition, "mode": a.mode, "n": a.n, "correct": a.correct,
            "accuracy": _num(a.accuracy), "ci": _pair(a.ci), "diff": None if a.diff is None else _num(a.diff),
        } for a in est.accuracy],
        "consistency": [to_dict(t) for t in est.consistency],
        "warnings": list(est.warnings),
    }


# ---------------------------------------------------------------------------- text
def _f(x: float, spec: str = ".4g") -> str:
    x = float(x)
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return format(x, spec)


def _ci(v: float, ci, spec: str) -> str:
    if math.isnan(float(v)):
        return "-"
    if ci is None or (math.isnan(float(ci[0])) and math.isnan(float(ci[1]))):
        return _f(v, spec)
    return f"{_f(v, spec)} [{_f(ci[0], spec)}, {_f(ci[1], spec)}]"


def _layer(x: int) -> str:
    return "emb" if int(x) < 0 else str(int(x))


def _render(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _columns(t: ModalityTable) -> tuple[list[int], list[int]]:
    """Modality columns a table shows: (contributions: the measured modalities + other, in column
    order; shares: the measured modalities other than the text, e.g. just the image)."""
    mods = t.modalities or ("image", "text")  # a table from an estimate of an older version
    shown = [j for j, m in enumerate(MODALITY_COLUMNS) if m in mods] + [MODALITY_COLUMNS.index("other")]
    shares = [j for j in shown if MODALITY_COLUMNS[j] not in ("text", "other") and MODALITY_COLUMNS[j] in t.included]
    if not shares and not t.included and mods == ("image", "text"):
        shares = [MODALITY_COLUMNS.index("image")]  # an image-text table without shares keeps its column
    return shown, shares


def _table_text(t: ModalityTable, est: Estimate) -> list[str]:
    needs = "two measured modalities" if len(t.modalities) != 2 else "image and text"
    out = [f"== {t.label}  (n = {t.n_samples})",
           f"   C(M): {t.definition}; overall: {t.overall_rule}; shares over "
           f"{' + '.join(t.included) if t.included else f'- (needs {needs})'}"]
    if t.note:
        out.append(f"   {t.note}")
    shown, shares = _columns(t)
    header = (["layer"] + [f"C({MODALITY_COLUMNS[j]})" for j in shown]
              + [f"{MODALITY_COLUMNS[j]} share [95% CI]" for j in shares] + ["Δ [95% CI]", "dominant"])
    rows = []
    for i, layer in enumerate(t.layers):
        rows.append([_layer(layer)] + [_f(t.contribution[i, j]) for j in shown]
                    + [_ci(t.share[i, j], t.share_ci[i, j], ".3f") for j in shares]
                    + [_ci(t.delta[i], t.delta_ci[i], ".3g"), t.dominant[i] or "-"])
    o = t.overall
    rows.append(["overall"] + [_f(o.contribution[j]) for j in shown]
                + [_ci(o.share[j], o.share_ci[j], ".3f") for j in shares]
                + [_ci(o.delta, o.delta_ci, ".3g"), o.dominant or "-"])
    out += ["   " + s for s in _render(header, rows)]
    for s in est.suppression:
        if (s.method, s.measure, s.condition, s.mode) == (t.method, t.measure, t.condition, t.mode):
            where = "none" if s.layer is None else _layer(s.layer)
            iv = "-" if s.interval is None else f"[{_layer(s.interval[0])}, {_layer(s.interval[1])}]"
            boot = (f"; {100 * (1 - est.alpha):g}% CI {iv}; no suppression in "
                    f"{_f(100 * s.no_suppression, '.1f')}% of resamples") if s.n_resamples else ""
            what = "suppression layer" if s.modality == "image" else f"{s.modality} suppression layer"
            out.append(f"   {what}: {where} ({s.modality} share peaks at {_f(s.peak_share, '.3f')} in layer "
                       f"{_layer(s.peak_layer)}; first later layer below {s.fraction:g} × peak){boot}")
    return out


def format_estimate(est: Estimate) -> str:
    """Readable report: one per-layer table per method × measure × condition × mode (layer, C(M)
    of each measured modality and of other, the non-text shares with CI (the image share in an
    image-text study), Δ with CI, dominant), the suppression layer,
    logit-lens curves, the ablation table, the agreement table and the warnings."""
    out = [f"modality contributions — {est.source}" + (f" — model {est.model_id}" if est.model_id else ""),
           f"records: {est.n_records} ({est.n_excluded} excluded: status not ok); methods: "
           f"{', '.join(est.methods)}" + (f"; absent: {', '.join(est.skipped)}" if est.skipped else ""),
           f"bootstrap: {est.n_bootstrap} resamples over samples, seed {est.seed}, "
           f"{100 * (1 - est.alpha):g}% percentile intervals; sink+template "
           f"{'included in' if est.include_other else 'reported, not in'} the shares; Δ = C(dominant)/C(underutilized)",
           ""]
    for t in est.tables:
        out += _table_text(t, est) + [""]
    if est.lens:
        out.append("== logit lens: mean probability of the target letter per layer [95% CI]")
        header = ["layer"] + [f"{c.condition}/{c.mode} (n={c.n_samples})" for c in est.lens]
        L = max(len(c.layers) for c in est.lens)
        rows = []
        for i in range(L):
            rows.append([str(i)] + [_ci(c.prob[i], c.prob_ci[i], ".3f") if i < len(c.prob) else "" for c in est.lens])
        out += ["   " + s for s in _render(header, rows)] + [""]
    if est.ablation:
        out.append(f"== missing-modality ablation: complete vs the condition (target letter: {est.target})")
        header = ["mode", "condition", "removes", "pairs", "logprob drop [95% CI]", "acc complete",
                  "acc condition", "acc drop [95% CI]"]
        rows = [[a.mode, a.condition, a.removes, str(a.n_pairs), _ci(a.logprob_drop, a.logprob_drop_ci, ".3g"),
                 _f(a.accuracy_complete, ".3f"), _f(a.accuracy_condition, ".3f"),
                 _ci(a.accuracy_drop, a.accuracy_drop_ci, ".3f")] for a in est.ablation]
        out += ["   " + s for s in _render(header, rows)] + [""]
    if est.agreement:
        out.append("== agreement between methods (Spearman): 'layers' over per-layer image shares, "
                   "'samples' over per-sample image scores (the first non-text modality measured: the "
                   "image in an image-text study)")
        header = ["kind", "condition", "mode", "method A", "method B", "n", "spearman"]
        rows = [[g.kind, g.condition, g.mode, g.method_a, g.method_b, str(g.n), _f(g.spearman, ".3f")]
                for g in est.agreement]
        out += ["   " + s for s in _render(header, rows)] + [""]
    if est.warnings:
        out.append("== warnings")
        out += [f"   ! {w}" for w in est.warnings]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------- LaTeX
def _tex(s: str) -> str:
    from ..consistency import latex_escape

    return latex_escape(s)


def _tex_ci(v: float, ci, spec: str) -> str:
    return _tex(_ci(v, ci, spec)).replace("[", "{\\footnotesize[").replace("]", "]}")


def format_estimate_latex(est: Estimate) -> str:
    """The per-layer tables and the ablation table as LaTeX ``tabular``s (booktabs), the same
    numbers as ``format_estimate``."""
    out = [f"% modality contributions of {_tex(est.source)}; {est.n_bootstrap} bootstrap resamples, "
           f"{100 * (1 - est.alpha):g}% percentile intervals"]
    for t in est.tables:
        shown, shares = _columns(t)
        head = (["layer"] + [f"$C(\\text{{{MODALITY_COLUMNS[j]}}})$" for j in shown]
                + [f"{MODALITY_COLUMNS[j]} share" for j in shares] + ["$\\Delta$ (dominant)"])
        out += [r"\begin{table}[t]\centering\small",
                r"\begin{tabular}{l" + "r" * len(shown) + "l" * (len(shares) + 1) + r"}\toprule",
                " & ".join(head) + r" \\\midrule"]
        rows = [(_layer(layer), t.contribution[i], t.share[i], t.share_ci[i], t.delta[i], t.delta_ci[i],
                 t.dominant[i]) for i, layer in enumerate(t.layers)]
        o = t.overall
        rows.append(("overall", o.contribution, o.share, o.share_ci, o.delta, o.delta_ci, o.dominant))
        for lab, c, sh, shci, d, dci, dom in rows:
            if lab == "overall" and len(rows) > 1:
                out.append(r"\midrule")
            cells = [lab] + [_f(c[j]) for j in shown] + [_tex_ci(sh[j], shci[j], ".3f") for j in shares]
            out.append(" & ".join(cells) + f" & {_tex_ci(d, dci, '.3g')} ({dom or '--'}) \\\\")
        out += [r"\bottomrule\end{tabular}",
                f"\\caption{{{_tex(t.label)} ($n={t.n_samples}$): {_tex(t.definition)}; overall: "
                f"{_tex(t.overall_rule)}.}}", r"\end{table}", ""]
    if est.ablation:
        out += [r"\begin{table}[t]\centering\small", r"\begin{tabular}{llrrrrl}\toprule",
                r"mode & condition & pairs & log-prob drop & acc.\ complete & acc.\ condition & acc.\ drop \\\midrule"]
        for a in est.ablation:
            out.append(f"{_tex(a.mode)} & {_tex(a.condition)} & {a.n_pairs} & "
                       f"{_tex_ci(a.logprob_drop, a.logprob_drop_ci, '.3g')} & {_f(a.accuracy_complete, '.3f')} & "
                       f"{_f(a.accuracy_condition, '.3f')} & {_tex_ci(a.accuracy_drop, a.accuracy_drop_ci, '.3f')} \\\\")
        out += [r"\bottomrule\end{tabular}",
                f"\\caption{{Missing-modality ablation: \\texttt{{complete}} vs the condition (target letter: "
                f"{est.target}).}}", r"\end{table}", ""]
    return "\n".join(out)
