"""Gemma 3, PaliGemma and Gemma 4."""

from __future__ import annotations

from typing import Any, Mapping

from ..sites import SiteSpec, TokenInput
from ..templates import GEMMA3_TEMPLATE, published_template
from .base import FAMILIES, TINY_SIGLIP, TINY_TEXT, Family

def _gemma3_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    text = dict(TINY_TEXT, vocab_size=ids["vocab_size"], head_dim=16, query_pre_attn_scalar=16,
                sliding_window=16, layer_types=["sliding_attention", "full_attention"],
                bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"])
    return dict(
        text_config=text,
        vision_config=dict(TINY_SIGLIP, image_size=56, model_type="siglip_vision_model"),
        mm_tokens_per_image=4,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )


FAMILIES.register("gemma3", Family(
    name="gemma3",
    description="Gemma 3 (e.g. google/gemma-3-4b-it)",
    model_types=("gemma3",),
    model_class="Gemma3ForConditionalGeneration",
    processor_class="Gemma3Processor",
    image_processor_class="Gemma3ImageProcessorPil",
    image_token="<image_soft_token>",
    special_tokens=("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                    "<end_of_image>", "<image_soft_token>"),
    named_tokens={"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                  "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    chat_template=GEMMA3_TEMPLATE,
    tiny_config=_gemma3_tiny,
    tiny_image_processor={"size": {"height": 56, "width": 56}},
    tiny_processor={"image_seq_length": 4},
    # image tokens are 1 (bidirectional among themselves); generated tokens are text, 0
    sites=SiteSpec(token_inputs={"token_type_ids": TokenInput(pad=0, generated=0)}),
))


def _paligemma_render(processor, content: list[dict]) -> str:
    """PaliGemma's prompt: one <image> per image, bos, the text, "\n" (no chat template)."""
    n_images = sum(1 for c in content if c["type"] == "image")
    text = "".join(c["text"] for c in content if c["type"] == "text")
    return processor.image_token * n_images + processor.tokenizer.bos_token + text + "\n"


def _paligemma_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    text = dict(TINY_TEXT, model_type="gemma", vocab_size=ids["vocab_size"], head_dim=16,
                bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"])
    return dict(
        text_config=text,
        vision_config=dict(TINY_SIGLIP, model_type="siglip_vision_model", projection_dim=64),
        image_token_index=ids["<image>"],
        vocab_size=ids["vocab_size"],
        projection_dim=64,
        hidden_size=64,
    )


FAMILIES.register("paligemma", Family(
    name="paligemma",
    description="PaliGemma (e.g. google/paligemma-3b-mix-448)",
    model_types=("paligemma",),
    model_class="PaliGemmaForConditionalGeneration",
    processor_class="PaliGemmaProcessor",
    image_processor_class="SiglipImageProcessorPil",
    image_token="<image>",
    special_tokens=("<pad>", "<eos>", "<bos>", "<unk>", "<image>"),
    named_tokens={"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                  "image_token": "<image>"},
    chat_template=None,
    tiny_config=_paligemma_tiny,
    tiny_image_processor={"size": {"height": 28, "width": 28}, "image_seq_length": 4},
    processor_quirks=("plain_layout",),
    render=_paligemma_render,
    images_first=True,
    # 0 = the bidirectional prefix (image + prompt); a generated token is the causal suffix, 1 (as
    # PaliGemma's own generate extends them)
    sites=SiteSpec(token_inputs={"token_type_ids": TokenInput(pad=0, generated=1)}),
))


# ---------------------------------------------------------------- Gemma 4 (images; its audio tower is issue 17's)

def _gemma4_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    text = dict(TINY_TEXT, model_type="gemma4_text", vocab_size=ids["vocab_size"], head_dim=8, global_head_dim=16,
                sliding_window=16, layer_types=["sliding_attention", "full_attention"],
                vocab_size_per_layer_input=ids["vocab_size"], hidden_size_per_layer_input=8,
                bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"])
    vision = dict(model_type="gemma4_vision", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=16, patch_size=8, pooling_kernel_size=2,
                  position_embedding_size=64)
    return dict(
        text_config=text,
        vision_config=vision,
        audio_config=None,
        boi_token_id=ids["<|image>"],
        eoi_token_id=ids["<image|>"],
        image_token_id=ids["<|image|>"],
        video_token_id=ids["<|video|>"],
        boa_token_id=ids["<|audio>"],
        eoa_token_index=ids["<audio|>"],
        audio_token_id=ids["<|audio|>"],
    )


FAMILIES.register("gemma4", Family(
    name="gemma4",
    description="Gemma 4, images (e.g. google/gemma-4-e4b-it; its audio input is not measured yet)",
    model_types=("gemma4",),
    model_class="Gemma4ForConditionalGeneration",
    processor_class="Gemma4Processor",
    image_processor_class="Gemma4ImageProcessorPil",
    image_token="<|image|>",
    special_tokens=("<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<|image>", "<image|>", "<|image|>",
                    "<|audio>", "<audio|>", "<|audio|>", "<|video|>", "<|channel>", "<channel|>", "<|think|>"),
    named_tokens={"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                  "boi_token": "<|image>", "eoi_token": "<image|>", "image_token": "<|image|>",
                  "boa_token": "<|audio>", "eoa_token": "<audio|>", "audio_token": "<|audio|>"},
    chat_template=published_template("gemma4"),
    tiny_config=_gemma4_tiny,
    tiny_image_processor={"patch_size": 8, "max_soft_tokens": 70, "pooling_kernel_size": 2},
    tiny_processor={"image_seq_length": 70},
    processor_quirks=("no_video_no_audio",),
    # 1 on image tokens (attended bidirectionally within an image); generated tokens are text
    sites=SiteSpec(token_inputs={"mm_token_type_ids": TokenInput(pad=0, generated=0)}),
))
