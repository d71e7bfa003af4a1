"""Observing the text decoder's attention through transformers' public attention interface.

One attention function is registered, once and idempotently, under :data:`OBSERVED` with
``AttentionInterface.register`` **and** ``AttentionMaskInterface.register`` (without a mask
function for the name, transformers silently builds no padding mask). :func:`observe_attention`
switches the text decoder alone to that name with the public
``model.set_attn_implementation({<text sub-config key>: OBSERVED})`` (``vlm.sites.text_config``;
the vision tower keeps its implementation) and switches it back on exit, on error too.

While a decoder runs under the name, the function calls the implementation the decoder had
before (sdpa, eager, a flash kernel — with the very same arguments, so outputs and logits are
bit-identical), and then hands ``(layer index, module, query, key, attention_mask, kwargs)`` to
every active observer of that module. Active observations sit on a context-local stack
(``contextvars``), so nested observations, of one model or several, need nothing unregistered
afterwards; a forward pass under the name outside any observation is an error, never a silent
fallback.
"""

from __future__ import annotations

import contextlib
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from .sites import SiteError, Sites, model_of, sites_of

#: the implementation name the text decoder runs under while observed
OBSERVED = "xai_bias_observed"

Observer = Callable[[int, Any, Any, Any, Any, Mapping[str, Any]], None]


@dataclass(frozen=True)
class _Frame:
    layer_of: Mapping[int, int]  # id(attention module) -> decoder layer index
    config_id: int  # id of the text config switched
    base: str  # the implementation the decoder had before ("sdpa", "eager", ...)
    observer: Observer


_ACTIVE: ContextVar[tuple[_Frame, ...]] = ContextVar("xai_bias_attention_observers", default=())
_EAGER: dict[type, Callable] = {}


def current_implementation(config: Any) -> str | None:
    """The attention implementation a config selects. transformers 5.24 has no public getter:
    this reads the ``_attn_implementation`` property its own modeling code reads (never the
    ``_internal`` field); it is only ever *set* through ``set_attn_implementation``."""
    return config._attn_implementation


def _eager_function(module: Any) -> Callable:
    """The eager attention function of ``module``'s modeling file (transformers keeps eager out
    of ``AttentionInterface``: each model passes its own ``eager_attention_forward`` as default)."""
    cls = type(module)
    fn = _EAGER.get(cls)
    if fn is None:
        fn = getattr(sys.modules[cls.__module__], "eager_attention_forward", None)
        if fn is None:
            raise SiteError(f"cannot find the eager attention function of {cls.__name__} "
                            f"(no eager_attention_forward in {cls.__module__})")
        _EAGER[cls] = fn
    return fn


def _base_attention(impl: str, module: Any) -> Callable:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if impl == "eager":
        return _eager_function(module)
    fn = ALL_ATTENTION_FUNCTIONS.get(impl)
    if fn is None:
        raise KeyError(f"attention implementation {impl!r} is not registered in transformers")
    return fn


def _frames_for(config: Any) -> list[_Frame]:
    return [f for f in _ACTIVE.get() if f.config_id == id(config)]


def _observed_attention(module, query, key, value, attention_mask, *args, **kwargs):
    frames = _frames_for(getattr(module, "config", None))
    if not frames:
        raise RuntimeError(f"{type(module).__name__} runs under the attention implementation {OBSERVED!r} "
                           "outside any observe_attention context (another thread or context?)")
    out = _base_attention(frames[0].base, module)(module, query, key, value, attention_mask, *args, **kwargs)
    for frame in frames:
        layer = frame.layer_of.get(id(module))
        if layer is not None:
            frame.observer(layer, module, query, key, attention_mask, kwargs)
    return out


def _observed_mask(*args, **kwargs):
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    frames = _frames_for(kwargs.get("config"))
    if not frames:
        raise RuntimeError(f"a mask is built for {OBSERVED!r} outside any observe_attention context")
    base = frames[0].base
    mask_fn = ALL_MASK_ATTENTION_FUNCTIONS.get(base) or ALL_MASK_ATTENTION_FUNCTIONS["sdpa"]
    return mask_fn(*args, **kwargs)


def _register() -> None:
    """Register :data:`OBSERVED` in both interfaces (once; later calls do nothing)."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface

    if ALL_ATTENTION_FUNCTIONS.get(OBSERVED) is not _observed_attention:
        AttentionInterface.register(OBSERVED, _observed_attention)
    if ALL_MASK_ATTENTION_FUNCTIONS.get(OBSERVED) is not _observed_mask:
        AttentionMaskInterface.register(OBSERVED, _observed_mask)


def _request(key: str, impl: str) -> dict:
    """``set_attn_implementation``'s argument that sets ``impl`` on the sub-config at dotted
    ``key`` alone ("" = the model's own config)."""
    if not key:
        return {"": impl}
    head, _, rest = key.partition(".")
    return {head: _request(rest, impl) if rest else impl}


def _switch(model: Any, sites: Sites, impl: str | None) -> None:
    if not hasattr(model, "set_attn_implementation"):
        raise SiteError(f"{type(model).__name__} has no set_attn_implementation; the attention capture "
                        f"needs a transformers model")
    model.set_attn_implementation(_request(sites.text_config, impl))


@contextlib.contextmanager
def observe_attention(target: Any, observer: Observer) -> Iterator[str]:
    """While active, ``observer(layer, module, query, key, attention_mask, kwargs)`` sees every call
    of the text decoder's self-attention modules (``layer``: the decoder layer's index; layers without
    attention are never seen; ``target``: a VLM or a transformers model); the
    model computes exactly what it computed before. Yields the implementation that really runs
    (e.g. "sdpa"). The decoder's implementation is restored on exit, on error too."""
    _register()
    model = model_of(target)
    sites = sites_of(target)
    config = sites.text_config_of(model)
    modules = sites.attention_of(model)
    before = current_implementation(config)
    if before == OBSERVED:  # nested: the outer observation knows what really runs
        outer = _frames_for(config)
        if not outer:
            raise RuntimeError(f"the text decoder is switched to {OBSERVED!r} but no observation is active")
        base = outer[0].base
    else:
        base = before or "sdpa"
    frame = _Frame({id(m): i for i, m in enumerate(modules) if m is not None}, id(config), base, observer)
    token = _ACTIVE.set(_ACTIVE.get() + (frame,))
    try:
        _switch(model, sites, OBSERVED)
        stuck = [i for i, m in enumerate(modules)
                 if m is not None and current_implementation(getattr(m, "config", config)) != OBSERVED]
        if stuck:
            raise SiteError(f"set_attn_implementation did not switch the attention of decoder layers {stuck} "
                            f"({type(modules[stuck[0]]).__name__}): the model does not dispatch through "
                            f"transformers' AttentionInterface, or its attention modules hold another config")
        yield base
    finally:
        try:
            _switch(model, sites, before)
        finally:
            _ACTIVE.reset(token)
