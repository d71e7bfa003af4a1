"""Other harnesses' prediction files for ``consistency --predictions``, recognised by content.

``read_predictions(path, condition=None, mode="direct", variant="", fallback=None)`` detects the
format and returns ``consistency.Prediction`` rows; a file it does not recognise is a
``UsageError`` saying what it looked for. Raw responses are parsed by the same answer parser as
the ``cot`` mode (``answers.parse_choice``) against the item's options. Formats:

- ``xai_bias`` JSONL (``consistency.load_predictions``): ``{"id", "condition", "prediction" |
  "response" + "options", "answer"}`` a line. The official MMMU-Pro output files
  (``mmmu-pro/output/*.jsonl``, ``infer/infer_*.py``: the item's fields plus ``response``) are
  this format without ``condition`` (label the file: ``PATH=CONDITION``).
- lmms-eval ``--log_samples`` (``samples_<task>.jsonl``, one object a line, or an older
  ``<task>.json`` array): ``doc_id``, ``doc`` (the item without its images), ``target``,
  ``resps`` / ``filtered_resps`` (the model's text), plus the task's metric fields. The id is
  ``doc["id"]`` (MMMU, MMMU-Pro), else ``doc["index"]`` (MMBench, MMStar), else the ``id`` of a
  metric field, else ``doc_id`` (the row number: AI2D, ScienceQA, as ``xai_bias.schemas`` numbers
  them). Options: ``doc["options"]``, the ``A``..``Z`` fields, or ``doc["choices"]``. The answer:
  ``target`` when it is a letter, an option index, or an option's text; else ``doc["answer"]``.
- VLMEvalKit result files (``<model>_<dataset>.xlsx`` / ``.tsv`` / ``.csv``, also the judged
  ``*_result.xlsx``): one row per item with ``index`` (or ``id``), ``question``, the options in
  columns ``A``..``Z``, ``answer`` and the raw ``prediction``; the id is ``id`` when the table has
  one, else ``index`` (MMBench's and MMStar's own index, as ``xai_bias.schemas`` uses them).

A file holds one condition (a run of the harness): its predictions get ``condition`` (the
``PATH=CONDITION`` label), unless its rows carry a ``condition`` field themselves.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from .answers import parse_choice
from .consistency import Prediction
from .errors import SampleError, UsageError
from .samples import parse_options
from .types import LETTERS

TABLE_SUFFIXES = (".xlsx", ".tsv", ".csv")
FORMATS = ("xai_bias", "lmms_eval", "vlmevalkit")


def _first_json(path: Path) -> Any:
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    text = head.decode("utf-8", errors="replace").lstrip()
    if text.startswith("["):
        return "array"
    line = text.split("\n", 1)[0]
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def detect_format(path: str | Path) -> str:
    """One of ``FORMATS`` for the file, or UsageError naming what was looked for."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"predictions file not found: {path}")
    if path.suffix.lower() in TABLE_SUFFIXES:
        header = next(iter(_table_rows(path)), {})
        if "prediction" not in header:
            raise UsageError(f"{path}: a {path.suffix} predictions table needs a 'prediction' column (VLMEvalKit's "
                             f"result files); its columns are {', '.join(header) or '(none)'}")
        return "vlmevalkit"
    first = _first_json(path)
    if first == "array":
        return "lmms_eval"
    if isinstance(first, dict):
        if "doc_id" in first and ("filtered_resps" in first or "resps" in first):
            return "lmms_eval"
        if ("id" in first or "sample_id" in first) and ("prediction" in first or "response" in first):
            return "xai_bias"
    keys = ", ".join(first) if isinstance(first, dict) else "not a JSON object"
    raise UsageError(
        f"{path}: predictions format not recognised (first line: {keys}). Expected xai_bias JSONL (id, condition, "
        "prediction | response + options, answer; the official MMMU-Pro output files), lmms-eval --log_samples "
        "(doc_id, doc, target, resps / filtered_resps), or a VLMEvalKit result table (.xlsx / .tsv / .csv with a "
        "'prediction' column)")


def read_predictions(path: str | Path, condition: str | None = None, mode: str = "direct", variant: str = "",
                     fallback: str | None = None) -> list[Prediction]:
    """The predictions in ``path``, whatever harness wrote it (see module docstring)."""
    return [p for p, _ in read_prediction_lines(path, condition, mode, variant, fallback)]


def read_prediction_lines(path: str | Path, condition: str | None = None, mode: str = "direct",
                          variant: str = "", fallback: str | None = None) -> list[tuple[Prediction, str]]:
    """Each prediction in ``path`` with where it is ("file:line" / "file:row"), any format."""
    from .consistency import _read_prediction_lines

    fmt = detect_format(path)
    if fmt == "xai_bias":
        return _read_prediction_lines(path, condition=condition, mode=mode, variant=variant, fallback=fallback)
    rows = _lmms_eval_rows(Path(path)) if fmt == "lmms_eval" else _vlmevalkit_rows(Path(path))
    out = []
    for where, row in rows:
        cond = row.get("condition") or condition
        if not cond:
            raise SampleError(where, f"a {fmt} file holds one condition: label it PATH=CONDITION")
        out.append((Prediction(row["id"], str(cond), mode, _choice(row, where, fallback), row["answer"], variant),
                    where))
    return out


def _choice(row: dict, where: str, fallback: str | None) -> str:
    options, response = row["options"], row["response"]
    if options:
        return parse_choice(response, options, fallback=fallback)
    letter = response.strip().strip("()").upper()
    if len(letter) == 1 and letter in LETTERS:
        return letter
    raise SampleError(where, "the item's options are not in the file: cannot parse the response "
                             f"{response[:60]!r}")


def _letter(value: Any, options: tuple[str, ...]) -> str:
    """An answer as a letter: a letter, an option index, or an option's text; "" otherwise."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        k = int(value)
        return LETTERS[k] if options and 0 <= k < len(options) else ""
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS:
        return text.upper()
    return LETTERS[options.index(text)] if text in options else ""


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    return "" if text.strip().lower() == "nan" else text


def _lettered(record: dict) -> tuple[str, ...]:
    out = []
    for letter in LETTERS:
        value = _cell(record.get(letter))
        if not value:
            break
        out.append(value)
    return tuple(out)


def _response(value: Any) -> str:
    """The first text in lmms-eval's (possibly nested) response lists."""
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value if isinstance(value, str) else ""


def _lmms_eval_rows(path: Path) -> Iterator[tuple[str, dict]]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        objs = [(f"{path}[{i}]", o) for i, o in enumerate(json.loads(text))]
    else:
        objs = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    objs.append((f"{path}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise SampleError(f"{path}:{lineno}", f"not a JSON line ({exc.msg})") from None
    for where, obj in objs:
        if not isinstance(obj, dict) or "doc_id" not in obj:
            raise SampleError(where, "not an lmms-eval sample (no doc_id)")
        doc = obj.get("doc") if isinstance(obj.get("doc"), dict) else {}
        sid = doc.get("id", doc.get("index"))
        if sid is None:
            sid = next((v["id"] for v in obj.values() if isinstance(v, dict) and "id" in v), obj["doc_id"])
        try:
            options = (parse_options(doc["options"]) if doc.get("options") not in (None, "", [])
                       else _lettered(doc) or tuple(str(c) for c in doc.get("choices") or ()))
        except ValueError as exc:
            raise SampleError(f"{where} (id {sid})", str(exc)) from None
        answer = _letter(obj.get("target"), options) or _letter(doc.get("answer"), options)
        resp = _response(obj.get("filtered_resps")) or _response(obj.get("resps"))
        yield f"{where} (id {sid})", {"id": str(sid), "options": options, "response": resp, "answer": answer,
                                      "condition": obj.get("condition")}


def _table_rows(path: Path) -> Iterator[dict]:
    """Rows of an .xlsx (first sheet) / .tsv / .csv table as dicts."""
    if path.suffix.lower() == ".xlsx":
        try:
            from openpyxl import load_workbook
        except ImportError:  # pragma: no cover - a declared dependency
            raise UsageError("reading .xlsx predictions needs openpyxl: pip install openpyxl") from None
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zipfile / openpyxl errors for a file that is not a workbook
            raise SampleError(str(path), f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
        try:
            rows = book.worksheets[0].iter_rows(values_only=True)
            header = [str(h) if h is not None else "" for h in next(rows, ())]
            for values in rows:
                yield dict(zip(header, values))
        finally:
            book.close()
        return
    with path.open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")


def _vlmevalkit_rows(path: Path) -> Iterator[tuple[str, dict]]:
    for n, rec in enumerate(_table_rows(path), start=2):  # row 1 is the header
        sid = _cell(rec.get("id")) or _cell(rec.get("index"))
        where = f"{path}:{n}" + (f" (id {sid})" if sid else "")
        if not sid:
            raise SampleError(where, "no 'index' or 'id' to name the item")
        if isinstance(rec.get("index"), float) and rec["index"].is_integer() and not _cell(rec.get("id")):
            sid = str(int(rec["index"]))
        options = _lettered(rec)
        yield where, {"id": sid, "options": options, "response": _cell(rec.get("prediction")),
                      "answer": _letter(_cell(rec.get("answer")), options), "condition": _cell(rec.get("condition"))}


__all__ = ["FORMATS", "detect_format", "read_predictions"]
