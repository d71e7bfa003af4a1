"""Model adapter: one code path for every supported HF vision-language family.

Only this package knows Hugging Face module paths and processor quirks.
"""

from .batching import Batch, collate
from .families import FAMILIES, Family
from .loading import load_vlm, resolve_device, resolve_dtype
from .prompting import Encoded, encode, format_options
from .scoring import forward, option_logprobs, predict
from .spec import VLM, ModelSpec
from .tiny import tiny_vlm
from .tokenizers import make_tokenizer

__all__ = [
    "FAMILIES", "Family", "ModelSpec", "VLM", "load_vlm", "tiny_vlm", "make_tokenizer",
    "Encoded", "encode", "format_options", "Batch", "collate", "forward", "option_logprobs", "predict",
    "resolve_device", "resolve_dtype",
]
