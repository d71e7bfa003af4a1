"""The supported model families, as data (``Family`` entries in ``FAMILIES``): one adapter
serves them all. ``base`` defines ``Family`` and the tiny-model building blocks; each module of
this package registers the entries of one family group, imported here in registration order (the
order of ``xai-bias models`` and of every family-parametrised test). To add a family: an entry in
the module of its group (or a new module listed below), plus, at most, a processor quirk.
"""

from __future__ import annotations

from .base import FAMILIES, TINY_CLIP, TINY_SIGLIP, TINY_TEXT, Family, family_for_model_type
from . import qwen, llava, idefics, gemma, internvl  # noqa: E402,F401  (each registers its entries)
from . import audio  # noqa: E402,F401  (audio-language families)
from . import cohere, deepseek, ovis  # noqa: E402,F401  (issue 15b: Aya Vision, DeepSeek-VL, Janus, Ovis2)

__all__ = ["FAMILIES", "Family", "family_for_model_type", "TINY_TEXT", "TINY_CLIP", "TINY_SIGLIP"]
