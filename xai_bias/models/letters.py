"""The answer letter's token: the id a model emits for an option letter where it answers.

Subword tokenizers spell a letter by its context: after "Answer:" or a template's trailing
"Assistant:" it carries its leading space (Qwen2 / Llama 3 byte-level BPE ``ĠB``, SentencePiece
``▁B``), after "<|im_start|>assistant\\n" it is bare (``B``), after "(" Qwen2 may fuse the two
(``(B``). ``tokenizer.encode("B")`` is therefore the wrong id for many models. The ids come
from how the model's own template and tokenizer produce the answer:

* ``answer_letter_ids(vlm, letters)`` (context ``"direct"``): the template renders a user turn
  with its generation prompt P, and the same conversation with the assistant answering; the
  text the answer puts after P (" A" for SmolVLM / Idefics3 / LLaVA, "A" for Qwen, Gemma,
  InternVL) is tokenized after P, and the first token after P's tokens is the letter's id. A
  template whose answer turn does not extend its generation prompt (LLaVA-OneVision writes
  "assistant \\n" in the turn, "assistant\\n" in the prompt), and a family without a chat
  template (PaliGemma), get the letter right after P. Whitespace-only tokens before the letter
  are skipped (word-level test tokenizers split " A" into " " and "A").
* context ``"after_answer_prefix"``: the first token of " B" after "Answer:" (the format the CoT
  instruction asks for); used where a generation never emitted its letter as a token.
* ``find_answer_token(vlm, generated, letter, letters)`` (CoT): among the generated tokens
  that carry the parsed letter and nothing else alphanumeric (``B``, ``ĠB``, ``▁B``, ``(B``),
  not glued to a word on either side, the last one right after an answer statement
  ("Answer: B", "the answer is (B)"), else the last one; the other options' ids are that
  token's spelling with their letter, so the option log-probs at that row compare like with
  like.

Every resolved table is checked: one token per letter, each carrying its letter, all distinct;
anything else is a ``ValueError`` naming the model and the text. Results are cached on the VLM
per (context, letters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

CONTEXTS = ("direct", "after_answer_prefix")
ANSWER_PREFIX = "Answer:"
_MARK = "\ue002"  # stands for the answer in the rendered assistant turn
_USER = [{"role": "user", "content": [{"type": "text", "text": "Question?"}]}]


@dataclass(frozen=True)
class LetterTokens:
    """The option letters in one spelling. ids / tokens: ``[n_letters]`` (tokens: vocabulary
    strings such as "ĠA"); answer_text: the text tokenized for the first letter (e.g. " A")."""

    context: str
    letters: tuple[str, ...]
    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    answer_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"context": self.context, "letters": "".join(self.letters), "ids": list(self.ids),
                "tokens": list(self.tokens), "answer_text": self.answer_text}


@dataclass(frozen=True)
class AnswerToken:
    """Where a generation emitted its answer letter.

    offset: index into the generated ids of the answer token; None when the letter was never
    emitted as a token of its own (parsed from an option's text, or a random fallback).
    token_id: the answer letter's id; letter_ids ``[n_letters]``: every option letter in the
    spelling emitted (when not emitted: the ``after_answer_prefix`` spelling); token: its string.
    """

    offset: int | None
    token_id: int
    letter_ids: tuple[int, ...]
    token: str

    def as_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "id": self.token_id, "token": self.token,
                "emitted": self.offset is not None}


def answer_letter_ids(vlm: Any, letters: Sequence[str], context: str = "direct") -> list[int]:
    """Ids ``[n_letters]`` of the letters' tokens where the model answers (see module doc)."""
    return list(letter_tokens(vlm, letters, context).ids)


def letter_tokens(vlm: Any, letters: Sequence[str], context: str = "direct") -> LetterTokens:
    """The letters' ``LetterTokens`` in ``context`` ("direct" | "after_answer_prefix"), cached."""
    if context not in CONTEXTS:
        raise ValueError(f"unknown letter context {context!r}; choose one of {', '.join(CONTEXTS)}")
    key = (context, tuple(letters))
    cache = vlm.letter_cache
    if key not in cache:
        cache[key] = _resolve(vlm, tuple(letters), context)
    return cache[key]


def _resolve(vlm: Any, letters: tuple[str, ...], context: str) -> LetterTokens:
    prompt, before = _answer_context(vlm) if context == "direct" else (ANSWER_PREFIX, " ")
    tok = vlm.tokenizer
    ids = [_first_token_after(vlm, prompt, before + letter, letter) for letter in letters]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{vlm.model_id}: the option letters {''.join(letters)} share answer tokens "
                         f"{tok.convert_ids_to_tokens(ids)} after {prompt[-30:]!r}")
    return LetterTokens(context, letters, tuple(ids), tuple(tok.convert_ids_to_tokens(ids)),
                        before + (letters[0] if letters else ""))


def _answer_context(vlm: Any) -> tuple[str, str]:
    """(the generation prompt P of a one-text user turn, the text the answer puts before its letter)."""
    if vlm.family.render is not None:  # no chat template: the answer follows the prompt
        return vlm.family.render(vlm.processor, _USER[0]["content"]), ""
    apply = vlm.processor.apply_chat_template
    prompt = apply(_USER, tokenize=False, add_generation_prompt=True)
    answered = apply(_USER + [{"role": "assistant", "content": [{"type": "text", "text": _MARK}]}],
                     tokenize=False)
    if answered.startswith(prompt) and _MARK in answered[len(prompt):]:
        return prompt, answered[len(prompt):answered.index(_MARK, len(prompt))]
    return prompt, ""  # the answer turn does not extend the generation prompt (OneVision)


def _first_token_after(vlm: Any, prompt: str, answer: str, letter: str) -> int:
    """Id of the first non-whitespace token of ``answer`` tokenized after ``prompt``."""
    tok = vlm.tokenizer
    head = tok(prompt, add_special_tokens=False)["input_ids"]
    full = tok(prompt + answer, add_special_tokens=False)["input_ids"]
    if full[: len(head)] != head:
        raise ValueError(f"{vlm.model_id}: the tokenizer merges the end of {prompt[-30:]!r} with the answer "
                         f"{answer!r}; the answer's first token is not defined")
    for tid in full[len(head):]:
        text = token_text(tok, tid)
        if text.strip() == "":
            continue
        if _core(text) != letter:
            raise ValueError(f"{vlm.model_id}: the answer {answer!r} after {prompt[-30:]!r} starts with the "
                             f"token {tok.convert_ids_to_tokens(tid)!r}, which is not the letter {letter!r}")
        return int(tid)
    raise ValueError(f"{vlm.model_id}: the answer {answer!r} after {prompt[-30:]!r} tokenizes to no letter token")


def token_text(tok: Any, tid: int) -> str:
    """The text of one vocabulary token, leading space included ("ĠB" and "▁B" -> " B")."""
    raw = tok.convert_ids_to_tokens(int(tid))
    text = tok.convert_tokens_to_string([raw])
    if raw.startswith(("▁", "Ġ")) and not text.startswith(" "):
        text = " " + text  # SentencePiece decoders strip a leading space
    return text


def _core(text: str) -> str:
    """The alphanumeric characters of a token's text ("Ġ(B" -> "B")."""
    return "".join(c for c in text if c.isalnum())


def find_answer_token(vlm: Any, generated: Sequence[int], letter: str, letters: Sequence[str]) -> AnswerToken:
    """The generated token that emitted ``letter`` (see module doc): among the tokens standing
    for it, the last one right after an answer statement ("Answer:", "the answer is"), else the
    last one; the ``after_answer_prefix`` spelling with ``offset=None`` when none stands for it."""
    tok = vlm.tokenizer
    gen = [int(t) for t in generated]
    letters = tuple(letters)
    if letter not in letters:
        raise ValueError(f"letter {letter!r} is not among the options {''.join(letters)}")
    hits = []  # (offset, letter ids in its spelling), last first
    for k in range(len(gen) - 1, -1, -1):
        if _core(token_text(tok, gen[k])) != letter or _glued(tok, gen, k, letter):
            continue
        ids = _respell(tok, gen[k], letter, letters)
        if ids is not None:
            hits.append((k, ids))
    if hits:
        k, ids = next((h for h in hits if _after_statement(tok, gen, h[0], letter)), hits[0])
        return AnswerToken(k, gen[k], ids, tok.convert_ids_to_tokens(gen[k]))
    table = letter_tokens(vlm, letters, "after_answer_prefix")
    i = letters.index(letter)
    return AnswerToken(None, table.ids[i], table.ids, table.tokens[i])


_STATEMENT = re.compile(r"(?i)\banswer\b[^A-Za-z0-9\n]{0,8}(?:is\b[^A-Za-z0-9\n]{0,8})?$")


def _after_statement(tok: Any, gen: list[int], k: int, letter: str) -> bool:
    """True when the letter token at ``k`` follows "Answer:" / "answer is" (markup allowed)."""
    s = tok.decode(gen[max(0, k - 8) : k + 1])
    return _STATEMENT.search(s[: s.rfind(letter)]) is not None


def _glued(tok: Any, gen: list[int], k: int, letter: str) -> bool:
    """True when the letter token at ``k`` is part of a word ("B" + "MI", "A" + "B")."""
    if k + 1 < len(gen):
        s = tok.decode(gen[k : k + 2])
        i = next((j for j, c in enumerate(s) if c.isalnum()), None)
        if i is not None and i + 1 < len(s) and s[i + 1].isalnum():
            return True
    if k > 0:
        s = tok.decode(gen[k - 1 : k + 1])
        i = s.rfind(letter)
        if i > 0 and s[i - 1].isalnum():
            return True
    return False


def _respell(tok: Any, tid: int, letter: str, letters: tuple[str, ...]) -> tuple[int, ...] | None:
    """Ids of every option letter spelled like token ``tid`` ("ĠB" -> "ĠA", "ĠC", ...); None
    when one of them is not a single token of the vocabulary."""
    raw = tok.convert_ids_to_tokens(int(tid))
    if raw.count(letter) != 1:
        return None
    out = []
    for other in letters:
        spelled = raw.replace(letter, other)
        oid = tok.convert_tokens_to_ids(spelled)
        if oid is None or tok.convert_ids_to_tokens(oid) != spelled:
            return None
        out.append(int(oid))
    return tuple(out)


def describe_letter_tokens(vlm: Any, letters: Sequence[str]) -> dict[str, Any]:
    """Both contexts' tables for ``letters`` as a JSON-ready dict (the trace's root attribute
    ``letter_tokens``)."""
    return {context: letter_tokens(vlm, letters, context).as_dict() for context in CONTEXTS}
