"""Tiny random models of each family, built from a config in seconds, fully offline."""

from __future__ import annotations

import torch
import transformers

from .families import FAMILIES, Family
from .processors import build_processor, tiny_parts
from .spec import VLM, make_spec, placeholder_id
from .tokenizers import make_tokenizer


def tiny_token_ids(family: Family, tokenizer) -> dict[str, int]:
    """Ids of the family's special tokens plus vocab_size / bos / eos / pad ids."""
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in family.special_tokens}
    ids["vocab_size"] = len(tokenizer)
    for name in ("bos", "eos", "pad"):
        ids[f"{name}_token_id"] = getattr(tokenizer, f"{name}_token_id")
    return ids


def tiny_config(family: Family, tokenizer):
    """The family's HF config with tiny sizes."""
    model_cls = getattr(transformers, family.model_class)
    kwargs = family.tiny_config(tiny_token_ids(family, tokenizer))
    return model_cls.config_class(**kwargs)


def tiny_vlm(arch: str, seed: int = 0, tokenizer=None) -> VLM:
    """A small random model of family ``arch`` (fp32, CPU, eval, sdpa) with its processor;
    ``tokenizer``: the family's word-level test tokenizer unless given (the vocabulary size
    follows the tokenizer, e.g. a real subword vocabulary)."""
    family = FAMILIES.get(arch)
    tokenizer = make_tokenizer(arch) if tokenizer is None else tokenizer
    parts = tiny_parts(family)
    # some processors add tokens to the tokenizer (PaliGemma): build it before sizing the vocabulary
    processor = build_processor(family, tokenizer, parts.pop("image_processor"), family.chat_template,
                                dict(family.tiny_processor), **parts)
    config = tiny_config(family, tokenizer)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model_cls = getattr(transformers, family.model_class)
    model = model_cls(config).eval()
    _randomise_zero_matrices(model, seed)
    image_token_id = placeholder_id(tokenizer, family.image_token)
    return VLM(model=model, processor=processor, spec=make_spec(family, model, image_token_id), family=family,
               model_id=f"tiny:{arch}", device=torch.device("cpu"), dtype=torch.float32)


def _randomise_zero_matrices(model: torch.nn.Module, seed: int) -> None:
    """Give weight matrices that a family initialises to exactly zero (Gemma 3's multimodal
    projection) small random values, so that a tiny model's image features are not all 0."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2 and not torch.any(p):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.02)
