"""Qwen2-VL and Qwen2.5-VL."""

from __future__ import annotations

from typing import Any, Mapping

from ..sites import SiteSpec, TokenInput
from ..templates import QWEN_VL_TEMPLATE
from .base import FAMILIES, TINY_TEXT, Family

def _qwen_tiny(ids: Mapping[str, int], *, v2: bool = False) -> dict[str, Any]:
    text = dict(TINY_TEXT, vocab_size=ids["vocab_size"], rope_parameters={
        "rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=ids.get("bos_token_id"), eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"])
    if v2:
        vision = dict(depth=2, embed_dim=32, hidden_size=64, mlp_ratio=2, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2)
    else:
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                      fullatt_block_indexes=[1])
    return dict(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>", "<unk>")
QWEN_NAMED = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"}
QWEN_IMAGE_PROC = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
# mrope needs mm_token_type_ids; videos: pixel_values_videos, and Qwen2.5-VL's seconds per temporal patch
QWEN_SITES = SiteSpec(token_inputs={"mm_token_type_ids": TokenInput(pad=0, generated=0)},
                      pixel_keys=("pixel_values", "pixel_values_videos"), float_inputs=("second_per_grid_ts",))
QWEN_VIDEO = dict(modalities=("image", "video"), video_token="<|video_pad|>",
                  video_processor_class="QwenVideoProcessorPil",
                  tiny_video_processor={"min_pixels": 56 * 56, "max_pixels": 112 * 112})

FAMILIES.register("qwen2_5_vl", Family(
    name="qwen2_5_vl",
    description="Qwen2.5-VL (e.g. Qwen/Qwen2.5-VL-7B-Instruct)",
    model_types=("qwen2_5_vl",),
    model_class="Qwen2_5_VLForConditionalGeneration",
    processor_class="Qwen2_5_VLProcessor",
    image_processor_class="Qwen2VLImageProcessorPil",
    image_token="<|image_pad|>",
    special_tokens=QWEN_SPECIALS,
    named_tokens=QWEN_NAMED,
    chat_template=QWEN_VL_TEMPLATE,
    tiny_config=_qwen_tiny,
    tiny_image_processor=QWEN_IMAGE_PROC,
    position_ids="model",
    sites=QWEN_SITES,
    **QWEN_VIDEO,
))

FAMILIES.register("qwen2_vl", Family(
    name="qwen2_vl",
    description="Qwen2-VL (e.g. Qwen/Qwen2-VL-7B-Instruct)",
    model_types=("qwen2_vl",),
    model_class="Qwen2VLForConditionalGeneration",
    processor_class="Qwen2VLProcessor",
    image_processor_class="Qwen2VLImageProcessorPil",
    image_token="<|image_pad|>",
    special_tokens=QWEN_SPECIALS,
    named_tokens=QWEN_NAMED,
    chat_template=QWEN_VL_TEMPLATE,
    tiny_config=lambda ids: _qwen_tiny(ids, v2=True),
    tiny_image_processor=QWEN_IMAGE_PROC,
    position_ids="model",
    sites=QWEN_SITES,
    **QWEN_VIDEO,
))
