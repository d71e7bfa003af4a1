"""Chain-of-thought support: greedy generation, prompt + generation re-encoded as one input,
and letter log-probs at any row.

The measurement pass of the ``cot`` mode runs over the prompt followed by the generated tokens
(role ``generated``), so that every instrument can read the row that emitted the answer letter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch

from .models import Batch, Encoded, collate, letter_logprobs
from .types import ROLE_INDEX, TokenRoles


def generate(vlm, batch: Batch, max_new_tokens: int) -> tuple[list[str], list[np.ndarray]]:
    """Greedy generation for a left-padded batch -> (texts, generated ids ``[n_i]`` up to EOS)."""
    inputs = {k: v for k, v in batch.inputs.items() if k != "position_ids"}
    tok = vlm.tokenizer
    with torch.no_grad():
        out = vlm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    gen = out[:, batch.inputs["input_ids"].shape[1]:].cpu().numpy()
    stop = set(_stop_ids(vlm))
    texts, ids = [], []
    for row in gen:
        cut = next((i for i, t in enumerate(row) if int(t) in stop), len(row))
        kept = row[:cut].astype(np.int64)
        ids.append(kept)
        texts.append(tok.decode(kept.tolist(), skip_special_tokens=True))
    return texts, ids


def _stop_ids(vlm) -> list[int]:
    ids = []
    eos = getattr(vlm.model.generation_config, "eos_token_id", None)
    for source in (eos, vlm.tokenizer.eos_token_id, vlm.tokenizer.pad_token_id):
        if source is None:
            continue
        ids.extend(source if isinstance(source, (list, tuple)) else [source])
    return ids


def extend_encoded(vlm, enc: Encoded, generated: np.ndarray) -> Encoded:
    """``enc`` followed by the ``generated`` token ids (role ``generated``); every per-token
    input (``vlm.sites.token_inputs``) gets its value for generated tokens there."""
    gen = torch.as_tensor(np.asarray(generated, dtype=np.int64)).view(1, -1)
    inputs = dict(enc.inputs)
    for key, spec in vlm.sites.token_inputs.items():
        if key not in inputs:
            continue
        ref = inputs[key]
        fill = spec.generated
        tail = gen.to(ref.dtype) if fill is None else torch.full_like(gen, fill, dtype=ref.dtype)
        inputs[key] = torch.cat([ref, tail.to(ref.device)], dim=1)
    roles = np.concatenate([enc.roles.role, np.full(gen.shape[1], ROLE_INDEX["generated"], np.int8)])
    return replace(enc, inputs=inputs, roles=TokenRoles(roles))


def extend_batch(vlm, encoded: Sequence[Encoded], generated: Sequence[np.ndarray]) -> Batch:
    """One left-padded batch of prompt + generation for every item."""
    return collate(vlm, [extend_encoded(vlm, e, g) for e, g in zip(encoded, generated)])


def emitting_row(batch: Batch, item: int, prompt_len: int, generated: np.ndarray, offset: int | None) -> int:
    """Row (padded coordinates of ``batch``) whose logits emit generated token ``offset`` (the
    answer letter's token, ``models.letters.find_answer_token``); the last generated row when
    ``offset`` is None (the letter was never emitted as a token of its own)."""
    start = batch.pad[item] + prompt_len  # first generated position
    n = len(generated)
    if offset is not None and not 0 <= offset < n:
        raise ValueError(f"answer token offset {offset} outside the {n} generated tokens")
    return start + (offset if offset is not None else max(n, 1)) - 1


def logprobs_at(vlm, logits: torch.Tensor, rows: Sequence[int], letters: Sequence[Sequence[str]],
                letter_ids: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
    """Per item ``[n_letters]`` float32: the letters' log-probs at ``logits[i, rows[i]]``
    (of ``letter_ids[i]`` when given, see ``letter_logprobs``)."""
    picked = logits[torch.arange(len(rows), device=logits.device), torch.as_tensor(list(rows), device=logits.device)]
    return letter_logprobs(vlm, picked, letters, letter_ids)
