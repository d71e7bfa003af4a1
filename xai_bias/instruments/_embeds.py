"""The decoder's merged input embeddings, and calling the decoder from them.

Attribution and intervention act on what the language decoder actually receives: its merged
``inputs_embeds`` (vision features already placed at the image tokens — attributing on
``embed_tokens`` gives exactly 0 on image tokens, see DESIGN.md) together with every other
argument the VLM passes it (3-D mrope ``position_ids`` of Qwen2/2.5-VL, the mask mapping of
Gemma 3, the padding mask...). :func:`decoder_call` captures those arguments with a forward
pre-hook on the decoder during one forward pass of the whole model (stopped right there, so the
decoder itself does not run), and :class:`DecoderCall` replays them for any batch of embeddings:
``call.run(embeds)`` expands the captured arguments to ``embeds``'s batch size inside the call
(Captum tiles ``additional_forward_args`` along dim 0, which breaks ``[3, B, T]`` position ids).

Nothing here imports captum or nnsight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..types import ROLE_INDEX
from .base import Method, MethodSettings, Target

IMAGE = ROLE_INDEX["image"]
IMAGE_BASELINES = ("white", "black", "noise")
BASELINES = ("mean",) + IMAGE_BASELINES

# decoder arguments whose batch axis is not the first one
_BATCH_AXIS = {("position_ids", 3): 1}


class _Captured(Exception):
    """Raised by the capture hook to stop the forward pass once the decoder's inputs are in hand."""


def _batch_axis(name: str, value: torch.Tensor, batch_size: int) -> int | None:
    if value.ndim < 2:
        return None
    axis = _BATCH_AXIS.get((name, value.ndim), 0)
    return axis if value.shape[axis] == batch_size else None


def _map_batch(name: str, value: Any, batch_size: int, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        axis = _batch_axis(name, value, batch_size)
        return value if axis is None else fn(value, axis)
    if isinstance(value, Mapping):
        return {k: _map_batch(name, v, batch_size, fn) for k, v in value.items()}
    return value


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        # clone outside inference mode: the capture may have happened under torch.inference_mode
        return value.detach().clone()
    if isinstance(value, Mapping):
        return {k: _detach(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class DecoderCall:
    """One captured decoder call.

    embeds: ``[B, T, D]`` the merged input embeddings. kwargs: every other argument the VLM passed
    the decoder (``use_cache`` forced off), batched like ``embeds``.
    """

    embeds: torch.Tensor  # [B, T, D]
    kwargs: Mapping[str, Any]

    @property
    def batch_size(self) -> int:
        return int(self.embeds.shape[0])

    def item(self, b: int) -> "DecoderCall":
        """The call for batch item ``b`` alone (batch size 1)."""
        B = self.batch_size
        kw = {k: _map_batch(k, v, B, lambda t, ax: t.narrow(ax, b, 1)) for k, v in self.kwargs.items()}
        return DecoderCall(self.embeds[b : b + 1], kw)

    def expanded_kwargs(self, n: int) -> dict[str, Any]:
        """The kwargs of a batch-1 call broadcast to batch size ``n`` (views, no copies)."""
        if self.batch_size != 1:
            raise ValueError("expanded_kwargs needs a batch-1 call (use .item(b) first)")

        def expand(t: torch.Tensor, ax: int) -> torch.Tensor:
            shape = list(t.shape)
            shape[ax] = n
            return t.expand(*shape)

        return {k: _map_batch(k, v, 1, expand) for k, v in self.kwargs.items()}

    def run(self, decoder: torch.nn.Module, embeds: torch.Tensor, **overrides: Any) -> torch.Tensor:
        """Last hidden state ``[n, T, D]`` (after the final norm) of the decoder on ``embeds``."""
        kw = self.expanded_kwargs(embeds.shape[0])
        kw.update(overrides)
        out = decoder(inputs_embeds=embeds, **kw)
        return out[0] if isinstance(out, tuple) else out.last_hidden_state


@contextlib.contextmanager
def capture_decoder_inputs(vlm: Any, stop: bool = False) -> Iterator[dict[str, Any]]:
    """Context manager: a forward pre-hook on ``vlm.decoder`` that stores its call in the
    yielded dict under ``"call"`` (a :class:`DecoderCall`). With ``stop`` the hook raises
    :class:`_Captured` to end the forward pass there. The hook is removed on exit, on error too.
    """
    decoder = vlm.decoder
    holder: dict[str, Any] = {}
    signature = inspect.signature(type(decoder).forward)

    def hook(module, args, kwargs):
        bound = signature.bind_partial(module, *args, **kwargs).arguments
        bound.pop("self", None)
        extra = bound.pop("kwargs", {}) or {}
        bound.update(extra)
        embeds = bound.pop("inputs_embeds", None)
        if embeds is None:  # the VLM passed ids: embed them as the decoder would
            embeds = module.get_input_embeddings()(bound["input_ids"])
        bound.pop("input_ids", None)
        bound["use_cache"] = False
        for name in ("cache", "past_key_values"):
            if name in bound:
                bound[name] = None
        holder["call"] = DecoderCall(_detach(embeds), {k: _detach(v) for k, v in bound.items()})
        if stop:
            raise _Captured

    handle = decoder.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield holder
    finally:
        handle.remove()


def decoder_call(vlm: Any, batch: Any, inputs: Mapping[str, torch.Tensor] | None = None) -> DecoderCall:
    """Capture the decoder call of ``batch`` (optionally with some model inputs replaced, e.g.
    other pixel values) from one forward pass stopped at the decoder."""
    from ..models import forward

    if inputs is not None:
        batch = dataclasses.replace(batch, inputs={**batch.inputs, **inputs})
    with capture_decoder_inputs(vlm, stop=True) as holder:
        try:
            forward(vlm, batch)
        except _Captured:
            pass
    if "call" not in holder:
        raise RuntimeError("the decoder was not called during the forward pass")
    return holder["call"]


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


def final_norm(vlm: Any) -> torch.nn.Module:
    """The decoder's final norm (applied to the last layer's output before the unembedding)."""
    decoder = vlm.decoder
    for name in ("norm", "final_layernorm", "ln_f"):
        mod = getattr(decoder, name, None)
        if isinstance(mod, torch.nn.Module):
            return mod
    raise AttributeError(f"{type(decoder).__name__} has no final norm (norm / final_layernorm / ln_f)")


def letter_logprob(logits: torch.Tensor, token_id: int, letter_ids: Sequence[int] = ()) -> torch.Tensor:
    """``[n, V]`` logits -> ``[n]`` log-prob of ``token_id``: over the vocabulary, or, when
    ``letter_ids`` are given, over the option letters only (the *choice* log-prob: how the model
    decides between the options, not whether it answers with a letter at all)."""
    logits = logits.float()
    if len(letter_ids):
        ids = torch.as_tensor(list(letter_ids), device=logits.device)
        choice = torch.log_softmax(logits[:, ids], dim=-1)
        return choice[:, list(letter_ids).index(token_id)]
    return torch.log_softmax(logits, dim=-1)[:, token_id]


def target_logprob_fn(vlm: Any, call: DecoderCall, answer_pos: int, token_id: int,
                      letter_ids: Sequence[int] = ()) -> Callable[[torch.Tensor], torch.Tensor]:
    """f(embeds ``[n, T, D]``) -> ``[n]`` float32: the log-prob of ``token_id`` at ``answer_pos``
    (``letter_logprob``: over the vocabulary, or over ``letter_ids``), for a batch-1 ``call``."""
    decoder = vlm.decoder
    head = output_head(vlm)

    def f(embeds: torch.Tensor) -> torch.Tensor:
        hidden = call.run(decoder, embeds)[:, answer_pos]
        return letter_logprob(head(hidden), token_id, letter_ids)

    return f


# --------------------------------------------------------------------------------------------
# baselines


def mean_baseline(embeds: torch.Tensor, valid: np.ndarray) -> torch.Tensor:
    """``[1, T, D]``: at every valid (non-padding) position the mean of ``embeds`` over those
    positions (one vector, the same at every position); padding positions keep their input."""
    out = embeds.detach().clone()
    idx = torch.as_tensor(np.flatnonzero(valid), device=embeds.device)
    if idx.numel():
        out[0, idx] = embeds[0, idx].mean(dim=0)
    return out


_PIXEL_KEYS = ("pixel_values",)


def _solid(vlm: Any, value: int) -> torch.Tensor:
    from PIL import Image

    proc = getattr(vlm.processor, "image_processor", None)
    if proc is None:
        raise ValueError("the model's processor has no image processor")
    img = Image.new("RGB", (224, 224), (value, value, value))
    out = proc(images=[img], return_tensors="pt")
    return torch.as_tensor(out["pixel_values"]).float()


def _varying_axis(t: torch.Tensor) -> tuple[int, torch.Tensor]:
    """The one trailing axis along which a processed solid image varies (the channel axis) and
    its per-channel values; (-1, [t.flatten()[0]]) when it is constant."""
    for ax in range(1, min(t.ndim, 4) + 1):
        moved = t.movedim(-ax, -1).reshape(-1, t.shape[-ax])
        if torch.all(moved == moved[:1]):
            if not torch.all(moved == moved[0, :1]):
                return -ax, moved[0]
    return -1, t.reshape(-1)[:1]


@dataclass(frozen=True)
class PixelAffine:
    """How the image processor maps a raw pixel intensity u in [0, 1] to a model input:
    ``black + u * (white - black)`` broadcast along ``axis`` (the channel axis of the layout)."""

    axis: int
    black: torch.Tensor  # [C] or [1]
    white: torch.Tensor

    @classmethod
    def of(cls, vlm: Any) -> "PixelAffine":
        w, b = _solid(vlm, 255), _solid(vlm, 0)
        ax_w, vw = _varying_axis(w)
        ax_b, vb = _varying_axis(b)
        axis = ax_w if vw.numel() > 1 else ax_b
        if vw.numel() == 1 and vb.numel() > 1:
            vw = vw.expand_as(vb)
        if vb.numel() == 1 and vw.numel() > 1:
            vb = vb.expand_as(vw)
        return cls(axis, vb.clone(), vw.clone())

    def apply(self, pixels: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel values of the same layout showing a white / black / uniform-noise image.
        All-zero images (padding images of a batch) stay zero."""
        shape = [1] * pixels.ndim
        n = self.white.numel()
        if n > 1:
            if pixels.shape[self.axis] != n:
                raise ValueError(f"pixel layout {tuple(pixels.shape)} does not match the processor's "
                                 f"channel axis ({n} values on axis {self.axis})")
            shape[self.axis] = n
        black = self.black.to(pixels.device, torch.float32).reshape(shape)
        white = self.white.to(pixels.device, torch.float32).reshape(shape)
        if kind == "white":
            u = torch.ones_like(pixels, dtype=torch.float32)
        elif kind == "black":
            u = torch.zeros_like(pixels, dtype=torch.float32)
        elif kind == "noise":
            u = torch.rand(pixels.shape, generator=generator, dtype=torch.float32).to(pixels.device)
        else:
            raise ValueError(f"unknown image baseline {kind!r} (white, black, noise)")
        out = (black + u * (white - black)).to(pixels.dtype)
        if pixels.ndim >= 4:  # keep padding images (all zeros) as they are
            pad = (pixels == 0).flatten(-3).all(-1)
            out[pad] = 0
        return out


def condition_embeds(vlm: Any, batch: Any, kind: str, affine: PixelAffine, seed: int = 0) -> torch.Tensor:
    """``[B, T, D]`` merged embeddings of ``batch`` with every image replaced by a white / black
    / noise image of the same size (same tokens, grids and positions; only the pixels differ)."""
    keys = [k for k in _PIXEL_KEYS if k in batch.inputs]
    if not keys:
        raise ValueError("the batch holds no pixel values")
    gen = torch.Generator().manual_seed(int(seed))
    inputs = {k: affine.apply(batch.inputs[k], kind, gen) for k in keys}
    return decoder_call(vlm, batch, inputs).embeds


def baseline_for(vlm: Any, call: DecoderCall, roles: np.ndarray, kind: str,
                 cond: torch.Tensor | None = None) -> torch.Tensor:
    """``[1, T, D]`` baseline for one item: ``"mean"`` -> :func:`mean_baseline`; a condition
    image (``cond``: that item's ``[1, T, D]`` condition embeddings) -> the input with the image
    positions replaced by the condition image's vision features, text unchanged."""
    valid = roles >= 0
    if kind == "mean":
        return mean_baseline(call.embeds, valid)
    if cond is None:
        raise ValueError(f"baseline {kind!r} needs the condition embeddings")
    out = call.embeds.detach().clone()
    idx = torch.as_tensor(np.flatnonzero(roles == IMAGE), device=out.device)
    out[0, idx] = cond[0, idx].to(out.dtype)
    return out


def role_sums(values: np.ndarray, roles: np.ndarray, n_roles: int) -> np.ndarray:
    """Sum ``values [..., T]`` per role (``roles [T]``, -1 = padding, dropped) -> ``[..., n_roles]``."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(values.shape[:-1] + (n_roles,), dtype=np.float64)
    for r in range(n_roles):
        m = roles == r
        if m.any():
            out[..., r] = values[..., m].sum(-1)
    return out


# --------------------------------------------------------------------------------------------
# shared per-item preparation


@dataclass(frozen=True)
class ItemInput:
    """One batch item ready for attribution: its batch-1 decoder call, roles ``[T]`` (-1 pad),
    answer row, explained token, and the condition-image embeddings ``[1, T, D]`` if needed."""

    call: DecoderCall
    roles: np.ndarray
    answer_pos: int
    token_id: int
    cond: torch.Tensor | None = None
    letter_ids: tuple[int, ...] = ()  # the option letters' ids (for the choice value)


class DecoderMethod(Method):
    """Captures the decoder's inputs during the scoring forward (no extra pass) or, when
    ``measure`` is called on its own, in a forward pass stopped at the decoder."""

    def __init__(self, vlm: Any, settings: MethodSettings = MethodSettings()):
        super().__init__(vlm, settings)
        self._captured: tuple[int, DecoderCall] | None = None
        self._affine: PixelAffine | None = None

    def capture(self, batch: Any) -> ContextManager[Any]:
        import contextlib

        @contextlib.contextmanager
        def ctx():
            with capture_decoder_inputs(self.vlm) as holder:
                yield holder
            if "call" in holder:
                self._captured = (id(batch), holder["call"])

        return ctx()

    def decoder_call(self, batch: Any) -> DecoderCall:
        if self._captured is not None and self._captured[0] == id(batch):
            call = self._captured[1]
            if call.batch_size == len(batch):
                return call
        return decoder_call(self.vlm, batch)

    def condition_embeds(self, batch: Any, kind: str) -> torch.Tensor:
        if self._affine is None:
            self._affine = PixelAffine.of(self.vlm)
        return condition_embeds(self.vlm, batch, kind, self._affine, seed=self.settings.seed)

    def items(self, batch: Any, targets: Sequence[Target], baseline: str) -> list[ItemInput]:
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
        if len(targets) != len(batch):
            raise ValueError(f"{len(targets)} targets for a batch of {len(batch)}")
        call = self.decoder_call(batch)
        roles = batch.role_matrix()
        cond = None
        if baseline in IMAGE_BASELINES:  # a batch without images has no image to replace
            has_images = any(k in batch.inputs for k in _PIXEL_KEYS)
            cond = self.condition_embeds(batch, baseline) if has_images else call.embeds
        out = []
        for b, t in enumerate(targets):
            r = _extend_roles(roles[b], call.embeds.shape[1])
            out.append(ItemInput(call.item(b), r, int(t.answer_pos), int(t.token_id),
                                 None if cond is None else cond[b : b + 1], tuple(t.letter_ids)))
        return out


def _extend_roles(roles: np.ndarray, T: int) -> np.ndarray:
    """Roles over the decoder's sequence (a chain-of-thought batch may hold generated tokens
    beyond the roles the prompt carried: they are ``generated``)."""
    roles = np.asarray(roles)
    if roles.shape[0] >= T:
        return roles[:T]
    return np.concatenate([roles, np.full(T - roles.shape[0], ROLE_INDEX["generated"], roles.dtype)])


