"""Tables 1 and 2 on hand-made predictions (counts checked by hand), formatters, predictions JSONL."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from xai_bias.consistency import (Prediction, accuracy_table, as_predictions, consistency_table, format_table,
                                  load_predictions, report, rows_from_trace)
from xai_bias.errors import SampleError, UsageError

from .conftest import require_shared, require_tool  # noqa: F401

GPT4O = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmmu_pro_gpt4o"

# sample: (complete, text_white, image_only, answer)
HAND = {
    "s1": ("A", "A", "A", "A"),   # all agree, correct
    "s2": ("B", "B", "C", "A"),   # complete & text agree, wrong; All partly consistent
    "s3": ("A", "B", "C", "C"),   # pairwise different: All inconsistent
    "s4": ("", "", "", "A"),      # unparsed agrees with nothing: All inconsistent
    "s5": ("D", "C", "D", "D"),   # complete & image agree, correct
    "s6": ("A", "A", None, "A"),  # no image_only prediction: left out of Table 2
}
CONDS = ("complete", "text_white", "image_only")


def hand_rows(mode="direct"):
    rows = []
    for sid, (*preds, ans) in HAND.items():
        for cond, p in zip(CONDS, preds):
            if p is not None:
                rows.append((sid, cond, mode, p, ans))
    return rows


def test_table2_hand_counts():
    t = consistency_table(hand_rows())
    assert t.n == 5 and t.missing == (("s6", ("image_only",)),)
    got = {r.name: (r.consistent, r.consistent_pct, r.inconsistent, r.inconsistent_pct, r.consistent_correct,
                    r.consistent_wrong) for r in t.rows}
    assert got == {
        "Complete & Text": (2, 40.0, 3, 60.0, 1, 1),   # s1, s2 agree; s2 wrong
        "Complete & Image": (2, 40.0, 3, 60.0, 2, 0),  # s1, s5
        "Text & Image": (1, 20.0, 4, 80.0, 1, 0),      # s1
        "All": (1, 20.0, 2, 40.0, 1, 0),               # s1 consistent; s3, s4 inconsistent; s2, s5 partly
    }
    assert t.row("All").conditions == CONDS and t.roles == (("Complete", "complete"), ("Text", "text_white"),
                                                             ("Image", "image_only"))


def test_table2_other_conditions_and_two_only():
    rows = hand_rows()
    t = consistency_table(rows, text="text_white", image=None)
    assert [r.name for r in t.rows] == ["Complete & Text"] and t.n == 6 and not t.missing
    assert (t.rows[0].consistent, t.rows[0].inconsistent, t.rows[0].consistent_correct) == (3, 3, 2)
    with pytest.raises(UsageError, match="text_black"):
        consistency_table(rows, text="text_black")
    with pytest.raises(UsageError, match="differ"):
        consistency_table(rows, text="complete")


def test_table1_hand_counts():
    t = accuracy_table(hand_rows())
    got = {r.condition: (r.n, r.correct, round(100 * r.accuracy, 1), None if r.diff is None else round(100 * r.diff, 1),
                         r.unparsed) for r in t.rows}
    assert got == {"complete": (6, 3, 50.0, 0.0, 1), "text_white": (6, 2, 33.3, -16.7, 1),
                   "image_only": (5, 3, 60.0, 10.0, 1)}
    assert [r.condition for r in t.rows] == list(CONDS)


def test_groups_by_mode_and_variant():
    rows = hand_rows("direct") + hand_rows("cot") + [(*r, "standard4") for r in hand_rows("direct")]
    acc = accuracy_table(rows)
    assert {(r.mode, r.variant) for r in acc.rows} == {("direct", ""), ("cot", ""), ("direct", "standard4")}
    assert acc.get("text_white", mode="cot").correct == 2
    with pytest.raises(UsageError, match="several"):
        consistency_table(rows)
    assert consistency_table(rows, mode="cot").row("All").inconsistent == 2
    assert consistency_table(rows, mode="direct", variant="standard4").variant == "standard4"
    text = report(rows)
    assert text.count("## Table 2") == 3 and "options standard4" in text


def test_input_forms():
    rows = hand_rows()
    cols = {k: np.array([r[i] for r in rows]) for i, k in enumerate(("sample_id", "condition", "mode", "prediction", "answer"))}
    assert as_predictions(cols) == as_predictions(rows) == [Prediction(*r) for r in rows]
    assert consistency_table(cols) == consistency_table(rows)

    class FakeTrace:  # duck-typed like store.Trace
        def column(self, name):
            name = name.split("/")[-1]
            if name == "meta":
                return [{"option_variant": "standard4"}] * len(rows)
            if name == "status":
                return ["ok"] * (len(rows) - 1) + ["error: out of memory"]
            return cols[name]

        def has(self, name):
            return True

    got = rows_from_trace(FakeTrace())
    assert len(got) == len(rows) - 1 and {p.variant for p in got} == {"standard4"}
    with pytest.raises(UsageError):
        as_predictions([("s1", "complete", "direct")])


def test_formatters():
    t2 = consistency_table(hand_rows())
    md = format_table(t2, "md")
    assert "| All | 1 | 20.00 | 2 | 40.00 | 1 | 20.00 | 0 | 0.00 |" in md
    assert "| Complete & Text | 2 | 40.00 | 3 | 60.00 | 1 | 20.00 | 1 | 20.00 |" in md
    tex = format_table(t2, "latex")
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrrrr}", r"Complete \& Text",
                r"text\_white", r"Consistent (\%)"):
        assert cmd in tex, cmd
    assert "_" not in tex.replace(r"\_", "") and tex.count("{") == tex.count("}")
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert all(line.count(" & ") == 8 for line in body) and len(body) == 5
    rows = list(csv.reader(io.StringIO(format_table(t2, "csv"))))
    assert rows[0][0] == "Conditions" and rows[-1] == ["All", "1", "20.00", "2", "40.00", "1", "20.00", "0", "0.00"]
    js = json.loads(format_table(t2, "json"))
    assert js["table"] == "consistency" and js["n"] == 5 and js["rows"][3]["inconsistent"] == 2
    assert js["missing"] == [["s6", ["image_only"]]]
    t1 = accuracy_table(hand_rows())
    assert "| text_white | 6 | 33.33 | -16.67 |" in format_table(t1, "md")
    assert "| complete | 6 | 50.00 | – |" in format_table(t1, "md")
    assert "| text_white | 6 | 33.3 | -16.7 |" in format_table(t1, "md", decimals=1)
    assert r"$\Delta$ vs complete" in format_table(t1, "latex")
    assert json.loads(format_table(t1, "json"))["rows"][1]["correct"] == 2
    with pytest.raises(UsageError):
        format_table(t1, "html")
    for fmt in ("md", "latex", "csv", "json"):
        assert report(hand_rows(), fmt=fmt)
    assert "s6 (no image_only)" in report(hand_rows())


def test_latex_compiles(tmp_path):
    require_tool("pdflatex")
    doc = ("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
           + report(hand_rows(), fmt="latex") + "\n\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)


def write_lines(tmp_path, lines, name="pred.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return p


def test_load_predictions(tmp_path):
    p = write_lines(tmp_path, [
        {"id": "a", "condition": "complete", "prediction": "B", "answer": "B"},
        {"id": "a", "condition": "text_white", "response": "Answer: (C)", "options": "['x', 'y', 'z']", "answer": "B"},
        {"id": "b", "condition": "complete", "prediction": "", "answer": "A", "mode": "cot", "variant": "standard4"},
        {"id": 7, "condition": "complete", "response": "no idea", "options": ["x", "y"]},
    ])
    got = load_predictions(p)
    assert got == [Prediction("a", "complete", "direct", "B", "B"), Prediction("a", "text_white", "direct", "C", "B"),
                   Prediction("b", "complete", "cot", "", "A", "standard4"), Prediction("7", "complete", "direct", "", "")]
    assert load_predictions(p, fallback="random")[3].prediction in "AB"


@pytest.mark.parametrize("line,cause", [
    ("{not json", "not a JSON line"),
    ("[1]", "not a JSON object"),
    ({"condition": "complete", "prediction": "A"}, "missing 'id'"),
    ({"id": "x", "prediction": "A"}, "missing 'condition'"),
    ({"id": "x", "condition": "complete", "prediction": "AB"}, "must be a letter"),
    ({"id": "x", "condition": "complete", "response": "A"}, "no 'options'"),
    ({"id": "x", "condition": "complete", "response": "A", "options": "oops"}, "not a list literal"),
    ({"id": "x", "condition": "complete"}, "needs 'prediction' or 'response'"),
])
def test_load_predictions_bad_lines(tmp_path, line, cause):
    p = write_lines(tmp_path, [{"id": "ok", "condition": "complete", "prediction": "A"}, line])
    with pytest.raises(SampleError) as ei:
        load_predictions(p)
    assert f"{p}:2" in ei.value.where and cause in ei.value.cause


def test_gpt4o_direct_vs_cot():
    direct, cot = GPT4O / "standard10_direct.jsonl", GPT4O / "standard10_cot.jsonl"
    require_shared(direct)
    rows = load_predictions(direct, condition="direct") + load_predictions(cot, condition="cot")
    t = consistency_table(rows, complete="direct", text="cot", image=None)
    r = t.rows[0]
    assert t.n == 1730 and not t.missing and r.consistent + r.inconsistent == 1730
    assert r.consistent_correct + r.consistent_wrong == r.consistent and 0.4 < r.consistent / 1730 < 0.7
    acc = accuracy_table(rows, complete="direct")
    assert 0.50 < acc.get("cot").accuracy < 0.60 and 0.38 < acc.get("direct").accuracy < 0.48  # official parser: 55.0 / 40.1
    assert acc.get("cot").diff > 0
    text = report(rows, complete="direct", text="cot")
    assert "Complete & Text" in text and "no condition that removes the text" in text
    assert "only direct & cot compared" in text


def test_table2_at_the_papers_precision():
    """Two decimals by default (56.53, not 56.5), the correct / wrong rows as percentages of n,
    ``decimals`` for other needs (json keeps full precision)."""
    # 300 samples: complete & text agree on 170 (56.67%), of which 101 correct (33.67%), 69 wrong (23.00%)
    rows = []
    for i in range(300):
        ans = "A"
        c = "A" if i < 101 else ("B" if i < 170 else "C")
        t = c if i < 170 else "D"
        rows += [(f"q{i}", "complete", "direct", c, ans), (f"q{i}", "text_white", "direct", t, ans)]
    t = consistency_table(rows, image=None)
    r = t.row("Complete & Text")
    assert (r.consistent, r.consistent_correct, r.consistent_wrong) == (170, 101, 69)
    assert abs(r.consistent_correct_pct + r.consistent_wrong_pct - r.consistent_pct) < 1e-9
    md = format_table(t, "md")
    assert "| Complete & Text | 170 | 56.67 | 130 | 43.33 | 101 | 33.67 | 69 | 23.00 |" in md
    assert "| Complete & Text | 170 | 56.7 | 130 | 43.3 | 101 | 33.7 | 69 | 23.0 |" in format_table(t, "md", decimals=1)
    assert "| 170 | 57 | 130 | 43 |" in format_table(t, "md", decimals=0)
    assert "56.667" in report(rows, image=None, decimals=3)
    js = json.loads(format_table(t, "json"))["rows"][0]
    assert js["consistent_correct_pct"] == pytest.approx(100 * 101 / 300)
    for bad in (-1, 11, 1.5, True):
        with pytest.raises(UsageError, match="decimals"):
            format_table(t, "md", decimals=bad)
