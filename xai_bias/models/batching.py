"""Left-padded batches of encoded prompts, on the model's device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..types import TokenRoles
from .prompting import Encoded
from .spec import VLM

# per-token inputs and their pad value (None = the tokenizer's pad id)
SEQUENCE_KEYS: dict[str, int | None] = {
    "input_ids": None,
    "attention_mask": 0,
    "mm_token_type_ids": 0,
    "token_type_ids": 0,
}


@dataclass(frozen=True)
class Batch:
    """B prompts, left-padded to T tokens.

    inputs: model keyword arguments (input_ids ``[B, T]``, attention_mask ``[B, T]``,
    position_ids ``[B, T]`` where the family needs them, pixel values ...), on the model's device.
    roles: unpadded roles per item; pad: left padding per item; answer_pos = T - 1.
    """

    inputs: Mapping[str, torch.Tensor]
    roles: tuple[TokenRoles, ...]
    pad: tuple[int, ...]
    answer_pos: int
    image_grids: tuple[tuple[tuple[int, int], ...], ...] = ()

    def __len__(self) -> int:
        return len(self.roles)

    @property
    def seq_len(self) -> int:
        return self.answer_pos + 1

    def role_matrix(self) -> np.ndarray:
        """``[B, T]`` int8 roles in padded coordinates, -1 on padding."""
        out = np.full((len(self.roles), self.seq_len), -1, dtype=np.int8)
        for i, (r, p) in enumerate(zip(self.roles, self.pad)):
            out[i, p:] = r.role
        return out


def _pad_images(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack ``[1, n_i, ...]`` tensors into ``[B, max n, ...]`` with zero images as padding."""
    n = max(t.shape[1] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), n, *tensors[0].shape[2:]))
    for i, t in enumerate(tensors):
        out[i, : t.shape[1]] = t[0]
    return out


def _concat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate on dim 0, zero-padding the other dims to the largest (e.g. patches per image)."""
    shape = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    if all(list(t.shape[1:]) == shape for t in tensors):
        return torch.cat(tensors, dim=0)
    out = tensors[0].new_zeros((sum(t.shape[0] for t in tensors), *shape))
    row = 0
    for t in tensors:
        out[(slice(row, row + t.shape[0]), *(slice(0, n) for n in t.shape[1:]))] = t
        row += t.shape[0]
    return out


def collate(vlm: VLM, encoded: Sequence[Encoded]) -> Batch:
    """Left-pad ``encoded`` into one batch on ``vlm.device`` (image tensors in ``vlm.dtype``)."""
    if not encoded:
        raise ValueError("collate needs at least one encoded prompt")
    lengths = [len(e) for e in encoded]
    T = max(lengths)
    pads = tuple(T - n for n in lengths)
    pad_id = vlm.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = vlm.tokenizer.eos_token_id or 0
    inputs: dict[str, torch.Tensor] = {}
    keys = list(dict.fromkeys(k for e in encoded for k in e.inputs))
    for key in keys:
        values = [e.inputs.get(key) for e in encoded]
        if key in SEQUENCE_KEYS:
            fill = pad_id if SEQUENCE_KEYS[key] is None else SEQUENCE_KEYS[key]
            out = torch.full((len(encoded), T), fill, dtype=values[0].dtype)
            for i, (v, p) in enumerate(zip(values, pads)):
                out[i, p:] = v[0]
            inputs[key] = out
            continue
        present = [v for v in values if v is not None]
        if vlm.family.image_batching == "pad":
            if len(present) < len(values):  # items without images get zero (dropped) images
                ref = present[0]
                present = [v if v is not None else ref.new_zeros((1, 1, *ref.shape[2:])) for v in values]
            inputs[key] = _pad_images(present)
        else:
            inputs[key] = _concat(present)
    if vlm.family.position_ids == "mask" or "image_grid_thw" not in inputs:
        mask = inputs["attention_mask"].long()
        inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    moved = {}
    for k, v in inputs.items():
        v = v.to(vlm.device)
        if v.is_floating_point():
            v = v.to(vlm.dtype)
        moved[k] = v
    return Batch(inputs=moved, roles=tuple(e.roles for e in encoded), pad=pads, answer_pos=T - 1,
                 image_grids=tuple(e.image_grids for e in encoded))
