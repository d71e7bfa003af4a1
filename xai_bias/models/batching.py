"""Left-padded batches of encoded prompts, on the model's device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..types import ROLE_INDEX, TokenRoles
from .prompting import Encoded
from .sites import SiteError
from .spec import VLM


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
    media: tuple[Any, ...] = ()  # per item: its Encoded.media (prompting.MediaLayout)
    image_tiles: tuple[tuple, ...] = ()  # per item: models.layout.Tile rows

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


def pad_token_id(tokenizer) -> int:
    """The id left padding uses (the tokenizer's pad token, else its eos token, else 0)."""
    pad_id = tokenizer.pad_token_id
    return pad_id if pad_id is not None else (tokenizer.eos_token_id or 0)


def _check_declared(key: str, values: Sequence[torch.Tensor | None], lengths: Sequence[int]) -> None:
    """An input the family data does not name is an error when it looks per-token or like pixels
    (collating it as image metadata would silently mis-pad it / keep it under a condition image)."""
    for v, n in zip(values, lengths):
        if v is None:
            continue
        if v.dim() == 2 and v.shape[0] == 1 and v.shape[1] == n and n > 3:
            raise SiteError(f"model input {key!r} has one value per token ({tuple(v.shape)}) but is not a "
                            f"declared per-token input; add it to the family's SiteSpec(token_inputs=...)")
        if v.is_floating_point():
            raise SiteError(f"floating-point model input {key!r} {tuple(v.shape)} is not a declared pixel input; "
                            f"add it to the family's SiteSpec(pixel_keys=...)")


def collate(vlm: VLM, encoded: Sequence[Encoded]) -> Batch:
    """Left-pad ``encoded`` into one batch on ``vlm.device`` (image tensors in ``vlm.dtype``).

    Per-token inputs (``vlm.sites.token_inputs``) are left-padded with their pad value; every
    other input is image data, batched as ``vlm.sites.image_batching`` says."""
    if not encoded:
        raise ValueError("collate needs at least one encoded prompt")
    sites = vlm.sites
    lengths = [len(e) for e in encoded]
    T = max(lengths)
    pads = tuple(T - n for n in lengths)
    inputs: dict[str, torch.Tensor] = {}
    keys = list(dict.fromkeys(k for e in encoded for k in e.inputs))
    for key in keys:
        values = [e.inputs.get(key) for e in encoded]
        spec = sites.token_inputs.get(key)
        if spec is not None:
            fill = pad_token_id(vlm.tokenizer) if spec.pad is None else spec.pad
            out = torch.full((len(encoded), T), fill, dtype=values[0].dtype)
            for i, (v, p) in enumerate(zip(values, pads)):
                out[i, p:] = v[0]
            inputs[key] = out
            continue
        if key not in sites.pixel_keys + sites.audio_keys + sites.float_inputs:
            _check_declared(key, values, lengths)
        present = [v for v in values if v is not None]
        if sites.image_batching == "pad":
            if len(present) < len(values):  # items without images get zero (dropped) images
                ref = present[0]
                present = [v if v is not None else ref.new_zeros((1, 1, *ref.shape[2:])) for v in values]
            inputs[key] = _pad_images(present)
        else:
            inputs[key] = _concat(present)
    if vlm.family.position_ids == "mask" or not {"image_grid_thw", "video_grid_thw"} & set(inputs):
        mask = inputs["attention_mask"].long()
        inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    moved = {}
    for k, v in inputs.items():
        v = v.to(vlm.device)
        if v.is_floating_point():
            v = v.to(vlm.dtype)
        moved[k] = v
    return Batch(inputs=moved, roles=tuple(e.roles for e in encoded), pad=pads, answer_pos=T - 1,
                 image_grids=tuple(e.image_grids for e in encoded), media=tuple(e.media for e in encoded),
                 image_tiles=tuple(e.image_tiles for e in encoded))


def image_positions(vlm: VLM, batch: Batch, item: int, roles: np.ndarray | None = None) -> np.ndarray:
    """Positions (padded coordinates) of item ``item``'s vision placeholder tokens: role ``image``
    or one of the family's image token ids (PaliGemma's first image token is the ``sink``),
    padding excluded."""
    if roles is None:
        roles = batch.role_matrix()[item]
    mask = roles == ROLE_INDEX["image"]
    ids = batch.inputs.get("input_ids")
    token_ids = vlm.sites.image_token_ids
    if ids is not None and token_ids:
        mask = mask | (np.isin(ids[item].detach().cpu().numpy(), token_ids) & (roles >= 0))
    return np.flatnonzero(mask)
