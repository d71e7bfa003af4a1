"""Idefics3 and SmolVLM (the Idefics3 architecture)."""

from __future__ import annotations

from typing import Any, Mapping

from ..sites import SiteSpec
from ..templates import idefics_template
from .base import FAMILIES, TINY_TEXT, Family

def _idefics_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="llama", vocab_size=ids["vocab_size"], bos_token_id=ids["bos_token_id"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=56, patch_size=14),
        image_token_id=ids["<image>"],
        scale_factor=2,
    )


ROW_COL = tuple(f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6))
IDEFICS_IMAGE_PROC = {"size": {"longest_edge": 112}, "max_image_size": {"longest_edge": 56},
                      "do_image_splitting": True}

FAMILIES.register("idefics3", Family(
    name="idefics3",
    image_layout="idefics",
    description="Idefics3 (e.g. HuggingFaceM4/Idefics3-8B-Llama3)",
    model_types=("idefics3",),
    model_class="Idefics3ForConditionalGeneration",
    processor_class="Idefics3Processor",
    image_processor_class="Idefics3ImageProcessorPil",
    image_token="<image>",
    special_tokens=("<|begin_of_text|>", "<|end_of_text|>", "<fake_token_around_image>", "<image>",
                    "<end_of_utterance>", "<global-img>", "<unk>") + ROW_COL,
    named_tokens={"bos_token": "<|begin_of_text|>", "eos_token": "<end_of_utterance>",
                  "pad_token": "<|end_of_text|>", "unk_token": "<unk>"},
    chat_template=idefics_template("<|begin_of_text|>"),
    tiny_config=_idefics_tiny,
    tiny_image_processor=IDEFICS_IMAGE_PROC,
    tiny_processor={"image_seq_len": 4},
    add_bos=True,
    sites=SiteSpec(image_batching="pad"),
))

FAMILIES.register("smolvlm", Family(
    name="smolvlm",
    image_layout="idefics",
    description="SmolVLM, Idefics3 architecture (e.g. HuggingFaceTB/SmolVLM-Instruct)",
    model_types=("smolvlm",),
    model_class="SmolVLMForConditionalGeneration",
    processor_class="SmolVLMProcessor",
    image_processor_class="SmolVLMImageProcessorPil",
    image_token="<image>",
    special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>",
                    "<end_of_utterance>", "<global-img>", "<video>", "<unk>") + ROW_COL,
    named_tokens={"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>",
                  "pad_token": "<|im_end|>", "unk_token": "<unk>"},
    chat_template=idefics_template("<|im_start|>"),
    tiny_config=_idefics_tiny,
    tiny_image_processor=IDEFICS_IMAGE_PROC,
    tiny_processor={"image_seq_len": 4},
    processor_quirks=("no_video",),
    sites=SiteSpec(image_batching="pad"),
))
