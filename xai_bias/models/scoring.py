"""The one place that calls the model, and direct scoring of the option letters."""

from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np
import torch

from ..types import LETTERS
from .batching import Batch
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


def letter_logprobs(vlm: VLM, rows: torch.Tensor, letters: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Logits rows ``[B, V]`` -> per item ``[n_letters]`` float32 log-probs (log-softmax over the
    vocabulary) of each letter's first answer token."""
    logp = torch.log_softmax(rows.float(), dim=-1).cpu()
    out = []
    for i, lets in enumerate(letters):
        ids = torch.tensor(vlm.letter_token_ids(lets), dtype=torch.long)
        out.append(logp[i, ids].numpy().astype(np.float32))
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
