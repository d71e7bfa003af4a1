"""Describe a trace (provenance, schema, accuracy, problems) and one record, as dicts or text.

``describe`` / ``describe_record`` return JSON-serialisable dicts (NaN -> None);
``format_description`` / ``format_record`` render them as plain-text tables.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

import numpy as np

from ..types import LETTERS, MODALITIES, MODES
from . import _schema as S
from .reader import Trace, open_trace

#: Provenance attributes shown first, in this order.
_PROVENANCE_ORDER = ("model_id", "model_arch", "dtype", "device", "n_layers", "n_heads", "command",
                     "sample_set", "seed", "package_versions", "created", "xai_bias_version")
_HIDDEN = (S.N_RECORDS_ATTR, "schema_version", S.IN_PROGRESS_ATTR, S.PARTIAL_ATTR, "skipped_samples")


def _with_trace(trace: Trace | str | os.PathLike):
    if isinstance(trace, Trace):
        return trace, False
    return open_trace(trace), True


def _num(x: Any, digits: int = 6) -> Any:
    """float -> rounded float, NaN/inf -> None (JSON-safe)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, digits)


def _order(values: Iterable[str], known: Sequence[str]) -> list[str]:
    vals = set(values)
    return [v for v in known if v in vals] + sorted(vals - set(known))


def describe(trace: Trace | str | os.PathLike) -> dict[str, Any]:
    """Provenance, schema, datasets, record count, accuracy per (condition, mode), problems."""
    t, owned = _with_trace(trace)
    try:
        attrs = t.attrs
        provenance = {k: attrs[k] for k in _PROVENANCE_ORDER if k in attrs}
        provenance.update({k: v for k, v in attrs.items() if k not in provenance and k not in _HIDDEN})
        datasets = [
            {"name": name, "shape": list(t.shape(name)), "dtype": _dtype_name(t, name),
             "attrs": t.dataset_attrs(name)}
            for name in t.datasets()
        ]
        n = t.n_records
        cond = t["records/condition"]
        mode = t["records/mode"]
        status = t["records/status"]
        correct = t["records/correct"]
        pred = t["records/prediction"]
        ok = status == "ok"
        accuracy = []
        from ..conditions import condition_order

        for c in condition_order(cond.tolist()):
            for m in _order(mode[cond == c].tolist(), MODES):
                sel = (cond == c) & (mode == m)
                n_ok = int((sel & ok).sum())
                n_correct = int((sel & ok & correct).sum())
                accuracy.append({
                    "condition": c, "mode": m, "n": int(sel.sum()), "n_ok": n_ok,
                    "n_correct": n_correct, "n_unparsed": int((sel & ok & (pred == "")).sum()),
                    "accuracy": _num(n_correct / n_ok, 4) if n_ok else None,
                })
        sid = t["records/sample_id"]
        problems = [
            {"index": int(i), "sample_id": str(sid[i]), "condition": str(cond[i]), "mode": str(mode[i]),
             "status": str(status[i])}
            for i in np.flatnonzero(~ok)
        ]
        return {
            "path": str(t.path),
            "schema_version": attrs.get("schema_version"),
            "n_records": n,
            "in_progress": bool(attrs.get(S.IN_PROGRESS_ATTR, False)),
            "partial": bool(attrs.get(S.PARTIAL_ATTR, False)),
            "provenance": provenance,
            "datasets": datasets,
            "accuracy": accuracy,
            "problems": problems,
            "skipped_samples": list(attrs.get("skipped_samples") or []),
        }
    finally:
        if owned:
            t.close()


def _dtype_name(t: Trace, name: str) -> str:
    import h5py

    dt = t._dataset(name).dtype
    if h5py.check_string_dtype(dt) is not None:
        return "json" if name == "records/meta" else "utf-8"
    vlen = h5py.check_vlen_dtype(dt)
    if vlen is not None:
        return f"vlen {np.dtype(vlen).name}"
    return dt.name


def describe_record(trace: Trace | str | os.PathLike, i: int) -> dict[str, Any]:
    """One record: fields, option log-probs by letter, role token counts by role name, and a
    compact summary of every measurement ("attention/mass": per-layer head-mean image and text
    mass; "attribution/ig": per-row image and text share; "attribution/shapley": by group)."""
    t, owned = _with_trace(trace)
    try:
        n = t.n_records
        if not -n <= i < n:
            raise IndexError(f"record {i} out of range: {t.path} has {n} records")
        i = int(i) % n
        r = t.record(i)
        roles = list(t.roles)
        lp = np.asarray(r.option_logprobs, np.float64)
        probs = {}
        finite = np.isfinite(lp)
        if finite.any():
            z = np.exp(lp[finite] - lp[finite].max())
            z = z / z.sum()
            letters_f = [LETTERS[j] for j in np.flatnonzero(finite)]
            probs = {L: _num(p, 4) for L, p in zip(letters_f, z)}
        out: dict[str, Any] = {
            "index": i,
            "sample_id": r.sample_id, "condition": r.condition, "mode": r.mode,
            "answer": r.answer, "prediction": r.prediction, "correct": r.correct, "status": r.status,
            "option_logprobs": {LETTERS[j]: _num(v, 4) for j, v in enumerate(lp)},
            "option_probs": probs,
            "role_tokens": {roles[j] if j < len(roles) else str(j): int(v)
                            for j, v in enumerate(r.role_tokens)},
            "n_tokens": int(len(r.input_ids)),
            "meta": dict(r.meta),
            "response": r.response,
            "measurements": {},
        }
        for name in t.measurement_names():
            row = np.asarray(t.rows(name, i, i + 1)[0])
            out["measurements"][name] = _summarize(name, row, roles, t.dataset_attrs(name))
        return out
    finally:
        if owned:
            t.close()


def _role_idx(roles: Sequence[str], names: Iterable[str]) -> list[int]:
    return [roles.index(n) for n in names if n in roles]


def _summarize(name: str, row: np.ndarray, roles: Sequence[str], attrs: dict[str, Any]) -> dict[str, Any]:
    """A compact view of one record's row, driven by the dataset's own attributes (written from
    the method's DatasetSpec): with a role axis and a layer axis, the image and text totals per
    layer (other axes, e.g. heads, averaged); with group names, the value per group."""
    s: dict[str, Any] = {"shape": list(row.shape), "dtype": row.dtype.name}
    for key in ("method", "units"):
        if key in attrs:
            s[key] = attrs[key]
    if row.dtype.kind in "fc" and row.size and np.isnan(row).all():
        s["missing"] = True  # the record did not have this measurement
        return s
    vals = row.astype(np.float64)
    fin = vals[np.isfinite(vals)]
    if fin.size:
        s.update(min=_num(fin.min()), max=_num(fin.max()), mean=_num(fin.mean()))
    n_nan = int(vals.size - fin.size)
    if n_nan:
        s["non_finite"] = n_nan
    role_ax = S.role_axis(name, attrs)
    role_ax = None if role_ax is None else role_ax - 1  # the row's axis
    layer_ax = attrs.get("layer_axis", 0 if role_ax is not None and row.ndim >= 2 else None)
    if (role_ax is not None and layer_ax is not None and row.ndim >= 2 and role_ax != layer_ax
            and row.shape[role_ax] == len(roles)):
        first = int(attrs.get("first_layer", -1 if name == "attribution/ig" else 0))
        v = np.moveaxis(vals, (layer_ax, role_ax), (0, -1))  # [L, ..., n_roles]
        v = v.reshape(v.shape[0], -1, v.shape[-1]).mean(1)  # other axes averaged
        image = _role_idx(roles, MODALITIES["image"])
        text = _role_idx(roles, MODALITIES["text"])
        s["per_layer"] = [{"layer": ("embed" if first + l < 0 else first + l),
                           "image": _num(v[l, image].sum(), 4), "text": _num(v[l, text].sum(), 4)}
                          for l in range(v.shape[0])]
    elif row.ndim == 1 and isinstance(attrs.get("groups"), list) and len(attrs["groups"]) == row.shape[0]:
        s["by_group"] = {str(g): _num(v, 6) for g, v in zip(attrs["groups"], row)}
    elif row.size <= 128:
        s["values"] = [_num(v, 6) for v in row.reshape(-1)] if row.ndim else _num(row)
    return s


# ---------------------------------------------------------------- text rendering
def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[_cell(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(headers)]
    numeric = [bool(rows) and all(_is_num(r[j]) for r in rows) for j in range(len(headers))]

    def fmt(vals: Sequence[str]) -> str:
        parts = [v.rjust(w) if numeric[j] else v.ljust(w) for j, (v, w) in enumerate(zip(vals, widths))]
        return (indent + "  ".join(parts)).rstrip()

    lines = [fmt(list(headers)), indent + "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or v is None


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        import json

        text = json.dumps(v, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(v)


def format_description(d: dict[str, Any], max_problems: int = 20) -> str:
    """Plain-text rendering of ``describe``'s dict."""
    lines = [f"Trace {d['path']}",
             f"  schema_version {d['schema_version']} · {d['n_records']} records"
             + (" · in progress or interrupted (continue it with --resume)" if d.get("in_progress") else
                " · partial: its run stopped before all its work items (continue it with --resume)"
                if d.get("partial") else "")]
    lines += ["", "Provenance"]
    lines.append(_table(["attribute", "value"], [[k, v] for k, v in d["provenance"].items()]))
    lines += ["", "Datasets"]
    lines.append(_table(["name", "shape", "dtype", "settings"],
                        [[x["name"], "×".join(str(s) for s in x["shape"]), x["dtype"], x["attrs"] or ""]
                         for x in d["datasets"]]))
    lines += ["", "Accuracy (records with status ok; unparsed answers count as wrong)"]
    if d["accuracy"]:
        lines.append(_table(["condition", "mode", "n", "ok", "correct", "unparsed", "accuracy"],
                            [[a["condition"], a["mode"], a["n"], a["n_ok"], a["n_correct"], a["n_unparsed"],
                              a["accuracy"]] for a in d["accuracy"]]))
    else:
        lines.append("  (no records)")
    probs = d["problems"]
    if probs:
        lines += ["", f"Records not ok ({len(probs)})"]
        lines.append(_table(["#", "sample_id", "condition", "mode", "status"],
                            [[p["index"], p["sample_id"], p["condition"], p["mode"], p["status"]]
                             for p in probs[:max_problems]]))
        if len(probs) > max_problems:
            lines.append(f"  ... and {len(probs) - max_problems} more (--json lists all)")
    skipped = d.get("skipped_samples") or []
    if skipped:
        lines += ["", f"Samples skipped when loading ({len(skipped)}; not in the trace)"]
        lines += [f"  {s}" for s in skipped[:max_problems]]
        if len(skipped) > max_problems:
            lines.append(f"  ... and {len(skipped) - max_problems} more (--json lists all)")
    return "\n".join(lines)


def _method_label(method: str) -> str:
    """The registered label of the method that wrote a dataset (the name when unregistered)."""
    from ..instruments.base import load_methods

    methods = load_methods()
    return methods.get(method).label if method in methods else method


def format_record(d: dict[str, Any]) -> str:
    """Plain-text rendering of ``describe_record``'s dict."""
    lines = [f"Record {d['index']}: sample {d['sample_id']} · {d['condition']} · {d['mode']}"]
    fields = [["answer", d["answer"] or "-"], ["prediction", d["prediction"] or "(unparsed)"],
              ["correct", d["correct"]], ["status", d["status"]], ["tokens", d["n_tokens"]]]
    if d.get("meta"):
        fields.append(["meta", d["meta"]])
    lines.append(_table(["field", "value"], fields))
    if d["option_logprobs"]:
        lines += ["", "Options"]
        lines.append(_table(["letter", "log-prob", "prob"],
                            [[k, v, d["option_probs"].get(k)] for k, v in d["option_logprobs"].items()]))
    lines += ["", "Tokens per role"]
    lines.append(_table(["role", "tokens"], [[k, v] for k, v in d["role_tokens"].items()]))
    if d.get("response"):
        resp = d["response"]
        lines += ["", "Response", "  " + (resp if len(resp) <= 500 else resp[:497] + "...").replace("\n", "\n  ")]
    for name, s in d["measurements"].items():
        what = f"  ({_method_label(s['method'])}; {s['units']})" if "method" in s and "units" in s else ""
        lines += ["", f"/{name}  {'×'.join(str(x) for x in s['shape']) or 'scalar'} {s['dtype']}{what}"]
        if s.get("missing"):
            lines.append("  (not measured for this record)")
            continue
        stats = ", ".join(f"{k} {_cell(s[k])}" for k in ("min", "max", "mean", "non_finite") if k in s)
        if stats:
            lines.append("  " + stats)
        if "per_layer" in s:
            lines.append(_table(["layer", "image", "text"],
                                [[x["layer"], x["image"], x["text"]] for x in s["per_layer"]]))
        elif "by_group" in s:
            lines.append(_table(["group", "value"], [[k, v] for k, v in s["by_group"].items()]))
        elif "values" in s:
            v = s["values"]
            lines.append("  values " + (_cell(v) if not isinstance(v, list) else
                                        " ".join(_cell(x) for x in v)))
    return "\n".join(lines)
