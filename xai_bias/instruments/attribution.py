"""Attribution instruments (Captum): integrated gradients per layer (``ig``) and exact Shapley
values over modality groups (``shapley``).

The explained function is ``f = log p(target letter)`` at the item's answer row (log-softmax
over the vocabulary; the predicted letter, or the gold one with ``target="gold"`` — which letter
is chosen by the run and handed over as ``Target.token_id``), as a function of the decoder's
merged input embeddings (vision features already at the image tokens; see ``_embeds``).

``ig`` → ``attribution/ig [L+1, n_roles]``: row 0 = integrated gradients on the merged input
embeddings (Captum ``IntegratedGradients``); row ``l`` (1..L) = layer integrated gradients on the
residual stream after decoder layer ``l-1`` (Captum ``LayerIntegratedGradients`` on the layer's
output, i.e. the input of layer ``l``; the last row is the final residual stream before the
final norm). The layer rows are computed as Captum ``IntegratedGradients`` on the captured
activations with the layers below bypassed — the same integral as ``LayerIntegratedGradients``,
which the tests hold equal, at about half its cost (``integrated_gradients(layer_impl=...)``). Every row is |attribution| summed over the hidden dimension per token, then summed
per token role and normalised to shares that sum to 1. ``attribution/ig_delta``: Captum's
convergence delta of row 0 (sum of attributions − (f(x) − f(baseline))).

Baselines (``ig_baseline``): ``"mean"`` — at every prompt position the same vector, the mean of
the merged embeddings over the prompt's (non-padding) positions, image features included (a zero
baseline does not converge: RMSNorm is scale-invariant); ``"white"`` / ``"black"`` / ``"noise"`` —
the input with the image positions replaced by the vision features of a white / black /
uniform-noise image of the same size (same tokens and positions, text unchanged; noise is drawn
i.i.d. per pixel value at the processor's resolution, seeded by ``seed``).

``shapley`` → ``attribution/shapley [n_groups]``: exact Shapley values of ``f`` over the groups
image / text (question + options + instruction), or image / question / options (+ instruction)
with ``shapley_groups=3``, from all 2^k coalitions evaluated in batched forward passes. A group
that is absent has the baseline at its positions: the mean embedding, except for the image group
under a condition-image baseline, which gets that image's vision features. Tokens outside the
groups (sink, template, generated) are always present. By construction the values sum to
f(all) − f(none) (efficiency). Its baseline is ``shapley_baseline`` (default ``"black"``: an
absent image is a black image, as in the ablation study's ``text_black``; measured on the demo
pair, the mean baseline keeps part of the image's information — the mean embedding averages the
image features in — and understates the image's value). ``shapley_value="choice"`` explains the
target's log-prob among the option letters instead of over the vocabulary.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..models.decoder import DecoderCall, output_head
from ..models.hooks import passthrough, trace, with_hidden_input
from ..types import N_ROLES, ROLE_INDEX
from . import _embeds
from ._embeds import BASELINES, IMAGE_BASELINES, ItemInput, DecoderMethod
from .base import Target

SHAPLEY_GROUPS: dict[int, tuple[tuple[str, tuple[str, ...]], ...]] = {
    2: (("image", ("image",)), ("text", ("question", "options", "instruction"))),
    3: (("image", ("image",)), ("question", ("question",)), ("options", ("options", "instruction"))),
}


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


@dataclass(frozen=True)
class IGResult:
    """Integrated gradients of one item.

    token_abs / token_signed: ``[L+1, T]`` |attribution| and signed attribution summed over the
    hidden dimension per token (row 0 = input embeddings, row l = output of layer l-1).
    delta: ``[L+1]`` Captum's convergence delta per row. f_input / f_baseline: f at the input and
    at the baseline. shares: ``[L+1, n_roles]`` |attribution| share per role.
    """

    token_abs: np.ndarray
    token_signed: np.ndarray
    delta: np.ndarray
    f_input: float
    f_baseline: float
    shares: np.ndarray


def _layer_sites(vlm: Any, upto: int | None = None) -> dict[str, torch.nn.Module]:
    """Decoder layers ``0 … upto-1`` (all by default) by index, for ``hooks.trace``."""
    layers = vlm.layers
    return {str(i): layers[i] for i in range(len(layers) if upto is None else upto)}


def _layer_outputs(vlm: Any, call: DecoderCall, embeds: torch.Tensor) -> tuple[list[torch.Tensor], bool]:
    """Every decoder layer's output hidden states ``[n, T, D]`` for ``embeds`` (one pass), and
    whether the layers return tuples."""
    sites = _layer_sites(vlm)
    with torch.no_grad(), trace(sites, outputs=True) as seen:
        call.run(vlm.decoder, embeds)
    outs = [seen[name].output for name in sites]
    as_tuple = isinstance(outs[0], tuple)
    return [o[0] if as_tuple else o for o in outs], as_tuple


def _from_layer_fn(vlm: Any, item: ItemInput, layer: int, as_tuple: bool):
    """g(h ``[n, T, D]``) -> ``[n]``: f with the residual stream entering decoder layer ``layer``
    set to ``h`` (``layer == L``: h is the last layer's output, followed by the final norm).
    Layers below ``layer`` are skipped (``replace`` by a pass-through), so only the part of the
    decoder above ``h`` runs; whatever the decoder adds between layers below ``layer`` is
    overwritten by ``h`` too."""
    head = output_head(vlm)
    pos, tok = item.answer_pos, item.token_id
    L = len(vlm.layers)
    if layer == L:
        norm = vlm.final_norm

        def g_last(h: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(head(norm(h[:, pos])).float(), dim=-1)[:, tok]

        return g_last
    below = _layer_sites(vlm, layer)
    target = {str(layer): vlm.layers[layer]}
    x = item.call.embeds

    def g(h: torch.Tensor) -> torch.Tensor:
        def put(name, args, kwargs):
            return with_hidden_input(args, kwargs, h)

        with contextlib.ExitStack() as stack:
            if below:
                stack.enter_context(trace(below, replace=passthrough(as_tuple)))
            stack.enter_context(trace(target, edit_input=put))
            hidden = item.call.run(vlm.decoder, x.expand(h.shape[0], -1, -1))
        return torch.log_softmax(head(hidden[:, pos]).float(), dim=-1)[:, tok]

    return g


def integrated_gradients(vlm: Any, item: ItemInput, baseline: str = "mean", n_steps: int = 32,
                         internal_batch_size: int | None = 8, layers: bool = True,
                         layer_impl: str = "skip") -> IGResult:
    """IG on the merged input embeddings (row 0) and, with ``layers``, layer IG on the residual
    stream after every decoder layer (rows 1..L).

    Layer IG at row l integrates along the straight line from the baseline's activation
    h_l(baseline) to h_l(x) in the residual stream, exactly as Captum's
    ``LayerIntegratedGradients`` on the output of layer l-1. ``layer_impl="captum"`` runs that
    class (the whole decoder per step); ``"skip"`` (default) computes the same integral with
    ``IntegratedGradients`` on the activations, running only the layers above the attributed
    stream (layers below are bypassed; about half the cost; the tests hold both equal).
    """
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    if layer_impl not in ("skip", "captum"):
        raise ValueError(f"layer_impl must be 'skip' or 'captum', got {layer_impl!r}")
    f = _embeds.target_logprob_fn(vlm, item.call, item.answer_pos, item.token_id)
    x = item.call.embeds.detach()
    base = _embeds.baseline_for(vlm, item.call, item.roles, baseline, item.cond).detach()
    ibs = internal_batch_size or None
    rows_abs, rows_signed, deltas = [], [], []

    def keep(attr: torch.Tensor, delta: torch.Tensor) -> None:
        a = attr.detach().float()[0]
        rows_abs.append(a.abs().sum(-1).cpu().numpy())
        rows_signed.append(a.sum(-1).cpu().numpy())
        deltas.append(float(delta.detach().float().reshape(-1)[0]))

    with torch.enable_grad():
        attr, delta = IntegratedGradients(f).attribute(
            x, baselines=base, n_steps=n_steps, internal_batch_size=ibs, return_convergence_delta=True)
        keep(attr, delta)
        if layers and layer_impl == "captum":
            for layer in vlm.layers:
                lig = LayerIntegratedGradients(f, layer)
                attr, delta = lig.attribute(x, baselines=base, n_steps=n_steps, internal_batch_size=ibs,
                                            attribute_to_layer_input=False, return_convergence_delta=True)
                if isinstance(attr, (tuple, list)):
                    attr = attr[0]
                keep(attr, delta)
        elif layers:
            acts, as_tuple = _layer_outputs(vlm, item.call, torch.cat([x, base], 0))
            for l, act in enumerate(acts):
                g = _from_layer_fn(vlm, item, l + 1, as_tuple)
                attr, delta = IntegratedGradients(g).attribute(
                    act[:1], baselines=act[1:], n_steps=n_steps, internal_batch_size=ibs,
                    return_convergence_delta=True)
                keep(attr, delta)
        with torch.no_grad():
            fx, fb = f(torch.cat([x, base], 0)).double().cpu().tolist()
    token_abs = np.stack(rows_abs)
    sums = _embeds.role_sums(token_abs, item.roles, N_ROLES)
    total = sums.sum(-1, keepdims=True)
    shares = np.divide(sums, total, out=np.zeros_like(sums), where=total > 0)
    return IGResult(token_abs, np.stack(rows_signed), np.asarray(deltas), fx, fb, shares)


class IntegratedGradientsMethod(DecoderMethod):
    """Integrated gradients per layer, reduced to token-role shares (module docstring)."""

    name = "ig"

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        o = self.options
        out = []
        for item in self.items(batch, targets, o.baseline):
            res = integrated_gradients(self.vlm, item, o.baseline, o.steps, o.internal_batch_size)
            out.append({"attribution/ig": res.shares.astype(np.float32),
                        "attribution/ig_delta": np.float32(res.delta[0])})
        return out

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        o = self.options
        common = {"baseline": o.baseline, "steps": int(o.steps), "target": self.settings.target,
                  "integration": "gausslegendre", "internal_batch_size": int(o.internal_batch_size)}
        return {
            "attribution/ig": {**common, "rows": "0 = merged input embeddings; l = residual stream "
                               "after decoder layer l-1 (layer IG on its output)",
                               "reduction": "sum |attribution| over hidden dim per token, summed per "
                               "role, normalised per row"},
            "attribution/ig_delta": {**common, "of": "row 0: sum(attributions) - (f(x) - f(baseline))"},
        }


# --------------------------------------------------------------------------------------------
# exact Shapley values over modality groups


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
        other = torch.as_tensor(np.flatnonzero((item.roles >= 0) & (item.roles != ROLE_INDEX["image"])),
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


def modality_shapley(vlm: Any, item: ItemInput, n_groups: int = 2, baseline: str = "mean",
                     batch_size: int | None = None, value: str = "vocab") -> ShapleyResult:
    """Exact Shapley values of f over the modality groups (``SHAPLEY_GROUPS[n_groups]``).

    value: "vocab" — f is the target letter's log-prob over the vocabulary; "choice" — over the
    option letters only (removing a group that the model needs to answer in the expected format
    at all, e.g. the question, then costs nothing by itself; what counts is which option wins)."""
    if value not in SHAPLEY_VALUES:
        raise ValueError(f"shapley value must be one of {', '.join(SHAPLEY_VALUES)}, got {value!r}")
    if n_groups not in SHAPLEY_GROUPS:
        raise ValueError(f"shapley_groups must be one of {sorted(SHAPLEY_GROUPS)}, got {n_groups}")
    groups = SHAPLEY_GROUPS[n_groups]
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

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        o = self.options
        out = []
        for item in self.items(batch, targets, o.baseline):
            res = modality_shapley(self.vlm, item, o.groups, o.baseline, batch_size=None, value=o.value)
            out.append({"attribution/shapley": res.phi.astype(np.float32)})
        return out

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        o = self.options
        groups = SHAPLEY_GROUPS.get(o.groups, ())
        return {"attribution/shapley": {
            "groups": [name for name, _ in groups],
            "group_roles": ["+".join(roles) for _, roles in groups],
            "baseline": o.baseline,
            "target": self.settings.target,
            "value": o.value,
            "exact": True,
            "coalitions": 1 << len(groups),
        }}


__all__ = ["IntegratedGradientsMethod", "ShapleyMethod", "IGResult", "ShapleyResult", "ItemInput",
           "integrated_gradients", "modality_shapley", "shapley_values", "shapley_of", "coalition_embeds",
           "SHAPLEY_GROUPS", "BASELINES"]
