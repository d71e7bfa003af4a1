"""Aya Vision (a Cohere 2 decoder with a SigLIP tower; tiles like InternVL's plus a global view).

The image role is ``<|IMG_PATCH|>`` (the tokens the vision features replace); the processor's
``<|START_OF_IMG|>`` / ``<|END_OF_IMG|>`` and the plain-text tile markers ``TILE_1`` ... ``TILE_GLOBAL``
are template.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..templates import AYA_VISION_TEMPLATE
from .base import FAMILIES, TINY_SIGLIP, TINY_TEXT, Family


def _aya_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="cohere2", vocab_size=ids["vocab_size"], sliding_window=16,
                         layer_types=["sliding_attention", "full_attention"], bos_token_id=ids["bos_token_id"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        vision_config=dict(TINY_SIGLIP, model_type="siglip_vision_model", image_size=56),
        image_token_index=ids["<|IMG_PATCH|>"],
        downsample_factor=2,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )


FAMILIES.register("aya_vision", Family(
    name="aya_vision",
    image_layout="aya",
    description="Aya Vision (e.g. CohereLabs/aya-vision-8b)",
    model_types=("aya_vision",),
    model_class="AyaVisionForConditionalGeneration",
    processor_class="AyaVisionProcessor",
    image_processor_class="GotOcr2ImageProcessorPil",
    image_token="<|IMG_PATCH|>",
    special_tokens=("<PAD>", "<UNK>", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>",
                    "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>", "<image>", "<|START_OF_IMG|>",
                    "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>"),
    named_tokens={"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>", "pad_token": "<PAD>",
                  "unk_token": "<UNK>"},
    chat_template=AYA_VISION_TEMPLATE,
    tiny_config=_aya_tiny,
    tiny_image_processor={"size": {"height": 56, "width": 56}, "crop_to_patches": True, "min_patches": 1,
                          "max_patches": 4},
    tiny_processor={"patch_size": 14, "img_size": 56, "downsample_factor": 2},
    unk_token="<UNK>",
))
