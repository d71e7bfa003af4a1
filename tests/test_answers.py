"""The answer parser on hand-written real-style outputs and on GPT-4o's published MMMU-Pro outputs."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from xai_bias.answers import parse_choice
from xai_bias.errors import UsageError
from xai_bias.types import LETTERS

from .conftest import require_shared, require_tool  # noqa: F401

GPT4O = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmmu_pro_gpt4o"
OPTS4 = ["12 cm", "15 cm", "Paris", "None of the above"]
OPTS10 = [f"{v} kPa" for v in (120, 130, 140, 145, 150, 160, 170, 180, 190, 200)]

CASES = [
    # explicit statements (last occurrence wins; bold, brackets, LaTeX tolerated)
    ("Answer: B", OPTS4, "B"),
    ("**Answer:** (C)", OPTS4, "C"),
    ("Let me think. Answer: A\nWait, I made an error.\nAnswer: D", OPTS4, "D"),
    ("The answer is B.", OPTS4, "B"),
    ("so the correct answer is **C. Paris**", OPTS4, "C"),
    ("Therefore, the correct option is:\n\n**D**", OPTS4, "D"),
    ("The final answer is $\\boxed{B}$", OPTS4, "B"),
    ("Answer: \\( C \\)", OPTS4, "C"),
    ("The correct answer, matching the calculation, is option **B**:\nA: 12; B: 15", OPTS4, "B"),
    ("Answer: Paris", OPTS4, "C"),  # the option's text after "Answer:"
    ("The answer is A because the ruler reads 12 cm", OPTS4, "A"),
    ("Answer: A dramatic increase", ["Decline", "A dramatic increase", "No change"], "B"),
    ("Answer: I think it is (C)", OPTS4, "C"),
    # the last standalone letter
    ("B", OPTS4, "B"),
    ("(C)", OPTS4, "C"),
    ("D. None of the above", OPTS4, "D"),
    ("C. Paris", OPTS4, "C"),
    ("J. A dramatic increase", [f"o{i}" for i in range(10)], "J"),  # not the article "A"
    ("E. From B to A/To the left", [f"o{i}" for i in range(10)], "E"),  # the label, not letters in the text
    ("The image shows a ruler.\n\nB. 15 cm", OPTS4, "B"),
    ("I think it is (B).", OPTS4, "B"),  # "I think" is not option I
    ("A bird is shown, so the answer must be the second one: B", OPTS4, "B"),
    ("Options:\nA. 12 cm\nB. 15 cm\nC. Paris\nD. None of the above\n\nI pick the third one, C", OPTS4, "C"),
    # an option's text (longest match; ambiguity -> unparsed)
    ("It is clearly Paris.", OPTS4, "C"),
    ("The length is 15 cm.", OPTS4, "B"),
    ("None of the above fits, 12 cm is too short", OPTS4, "D"),  # longest match wins
    ("The pressure is 145 kPa", OPTS10, "D"),
    # nothing to find -> ""
    ("I'm not able to determine the answer based on the image alone.", OPTS4, ""),
    ("I don't know who this is.", [f"o{i}" for i in range(10)], ""),
    ("", OPTS4, ""),
    ("Answer: E", OPTS4, ""),  # E is not an option here
    ("Options:\nA. 12 cm\nB. 15 cm\nC. Paris\nD. None of the above", OPTS4, ""),  # only a listing
    ("The value is 17 cm", OPTS4, ""),
]


@pytest.mark.parametrize("response,options,expected", CASES)
def test_parse_table(response, options, expected):
    assert parse_choice(response, options) == expected


def test_random_fallback():
    got = parse_choice("no idea", OPTS4, fallback="random", seed=3)
    assert got in "ABCD" and got == parse_choice("no idea", OPTS4, fallback="random", seed=3)
    assert {parse_choice(f"no idea {i}", OPTS4, fallback="random") for i in range(40)} == set("ABCD")
    assert parse_choice("Answer: B", OPTS4, fallback="random") == "B"
    with pytest.raises(UsageError):
        parse_choice("B", OPTS4, fallback="first")


def _official_found(response: str, options: list[str]) -> bool:
    """Whether MMMU-Pro's official parser (mmmu-pro/evaluate.py) found a candidate rather than
    falling back to a random letter: our restatement of its rules."""
    letters = LETTERS[: len(options)]
    pos = response.rfind("Answer:")
    if pos != -1 and sum(L in response[pos + 7:].strip() for L in letters) == 1:
        return True
    r = response
    for ch in ",.!?;:'":
        r = r.strip(ch)
    r = f" {r} "
    if any(f"({L})" in r or f"{L} " in r or f"{L}." in r for L in letters):
        return True
    return len(r.split()) > 5 and any(o.lower() in r.lower() for o in options)


def _official_rows(name: str):
    return _read_rows(require_shared(GPT4O / name))


@functools.lru_cache(maxsize=2)
def _read_rows(path: Path):
    from xai_bias.samples import parse_options

    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        resp = d["response"] if isinstance(d["response"], str) else ""
        out.append((d, resp, list(parse_options(d["options"]))))
    return out


# Measured (2026-11): direct 1580/1723 = 91.7 %, cot 1723/1730 = 99.6 % agreement with the
# official pred_indexs where that parser found an answer. Read by hand, almost every direct
# disagreement is the official parser's error: it takes the first-listed letter that occurs as
# "X " anywhere, e.g. "J. A dramatic increase" -> A, "E. From B to A" -> B, "I can't ..." -> I.
@pytest.mark.parametrize("name,threshold", [("standard10_direct.jsonl", 0.90), ("standard10_cot.jsonl", 0.99)])
def test_agreement_with_official_parser(name, threshold):
    agree = total = fallback_lines = ours_empty = 0
    for d, resp, opts in _official_rows(name):
        ours = parse_choice(resp, opts)
        if _official_found(resp, opts):
            total += 1
            agree += ours == d["pred_indexs"]
        else:
            fallback_lines += 1
            ours_empty += ours == ""
    assert total > 1700
    assert agree / total >= threshold, f"{agree}/{total}"
    # where the official parser fell back to a random letter, ours mostly finds nothing
    assert ours_empty >= fallback_lines / 2, (ours_empty, fallback_lines)


# Hand-checked disagreements: what the response really chose.
REAL = {
    "test_History_134": "J",            # "J. A dramatic increase in migration" (official: A)
    "test_Physics_20": "E",             # "E. From B to A/To the left" (official: B)
    "validation_Electronics_17": "",    # "I can't analyze the specific image ..." (official: I)
    "validation_Sociology_12": "",      # "I don't know who this is." (official: I)
    "test_Finance_163": "G",            # "... is option **G**:\nA: -26%; B: ..." (official: G)
    "test_Math_164": "C",               # "aligns with:\n\n**C**" (official: random)
    "test_Electronics_245": "D",        # "The correct option is: \[ \boxed{D} \]" (official: random)
    "test_Math_65": "",                 # "none of the listed options directly matches" (official: random)
}


def test_hand_checked_real_direct_outputs():
    got = {d["id"]: parse_choice(resp, opts) for d, resp, opts in _official_rows("standard10_direct.jsonl")
           if d["id"] in REAL}
    assert got == REAL


def test_hand_checked_real_cot_outputs():
    want = {"test_Math_205": "G",        # "Answer: \( G \)" (official: J)
            "test_Marketing_150": "G",   # "Answer: \( G \)"
            "validation_Music_13": "B",  # "Answer: AC": the option text "AC" is option B
            "test_Architecture_and_Engineering_392": "G"}  # "Answer: G (Stations A and B ...)"
    got = {d["id"]: parse_choice(resp, opts) for d, resp, opts in _official_rows("standard10_cot.jsonl")
           if d["id"] in want}
    assert got == want
