"""LLaVA 1.5, LLaVA-OneVision and LLaVA-NeXT."""

from __future__ import annotations

from typing import Any, Mapping

from ..sites import SiteSpec
from ..templates import LLAVA_NEXT_MISTRAL_TEMPLATE, LLAVA_TEMPLATE, ONEVISION_TEMPLATE
from .base import FAMILIES, TINY_CLIP, TINY_SIGLIP, TINY_TEXT, Family

def _llava_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="llama", vocab_size=ids["vocab_size"], bos_token_id=ids["bos_token_id"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        vision_config=dict(TINY_CLIP, model_type="clip_vision_model"),
        image_token_index=ids["<image>"],
        image_seq_length=4,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )


FAMILIES.register("llava", Family(
    name="llava",
    description="LLaVA 1.5 style (e.g. llava-hf/llava-1.5-7b-hf)",
    model_types=("llava",),
    model_class="LlavaForConditionalGeneration",
    processor_class="LlavaProcessor",
    image_processor_class="CLIPImageProcessorPil",
    image_token="<image>",
    special_tokens=("<unk>", "<s>", "</s>", "<image>", "<pad>"),
    named_tokens={"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    chat_template=LLAVA_TEMPLATE,
    tiny_config=_llava_tiny,
    tiny_image_processor={"size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28}},
    tiny_processor={"patch_size": 14, "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1},
    images_first=True,
    add_bos=True,
))


ONEVISION_PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]


def _onevision_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="qwen2", vocab_size=ids["vocab_size"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        vision_config=dict(TINY_SIGLIP, model_type="siglip_vision_model"),
        image_token_index=ids["<image>"],
        video_token_index=ids["<video>"],
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        image_grid_pinpoints=ONEVISION_PINPOINTS,
        vision_aspect_ratio="anyres_max_9",
    )


FAMILIES.register("llava_onevision", Family(
    name="llava_onevision",
    image_layout="anyres",
    description="LLaVA-OneVision (e.g. llava-hf/llava-onevision-qwen2-7b-ov-hf)",
    model_types=("llava_onevision",),
    model_class="LlavaOnevisionForConditionalGeneration",
    processor_class="LlavaOnevisionProcessor",
    image_processor_class="LlavaOnevisionImageProcessorPil",
    image_token="<image>",
    special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>", "<unk>"),
    named_tokens={"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"},
    chat_template=ONEVISION_TEMPLATE,
    tiny_config=_onevision_tiny,
    tiny_image_processor={"size": {"height": 28, "width": 28}, "image_grid_pinpoints": ONEVISION_PINPOINTS,
                          "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
    tiny_processor={"num_image_tokens": 4, "vision_feature_select_strategy": "full",
                    "vision_aspect_ratio": "anyres_max_9"},
    images_first=True,
    modalities=("image", "video"),
    video_token="<video>",
    video_processor_class="OnevisionVideoProcessorPil",
    tiny_video_processor={"size": {"height": 28, "width": 28}},
    sites=SiteSpec(pixel_keys=("pixel_values", "pixel_values_videos")),
))


NEXT_PINPOINTS = [[28, 56], [56, 28], [56, 56]]


def _llava_next_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(_llava_tiny(ids), image_grid_pinpoints=NEXT_PINPOINTS)


FAMILIES.register("llava_next", Family(
    name="llava_next",
    image_layout="anyres",
    description="LLaVA-NeXT / LLaVA-1.6, anyres tiles (e.g. llava-hf/llava-v1.6-mistral-7b-hf)",
    model_types=("llava_next",),
    model_class="LlavaNextForConditionalGeneration",
    processor_class="LlavaNextProcessor",
    image_processor_class="LlavaNextImageProcessorPil",
    image_token="<image>",
    special_tokens=("<unk>", "<s>", "</s>", "<image>", "<pad>"),
    named_tokens={"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    chat_template=LLAVA_NEXT_MISTRAL_TEMPLATE,
    tiny_config=_llava_next_tiny,
    tiny_image_processor={"size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28},
                          "image_grid_pinpoints": NEXT_PINPOINTS},
    tiny_processor={"patch_size": 14, "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1},
    images_first=True,
    add_bos=True,
))
