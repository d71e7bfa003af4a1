"""Exact Shapley values over modality groups (``shapley``).

The explained function is ``f = log p(target letter)`` at the item's answer row (see ``ig``), as
a function of the decoder's merged input embeddings.

``shapley`` → ``attribution/shapley [n_groups]``: exact Shapley values of ``f`` over modality
groups, from all 2^k coalitions (k <= 5, 32 coalitions) evaluated in batched forward passes.
``--groups`` (``shapley_groups``): ``modalities`` (default) — one group per non-text modality
the run shows (image, video, audio: ``Method.prepare``; used alone: image, or an audio
family's audio — ``default_modalities``) plus text (question + options + instruction); ``split`` — the same with the text split
into question / options (+ instruction); ``2`` — image / text and ``3`` — image / question /
options, as before (an image-only run's ``modalities`` is ``2``). A group that is absent has the
baseline at its positions: the mean embedding for text, and, under a condition-image baseline,
for the image and video groups the vision features of a white / black / noise image or video of
the same size, for the audio group the features of silence of the same length
(``models.silence``). Tokens outside the groups (sink, template, generated) are always present. By construction the values sum to
f(all) − f(none) (efficiency). Its baseline is ``shapley_baseline`` (default ``"black"``: an
absent image is a black image, as in the ablation study's ``text_black``; measured on the demo
pair, the mean baseline keeps part of the image's information — the mean embedding averages the
image features in — and understates the image's value). ``shapley_value="choice"`` explains the
target's log-prob among the option letters instead of over the vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..types import MODALITIES, ROLE_INDEX
from . import _embeds
from ._embeds import IMAGE_BASELINES, ItemInput, DecoderMethod
from .base import MethodSettings, Target

SHAPLEY_GROUPS: dict[int, tuple[tuple[str, tuple[str, ...]], ...]] = {
    2: (("image", ("image",)), ("text", ("question", "options", "instruction"))),
    3: (("image", ("image",)), ("question", ("question",)), ("options", ("options", "instruction"))),
}
#: the forms of ``--groups``: built from the modalities shown, or the fixed ones above
GROUP_FORMS = ("modalities", "split", "2", "3")
MAX_GROUPS = 5
_TEXT = {"modalities": (("text", ("question", "options", "instruction")),),
         "split": (("question", ("question",)), ("options", ("options", "instruction")))}


def default_modalities(vlm: Any) -> tuple[str, ...]:
    """The modalities of the groups when a run has not said which it shows (``Method.prepare``):
    image for a family that takes images (as before video and audio), else the family's own
    (an audio family: audio); image for a bare decoder stand-in."""
    family = getattr(vlm, "family", None)
    if family is None or family.takes("image"):
        return ("image",)
    return tuple(family.modalities)


def shapley_groups(form: str | int, modalities: Sequence[str] = ("image",)
                   ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The Shapley players of ``--groups form``: (name, roles) per group. ``modalities``: the
    non-text modalities shown (``types.MODALITIES`` names), for the forms built from them."""
    form = str(form)
    if form not in GROUP_FORMS:
        raise ValueError(f"shapley groups must be one of {', '.join(GROUP_FORMS)}, got {form!r}")
    if form.isdigit():
        return SHAPLEY_GROUPS[int(form)]
    media = tuple((m, MODALITIES[m]) for m in MODALITIES if m in modalities and m not in ("text", "other"))
    groups = media + _TEXT[form]
    if len(groups) > MAX_GROUPS:
        raise ValueError(f"{len(groups)} Shapley groups, more than {MAX_GROUPS}")
    return groups


# --------------------------------------------------------------------------------------------
# exact Shapley values


def shapley_values(values: np.ndarray, k: int) -> np.ndarray:
    """Exact Shapley values ``[k]`` (float64) of a k-player game given as ``values [2^k]``:
    ``values[mask]`` is the worth of the coalition whose players are the set bits of ``mask``
    (bit j = player j present; ``values[0]`` the empty coalition)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (1 << k,):
        raise ValueError(f"need {1 << k} coalition values for {k} players, got shape {v.shape}")
    phi = np.zeros(k, dtype=np.float64)
    fact = [math.factorial(i) for i in range(k + 1)]
    for j in range(k):
        bit = 1 << j
        for mask in range(1 << k):
            if mask & bit:
                continue
            s = bin(mask).count("1")
            phi[j] += fact[s] * fact[k - s - 1] / fact[k] * (v[mask | bit] - v[mask])
    return phi


def shapley_of(fn, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values of ``fn(mask) -> float`` over ``k`` players: (phi ``[k]``, values ``[2^k]``)."""
    values = np.array([float(fn(mask)) for mask in range(1 << k)], dtype=np.float64)
    return shapley_values(values, k), values


# --------------------------------------------------------------------------------------------
# integrated gradients


SHAPLEY_VALUES = ("vocab", "choice")


@dataclass(frozen=True)
class ShapleyResult:
    """phi: ``[k]`` Shapley values; values: ``[2^k]`` f per coalition (bit j = group j present)."""

    groups: tuple[str, ...]
    phi: np.ndarray
    values: np.ndarray


def coalition_embeds(item: ItemInput, groups: Sequence[tuple[str, Sequence[str]]], baseline: str
                     ) -> torch.Tensor:
    """``[2^k, T, D]``: the input with every absent group's positions set to its baseline."""
    x = item.call.embeds
    mean = _embeds.mean_baseline(x, item.roles >= 0)
    absent = mean.clone()
    if baseline in IMAGE_BASELINES:
        absent = _embeds.baseline_for(None, item.call, item.roles, baseline, item.cond)
        other = torch.as_tensor(np.flatnonzero((item.roles >= 0) & ~np.isin(item.roles, _embeds.MEDIA_ROLES)),
                                device=x.device)
        absent[0, other] = mean[0, other]
    k = len(groups)
    pos = [torch.as_tensor(np.flatnonzero(np.isin(item.roles, [ROLE_INDEX[r] for r in roles])), device=x.device)
           for _, roles in groups]
    out = x.detach().repeat(1 << k, 1, 1)
    for mask in range(1 << k):
        for j in range(k):
            if not mask & (1 << j) and pos[j].numel():
                out[mask, pos[j]] = absent[0, pos[j]]
    return out


def modality_shapley(vlm: Any, item: ItemInput, n_groups: int | str | Sequence = 2, baseline: str = "mean",
                     batch_size: int | None = None, value: str = "vocab",
                     modalities: Sequence[str] | None = None) -> ShapleyResult:
    """Exact Shapley values of f over the modality groups: ``n_groups`` is a form of ``--groups``
    (``shapley_groups(n_groups, modalities)``; ``modalities`` default: the family's) or the
    groups themselves, a sequence of (name, roles).

    value: "vocab" — f is the target letter's log-prob over the vocabulary; "choice" — over the
    option letters only (removing a group that the model needs to answer in the expected format
    at all, e.g. the question, then costs nothing by itself; what counts is which option wins)."""
    if value not in SHAPLEY_VALUES:
        raise ValueError(f"shapley value must be one of {', '.join(SHAPLEY_VALUES)}, got {value!r}")
    if isinstance(n_groups, (str, int)):
        if modalities is None:
            modalities = default_modalities(vlm)
        groups = shapley_groups(n_groups, modalities)
    else:
        groups = tuple((str(name), tuple(roles)) for name, roles in n_groups)
        if not 1 <= len(groups) <= MAX_GROUPS:
            raise ValueError(f"need 1..{MAX_GROUPS} Shapley groups, got {len(groups)}")
    letters = item.letter_ids if value == "choice" else ()
    f = _embeds.target_logprob_fn(vlm, item.call, item.answer_pos, item.token_id, letters)
    emb = coalition_embeds(item, groups, baseline)
    step = max(int(batch_size or emb.shape[0]), 1)
    with torch.no_grad():
        values = torch.cat([f(emb[i : i + step]) for i in range(0, emb.shape[0], step)])
    values = values.double().cpu().numpy()
    return ShapleyResult(tuple(name for name, _ in groups), shapley_values(values, len(groups)), values)


class ShapleyMethod(DecoderMethod):
    """Exact modality Shapley values (module docstring)."""

    name = "shapley"

    def __init__(self, vlm: Any, settings: MethodSettings = MethodSettings()):
        super().__init__(vlm, settings)
        self._modalities = default_modalities(vlm)

    def prepare(self, modalities: Sequence[str]) -> None:
        """The groups are the modalities the run shows (of those the family takes)."""
        self._modalities = tuple(m for m in modalities if self.vlm.family.takes(m))

    @property
    def groups(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return shapley_groups(self.options.groups, self._modalities)

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        o = self.options
        groups = self.groups
        out = []
        for item in self.items(batch, targets, o.baseline):
            res = modality_shapley(self.vlm, item, groups, o.baseline, batch_size=None, value=o.value)
            out.append({"attribution/shapley": res.phi.astype(np.float32)})
        return out

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        o = self.options
        groups = self.groups
        return {"attribution/shapley": {
            "groups": [name for name, _ in groups],
            "group_roles": ["+".join(roles) for _, roles in groups],
            "baseline": o.baseline,
            "audio_baseline": "silence of the same length",
            "target": self.settings.target,
            "value": o.value,
            "exact": True,
            "coalitions": 1 << len(groups),
        }}


__all__ = ["ShapleyMethod", "ShapleyResult", "modality_shapley", "shapley_values", "shapley_of",
           "coalition_embeds", "SHAPLEY_GROUPS", "SHAPLEY_VALUES", "GROUP_FORMS", "MAX_GROUPS", "shapley_groups"]
