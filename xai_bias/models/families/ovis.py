"""Ovis2 (a Qwen2 decoder; the visual tokenizer's probabilistic tokens replace ``<IMG_ATOM>``).

The image role is ``<IMG_ATOM>``; the visual indicator tokens (``<IMG_START>``, ``<IMG_GRID>``,
``<IMG_COL>``, ``<IMG_ROW>``, ``<IMG_END>``) take fixed learned embeddings of the visual vocabulary,
the same for every image: template. A large image is shown as a global view and a grid of tiles.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..templates import OVIS2_TEMPLATE
from .base import FAMILIES, TINY_TEXT, Family

INDICATORS = ("<IMG_START>", "<IMG_GRID>", "<IMG_COL>", "<IMG_ROW>", "<IMG_END>")


def _ovis2_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="qwen2", vocab_size=ids["vocab_size"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=56, patch_size=14, vocab_size=64, hidden_stride=2,
                           num_visual_indicator_tokens=len(INDICATORS)),
        image_token_id=ids["<IMG_ATOM>"],
        visual_indicator_token_ids=[ids[t] for t in INDICATORS],
        vocab_size=ids["vocab_size"],
        hidden_size=TINY_TEXT["hidden_size"],
    )


FAMILIES.register("ovis2", Family(
    name="ovis2",
    description="Ovis2 (e.g. thisisiron/Ovis2-1B-hf)",
    image_layout="ovis",
    model_types=("ovis2",),
    model_class="Ovis2ForConditionalGeneration",
    processor_class="Ovis2Processor",
    image_processor_class="Ovis2ImageProcessorPil",
    image_token="<IMG_ATOM>",
    special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<IMG_ATOM>", *INDICATORS, "<unk>"),
    named_tokens={"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"},
    chat_template=OVIS2_TEMPLATE,
    tiny_config=_ovis2_tiny,
    tiny_image_processor={"size": {"height": 56, "width": 56}, "crop_to_patches": True, "min_patches": 1,
                          "max_patches": 4},
    tiny_processor={"image_seq_length": 4},
))
