"""Model adapter: one code path for every supported HF vision-language family.

Only this package knows Hugging Face module paths and processor quirks::

    vlm = load_vlm("Qwen/Qwen2.5-VL-7B-Instruct")     # or a local folder, or tiny_vlm("qwen2_5_vl")
    encoded = [encode(vlm, view) for view in views]    # PromptView -> inputs [1, T] + TokenRoles
    batch = collate(vlm, encoded)                      # left-padded, on vlm.device
    logprobs = option_logprobs(vlm, batch, [v.letters for v in views])   # [n_letters] per item

A new family is an entry in ``families.py`` (classes, placeholder token, special tokens, chat
template, tiny config) plus, at most, a named processor quirk in ``processors.py``.
"""

from .batching import Batch, collate
from .families import FAMILIES, Family
from .devices import resolve_device, resolve_dtype
from .loading import load_vlm
from .prompting import Encoded, encode, format_options
from .scoring import forward, letter_logprobs, option_logprobs, predict
from .spec import VLM, ModelSpec
from .tiny import tiny_vlm
from .tokenizers import make_tokenizer

__all__ = [
    "FAMILIES", "Family", "ModelSpec", "VLM", "load_vlm", "tiny_vlm", "make_tokenizer",
    "Encoded", "encode", "format_options", "Batch", "collate", "forward", "letter_logprobs", "option_logprobs", "predict",
    "resolve_device", "resolve_dtype",
]
