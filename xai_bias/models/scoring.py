"""The one place that calls the model, and direct scoring of the option letters."""

from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np
import torch

from ..types import LETTERS
from .batching import Batch
from .letters import answer_letter_ids
from .spec import VLM


def _accepts(model, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def forward(vlm: VLM, batch: Batch, *, grad: bool = False, last_only: bool = False, **kwargs) -> torch.Tensor:
    """Logits ``[B, T, V]`` (``[B, 1, V]`` with ``last_only``) of one forward pass."""
    if last_only and _accepts(vlm.model, "logits_to_keep"):
        kwargs["logits_to_keep"] = 1
    with torch.set_grad_enabled(grad):
        out = vlm.model(**batch.inputs, use_cache=False, **kwargs)
    logits = out.logits
    if last_only and logits.shape[1] != 1:
        logits = logits[:, -1:]
    return logits


def letter_logprobs(vlm: VLM, rows: torch.Tensor, letters: Sequence[Sequence[str]],
                    letter_ids: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
    """Logits rows ``[B, V]`` -> per item ``[n_letters]`` float32 log-probs (log-softmax over the
    vocabulary) of each letter's answer token: ``letter_ids[i]`` when given (e.g. the spelling a
    generation emitted), else the direct-mode ids (``models.letters.answer_letter_ids``)."""
    logp = torch.log_softmax(rows.float(), dim=-1).cpu()
    out = []
    for i, lets in enumerate(letters):
        ids = answer_letter_ids(vlm, lets) if letter_ids is None else letter_ids[i]
        if len(ids) != len(lets):
            raise ValueError(f"item {i}: {len(ids)} letter ids for {len(lets)} letters")
        out.append(logp[i, torch.tensor(list(ids), dtype=torch.long)].numpy().astype(np.float32))
    return out


def option_logprobs(vlm: VLM, batch: Batch, letters: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per item, ``[n_letters]`` float32 log-probs of the letters at the answer position, from
    one forward pass (``letter_logprobs``)."""
    if len(letters) != len(batch):
        raise ValueError(f"{len(letters)} letter sets for a batch of {len(batch)}")
    return letter_logprobs(vlm, forward(vlm, batch, last_only=True)[:, -1], letters)


def predict(logprobs: np.ndarray, letters: Sequence[str] | None = None) -> str:
    """The argmax letter ("" when there are no options or all are NaN)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0 or np.all(np.isnan(lp)):
        return ""
    letters = letters or LETTERS[: lp.size]
    return letters[int(np.nanargmax(lp))]
