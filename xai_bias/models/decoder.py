"""The text decoder's call, captured and replayed: what attribution and intervention act on.

The decoder receives the *merged* input embeddings (vision features already at the image
tokens) and whatever else the VLM passes it (3-D mrope ``position_ids`` of Qwen2/2.5-VL, the
mask mapping of Gemma 3, the padding mask ...). :func:`record_decoder_call` keeps that call
(``hooks.trace`` on ``vlm.decoder``'s input) during any forward pass; :func:`decoder_call` runs
one stopped right there, so the decoder itself does not run. :class:`DecoderCall` replays it for
any batch of embeddings: ``call.run(decoder, embeds)`` expands the captured arguments to
``embeds``'s batch size (Captum tiles ``additional_forward_args`` along dim 0, which breaks
``[3, B, T]`` position ids; each argument's batch axis comes from ``vlm.sites``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch

from .hooks import trace
from .sites import DEFAULT_BATCH_AXES


def _map_batch(name: str, value: Any, batch_size: int, axes: Mapping[tuple[str, int], int],
               fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Any:
    """``fn(tensor, batch axis)`` on every batched tensor of the argument ``name`` (tensors without
    a batch axis of size ``batch_size`` pass unchanged; mappings are mapped value by value)."""
    if isinstance(value, torch.Tensor):
        if value.ndim < 2:
            return value
        axis = axes.get((name, value.ndim), 0)
        return fn(value, axis) if value.shape[axis] == batch_size else value
    if isinstance(value, Mapping):
        return {k: _map_batch(name, v, batch_size, axes, fn) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class DecoderCall:
    """One captured decoder call.

    embeds: ``[B, T, D]`` the merged input embeddings. kwargs: every other argument the VLM passed
    the decoder (``use_cache`` forced off), batched like ``embeds``. batch_axes: (argument name,
    ndim) -> batch axis where it is not 0 (``Sites.decoder_batch_axes``).
    """

    embeds: torch.Tensor  # [B, T, D]
    kwargs: Mapping[str, Any]
    batch_axes: Mapping[tuple[str, int], int] = field(default_factory=lambda: DEFAULT_BATCH_AXES)

    @property
    def batch_size(self) -> int:
        return int(self.embeds.shape[0])

    def item(self, b: int) -> "DecoderCall":
        """The call for batch item ``b`` alone (batch size 1)."""
        B = self.batch_size
        kw = {k: _map_batch(k, v, B, self.batch_axes, lambda t, ax: t.narrow(ax, b, 1))
              for k, v in self.kwargs.items()}
        return DecoderCall(self.embeds[b : b + 1], kw, self.batch_axes)

    def expanded_kwargs(self, n: int) -> dict[str, Any]:
        """The kwargs of a batch-1 call broadcast to batch size ``n`` (views, no copies)."""
        if self.batch_size != 1:
            raise ValueError("expanded_kwargs needs a batch-1 call (use .item(b) first)")

        def expand(t: torch.Tensor, ax: int) -> torch.Tensor:
            shape = list(t.shape)
            shape[ax] = n
            return t.expand(*shape)

        return {k: _map_batch(k, v, 1, self.batch_axes, expand) for k, v in self.kwargs.items()}

    def run(self, decoder: torch.nn.Module, embeds: torch.Tensor, **overrides: Any) -> torch.Tensor:
        """Last hidden state ``[n, T, D]`` (after the final norm) of the decoder on ``embeds``."""
        kw = self.expanded_kwargs(embeds.shape[0])
        kw.update(overrides)
        out = decoder(inputs_embeds=embeds, **kw)
        return out[0] if isinstance(out, tuple) else out.last_hidden_state


def _as_call(decoder: torch.nn.Module, args: tuple, kwargs: Mapping[str, Any],
             axes: Mapping[tuple[str, int], int]) -> DecoderCall:
    """The decoder's (args, kwargs) as a replayable call: positional arguments named, ids
    embedded as the decoder would, caches dropped."""
    bound = inspect.signature(type(decoder).forward).bind_partial(decoder, *args, **kwargs).arguments
    bound.pop("self", None)
    bound.update(bound.pop("kwargs", {}) or {})
    embeds = bound.pop("inputs_embeds", None)
    if embeds is None:  # the VLM passed ids: embed them as the decoder would
        with torch.no_grad():
            embeds = decoder.get_input_embeddings()(bound["input_ids"])
    bound.pop("input_ids", None)
    bound["use_cache"] = False
    for name in ("cache", "past_key_values"):
        if name in bound:
            bound[name] = None
    return DecoderCall(embeds, bound, axes)


@dataclass
class DecoderRecording:
    """Filled when :func:`record_decoder_call`'s block exits: ``call`` (None if the decoder did not run)."""

    call: DecoderCall | None = None


@contextlib.contextmanager
def record_decoder_call(vlm: Any, stop: bool = False) -> Iterator[DecoderRecording]:
    """Keep the decoder's call during the block's forward pass (its last one). With ``stop`` the
    pass ends at the decoder's input. Hooks are removed on exit, on error too."""
    decoder = vlm.decoder
    rec = DecoderRecording()
    with trace({"decoder": decoder}, inputs=True, stop=stop, clone=True) as seen:
        yield rec
    got = seen["decoder"]
    if got.calls:
        rec.call = _as_call(decoder, got.args, got.kwargs, vlm.sites.decoder_batch_axes)


def decoder_call(vlm: Any, batch: Any, inputs: Mapping[str, torch.Tensor] | None = None) -> DecoderCall:
    """The decoder call of ``batch`` (optionally with some model inputs replaced, e.g. other
    pixel values) from one forward pass stopped at the decoder."""
    from .scoring import forward

    if inputs is not None:
        batch = dataclasses.replace(batch, inputs={**batch.inputs, **inputs})
    with record_decoder_call(vlm, stop=True) as rec:
        forward(vlm, batch)
    if rec.call is None:
        raise RuntimeError("the decoder was not called during the forward pass")
    return rec.call


def output_head(vlm: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Hidden states after the final norm ``[..., D]`` -> logits ``[..., V]`` exactly as the
    model computes them (the unembedding plus Gemma's final logit soft-capping where set)."""
    head = vlm.model.get_output_embeddings()
    config = vlm.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    cap = getattr(text, "final_logit_softcapping", None)

    def fn(hidden: torch.Tensor) -> torch.Tensor:
        logits = head(hidden)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    return fn
