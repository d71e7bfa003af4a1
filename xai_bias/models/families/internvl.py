"""InternVL in the transformers format."""

from __future__ import annotations

from typing import Any, Mapping

from ..templates import INTERNVL_TEMPLATE
from .base import FAMILIES, TINY_TEXT, Family

def _internvl_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="qwen2", vocab_size=ids["vocab_size"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=[56, 56], patch_size=[14, 14]),
        image_token_id=ids["<IMG_CONTEXT>"],
        image_seq_length=4,
        downsample_ratio=0.5,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )


FAMILIES.register("internvl", Family(
    name="internvl",
    image_layout="internvl",
    description="InternVL, transformers format (e.g. OpenGVLab/InternVL3-2B-hf)",
    model_types=("internvl",),
    model_class="InternVLForConditionalGeneration",
    processor_class="InternVLProcessor",
    image_processor_class="GotOcr2ImageProcessorPil",
    image_token="<IMG_CONTEXT>",
    special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>",
                    "<unk>"),
    named_tokens={"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>",
                  "start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                  "video_token": "<video>"},
    chat_template=INTERNVL_TEMPLATE,
    tiny_config=_internvl_tiny,
    tiny_image_processor={"size": {"height": 56, "width": 56}, "crop_to_patches": True, "min_patches": 1,
                          "max_patches": 4},
    tiny_processor={"image_seq_length": 4},
    processor_quirks=("no_video",),
))
