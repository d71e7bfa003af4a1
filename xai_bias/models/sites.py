"""Hook sites: where the instruments attach to a model and what its inputs are — family data,
resolved once at load.

A family declares its sites in a :class:`SiteSpec` (``Family.sites``); a field left at its
default takes the generic rule below. :func:`resolve_sites` checks them against the loaded
model and returns :class:`Sites` (``vlm.sites``): module paths, input roles and token ids that
every instrument reads, so no instrument guesses a module name. A model that does not fit
raises :class:`SiteError` naming what was looked for, what is there, and the field to set.

=========================  ==================  =================================================
what                       ``SiteSpec`` field  generic rule
=========================  ==================  =================================================
text decoder               ``decoder``         ``model.get_decoder()``
decoder layers             ``layers``          the decoder's child ``layers`` (a ModuleList)
self-attention per layer   ``attention``       the layer's child ``self_attn``, else its one child
                                               whose class name ends in ``Attention``; a layer
                                               whose token mixer is named in ``attention_free``
                                               (LFM2's ``conv``) has none (``None``)
final norm                 ``final_norm``      the decoder's child ``norm`` / ``final_layernorm``
                                               / ``ln_f``
text config                ``text_config``     the sub-config of ``model.config`` (breadth first
                                               over ``sub_configs``) that is the decoder's
                                               config; ``""`` when it is ``model.config``
per-token inputs           ``token_inputs``    ``input_ids``, ``attention_mask`` plus the entries
                                               given (pad value; value at generated tokens)
pixel inputs               ``pixel_keys``      ``("pixel_values",)``: the inputs a condition
                                               image replaces; every float input must be one
image batching             ``image_batching``  ``"concat"``: non-token inputs join on dim 0;
                                               ``"pad"``: ``[B, max n_images, ...]`` zero-padded
decoder-argument batch     ``decoder_batch_``  ``{("position_ids", 3): 1}`` (mrope ``[3, B, T]``)
axes                       ``axes``            plus the entries given; all others: axis 0
image placeholder tokens   ``image_tokens``    ``Family.image_token`` plus the tokens given
audio-feature inputs       ``audio_keys``      none: float inputs an absent-audio baseline
                                               replaces by the features of silence
                                               (``input_features``); video pixels are
                                               ``pixel_keys`` (``pixel_values_videos``)
float media metadata       ``float_inputs``    none: float inputs that are neither pixels nor
                                               audio (Qwen2.5-VL's ``second_per_grid_ts``),
                                               batched like image metadata, never replaced
=========================  ==================  =================================================

Video and audio placeholder token ids (``Sites.video_token_ids`` / ``audio_token_ids``) come
from ``Family.video_token`` / ``audio_token``.
Hybrid decoders (LFM2: short convolutions in most layers, attention in a few) declare the child
that replaces attention in their other layers (``SiteSpec(attention_free=("conv",))``). Such a
layer resolves to ``None`` in ``Sites.attention``; ``Sites.attention_layers`` lists the decoder
layers that have attention. What the instruments do there: the attention capture observes the
attention layers only (the rows of the others are NaN; ``attention_layers`` is recorded with the
datasets), the knockout cuts attention where there is some (a window without an attention layer
is NaN), IG and the logit lens read every layer's residual stream as usual.

Paths are dotted names of *registered* submodules (as ``model.named_modules()`` lists them;
a property aliasing a module does not count), so hooks, nnsight envoys and device maps agree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import torch

from ..errors import UsageError

IMAGE_BATCHING = ("concat", "pad")
FINAL_NORM_NAMES = ("norm", "final_layernorm", "ln_f")


class SiteError(UsageError):
    """The model does not fit the hook-site rules (names what was looked for and where)."""


@dataclass(frozen=True)
class TokenInput:
    """A per-token model input ``[B, T]``: its value on left padding and on generated tokens.
    ``None`` means: the tokenizer's pad id (``pad``) / the generated token's id (``generated``)."""

    pad: int | None = 0
    generated: int | None = 0


DEFAULT_TOKEN_INPUTS: Mapping[str, TokenInput] = MappingProxyType({
    "input_ids": TokenInput(pad=None, generated=None),
    "attention_mask": TokenInput(pad=0, generated=1),
})
DEFAULT_BATCH_AXES: Mapping[tuple[str, int], int] = MappingProxyType({("position_ids", 3): 1})


@dataclass(frozen=True)
class SiteSpec:
    """A family's declared hook sites (module docstring; ``None`` / empty = the generic rule)."""

    decoder: str | None = None  # path in the model, e.g. "model.text_model"
    layers: str = "layers"  # path in the decoder
    attention: str | None = None  # path in each decoder layer, e.g. "self_attn"
    final_norm: str | None = None  # path in the decoder, e.g. "norm"
    text_config: str | None = None  # sub-config key path, e.g. "text_config" ("" = model.config)
    token_inputs: Mapping[str, TokenInput] = field(default_factory=dict)  # added to the defaults
    pixel_keys: tuple[str, ...] = ("pixel_values",)
    image_batching: str = "concat"
    decoder_batch_axes: Mapping[tuple[str, int], int] = field(default_factory=dict)  # added to the defaults
    image_tokens: tuple[str, ...] = ()  # placeholder tokens besides Family.image_token
    audio_keys: tuple[str, ...] = ()  # float audio-feature inputs (e.g. "input_features"): silence replaces them
    float_inputs: tuple[str, ...] = ()  # float non-pixel media metadata (e.g. "second_per_grid_ts")
    attention_free: tuple[str, ...] = ()  # children that mark a layer without attention (LFM2: "conv")

    def __post_init__(self) -> None:
        if self.image_batching not in IMAGE_BATCHING:
            raise ValueError(f"image_batching must be one of {IMAGE_BATCHING}, got {self.image_batching!r}")


@dataclass(frozen=True)
class Sites:
    """A model's resolved hook sites (paths checked against it; see the module docstring).

    decoder: path of the text decoder in the model ("" = the model itself). layers: path of the
    decoder layers' ModuleList in the decoder. attention: per layer, the path of its
    self-attention in the layer (``None``: a layer without attention, see ``attention_free``).
    final_norm: path in the decoder. text_config: the sub-config key
    path ``set_attn_implementation`` takes for the decoder ("" = the model's own config).
    """

    decoder: str
    layers: str
    attention: tuple[str | None, ...]
    final_norm: str
    text_config: str
    token_inputs: Mapping[str, TokenInput] = field(default_factory=lambda: DEFAULT_TOKEN_INPUTS)
    pixel_keys: tuple[str, ...] = ("pixel_values",)
    image_batching: str = "concat"
    decoder_batch_axes: Mapping[tuple[str, int], int] = field(default_factory=lambda: DEFAULT_BATCH_AXES)
    image_token_ids: tuple[int, ...] = ()
    audio_keys: tuple[str, ...] = ()
    float_inputs: tuple[str, ...] = ()
    video_token_ids: tuple[int, ...] = ()
    audio_token_ids: tuple[int, ...] = ()

    @property
    def n_layers(self) -> int:
        """Decoder layers (with or without attention)."""
        return len(self.attention)

    @property
    def attention_layers(self) -> tuple[int, ...]:
        """Indices of the decoder layers that have attention (all of them but in hybrid decoders)."""
        return tuple(i for i, a in enumerate(self.attention) if a is not None)

    def decoder_of(self, model: torch.nn.Module) -> torch.nn.Module:
        return submodule(model, self.decoder)

    def layers_of(self, model: torch.nn.Module) -> torch.nn.ModuleList:
        return submodule(self.decoder_of(model), self.layers)

    def attention_of(self, model: torch.nn.Module) -> list[torch.nn.Module | None]:
        """The self-attention module of every decoder layer, in layer order (``None`` for a layer
        without attention)."""
        return [None if path is None else submodule(layer, path)
                for layer, path in zip(self.layers_of(model), self.attention)]

    def final_norm_of(self, model: torch.nn.Module) -> torch.nn.Module:
        return submodule(self.decoder_of(model), self.final_norm)

    def text_config_of(self, model: torch.nn.Module) -> Any:
        return config_at(model.config, self.text_config)

    def batch_axis(self, name: str, ndim: int) -> int:
        """The batch axis of the decoder argument ``name`` when it has ``ndim`` dims."""
        return self.decoder_batch_axes.get((name, ndim), 0)


# --------------------------------------------------------------------------------------------
# paths


def submodule(root: torch.nn.Module, path: str, root_name: str = "the model") -> torch.nn.Module:
    """The registered submodule at dotted ``path`` ("" = ``root``); SiteError when absent."""
    mod = root
    walked = []
    for part in path.split(".") if path else ():
        children = dict(mod.named_children())
        if part not in children:
            where = f"{root_name}'s {'.'.join(walked)}" if walked else root_name
            raise SiteError(f"no submodule {part!r} in {where} ({type(mod).__name__}) while resolving "
                            f"{path!r}; its children are: {', '.join(children) or 'none'}")
        mod = children[part]
        walked.append(part)
    return mod


def module_path(root: torch.nn.Module, target: torch.nn.Module) -> str | None:
    """Dotted path of ``target`` among ``root``'s registered modules (None if absent)."""
    for name, mod in root.named_modules():
        if mod is target:
            return name
    return None


def config_at(config: Any, key: str) -> Any:
    """The (sub-)config at dotted sub-config key path ``key`` ("" = ``config``)."""
    for part in key.split(".") if key else ():
        if part not in getattr(config, "sub_configs", {}) or getattr(config, part, None) is None:
            raise SiteError(f"config {type(config).__name__} has no sub-config {part!r} (path {key!r}); "
                            f"its sub-configs are: {', '.join(getattr(config, 'sub_configs', {})) or 'none'}")
        config = getattr(config, part)
    return config


def _config_key(config: Any, target: Any) -> str | None:
    """Dotted sub-config key path of ``target`` under ``config`` (breadth first)."""
    queue = deque([(config, "")])
    while queue:
        cfg, key = queue.popleft()
        if cfg is target:
            return key
        for sub in getattr(cfg, "sub_configs", {}) or {}:
            child = getattr(cfg, sub, None)
            if child is not None:
                queue.append((child, f"{key}.{sub}" if key else sub))
    return None


# --------------------------------------------------------------------------------------------
# resolution


def _decoder_path(model: torch.nn.Module, spec: SiteSpec) -> str:
    if spec.decoder is not None:
        submodule(model, spec.decoder)
        return spec.decoder
    get_decoder = getattr(model, "get_decoder", None)
    if get_decoder is None:
        raise SiteError(f"{type(model).__name__} has no get_decoder(); declare the text decoder's path "
                        f"in the family's sites, e.g. SiteSpec(decoder='model.language_model')")
    path = module_path(model, get_decoder())
    if path is None:
        raise SiteError(f"{type(model).__name__}.get_decoder() returned a module that is not registered in "
                        f"the model; declare SiteSpec(decoder=...)")
    return path


def _layers_path(decoder: torch.nn.Module, where: str, spec: SiteSpec) -> torch.nn.ModuleList:
    try:
        layers = submodule(decoder, spec.layers, f"the decoder {where!r}")
    except SiteError as exc:
        raise SiteError(f"looked for the decoder layers: {exc}; declare SiteSpec(layers=...) "
                        f"(or SiteSpec(decoder=...) if this is not the text decoder)") from None
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        raise SiteError(f"{where}.{spec.layers} is a {type(layers).__name__}, not a non-empty ModuleList of "
                        f"decoder layers; declare SiteSpec(layers=...)")
    return layers


def _attention_path(layer: torch.nn.Module, index: int, spec: SiteSpec) -> str | None:
    children = dict(layer.named_children())
    free = any(name in children for name in spec.attention_free)  # the layer's mixer is not attention
    if spec.attention is not None:
        if free and spec.attention.split(".")[0] not in children:
            return None
        submodule(layer, spec.attention, f"decoder layer {index}")
        return spec.attention
    if "self_attn" in children:
        return "self_attn"
    named = [n for n, m in children.items() if type(m).__name__.endswith("Attention")]
    if len(named) == 1:
        return named[0]
    if not named and free:
        return None  # a layer without attention (hybrid decoder)
    raise SiteError(f"decoder layer {index} ({type(layer).__name__}): looked for a child 'self_attn' or one "
                    f"child whose class name ends in 'Attention', found {named or 'none'} among "
                    f"{', '.join(children)}; declare SiteSpec(attention=...)")


def _final_norm_path(decoder: torch.nn.Module, where: str, spec: SiteSpec) -> str:
    if spec.final_norm is not None:
        submodule(decoder, spec.final_norm, f"the decoder {where!r}")
        return spec.final_norm
    children = dict(decoder.named_children())
    for name in FINAL_NORM_NAMES:
        if name in children:
            return name
    raise SiteError(f"the decoder {where!r} ({type(decoder).__name__}) has no final norm among its children "
                    f"({', '.join(children)}); looked for {', '.join(FINAL_NORM_NAMES)}; "
                    f"declare SiteSpec(final_norm=...)")


def _text_config_key(model: torch.nn.Module, decoder: torch.nn.Module, spec: SiteSpec) -> str:
    target = getattr(decoder, "config", None)
    if spec.text_config is not None:
        if config_at(model.config, spec.text_config) is not target:
            raise SiteError(f"sub-config {spec.text_config!r} is not the decoder's config object")
        return spec.text_config
    key = _config_key(model.config, target)
    if key is None:
        raise SiteError(f"the decoder's config ({type(target).__name__}) is neither the model's config nor one "
                        f"of its sub_configs; declare SiteSpec(text_config=...)")
    return key


def _token_ids(tokenizer: Any, tokens: Sequence[str]) -> tuple[int, ...]:
    if tokenizer is None:
        return ()
    ids = []
    unk = getattr(tokenizer, "unk_token_id", None)
    for tok in tokens:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is None or (tid == unk and tok != getattr(tokenizer, "unk_token", None)):
            raise SiteError(f"placeholder token {tok!r} is not in the tokenizer's vocabulary")
        ids.append(int(tid))
    return tuple(dict.fromkeys(ids))


def resolve_sites(model: torch.nn.Module, spec: SiteSpec = SiteSpec(), image_tokens: Sequence[str] = (),
                  tokenizer: Any = None, video_tokens: Sequence[str] = (), audio_tokens: Sequence[str] = ()) -> Sites:
    """Check ``spec`` against ``model`` and resolve every generic default (module docstring).

    image_tokens / video_tokens / audio_tokens: the family's placeholder tokens of each modality
    (their ids need ``tokenizer``; none without)."""
    decoder_path = _decoder_path(model, spec)
    decoder = submodule(model, decoder_path)
    where = decoder_path or "<model>"
    layers = _layers_path(decoder, where, spec)
    attention = tuple(_attention_path(layer, i, spec) for i, layer in enumerate(layers))
    if all(a is None for a in attention):
        raise SiteError(f"no decoder layer of {where!r} has attention (every layer holds one of "
                        f"{', '.join(spec.attention_free)})")
    return Sites(
        decoder=decoder_path,
        layers=spec.layers,
        attention=attention,
        final_norm=_final_norm_path(decoder, where, spec),
        text_config=_text_config_key(model, decoder, spec),
        token_inputs=MappingProxyType({**DEFAULT_TOKEN_INPUTS, **spec.token_inputs}),
        pixel_keys=tuple(spec.pixel_keys),
        image_batching=spec.image_batching,
        decoder_batch_axes=MappingProxyType({**DEFAULT_BATCH_AXES, **spec.decoder_batch_axes}),
        image_token_ids=_token_ids(tokenizer, tuple(image_tokens) + tuple(spec.image_tokens)),
        audio_keys=tuple(spec.audio_keys),
        float_inputs=tuple(spec.float_inputs),
        video_token_ids=_token_ids(tokenizer, tuple(video_tokens)),
        audio_token_ids=_token_ids(tokenizer, tuple(audio_tokens)),
    )


def model_of(target: Any) -> torch.nn.Module:
    """The Hugging Face model of a VLM handle (``.model``) or the model itself."""
    if isinstance(target, torch.nn.Module):
        return target
    model = getattr(target, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a VLM or a transformers model, got {type(target).__name__}")
    return model


def sites_of(target: Any) -> Sites:
    """``vlm.sites``, or, for a bare transformers model, its sites by the generic rules."""
    sites = getattr(target, "sites", None)
    if isinstance(sites, Sites):
        return sites
    return resolve_sites(model_of(target))
