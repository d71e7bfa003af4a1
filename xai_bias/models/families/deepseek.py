"""DeepSeek-VL, DeepSeek-VL hybrid and Janus (Llama decoders; a fixed number of image tokens per image; Janus also has
an image-generation VQ model, unused here)."""

from __future__ import annotations

from typing import Any, Mapping

from ..sites import SiteSpec
from ..templates import DEEPSEEK_VL_TEMPLATE
from .base import FAMILIES, TINY_SIGLIP, TINY_TEXT, Family

DEEPSEEK_SPECIALS = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<unk>", "<pad>", "<image_placeholder>",
                     "<begin_of_image>", "<end_of_image>", "<|User|>", "<|Assistant|>")
DEEPSEEK_NAMED = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
                  "unk_token": "<unk>", "pad_token": "<pad>", "image_token": "<image_placeholder>",
                  "boi_token": "<begin_of_image>", "eoi_token": "<end_of_image>"}


def _text(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(TINY_TEXT, model_type="llama", vocab_size=ids["vocab_size"], bos_token_id=ids["bos_token_id"],
                eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"])


def _deepseek_vl_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(text_config=_text(ids), vision_config=dict(TINY_SIGLIP, model_type="siglip_vision_model"),
                image_token_id=ids["<image_placeholder>"])


FAMILIES.register("deepseek_vl", Family(
    name="deepseek_vl",
    description="DeepSeek-VL (e.g. deepseek-community/deepseek-vl-1.3b-chat)",
    model_types=("deepseek_vl",),
    model_class="DeepseekVLForConditionalGeneration",
    processor_class="DeepseekVLProcessor",
    image_processor_class="DeepseekVLImageProcessorPil",
    image_token="<image_placeholder>",
    special_tokens=DEEPSEEK_SPECIALS,
    named_tokens=DEEPSEEK_NAMED,
    chat_template=DEEPSEEK_VL_TEMPLATE,
    tiny_config=_deepseek_vl_tiny,
    tiny_image_processor={"size": {"height": 28, "width": 28}, "min_size": 14},
    tiny_processor={"num_image_tokens": 4},
    add_bos=True,
))


def _janus_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14,
                  projection_dim=64, num_image_tokens=4, depth=2, mlp_ratio=2.0)
    vq = dict(embed_dim=8, num_embeddings=32, latent_channels=32, base_channels=32, channel_multiplier=[1, 1],
              num_res_blocks=1, num_patches=2, projection_dim=64, image_token_embed_dim=64, num_hidden_layers=1)
    return dict(text_config=_text(ids), vision_config=vision, vq_config=vq, image_token_id=ids["<image_placeholder>"])


FAMILIES.register("janus", Family(
    name="janus",
    description="Janus / Janus-Pro, understanding path (e.g. deepseek-community/Janus-Pro-1B)",
    model_types=("janus",),
    model_class="JanusForConditionalGeneration",
    processor_class="JanusProcessor",
    image_processor_class="JanusImageProcessorPil",
    image_token="<image_placeholder>",  # between <begin_of_image> and <end_of_image> (template)
    special_tokens=DEEPSEEK_SPECIALS,
    named_tokens=DEEPSEEK_NAMED,
    chat_template=DEEPSEEK_VL_TEMPLATE,
    tiny_config=_janus_tiny,
    tiny_image_processor={"size": {"height": 28, "width": 28}, "min_size": 14},
    tiny_processor={"num_image_tokens": 4},
    add_bos=True,
))


def _deepseek_vl_hybrid_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    high = dict(model_type="sam_vision_model", hidden_size=32, intermediate_size=64, mlp_dim=64, num_hidden_layers=2,
                num_attention_heads=2, image_size=128, patch_size=16, output_channels=16, global_attn_indexes=[1],
                window_size=4)
    return dict(_deepseek_vl_tiny(ids), high_res_vision_config=high)


FAMILIES.register("deepseek_vl_hybrid", Family(
    name="deepseek_vl_hybrid",
    description="DeepSeek-VL hybrid: SigLIP + high-resolution SAM towers (e.g. deepseek-community/deepseek-vl-7b-chat)",
    model_types=("deepseek_vl_hybrid",),
    model_class="DeepseekVLHybridForConditionalGeneration",
    processor_class="DeepseekVLHybridProcessor",
    image_processor_class="DeepseekVLHybridImageProcessorPil",
    image_token="<image_placeholder>",
    special_tokens=DEEPSEEK_SPECIALS,
    named_tokens=DEEPSEEK_NAMED,
    chat_template=DEEPSEEK_VL_TEMPLATE,
    tiny_config=_deepseek_vl_hybrid_tiny,
    tiny_image_processor={"size": {"height": 28, "width": 28}, "min_size": 14,
                          "high_res_size": {"height": 128, "width": 128}},
    tiny_processor={"num_image_tokens": 4},
    add_bos=True,
    # both towers see the image: a condition image replaces both inputs
    sites=SiteSpec(pixel_keys=("pixel_values", "high_res_pixel_values")),
))
