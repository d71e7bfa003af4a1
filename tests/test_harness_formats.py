"""Other harnesses' outputs for consistency --predictions: lmms-eval --log_samples JSONL and
VLMEvalKit result tables (xlsx / tsv / csv) in their documented formats give the same Tables 1
and 2 as the equivalent xai_bias JSONL; unknown files are refused with what was expected."""

from __future__ import annotations

import csv
import json

import pytest

import cli
from xai_bias.consistency import report
from xai_bias.errors import SampleError, UsageError
from xai_bias.harness_formats import detect_format, read_predictions

# item id -> (complete, text_white, image_only predictions, gold); "" = no letter in the response
ITEMS = {
    "101": ("A", "A", "A", "A"), "102": ("B", "B", "C", "A"), "103": ("A", "B", "C", "C"),
    "104": ("", "", "", "A"), "105": ("D", "C", "D", "D"), "106": ("A", "A", "B", "A"),
}
CONDS = ("complete", "text_white", "image_only")
OPTIONS = ["a red circle", "a blue square", "a green triangle", "nothing at all"]
RESPONSE = {"A": "The answer is (A).", "B": "B", "C": "Answer: C", "D": "I pick D. nothing at all", "": "unsure."}


def equivalent_jsonl(tmp_path):
    path = tmp_path / "ours.jsonl"
    path.write_text("".join(json.dumps({"id": sid, "condition": c, "prediction": preds[k], "answer": preds[3]}) + "\n"
                            for sid, preds in ITEMS.items() for k, c in enumerate(CONDS)))
    return path


def lmms_eval_file(tmp_path, k: int, doc_style: str = "mmmu"):
    """samples_<task>.jsonl as lmms-eval --log_samples writes it (one condition per run)."""
    lines = []
    for doc_id, (sid, preds) in enumerate(ITEMS.items()):
        if doc_style == "mmmu":
            doc = {"id": f"validation_{sid}", "question": "What is shown in <image 1>?", "options": str(OPTIONS),
                   "answer": preds[3], "question_type": "multiple-choice", "subfield": "toys"}
        else:  # MMBench: options in A-D, the id in index
            doc = {"index": int(sid), "question": "What is shown?", "hint": None, "answer": preds[3],
                   **dict(zip("ABCD", OPTIONS)), "category": "toys"}
        resp = RESPONSE[preds[k]]
        lines.append({"doc_id": doc_id, "doc": doc, "target": preds[3],
                      "arguments": [["What is shown in <image 1>?", {"max_new_tokens": 16}]],
                      "resps": [[resp]], "filtered_resps": [resp], "doc_hash": "0" * 64, "prompt_hash": "1" * 64,
                      "target_hash": "2" * 64, "mmmu_acc": {"id": doc.get("id", sid), "answer": preds[3],
                                                            "parsed_pred": preds[k] or "A"}})
    path = tmp_path / f"samples_{doc_style}_{CONDS[k]}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def vlmevalkit_rows(k: int):
    head = ["index", "question", "A", "B", "C", "D", "answer", "category", "l2-category", "split", "prediction"]
    rows = [[int(sid), "What is shown?", *OPTIONS, preds[3], "toys", "shapes", "dev", RESPONSE[preds[k]]]
            for sid, preds in ITEMS.items()]
    return head, rows


def vlmevalkit_file(tmp_path, k: int, suffix: str):
    head, rows = vlmevalkit_rows(k)
    path = tmp_path / f"Model_MMBench_DEV_EN_{CONDS[k]}{suffix}"
    if suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(head)
        for r in rows:
            sheet.append(r)
        book.save(path)
    else:
        with path.open("w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t" if suffix == ".tsv" else ",")
            w.writerow(head)
            w.writerows(rows)
    return path


def test_lmms_eval_log_samples_give_the_same_tables(tmp_path):
    ours = report(read_predictions(equivalent_jsonl(tmp_path)))
    for style in ("mmmu", "mmbench"):
        rows = []
        for k, c in enumerate(CONDS):
            path = lmms_eval_file(tmp_path, k, style)
            assert detect_format(path) == "lmms_eval"
            rows += read_predictions(path, condition=c)
        if style == "mmmu":  # ids from doc["id"]; make them the equivalent file's
            assert {p.sample_id for p in rows} == {f"validation_{s}" for s in ITEMS}
            rows = [type(p)(p.sample_id.split("_")[1], *list(p.__dict__.values())[1:]) for p in rows]
        else:
            assert {p.sample_id for p in rows} == set(ITEMS)  # doc["index"]
        assert report(rows) == ours


@pytest.mark.parametrize("suffix", [".xlsx", ".tsv", ".csv"])
def test_vlmevalkit_tables_give_the_same_tables(tmp_path, suffix, capsys):
    ours = equivalent_jsonl(tmp_path)
    files = [vlmevalkit_file(tmp_path, k, suffix) for k in range(3)]
    assert {detect_format(f) for f in files} == {"vlmevalkit"}
    rows = [p for k, f in enumerate(files) for p in read_predictions(f, condition=CONDS[k])]
    assert {p.sample_id for p in rows} == set(ITEMS) and report(rows) == report(read_predictions(ours))
    # through the CLI, each file labelled with its condition
    assert cli.main(["consistency", "--predictions", *(f"{f}={c}" for f, c in zip(files, CONDS))]) == 0
    via_cli = capsys.readouterr().out
    assert cli.main(["consistency", "--predictions", str(ours)]) == 0
    assert via_cli == capsys.readouterr().out and "| All | 1 | 16.67 |" in via_cli


def test_lmms_eval_ids_without_doc_id_field_and_json_array(tmp_path):
    """AI2D-style docs have no id: the row number (doc_id) names the item; an older lmms-eval
    wrote a JSON array; answers given as an option index or the option's text become letters."""
    objs = [{"doc_id": 0, "doc": {"question": "q", "options": OPTIONS, "answer": "1"}, "target": "1",
             "resps": [["B"]], "filtered_resps": ["B"]},
            {"doc_id": 1, "doc": {"question": "q", "choices": OPTIONS, "answer": 2}, "target": "a green triangle",
             "resps": [["(C) a green triangle"]], "filtered_resps": ["(C) a green triangle"]}]
    path = tmp_path / "ai2d.json"
    path.write_text(json.dumps(objs))
    got = read_predictions(path, condition="complete")
    assert [(p.sample_id, p.prediction, p.answer) for p in got] == [("0", "B", "B"), ("1", "C", "C")]


def test_official_mmmu_pro_output_file(tmp_path):
    """The official inference's output: the item's fields plus 'response' (no condition)."""
    path = tmp_path / "gpt-4o_vision_direct.jsonl"
    path.write_text(json.dumps({"id": "test_Art_1", "options": str(OPTIONS), "answer": "C", "subject": "Art",
                                "response": "Answer: C"}) + "\n")
    assert detect_format(path) == "xai_bias"
    (p,) = read_predictions(path, condition="image_only")
    assert (p.sample_id, p.condition, p.prediction, p.answer) == ("test_Art_1", "image_only", "C", "C")


def test_unrecognised_and_bad_files(tmp_path, capsys):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"question": "q", "label": 1}) + "\n")
    with pytest.raises(UsageError, match="not recognised.*lmms-eval.*VLMEvalKit"):
        read_predictions(other)
    assert cli.main(["consistency", "--predictions", f"{other}=complete"]) == 2
    assert "not recognised" in capsys.readouterr().err
    table = tmp_path / "t.tsv"
    table.write_text("index\tquestion\tanswer\n1\tq\tA\n")
    with pytest.raises(UsageError, match="'prediction' column"):
        read_predictions(table)
    unlabeled = lmms_eval_file(tmp_path, 0)
    with pytest.raises(SampleError, match="PATH=CONDITION"):
        read_predictions(unlabeled)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK not a workbook")
    with pytest.raises(SampleError, match="not a readable .xlsx"):
        read_predictions(broken)
