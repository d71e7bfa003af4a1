"""The supported model families, as data: one adapter serves them all.

A ``Family`` names the Hugging Face classes (model, processor, PIL image processor), the
placeholder token that vision features replace, the special tokens and chat template of the
real checkpoints, how positions are computed under left padding, where the instruments hook in
and what its inputs are (``sites``, a ``SiteSpec``: decoder path, layers, attention, final norm,
per-token and pixel inputs — generic defaults resolved at load, see ``sites.py``), and the config
of its tiny random model. Adding a family = an entry in one of the family modules of this package (plus, at most, a
processor quirk); ``__init__`` imports them in registration order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...registry import Registry
from ..sites import SiteSpec

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
    modalities: the non-text inputs the family takes, in ``types.MODALITIES`` order ("image",
      "video", "audio"); an audio-only family has ``image_token=""`` and
      ``image_processor_class=""``.
    video_token / audio_token: the placeholder token the processor repeats once per video /
      audio feature (role ``video`` / ``audio``); a family whose video frames reuse the image
      token (as SmolVLM's do; its video is not wired yet) leaves ``video_token`` None: its video
      tokens are the image-token ids the processor inserted for a video (``prompting.encode``
      reads the replacement spans).
    video_processor_class: a torchvision-free video processor of ``models.video_processors``
      (its name), built with ``tiny_video_processor`` for tiny models.
    feature_extractor_class: the audio feature extractor (transformers class name, e.g.
      ``WhisperFeatureExtractor``), built with ``tiny_feature_extractor`` for tiny models.
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
    image_layout: str = "grid"  # where each image token sits in its image (models/layout.py LAYOUTS)
    unk_token: str = "<unk>"
    render: Callable[[Any, list[dict]], str] | None = None  # prompt builder when there is no chat template
    add_bos: bool = False  # the real tokenizer prepends bos_token itself
    sites: SiteSpec = field(default_factory=SiteSpec)
    modalities: tuple[str, ...] = ("image",)
    video_token: str | None = None
    audio_token: str | None = None
    video_processor_class: str | None = None
    tiny_video_processor: Mapping[str, Any] = field(default_factory=dict)
    feature_extractor_class: str | None = None
    tiny_feature_extractor: Mapping[str, Any] = field(default_factory=dict)

    @property
    def image_tokens(self) -> tuple[str, ...]:
        """The vision placeholder tokens (the image role): ``image_token`` plus ``sites.image_tokens``."""
        return tuple(t for t in (self.image_token, *self.sites.image_tokens) if t)

    def takes(self, modality: str) -> bool:
        """Whether the family takes ``modality`` ("text" always)."""
        return modality == "text" or modality in self.modalities

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

TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 image_size=28, patch_size=14, projection_dim=32)
TINY_SIGLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   image_size=28, patch_size=14)


def family_for_model_type(model_type: str) -> Family:
    """The family serving config.json's ``model_type`` (UnknownNameError lists the families)."""
    for _, fam in FAMILIES.items():
        if model_type in fam.model_types:
            return fam
    from ...errors import UnknownNameError

    raise UnknownNameError(
        f"unsupported model architecture {model_type!r}. Supported families: {', '.join(FAMILIES.names())}."
    )
