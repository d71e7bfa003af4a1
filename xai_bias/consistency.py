"""The ablation study's tables (Zheng et al. 2025, Tables 1 and 2) from predictions.

Input rows are ``(sample_id, condition, mode, prediction, answer)`` with an optional sixth
``variant`` (option variant, e.g. "standard4"): a sequence of such tuples, a mapping of columns
(``{"sample_id": array, "condition": ..., "mode": ..., "prediction": ..., "answer": ...,
["variant": ...]}``, as a trace's columns), or ``load_predictions(path)``'s result.

Definitions (Table 2): two conditions are consistent on a sample when they predict the same
letter; an unparsed prediction ("") agrees with nothing. "All" consistent: the three agree; "All"
inconsistent: the three predictions are pairwise different (so All consistent + inconsistent can
be fewer than n). Percentages are over all samples of the table: the samples that have every
condition the table compares; samples missing one are listed in ``missing`` and left out.
A consistent prediction is "correct" when it equals the gold answer, else "wrong".
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .answers import parse_choice
from .errors import SampleError, UsageError
from .samples import parse_options
from .types import LETTERS


@dataclass(frozen=True)
class Prediction:
    """One prediction row (``prediction`` "" when unparsed, ``answer`` "" when unknown)."""

    sample_id: str
    condition: str
    mode: str
    prediction: str
    answer: str
    variant: str = ""

    @property
    def correct(self) -> bool:
        return bool(self.prediction) and self.prediction == self.answer


def as_predictions(rows: Any) -> list[Prediction]:
    """Normalise rows (tuples, Prediction objects or a mapping of columns) to Predictions."""
    if isinstance(rows, Mapping):
        need = ("sample_id", "condition", "mode", "prediction", "answer")
        missing = [k for k in need if k not in rows]
        if missing:
            raise UsageError(f"prediction columns missing: {', '.join(missing)}")
        cols = [list(rows[k]) for k in need] + ([list(rows["variant"])] if "variant" in rows else [])
        rows = list(zip(*cols))
    out = []
    for r in rows:
        if isinstance(r, Prediction):
            out.append(r)
            continue
        r = tuple(r)
        if len(r) not in (5, 6):
            raise UsageError(f"a prediction row needs 5 or 6 fields (sample_id, condition, mode, prediction, answer[, variant]), got {r!r}")
        out.append(Prediction(*(_s(x) for x in r)))
    return out


def rows_from_trace(trace: Any) -> list[Prediction]:
    """Prediction rows from an open trace (``store.open_trace``). The option variant comes from
    each record's ``meta["option_variant"]`` (set by ``options.reduce_options``), else "".
    Records whose status is not "ok" (the run failed on them) are not predictions: left out."""
    keys = ("sample_id", "condition", "mode", "prediction", "answer")
    cols = {k: list(trace.column(f"records/{k}")) for k in keys}
    n = len(cols["sample_id"])
    metas = list(trace.column("records/meta")) if trace.has("records/meta") else [{}] * n
    cols["variant"] = [str(m.get("option_variant", "")) if isinstance(m, Mapping) else "" for m in metas]
    status = list(trace.column("records/status")) if trace.has("records/status") else ["ok"] * n
    keep = [i for i in range(n) if str(status[i]) == "ok"]
    return as_predictions({k: [v[i] for i in keep] for k, v in cols.items()})


def _s(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bytes):
        return x.decode("utf-8")
    return str(x)


DUPLICATE_POLICIES = ("error", "first", "last")


def load_predictions(path: str | Path, condition: str | None = None, mode: str = "direct",
                     variant: str = "", fallback: str | None = None,
                     on_duplicate: str = "error") -> list[Prediction]:
    """Read a predictions JSONL (DESIGN.md): ``{"id", "condition", "prediction" | ("response" +
    "options"), "answer"}`` a line; ``mode`` and ``variant`` fields are optional. ``condition`` /
    ``mode`` / ``variant`` fill lines that lack them. A bad line raises SampleError naming it; so
    does a second line for the same (id, condition, mode, variant) unless ``on_duplicate`` is
    "first" or "last" (which of them to keep)."""
    lines = _read_prediction_lines(path, condition, mode, variant, fallback)
    return _deduplicated(lines, on_duplicate)


def load_prediction_files(files: Sequence[tuple[str | Path, str | None]], on_duplicate: str = "error",
                          **kwargs: Any) -> list[Prediction]:
    """Predictions of several files (``(path, condition for lines without one)``) in any
    harness's format (``harness_formats``), duplicates checked across all of them (the same file
    given twice is refused, naming both lines)."""
    from .harness_formats import read_prediction_lines

    lines = [x for path, cond in files for x in read_prediction_lines(path, cond, **kwargs)]
    return _deduplicated(lines, on_duplicate)


def _deduplicated(lines: list[tuple[Prediction, str]], on_duplicate: str) -> list[Prediction]:
    """Predictions of ``(prediction, "file:line")`` pairs, one per (id, condition, mode, variant)."""
    if on_duplicate not in DUPLICATE_POLICIES:
        raise UsageError(f"on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}, got {on_duplicate!r}")
    index: dict[tuple[str, str, str, str], tuple[int, str]] = {}
    out: list[Prediction] = []
    for pred, where in lines:
        key = (pred.sample_id, pred.condition, pred.mode, pred.variant)
        if key not in index:
            index[key] = (len(out), where)
            out.append(pred)
        elif on_duplicate == "error":
            raise SampleError(where, f"a second prediction for id {pred.sample_id!r}, condition "
                                     f"{pred.condition!r} (the first is at {index[key][1]}); pass "
                                     "--on-duplicate first|last to keep one of them")
        elif on_duplicate == "last":
            out[index[key][0]] = pred
    return out


def _read_prediction_lines(path: str | Path, condition: str | None = None, mode: str = "direct",
                           variant: str = "", fallback: str | None = None) -> list[tuple[Prediction, str]]:
    """Each line's Prediction with where it is ("file:line")."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read predictions file {path}: {exc}") from None
    out = []
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SampleError(where, f"not a JSON line ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(obj, dict):
            raise SampleError(where, "line is not a JSON object")
        sid = obj.get("id", obj.get("sample_id"))
        if sid is None or str(sid) == "":
            raise SampleError(where, "missing 'id'")
        line = where
        where = f"{where} (id {sid})"
        cond = obj.get("condition", condition)
        if not cond:
            raise SampleError(where, "missing 'condition' (pass condition= for a file of one condition)")
        if "prediction" in obj:
            pred = obj["prediction"]
            if pred is None:
                pred = ""
            if not isinstance(pred, str) or (pred and (len(pred.strip()) != 1 or pred.strip().upper() not in LETTERS)):
                raise SampleError(where, f"'prediction' must be a letter or \"\", got {pred!r}")
            pred = pred.strip().upper()
        elif "response" in obj:
            if "options" not in obj:
                raise SampleError(where, "has 'response' but no 'options' to parse it against")
            try:
                options = parse_options(obj["options"])
            except ValueError as exc:
                raise SampleError(where, str(exc)) from None
            response = obj["response"] if isinstance(obj["response"], str) else ""
            pred = parse_choice(response, options, fallback=fallback)
        else:
            raise SampleError(where, "needs 'prediction' or 'response' + 'options'")
        answer = obj.get("answer") or ""
        if not isinstance(answer, str):
            raise SampleError(where, f"'answer' must be a letter, got {answer!r}")
        out.append((Prediction(str(sid), str(cond), str(obj.get("mode") or mode), pred,
                               answer.strip().upper(), str(obj.get("variant") or variant)), line))
    return out


def _cond_order(names: Iterable[str], first: str = "complete") -> list[str]:
    """``names`` with ``first`` first, then in the condition registry's order (unknown last)."""
    from .conditions import condition_order

    names = set(names)
    return ([first] if first in names else []) + [c for c in condition_order(names) if c != first]


def _index(preds: list[Prediction]) -> dict[tuple[str, str], dict[str, dict[str, Prediction]]]:
    """(mode, variant) -> condition -> sample_id -> Prediction (a repeated key: the last wins;
    ``load_predictions`` refuses repeated lines unless told which to keep)."""
    out: dict[tuple[str, str], dict[str, dict[str, Prediction]]] = {}
    for p in preds:
        out.setdefault((p.mode, p.variant), {}).setdefault(p.condition, {})[p.sample_id] = p
    return out


# ---------------------------------------------------------------- Table 1: accuracy

@dataclass(frozen=True)
class AccuracyRow:
    """Accuracy of one condition (for one mode and option variant).

    ``n``: samples with a known answer; ``diff``: accuracy minus that of ``complete`` in the same
    mode/variant (None when there is no ``complete``); ``unparsed``: predictions "".
    """

    condition: str
    mode: str
    variant: str
    n: int
    correct: int
    accuracy: float
    diff: float | None
    unparsed: int


@dataclass(frozen=True)
class AccuracyTable:
    """Paper's Table 1: one row per (mode, variant, condition)."""

    rows: tuple[AccuracyRow, ...]
    complete: str = "complete"

    def get(self, condition: str, mode: str | None = None, variant: str | None = None) -> AccuracyRow:
        for r in self.rows:
            if r.condition == condition and mode in (None, r.mode) and variant in (None, r.variant):
                return r
        raise KeyError((condition, mode, variant))


def accuracy_table(rows: Any, complete: str = "complete") -> AccuracyTable:
    """Accuracy per condition (per mode / option variant) and its difference from ``complete``."""
    index = _index(as_predictions(rows))
    out = []
    for (mode, variant) in sorted(index):
        by_cond = index[(mode, variant)]
        acc: dict[str, AccuracyRow] = {}
        for cond in _cond_order(by_cond, complete):
            ps = [p for p in by_cond[cond].values() if p.answer]
            n = len(ps)
            correct = sum(p.correct for p in ps)
            unparsed = sum(not p.prediction for p in by_cond[cond].values())
            acc[cond] = AccuracyRow(cond, mode, variant, n, correct, correct / n if n else float("nan"), None, unparsed)
        base = acc.get(complete)
        for cond, r in acc.items():
            diff = None if base is None or cond == complete else r.accuracy - base.accuracy
            out.append(AccuracyRow(r.condition, r.mode, r.variant, r.n, r.correct, r.accuracy,
                                   0.0 if cond == complete else diff, r.unparsed))
    return AccuracyTable(tuple(out), complete)


# ---------------------------------------------------------------- Table 2: consistency

@dataclass(frozen=True)
class ConsistencyRow:
    """One row of Table 2 (``name`` e.g. "Complete & Text"; ``conditions`` compared).

    consistent + inconsistent == n for pairs; for "All", n - consistent - inconsistent samples
    are partly consistent (two agree, one differs). consistent_correct + consistent_wrong ==
    consistent. Percentages are 0..100 over n (so consistent_correct_pct + consistent_wrong_pct
    == consistent_pct: the paper's rows for the consistent samples that are correct / wrong).
    """

    name: str
    conditions: tuple[str, ...]
    n: int
    consistent: int
    consistent_pct: float
    inconsistent: int
    inconsistent_pct: float
    consistent_correct: int
    consistent_wrong: int
    consistent_correct_pct: float = float("nan")
    consistent_wrong_pct: float = float("nan")


@dataclass(frozen=True)
class ConsistencyTable:
    """Paper's Table 2 for one mode / option variant.

    ``roles``: label -> condition (Complete, Text, Image); ``n``: samples in the table;
    ``missing``: (sample_id, conditions it lacks) of samples left out.
    """

    rows: tuple[ConsistencyRow, ...]
    roles: tuple[tuple[str, str], ...]
    n: int
    missing: tuple[tuple[str, tuple[str, ...]], ...]
    mode: str
    variant: str

    def row(self, name: str) -> ConsistencyRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)


def _agree(*preds: str) -> bool:
    return bool(preds[0]) and all(p == preds[0] for p in preds)


def _pairwise_different(*preds: str) -> bool:
    return all(not _agree(a, b) for i, a in enumerate(preds) for b in preds[i + 1:])


def consistency_table(rows: Any, complete: str = "complete", text: str = "text_white",
                      image: str | None = "image_only", mode: str | None = None,
                      variant: str | None = None) -> ConsistencyTable:
    """Table 2: pairwise (and, with three conditions, all-three) prediction consistency.

    With ``image=None`` only "Complete & Text" is reported (two conditions). ``mode`` /
    ``variant`` pick one group when the rows hold several (else UsageError lists them).
    """
    index = _index(as_predictions(rows))
    groups = [g for g in sorted(index) if mode in (None, g[0]) and variant in (None, g[1])]
    if not groups:
        raise UsageError(f"no predictions for mode={mode!r} variant={variant!r}; present: {sorted(index)}")
    if len(groups) > 1:
        raise UsageError(f"predictions hold several (mode, variant) groups {groups}: pick one with mode=/variant=")
    g_mode, g_variant = groups[0]
    by_cond = index[groups[0]]
    roles = [("Complete", complete), ("Text", text)] + ([("Image", image)] if image else [])
    conds = [c for _, c in roles]
    if len(set(conds)) != len(conds):
        raise UsageError(f"the compared conditions must differ: {conds}")
    absent = [c for c in conds if c not in by_cond]
    if absent:
        raise UsageError(f"no predictions for condition(s) {', '.join(absent)}; present: {', '.join(_cond_order(by_cond))}")

    all_ids: dict[str, None] = {}
    for c in conds:
        all_ids.update(dict.fromkeys(by_cond[c]))
    ids, missing = [], []
    for sid in all_ids:
        lacks = tuple(c for c in conds if sid not in by_cond[c])
        (missing.append((sid, lacks)) if lacks else ids.append(sid))
    n = len(ids)

    def pct(k: int) -> float:
        return 100.0 * k / n if n else float("nan")

    def gold(sid: str) -> str:
        return next((by_cond[c][sid].answer for c in conds if by_cond[c][sid].answer), "")

    combos = [(f"{roles[0][0]} & {roles[1][0]}", (0, 1))]
    if image:
        combos += [(f"{roles[0][0]} & {roles[2][0]}", (0, 2)), (f"{roles[1][0]} & {roles[2][0]}", (1, 2)),
                   ("All", (0, 1, 2))]
    out = []
    for name, idx in combos:
        cons = incons = right = 0
        for sid in ids:
            preds = [by_cond[conds[i]][sid].prediction for i in idx]
            if _agree(*preds):
                cons += 1
                right += preds[0] == gold(sid)
            elif _pairwise_different(*preds):
                incons += 1
        out.append(ConsistencyRow(name, tuple(conds[i] for i in idx), n, cons, pct(cons), incons, pct(incons),
                                  right, cons - right, pct(right), pct(cons - right)))
    return ConsistencyTable(tuple(out), tuple(roles), n, tuple(missing), g_mode, g_variant)


# ---------------------------------------------------------------- formatters

FORMATS = ("md", "latex", "csv", "json")
DECIMALS = 2
"""Decimals of every percentage in md / latex / csv output: the paper's precision (56.53)."""


def _f(x: float | None, signed: bool = False, decimals: int = DECIMALS) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}"


def _check_decimals(decimals: int) -> int:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 10:
        raise UsageError(f"decimals must be an integer from 0 to 10, got {decimals!r}")
    return decimals


def _table_cells(table: AccuracyTable | ConsistencyTable,
                 decimals: int = DECIMALS) -> tuple[list[str], list[list[str]], str]:
    def f(x: float | None, signed: bool = False) -> str:
        return _f(x, signed, decimals)

    if isinstance(table, AccuracyTable):
        show_group = len({(r.mode, r.variant) for r in table.rows}) > 1 or any(r.variant for r in table.rows)
        head = (["Mode", "Options"] if show_group else []) + ["Condition", "n", "Accuracy (%)", f"Δ vs {table.complete}"]
        body = [([r.mode, r.variant or "all"] if show_group else [])
                + [r.condition, str(r.n), f(100 * r.accuracy),
                   f(None if r.diff is None or r.condition == table.complete else 100 * r.diff, signed=True)]
                for r in table.rows]
        caption = "Accuracy per condition and its difference from the complete input (percentage points)."
        return head, body, caption
    head = ["Conditions", "Consistent", "Consistent (%)", "Inconsistent", "Inconsistent (%)",
            "Consistent & correct", "Consistent & correct (%)", "Consistent & wrong", "Consistent & wrong (%)"]
    body = [[r.name, str(r.consistent), f(r.consistent_pct), str(r.inconsistent), f(r.inconsistent_pct),
             str(r.consistent_correct), f(r.consistent_correct_pct), str(r.consistent_wrong),
             f(r.consistent_wrong_pct)] for r in table.rows]
    roles = ", ".join(f"{k} = {v}" for k, v in table.roles)
    caption = f"Prediction consistency over {table.n} samples ({roles}; mode {table.mode}"
    caption += f", options {table.variant})." if table.variant else ")."
    if table.missing:
        caption += f" {len(table.missing)} sample(s) missing a condition left out."
    return head, body, caption


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$",
        "–": "--", "|": r"$|$", "·": r"$\cdot$", "φ": r"$\phi$"}


def latex_escape(s: str) -> str:
    """Text for LaTeX: every special character escaped (the one escape of the tables: Tables 1
    and 2 here, the estimate's tables in ``estimate.report``)."""
    return "".join(_TEX.get(ch, ch) for ch in s)


def _tex_cell(s: str) -> str:
    """Escape a cell; a leading minus of a number becomes a math minus."""
    return "$-$" + latex_escape(s[1:]) if s[:1] == "-" and s[1:2].isdigit() else latex_escape(s)


def to_dict(table: AccuracyTable | ConsistencyTable) -> dict:
    """A JSON-ready dict of the table (NaN -> None)."""
    def clean(x: Any) -> Any:
        if isinstance(x, float) and x != x:
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    d = asdict(table)
    d["table"] = "accuracy" if isinstance(table, AccuracyTable) else "consistency"
    return clean(d)


def format_table(table: AccuracyTable | ConsistencyTable, fmt: str = "md", decimals: int = DECIMALS) -> str:
    """Render a table as ``md``, ``latex`` (booktabs), ``csv`` or ``json``; percentages with
    ``decimals`` decimals (json keeps full precision)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    _check_decimals(decimals)
    if fmt == "json":
        return json.dumps(to_dict(table), indent=2, ensure_ascii=False)
    head, body, caption = _table_cells(table, decimals)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(head)
        w.writerows(body)
        return buf.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i == 0 or not _numeric_col(body, i) else "---:" for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + f"\n\n{caption}\n"
    align = "".join("r" if _numeric_col(body, i) else "l" for i in range(len(head)))
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex_cell(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _numeric_col(body: Sequence[Sequence[str]], i: int) -> bool:
    vals = [row[i] for row in body if row[i] not in ("–", "")]
    try:
        [float(v) for v in vals]
    except ValueError:
        return False
    return bool(vals)


#: the modalities a "Text" condition of Table 2 may remove (everything but the text)
NON_TEXT = ("image", "video", "audio")


def default_pair(conditions: Iterable[str], modality: str | Sequence[str], prefer: str | None = None) -> str | None:
    """The condition Table 2 compares for ``modality`` (a name or several, in order of
    preference) when none is named: ``prefer`` if present, else the first present (registry
    order) that removes that modality (``Condition.removes``)."""
    from .conditions import condition_order, removes

    present = condition_order(conditions)
    if prefer in present:
        return prefer
    for mod in ([modality] if isinstance(modality, str) else modality):
        found = next((c for c in present if removes(c) == mod), None)
        if found:
            return found
    return None


def report(rows: Any, complete: str = "complete", text: str | None = None, image: str | None = None,
           fmt: str = "md", decimals: int = DECIMALS) -> str:
    """Both tables as one text: Table 1, then Table 2 for every (mode, variant) group that has
    the compared conditions (without an image condition only "Complete & Text"); notes say what
    is left out. ``text`` / ``image`` None: per group, ``text_white`` / ``image_only`` if present,
    else the first registered condition present that removes the image (else the video, else
    the audio) / the text. Percentages
    with ``decimals`` decimals (default 2, the paper's precision)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    _check_decimals(decimals)
    preds = as_predictions(rows)
    if not preds:
        raise UsageError("no predictions to tabulate")
    acc = accuracy_table(preds, complete=complete)
    tables, notes = [], []
    for (mode, variant), by_cond in sorted(_index(preds).items()):
        group = f"mode {mode}" + (f", options {variant}" if variant else "")
        txt = text or default_pair(by_cond, NON_TEXT, prefer="text_white")
        if complete not in by_cond or txt not in by_cond:
            notes.append(f"{group}: no consistency table (needs conditions {complete} and "
                         f"{txt or 'one that removes the image'}; present: {', '.join(_cond_order(by_cond))})")
            continue
        wanted = image or default_pair(by_cond, "text", prefer="image_only")
        img = wanted if wanted in by_cond else None
        if img is None:
            what = f"condition {image} absent" if image else "no condition that removes the text (e.g. image_only)"
            notes.append(f"{group}: {what}, only {complete} & {txt} compared")
        t = consistency_table(preds, complete, txt, img, mode=mode, variant=variant)
        if t.missing:
            notes.append(f"{group}: {len(t.missing)} sample(s) missing a condition left out: "
                         + ", ".join(f"{sid} (no {'/'.join(c)})" for sid, c in t.missing[:10])
                         + (" ..." if len(t.missing) > 10 else ""))
        tables.append(t)
    if fmt == "json":
        return json.dumps({"accuracy": to_dict(acc), "consistency": [to_dict(t) for t in tables], "notes": notes},
                          indent=2, ensure_ascii=False)
    if fmt == "md":
        parts = ["## Table 1: accuracy per condition\n", format_table(acc, "md", decimals)]
        for t in tables:
            parts += [f"## Table 2: prediction consistency (mode {t.mode}{', options ' + t.variant if t.variant else ''})\n",
                      format_table(t, "md", decimals)]
        parts += [f"Note: {n}" for n in notes]
        return "\n".join(parts).rstrip() + "\n"
    if fmt == "csv":
        parts = ["# Table 1: accuracy per condition", format_table(acc, "csv", decimals)]
        for t in tables:
            parts += [f"# Table 2: prediction consistency, mode {t.mode}{', options ' + t.variant if t.variant else ''}",
                      format_table(t, "csv", decimals)]
        parts += [f"# Note: {n}" for n in notes]
        return "\n".join(parts).rstrip() + "\n"
    parts = [format_table(acc, "latex", decimals)] + [format_table(t, "latex", decimals) for t in tables]
    parts += [f"% Note: {n}" for n in notes]
    return "\n".join(parts)
