"""Parse the chosen option letter from a model's free-form response, in the MMMU-Pro manner.

Order of evidence, each limited to the letters of the options given:
1. an explicit answer statement, last occurrence: "Answer: B", "**Answer:** (B)",
   "the correct answer is B", "Final answer: \\boxed{B}", or "Answer: <an option's text>";
2. the last standalone option letter: "(B)", "B.", "B)", "B:", a lone "B" (but not the words
   "A" / "I" when a lowercase word follows, as in "A bird" or "I think");
3. an option's text in the response (case-insensitive, on word boundaries); the longest
   matching option wins, a tie between different options is no answer;
else "" — or, with ``fallback="random"``, a letter drawn with a seeded generator, as MMMU's
parser does (ours is seeded by (seed, response) so it is reproducible).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .conditions import stable_seed
from .errors import UsageError
from .types import LETTERS

_LATEX = re.compile(r"\\(?:boxed|text|textbf|mathbf|mathrm)\s*\{([^{}]*)\}")
_EXPLICIT = re.compile(
    r"(?:(?i:\banswer\b)(?:\s*(?i:is|would be|should be|will be|=))?"            # "answer is", "Answer:"
    r"|(?i:\b(?:option|choice)\s*(?:is|would be|should be|will be|=|:))"      # "correct option is", "option:"
    r"|(?i:\b(?:is|be)\s+(?:option|choice)))"                                  # "is option G"
    r"\s*[:：]?\s*(?:(?i:option|choice)\s*)?"
    r"[(\[]?\s*([A-Z])\s*[)\].:,]?(?![A-Za-z0-9])"
)
_KEYWORD = re.compile(r"\b(?:answer|option|choice|is|be)\b", re.IGNORECASE)
_ANSWER_TAIL = re.compile(r"(?i:\banswer\b)\s*(?:is)?\s*[:：]\s*(.+)")
_LINE_LABEL = re.compile(r"(?m)^[ \t>\-•]*[(\[]?([A-Z])(?:[.):\]]|[ \t]*$)")   # "E. text", "(C)", a lone "C"
_BRACKET = re.compile(r"\(([A-Z])\)")
_LOOSE = re.compile(r"(?<![A-Za-z0-9'’\-\\])([A-Z])(?![A-Za-z0-9'’\-])")


def _clean(text: str) -> str:
    text = _LATEX.sub(r"\1", text)
    text = re.sub(r"\\[()\[\]]", " ", text)  # \( \) \[ \] math delimiters
    return re.sub(r"[*_`$#]", "", text)


def _explicit(text: str, letters: str, options: Sequence[str]) -> str:
    starts = (k.start() for k in _KEYWORD.finditer(text))  # try the full pattern only at keywords
    hits = [m for i in starts if (m := _EXPLICIT.match(text, i)) and m.group(1) in letters]
    tail = list(_ANSWER_TAIL.finditer(text))
    last_letter = hits[-1] if hits else None
    last_tail = tail[-1] if tail else None
    if last_tail is not None and (last_letter is None or last_tail.start() > last_letter.start()):
        # "Answer: <text>" after the last lettered statement: match the option's text there
        by_text = _by_text(last_tail.group(1), options)
        if by_text:
            return by_text
    if last_letter is None:
        return ""
    if not _is_word(text, last_letter.start(1)):
        return last_letter.group(1)
    # "Answer: A dramatic rise" may quote an option's text; "Answer: I think ..." is the pronoun
    by_text = _by_text(text[last_letter.start(1):].split("\n", 1)[0], options)
    if by_text:
        return by_text
    return "A" if last_letter.group(1) == "A" else ""


def _is_word(text: str, pos: int) -> bool:
    """True when the capital at ``pos`` reads as the English word "A" or "I" ("A bird", "I think")."""
    return text[pos] in "AI" and re.match(r" +[a-z]", text[pos + 1:pos + 3]) is not None


def _last_letter(text: str, letters: str) -> str:
    """The last option letter labelled at a line start, else the last "(X)", else the last lone X."""
    for pattern in (_LINE_LABEL, _BRACKET, _LOOSE):
        hits = [m for m in pattern.finditer(text) if m.group(1) in letters and not _is_word(text, m.start(1))]
        if hits:
            return hits[-1].group(1)
    return ""


def _drop_enumerations(text: str, letters: str) -> str:
    """Remove lines that enumerate the options (>= 3 line-labelled letters in a row: A, B, C...):
    a listing of the options is not a choice."""
    labels = [m for m in _LINE_LABEL.finditer(text) if m.group(1) in letters]
    drop: list[re.Match] = []
    run: list[re.Match] = []
    for m in labels + [None]:  # type: ignore[list-item]
        if m is not None and run and ord(m.group(1)) == ord(run[-1].group(1)) + 1:
            run.append(m)
            continue
        if len(run) >= 3:
            drop.extend(run)
        run = [m] if m is not None else []
    if not drop:
        return text
    starts = {text.rfind("\n", 0, m.start(1)) + 1 for m in drop}
    lines, out, pos = text.split("\n"), [], 0
    for line in lines:
        if pos not in starts:
            out.append(line)
        pos += len(line) + 1
    return "\n".join(out)


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def _by_text(text: str, options: Sequence[str]) -> str:
    hay = _norm(_clean(text))
    found: list[tuple[int, int]] = []  # (length, index)
    for i, opt in enumerate(options):
        needle = _norm(_clean(str(opt)))
        if not needle:
            continue
        if re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", hay):
            found.append((len(needle), i))
    if not found:
        return ""
    longest = max(n for n, _ in found)
    best = {_norm(_clean(options[i])) for n, i in found if n == longest}
    winners = [i for n, i in found if n == longest]
    return LETTERS[winners[0]] if len(best) == 1 and len(winners) == 1 else ""


def parse_choice(response: str, options: Sequence[str], fallback: str | None = None, seed: int = 0) -> str:
    """The option letter chosen in ``response`` ("" when none is found; see module doc)."""
    if fallback not in (None, "random"):
        raise UsageError(f"fallback must be None or 'random', got {fallback!r}")
    letters = LETTERS[: len(options)]
    text = _clean(response if isinstance(response, str) else "")
    choice = _explicit(text, letters, options)
    if not choice:
        rest = _drop_enumerations(text, letters)
        choice = _last_letter(rest, letters) or _by_text(rest, options)
    if not choice and fallback == "random" and letters:
        rng = np.random.default_rng(stable_seed(seed, "parse_choice", response, *options))
        choice = letters[int(rng.integers(len(letters)))]
    return choice
