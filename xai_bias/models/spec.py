"""``ModelSpec`` (what the rest of xai_bias needs to know of a model) and the ``VLM`` handle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .families import Family
from .sites import Sites, resolve_sites


@dataclass(frozen=True)
class ModelSpec:
    """Shape facts of a loaded VLM's language decoder."""

    family: str
    arch: str  # HF model_type
    image_token_id: int  # -1: the family takes no images
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    sliding_window_layers: tuple[int, ...] = ()


def placeholder_id(tokenizer: Any, token: str | None) -> int:
    """The id of placeholder ``token`` (-1 when the family has none, e.g. an audio model's image token)."""
    return int(tokenizer.convert_tokens_to_ids(token)) if token else -1


def text_config(config) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _per_layer(tc, key: str) -> Any:
    """``tc.<key>``; in a config whose layers differ in it (Gemma 4: full-attention layers have a
    wider head), the value of layer 0."""
    try:
        return getattr(tc, key, None)
    except Exception as exc:  # transformers' AmbiguousGlobalPerLayerAttributeError
        if type(exc).__name__ != "AmbiguousGlobalPerLayerAttributeError":
            raise
        if 0 in tc.per_layer_config:  # layer 0 overrides the shared value
            return getattr(tc.per_layer_config[0], key, None)
        return vars(tc).get(key)  # the shared value (layers without an override)


def make_spec(family: Family, model, image_token_id: int) -> ModelSpec:
    """Shape facts of ``model``'s decoder; where layers differ (head_dim, kv heads), layer 0's."""
    tc = text_config(model.config)
    n_heads = tc.num_attention_heads
    head_dim = _per_layer(tc, "head_dim") or tc.hidden_size // n_heads
    layer_types = getattr(tc, "layer_types", None) or ()
    return ModelSpec(
        family=family.name,
        arch=model.config.model_type,
        image_token_id=int(image_token_id),
        n_layers=tc.num_hidden_layers,
        n_heads=n_heads,
        n_kv_heads=_per_layer(tc, "num_key_value_heads") or n_heads,
        head_dim=head_dim,
        hidden_size=tc.hidden_size,
        vocab_size=tc.vocab_size,
        sliding_window_layers=tuple(i for i, t in enumerate(layer_types) if t == "sliding_attention"),
    )


@dataclass
class VLM:
    """A loaded vision-language model: model (eval), processor, spec and where it lives.

    sites: where the instruments hook in (``Sites``), resolved from ``family.sites`` when the
    handle is made (a model that does not fit raises ``SiteError`` here, at load)."""

    model: torch.nn.Module
    processor: Any
    spec: ModelSpec
    family: Family
    model_id: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    #: resolved answer-letter tokens per (context, letters), filled by ``models.letters``
    letter_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    sites: Sites | None = None

    def __post_init__(self) -> None:
        if self.sites is None:
            self.sites = resolve_sites(self.model, self.family.sites, self.family.image_tokens,
                                       getattr(self.processor, "tokenizer", None),
                                       video_tokens=tuple(t for t in (self.family.video_token,) if t),
                                       audio_tokens=tuple(t for t in (self.family.audio_token,) if t))

    @property
    def decoder(self) -> torch.nn.Module:
        return self.sites.decoder_of(self.model)

    @property
    def layers(self) -> torch.nn.ModuleList:
        return self.sites.layers_of(self.model)

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.sites.final_norm_of(self.model)

    def attention_modules(self) -> list[torch.nn.Module | None]:
        """The self-attention module of every decoder layer, in layer order (``None`` for a layer
        without attention: ``sites.attention_free``)."""
        return self.sites.attention_of(self.model)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def letter_token_ids(self, letters: Sequence[str], context: str = "direct") -> list[int]:
        """Id of the token the model emits for each letter where it answers: right after the
        generation prompt ("direct") or after "Answer:" ("after_answer_prefix"); see
        ``models.letters``."""
        from .letters import answer_letter_ids

        return answer_letter_ids(self, letters, context)

    def to(self, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> "VLM":
        """Move the model (in place) to ``device`` / ``dtype`` ("auto" as in ``load_vlm``); returns self."""
        from .devices import resolve_device, resolve_dtype

        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        self.model.to(device=dev, dtype=dt)
        self.device, self.dtype = dev, dt
        return self

    def save(self, path: str | Path) -> Path:
        """Save model (safetensors), tokenizer and processor with save_pretrained."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        self.processor.save_pretrained(path)
        return path
