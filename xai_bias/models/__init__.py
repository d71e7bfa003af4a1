"""Model adapter: one code path for every supported HF vision-language family.

Only this package knows Hugging Face module paths and processor quirks::

    vlm = load_vlm("Qwen/Qwen2.5-VL-7B-Instruct")     # or a local folder, or tiny_vlm("qwen2_5_vl")
    encoded = [encode(vlm, view) for view in views]    # PromptView -> inputs [1, T] + TokenRoles
    batch = collate(vlm, encoded)                      # left-padded, on vlm.device
    logprobs = option_logprobs(vlm, batch, [v.letters for v in views])   # [n_letters] per item

A new family is an entry in ``families.py`` (classes, placeholder token, special tokens, chat
template, tiny config, hook sites) plus, at most, a named processor quirk in ``processors.py``.

Hooking a model goes through this package too: ``vlm.sites`` (``sites.py``: decoder, layers,
attention modules, final norm, text config, per-token / pixel inputs, resolved at load),
``trace`` (``hooks.py``: keep / edit / replace module inputs and outputs, optionally stop),
``observe_attention`` (``attention_hook.py``: the decoder's attention through transformers'
public attention interface) and ``DecoderCall`` (``decoder.py``: the decoder's captured call).
"""

from .attention_hook import observe_attention
from .batching import Batch, collate, image_positions
from .decoder import DecoderCall, decoder_call, output_head, record_decoder_call
from .devices import resolve_device, resolve_dtype
from .families import FAMILIES, Family
from .hooks import Seen, StopForward, trace
from .loading import load_vlm
from .prompting import Encoded, encode, format_options
from .scoring import forward, letter_logprobs, option_logprobs, predict
from .sites import SiteError, Sites, SiteSpec, TokenInput, resolve_sites
from .spec import VLM, ModelSpec
from .tiny import tiny_vlm
from .tokenizers import make_tokenizer

__all__ = [
    "FAMILIES", "Family", "ModelSpec", "VLM", "load_vlm", "tiny_vlm", "make_tokenizer",
    "Encoded", "encode", "format_options", "Batch", "collate", "forward", "letter_logprobs", "option_logprobs", "predict",
    "resolve_device", "resolve_dtype", "image_positions",
    "SiteSpec", "Sites", "TokenInput", "SiteError", "resolve_sites",
    "trace", "Seen", "StopForward", "observe_attention",
    "DecoderCall", "decoder_call", "record_decoder_call", "output_head",
]
