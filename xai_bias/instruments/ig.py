"""Integrated gradients (Captum) per layer (``ig``).

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
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..models.decoder import DecoderCall, output_head
from ..models.hooks import passthrough, trace, with_hidden_input
from ..types import N_ROLES
from . import _embeds
from ._embeds import ItemInput, DecoderMethod
from .base import Target


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


__all__ = ["IntegratedGradientsMethod", "IGResult", "integrated_gradients"]
