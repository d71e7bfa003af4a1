"""The supported model families, as data: one adapter serves them all.

A ``Family`` names the Hugging Face classes (model, processor, PIL image processor), the
placeholder token that vision features replace, the special tokens and chat template of the
real checkpoints, how positions are computed under left padding, where the instruments hook in
and what its inputs are (``sites``, a ``SiteSpec``: decoder path, layers, attention, final norm,
per-token and pixel inputs — generic defaults resolved at load, see ``sites.py``), and the config
of its tiny random model. Adding a family = adding an entry here (plus, at most, a processor quirk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..registry import Registry
from .sites import SiteSpec, TokenInput
from .templates import (GEMMA3_TEMPLATE, INTERNVL_TEMPLATE, LLAVA_TEMPLATE, ONEVISION_TEMPLATE, QWEN_VL_TEMPLATE,
                        idefics_template)


@dataclass(frozen=True, eq=False)
class Family:
    """One supported VLM family (data only).

    model_types: config.json ``model_type`` values served by this entry.
    image_token: the placeholder token the processor repeats once per vision feature.
    position_ids: "model" (the model derives positions from the attention mask itself, e.g.
      Qwen mrope from ``mm_token_type_ids``) or "mask" (we pass cumsum(mask) - 1).
    processor_quirks: named fixes of the processor class (e.g. build it without a video processor).
    tiny_config: token ids -> kwargs of the family's config for a tiny random model.
    sites: hook sites and model inputs (``SiteSpec``; defaults = the generic rules of ``sites.py``).
    """

    name: str
    description: str
    model_types: tuple[str, ...]
    model_class: str
    processor_class: str
    image_processor_class: str
    image_token: str
    special_tokens: tuple[str, ...]
    named_tokens: Mapping[str, str | None]
    chat_template: str | None
    tiny_config: Callable[[Mapping[str, int]], dict[str, Any]]
    tiny_image_processor: Mapping[str, Any] = field(default_factory=dict)
    tiny_processor: Mapping[str, Any] = field(default_factory=dict)
    processor_quirks: tuple[str, ...] = ()  # see processors.QUIRKS: "no_video", "plain_layout"
    position_ids: str = "mask"
    images_first: bool = False  # the prompt format puts every image before the text
    unk_token: str = "<unk>"
    render: Callable[[Any, list[dict]], str] | None = None  # prompt builder when there is no chat template
    add_bos: bool = False  # the real tokenizer prepends bos_token itself
    sites: SiteSpec = field(default_factory=SiteSpec)

    @property
    def image_tokens(self) -> tuple[str, ...]:
        """The vision placeholder tokens (the image role): ``image_token`` plus ``sites.image_tokens``."""
        return (self.image_token, *self.sites.image_tokens)

    def image_token_ids(self, tokenizer) -> list[int]:
        """Ids of the vision placeholder tokens (the image role)."""
        return [tokenizer.convert_tokens_to_ids(t) for t in self.image_tokens]


FAMILIES: Registry[Family] = Registry("model family")

# ---------------------------------------------------------------- tiny configs

TINY_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
)


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
QWEN_SITES = SiteSpec(token_inputs={"mm_token_type_ids": TokenInput(pad=0, generated=0)})  # mrope needs them

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
    processor_quirks=("no_video",),
    position_ids="model",
    sites=QWEN_SITES,
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
    processor_quirks=("no_video",),
    position_ids="model",
    sites=QWEN_SITES,
))


TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 image_size=28, patch_size=14, projection_dim=32)


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


TINY_SIGLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   image_size=28, patch_size=14)
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
    processor_quirks=("no_video",),
    images_first=True,
))


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


def family_for_model_type(model_type: str) -> Family:
    """The family serving config.json's ``model_type`` (UnknownNameError lists the families)."""
    for _, fam in FAMILIES.items():
        if model_type in fam.model_types:
            return fam
    from ..errors import UnknownNameError

    raise UnknownNameError(
        f"unsupported model architecture {model_type!r}. Supported families: {', '.join(FAMILIES.names())}."
    )
