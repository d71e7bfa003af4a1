"""What attribution and intervention share: the explained function of the decoder's merged input
embeddings, baselines, and the per-item inputs of a batch.

Attribution and intervention act on what the language decoder actually receives: its merged
``inputs_embeds`` (vision features already placed at the image tokens — attributing on
``embed_tokens`` gives exactly 0 on image tokens, see DESIGN.md) together with every other
argument the VLM passes it, captured as a ``models.DecoderCall`` (``models/decoder.py``).

Nothing here imports captum or nnsight.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch

from ..models.decoder import DecoderCall, decoder_call, output_head, record_decoder_call
from ..models.pixels import IMAGE_BASELINES, PixelAffine, condition_pixels, has_images
from ..models.silence import has_audio, silent_features
from ..types import ROLE_INDEX
from .base import Method, MethodSettings, Target

IMAGE = ROLE_INDEX["image"]
#: roles whose positions an absent-media baseline replaces (image, video: the condition image /
#: video; audio: silence)
MEDIA_ROLES = (ROLE_INDEX["image"], ROLE_INDEX["video"], ROLE_INDEX["audio"])
BASELINES = ("mean",) + IMAGE_BASELINES


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


def condition_embeds(vlm: Any, batch: Any, kind: str, affine: PixelAffine | None, seed: int = 0) -> torch.Tensor:
    """``[B, T, D]`` merged embeddings of ``batch`` with every image and video replaced by a
    white / black / noise one of the same size (same tokens, grids and positions; only the pixels
    differ) and every audio clip by silence of the same length (``models.silence``)."""
    inputs: dict[str, torch.Tensor] = {}
    if has_images(vlm, batch):
        inputs.update(condition_pixels(vlm, batch, kind, affine, seed))
    if has_audio(vlm, batch):
        inputs.update(silent_features(vlm, batch))
    return decoder_call(vlm, batch, inputs).embeds


def baseline_for(vlm: Any, call: DecoderCall, roles: np.ndarray, kind: str,
                 cond: torch.Tensor | None = None) -> torch.Tensor:
    """``[1, T, D]`` baseline for one item: ``"mean"`` -> :func:`mean_baseline`; a condition
    image (``cond``: that item's ``[1, T, D]`` condition embeddings) -> the input with the image
    and video positions replaced by the condition image's / video's vision features and the audio
    positions by those of silence, text unchanged."""
    valid = roles >= 0
    if kind == "mean":
        return mean_baseline(call.embeds, valid)
    if cond is None:
        raise ValueError(f"baseline {kind!r} needs the condition embeddings")
    out = call.embeds.detach().clone()
    idx = torch.as_tensor(np.flatnonzero(np.isin(roles, MEDIA_ROLES)), device=out.device)
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
        self._captured: tuple[Any, DecoderCall] | None = None
        self._affine: PixelAffine | None = None

    def capture(self, batch: Any) -> ContextManager[Any]:
        @contextlib.contextmanager
        def ctx():
            self._captured = None
            with record_decoder_call(self.vlm) as rec:
                yield rec
            if rec.call is not None:
                self._captured = (batch, rec.call)

        return ctx()

    def decoder_call(self, batch: Any) -> DecoderCall:
        """The call captured during ``batch``'s scoring pass (used once, then dropped), else one
        from a forward pass stopped at the decoder."""
        captured, self._captured = self._captured, None
        if captured is not None and captured[0] is batch and captured[1].batch_size == len(batch):
            return captured[1]
        return decoder_call(self.vlm, batch)

    def condition_embeds(self, batch: Any, kind: str) -> torch.Tensor:
        if self._affine is None and has_images(self.vlm, batch):
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
        if baseline in IMAGE_BASELINES:  # a batch without images, videos or audio has nothing to replace
            media = has_images(self.vlm, batch) or has_audio(self.vlm, batch)
            cond = self.condition_embeds(batch, baseline) if media else call.embeds
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


