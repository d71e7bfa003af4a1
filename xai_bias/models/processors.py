"""Processor construction: explicit, from tokenizer + PIL image processor + chat template (+ the
family's torchvision-free video processor, ``video_processors``, and its audio feature extractor).

``AutoProcessor`` may silently return only the tokenizer (no torchvision, no video
processor); we always build the family's processor class ourselves. Families whose processor
insists on a video processor but that have none here get a subclass whose attributes are image
processor + tokenizer (quirk ``no_video``).
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import transformers
from transformers import ProcessorMixin

from .families import Family


def processor_class(family: Family) -> type:
    """The family's processor class, with the family's quirks (``Family.processor_quirks``; a
    family with a PIL video processor also gets ``pil_video``)."""
    quirks = tuple(family.processor_quirks) + (("pil_video",) if family.video_processor_class else ())
    return _processor_class(family.processor_class, quirks)


@functools.lru_cache(maxsize=None)
def _processor_class(name: str, quirks: tuple[str, ...]) -> type:
    base = getattr(transformers, name)
    if not quirks:
        return base
    unknown = set(quirks) - set(QUIRKS)
    if unknown:
        raise ValueError(f"unknown processor quirks {sorted(unknown)}")
    body: dict[str, Any] = {"__module__": __name__}
    for q in quirks:
        body.update(QUIRKS[q](base))
    bases = (base,) + tuple(body.pop("_extra_bases", ()))
    # Same name as the base class, so a saved folder names a class stock transformers knows.
    return type(base.__name__, bases, body)


def _no_video(base: type) -> dict[str, Any]:
    """Build without a video processor (attributes = image processor + tokenizer [+ the others])."""
    return _without(base, ("video_processor",))


def _no_audio(base: type) -> dict[str, Any]:
    """Build without the audio feature extractor (Gemma 4: images only here; audio inputs are
    issue 17's, which gives such families their feature extractor)."""
    return _without(base, ("feature_extractor",))


def _no_video_no_audio(base: type) -> dict[str, Any]:
    return _without(base, ("video_processor", "feature_extractor"))


def _without(base: type, dropped: tuple[str, ...]) -> dict[str, Any]:
    """A processor ``__init__`` that passes ``None`` for the ``dropped`` components."""
    params = inspect.signature(base.__init__).parameters
    wants = tuple(name for name in dropped if name in params)
    module = sys.modules[base.__module__]

    def __init__(self, *args, **kwargs):
        for name in wants:
            kwargs[name] = None
        # SmolVLM refuses to start without num2words, which only its video prompts use.
        stub = hasattr(module, "num2words") and module.num2words is None
        if stub:
            module.num2words = _no_num2words
        try:
            base.__init__(self, *args, **kwargs)
        finally:
            if stub:
                module.num2words = None

    # A ProcessorMixin reads its attributes (and what it saves) from the __init__ signature.
    sig = inspect.signature(base.__init__)
    __init__.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in dropped])
    # The base class hands the dropped components (None) on to ProcessorMixin by keyword (Gemma 4):
    # a class between the two in the MRO takes them off again.
    def mixin_init(self, *args, **kwargs):
        for name in wants:
            if kwargs.get(name, 0) is None:
                del kwargs[name]
        ProcessorMixin.__init__(self, *args, **kwargs)

    drop = type("_WithoutComponents", (ProcessorMixin,), {"__init__": mixin_init, "__module__": __name__})
    # Overrides of apply_chat_template exist for video defaults (SmolVLM); images need none of it.
    return {"__init__": __init__, "apply_chat_template": ProcessorMixin.apply_chat_template, "_extra_bases": (drop,)}


def _plain_layout(base: type) -> dict[str, Any]:
    """Take the prompt string as given (PaliGemma would insert bos and "\n" itself, and refuse
    a prompt without images); the family's ``render`` writes the full prompt instead."""

    def prepare_inputs_layout(self, images=None, text=None, **kwargs):
        images, text, *_ = ProcessorMixin.prepare_inputs_layout(self, images=images, text=text, **kwargs)
        return images, text, None, None

    def validate_inputs(self, images=None, text=None, **kwargs):
        return ProcessorMixin.validate_inputs(self, images=images, text=text, **kwargs)

    return {"prepare_inputs_layout": prepare_inputs_layout, "validate_inputs": validate_inputs}


def _pil_video(base: type) -> dict[str, Any]:
    """Accept a torchvision-free video processor (``video_processors``): transformers looks the
    expected ``VideoProcessorMixin`` up in a video-processor mapping that, without torchvision,
    is a placeholder."""
    from transformers.video_processing_utils import VideoProcessorMixin

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"Received a {type(argument).__name__} for argument video_processor, but a "
                                "VideoProcessorMixin was expected.")
            return VideoProcessorMixin
        return ProcessorMixin.check_argument_for_proper_class(self, argument_name, argument)

    return {"check_argument_for_proper_class": check_argument_for_proper_class}


QUIRKS = {"no_video": _no_video, "no_audio": _no_audio, "no_video_no_audio": _no_video_no_audio,
          "plain_layout": _plain_layout, "pil_video": _pil_video}


def _no_num2words(*args, **kwargs):
    raise RuntimeError("video prompts need the num2words package")


def image_processor_class(family: Family) -> type | None:
    """The family's PIL image processor class (None for a family without images)."""
    return getattr(transformers, family.image_processor_class) if family.image_processor_class else None


_PARTS = ("image_processor", "video_processor", "feature_extractor")


def processor_init_kwargs(family: Family, saved: dict[str, Any]) -> dict[str, Any]:
    """Entries of a saved processor config that the processor's __init__ accepts."""
    base = getattr(transformers, family.processor_class)
    params = inspect.signature(base.__init__).parameters
    skip = {"self", "tokenizer", "chat_template", "kwargs", "args", *_PARTS}
    return {k: v for k, v in saved.items() if k in params and k not in skip}


def build_processor(family: Family, tokenizer, image_processor, chat_template: str | None,
                    saved: dict[str, Any] | None = None, video_processor=None, feature_extractor=None):
    """The family's processor from its parts; ``saved``: processor config. Only the parts the
    processor's __init__ takes are passed (an audio family has no image processor); a family
    with a PIL video processor gets one with its defaults when none is given."""
    cls = processor_class(family)
    if video_processor is None:
        video_processor = _video_processor(family, {})
    kwargs = processor_init_kwargs(family, saved or {})
    params = inspect.signature(cls.__init__).parameters
    parts = {"image_processor": image_processor, "video_processor": video_processor,
             "feature_extractor": feature_extractor}
    for name, part in parts.items():
        if name in params:
            kwargs[name] = part
        elif part is not None:
            raise ValueError(f"{cls.__name__} takes no {name}")
    return cls(tokenizer=tokenizer, chat_template=chat_template, **kwargs)


def tiny_parts(family: Family) -> dict[str, Any]:
    """The image processor, video processor and feature extractor of a tiny model of ``family``."""
    img_cls = image_processor_class(family)
    return {"image_processor": img_cls(**dict(family.tiny_image_processor)) if img_cls else None,
            "video_processor": _video_processor(family, dict(family.tiny_video_processor)),
            "feature_extractor": _feature_extractor(family, dict(family.tiny_feature_extractor))}


def _video_processor(family: Family, cfg: dict[str, Any]):
    if not family.video_processor_class:
        return None
    from .video_processors import video_processor

    cfg = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in (
        "video_processor_type", "processor_class", "auto_map")}
    return video_processor(family.video_processor_class, **cfg)


def _feature_extractor(family: Family, cfg: dict[str, Any]):
    if not family.feature_extractor_class:
        return None
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in (
        "feature_extractor_type", "processor_class", "auto_map")}
    return getattr(transformers, family.feature_extractor_class)(**cfg)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load_processor(family: Family, folder: Path, tokenizer, **hub_kwargs):
    """Load tokenizer-side parts from ``folder`` (a local snapshot) and build the processor."""
    proc_cfg = _read_json(folder / "processor_config.json")
    pre_cfg = _read_json(folder / "preprocessor_config.json")
    feat_cfg = proc_cfg.get("feature_extractor", {})
    if "feature_extractor_type" in pre_cfg:  # an audio model's preprocessor config is its feature extractor
        feat_cfg, pre_cfg = pre_cfg, {}
    img_cfg = pre_cfg or proc_cfg.get("image_processor", {})
    image_processor = None
    if family.image_processor_class:
        saved_type = img_cfg.get("image_processor_type", "").removesuffix("Fast")
        img_cls = getattr(transformers, f"{saved_type}Pil", None) if saved_type else None
        img_cls = img_cls or image_processor_class(family)
        img_kwargs = {k: v for k, v in img_cfg.items() if not k.startswith("_") and k not in (
            "image_processor_type", "processor_class", "auto_map")}
        image_processor = img_cls(**img_kwargs)
    video_cfg = _read_json(folder / "video_preprocessor_config.json") or proc_cfg.get("video_processor", {})
    video_processor = _video_processor(family, _video_settings(family, video_cfg))
    feature_extractor = _feature_extractor(family, feat_cfg)
    chat_template = None
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        chat_template = jinja.read_text(encoding="utf-8")
    else:
        chat_template = _read_json(folder / "chat_template.json").get("chat_template") or getattr(
            tokenizer, "chat_template", None)
    return build_processor(family, tokenizer, image_processor, chat_template, proc_cfg,
                           video_processor=video_processor, feature_extractor=feature_extractor)


def _video_settings(family: Family, cfg: dict[str, Any]) -> dict[str, Any]:
    """A saved video processor config (ours, or transformers' torchvision one of a real
    checkpoint) as the settings of the family's PIL video processor."""
    if not family.video_processor_class or not cfg:
        return {}
    from .video_processors import VIDEO_PROCESSORS

    known = VIDEO_PROCESSORS[family.video_processor_class].frame_settings
    out = {k: v for k, v in cfg.items() if k in known}
    size = cfg.get("size") or {}
    if "min_pixels" in known and "min_pixels" not in out and "shortest_edge" in size:
        out["min_pixels"] = size["shortest_edge"]  # Qwen's torchvision processor keeps pixels in size
    if "max_pixels" in known and "max_pixels" not in out and "longest_edge" in size:
        out["max_pixels"] = size["longest_edge"]
    return out
