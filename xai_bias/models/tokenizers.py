"""Offline word-level tokenizers for tiny and demo models (no downloads).

Text is split into words, single punctuation marks and single whitespace characters; every
piece is one token (unknown words -> the unk token) and decoding concatenates the pieces, so a
known text decodes back exactly and offsets map tokens to characters.
"""

from __future__ import annotations

import re
import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .families import FAMILIES, Family

# Small built-in corpus: words of MMMU-Pro style prompts and the probe suites.
CORPUS = """
Answer with the option's letter from the given choices directly. Answer the preceding multiple
choice question. The last line of your response should be of the following format: 'Answer: $LETTER'
(without quotes) where LETTER is one of options. Think step by step before answering.
Based on the provided images, please answer the question. Question Options Image image picture
What which who where when why how is are was were the a an of in on at to for from by with and
or not no yes this that these those it its color colour shape size number count many much
red green blue yellow black white gray grey orange purple pink brown circle square triangle
rectangle star left right top bottom above below middle center there here shown figure chart
table graph value values total sum difference largest smallest most least more less than equal
first second third last next previous true false none all both neither either one two three
four five six seven eight nine ten hundred thousand percent cost price year years time day
object objects animal animals dog cat bird car person people man woman child tree house water
sky sun moon text word words letter letters following best describes describe correct answer
do does did can could should would will may might be been being have has had image's show
shows showing given choose select option choices directly please provided based question
user assistant system model You helpful USER ASSISTANT User Assistant im_start im_end
""".split()

SPACE_PIECES = (" ", "\n", "\t")
_PATTERN = r"\w+|[^\w\s]|\s"
_SPLIT = Regex(_PATTERN)
_SPLIT_RE = re.compile(_PATTERN)


def _base_vocab(words: list[str]) -> list[str]:
    """Characters, digits 0-99, the corpus and ``words``, each once, in a stable order."""
    pieces = list(SPACE_PIECES) + list(string.ascii_letters) + list(string.digits) + list(string.punctuation)
    pieces += [str(i) for i in range(10, 100)]
    for w in list(CORPUS) + list(words):
        for piece in _pieces(w):
            pieces.append(piece)
    seen: dict[str, None] = {}
    for p in pieces:
        seen.setdefault(p, None)
    return list(seen)


def _pieces(text: str) -> list[str]:
    return _SPLIT_RE.findall(text)


def make_tokenizer(arch: str, words: list[str] | tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer for family ``arch`` (its special tokens and chat template).

    The vocabulary: the family's special tokens first (ids 0..k-1), then whitespace, ASCII
    characters, 10..99, the built-in corpus and ``words``. Letters A..Z are single tokens.
    """
    fam: Family = FAMILIES.get(arch)
    specials = list(fam.special_tokens)
    vocab = {tok: i for i, tok in enumerate(specials)}
    for piece in _base_vocab(list(words)):
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=fam.unk_token))
    tok.pre_tokenizer = pre_tokenizers.Split(_SPLIT, behavior="isolated")
    tok.decoder = decoders.Fuse()
    return family_fast_tokenizer(fam, tok)


def family_fast_tokenizer(fam: Family, tok: Tokenizer) -> PreTrainedTokenizerFast:
    """``tok`` as family ``fam``'s tokenizer: its special tokens (added where missing), bos
    prepended where the real tokenizer does it, named tokens, chat template, left padding."""
    tok.add_special_tokens(list(fam.special_tokens))
    if fam.add_bos:
        bos = fam.named_tokens["bos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))])
    named = {k: v for k, v in fam.named_tokens.items() if v is not None}
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=1 << 20,
        padding_side="left",
        **named,
    )
    if fam.chat_template:
        hf.chat_template = fam.chat_template
    return hf
