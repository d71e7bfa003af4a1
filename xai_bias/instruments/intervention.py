"""Intervention instruments (nnsight): attention knockout (``knockout``) and the logit lens
(``logit_lens``).

Both trace the language decoder with nnsight (``nnsight.NNsight(vlm.decoder)``), fed with the
decoder call the VLM makes (merged input embeddings and all other arguments, ``models.DecoderCall``), so
the vision tower runs once and the decoder can be batched freely. nnsight is imported lazily, only
when one of these methods measures, and its module wrappers are taken off the model again when the
measurement ends (on error too), so the model is left exactly as it was.

``knockout`` → ``intervention/knockout [L]``: for every layer ``l``, the answer row's attention to
the image tokens (``--knockout-modality``: or the video / audio tokens) is cut at layers ``l … l+k-1`` (``--knockout-window`` = k; the window is clipped at
the last layer): the attention mask each of those layers receives is edited — (answer row, image
keys) set to "masked" (False in a boolean mask, the dtype's minimum in an additive one; when the
decoder passes no mask, i.e. plain causal attention, the causal mask is built first) — and the
change of the target letter's log-prob (knocked − clean) is recorded. All windows and the clean
run go through the decoder together as one batch (``--knockout-batch-size`` rows at a time), each
batch row knocked at its own layers. An item without tokens of that modality gets 0 at every layer. In a
hybrid decoder (``sites.attention_layers``: LFM2's convolution layers have no attention) only
attention layers are cut; a window without one is NaN (nothing to cut). Needs an
attention implementation that takes a mask (sdpa, eager, or one registered in the mask interface).

``logit_lens`` → ``intervention/logit_lens [L, n_options]``: the residual stream at the answer
row after every decoder layer, through the final norm and the unembedding (Gemma's soft-capping
included), log-softmax over the vocabulary, read at the option letters' ids. The last row equals
the model's own option log-probs.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..models.decoder import DecoderCall, output_head
from ..types import ROLE_INDEX
from . import _embeds
from ._embeds import DecoderMethod
from .base import MethodSettings, Target


def _instance_state(module: torch.nn.Module) -> dict[int, dict[str, Any]]:
    """A shallow copy of every submodule's instance dictionary (id -> attributes)."""
    return {id(m): dict(vars(m)) for m in module.modules()}


def _remove_nnsight_state(module: torch.nn.Module, before: dict[int, dict[str, Any]]) -> None:
    """Take nnsight's wrappers off ``module`` again.

    nnsight 0.8 installs a controller as each wrapped module's instance ``forward`` plus its
    per-module state (``nnsight.intervention.source.STATE``) and, by design, leaves them there
    ("installation is permanent", ``install_controller``); it has no public call that removes
    them (its only uninstall/detach functions are for vLLM registrations and PEFT adapters). So
    this is the one place that edits nnsight's state: every module's instance dictionary is put
    back as it was before the trace (attributes added are dropped, rebound ones restored, e.g. an
    accelerate forward wrapper), leaving the model exactly as it was (the tests compare every
    module's attributes and the logits before and after)."""
    for m in module.modules():
        old = before.get(id(m))
        if old is None:
            continue
        attrs = vars(m)
        for name in [n for n in attrs if n not in old]:
            del attrs[name]
        for name, value in old.items():
            if attrs.get(name) is not value:
                attrs[name] = value


@contextlib.contextmanager
def traced(module: torch.nn.Module) -> Iterator[Any]:
    """``nnsight.NNsight(module)`` for the duration of the block; nnsight's wrappers are taken off
    again on exit, on error too (``_remove_nnsight_state``)."""
    import nnsight

    before = _instance_state(module)
    try:
        yield nnsight.NNsight(module)
    finally:
        _remove_nnsight_state(module, before)


def _layer_envoys(model: Any, vlm: Any) -> Any:
    """The nnsight envoy of the decoder layers' ModuleList (``vlm.sites.layers`` in the decoder)."""
    envoy = model
    for part in vlm.sites.layers.split("."):
        envoy = getattr(envoy, part)
    return envoy


def _hidden(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if getattr(out, "last_hidden_state", None) is not None:
        return out.last_hidden_state
    return out[0]


def cut_mask(mask: torch.Tensor | None, rows: Sequence[int], query: int, keys: torch.Tensor, n: int, T: int,
             dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A ``[n, 1, T, T]`` copy of the layer's attention mask with (``rows``, query row ``query``,
    key positions ``keys``) masked out. ``None`` (plain causal attention) becomes the causal mask."""
    if mask is None:
        m = torch.ones(T, T, dtype=torch.bool, device=device).tril().expand(n, 1, T, T).clone()
    else:
        if mask.ndim != 4:
            raise ValueError(f"knockout needs a 4-D attention mask at the layers, got shape {tuple(mask.shape)}")
        m = mask.expand(n, *mask.shape[1:]).clone()
    r = torch.as_tensor(list(rows), device=m.device)
    # index rows x keys at the query row (all heads of the mask)
    sel = m[r, :, query]
    if m.dtype == torch.bool:
        sel[..., keys] = False
    else:
        sel[..., keys] = torch.finfo(m.dtype).min
    m[r, :, query] = sel
    return m


def knockout(vlm: Any, call: DecoderCall, roles: np.ndarray, answer_pos: int, token_id: int,
             window: int = 1, chunk: int | None = 8, starts: Sequence[int] | None = None,
             key_role: int = _embeds.IMAGE) -> np.ndarray:
    """``[len(starts)]`` float64: Δ log p(token) at ``answer_pos`` when the answer row's attention
    to the tokens of role ``key_role`` (default: image) is cut at layers ``s … s+window-1`` (for
    each start ``s``; default all layers), relative to the clean run, for a batch-1 ``call``."""
    import nnsight

    L = len(vlm.layers)
    starts = list(range(L)) if starts is None else list(starts)
    if window < 1:
        raise ValueError(f"knockout window must be >= 1, got {window}")
    attention = set(vlm.sites.attention_layers)  # hybrid decoders: only these layers have attention to cut
    no_attention = np.array([not any(s <= a < s + window for a in attention) for s in starts], dtype=bool)
    keys = torch.as_tensor(np.flatnonzero(roles == key_role), device=call.embeds.device)
    if keys.numel() == 0:
        return np.where(no_attention, np.nan, 0.0)
    head = output_head(vlm)
    decoder = vlm.decoder
    T = call.embeds.shape[1]
    plan: list[int | None] = [None] + starts  # row 0: clean
    step = max(int(chunk or len(plan)), 2)
    logps: list[torch.Tensor] = []
    with traced(decoder) as model, torch.no_grad():
        layers = _layer_envoys(model, vlm)
        for lo in range(0, len(plan), step):
            part = plan[lo : lo + step]
            n = len(part)
            kwargs = call.expanded_kwargs(n)
            embeds = call.embeds.expand(n, -1, -1)
            cut_at = [[i for i, s in enumerate(part) if s is not None and s <= layer < s + window]
                      if layer in attention else [] for layer in range(L)]
            with model.trace(inputs_embeds=embeds, **kwargs):
                for layer in range(L):
                    rows = cut_at[layer]
                    if not rows:
                        continue
                    args, kw = layers[layer].inputs
                    kw = dict(kw)
                    kw["attention_mask"] = cut_mask(kw.get("attention_mask"), rows, answer_pos, keys, n, T,
                                                    embeds.dtype, embeds.device)
                    layers[layer].inputs = (args, kw)
                out = nnsight.save(model.output)
            hidden = _hidden(out)[:, answer_pos]
            logps.append(torch.log_softmax(head(hidden).float(), dim=-1)[:, token_id].double().cpu())
    lp = torch.cat(logps).numpy()
    return np.where(no_attention, np.nan, lp[1:] - lp[0])


def logit_lens(vlm: Any, call: DecoderCall, answer_pos: Sequence[int], letter_ids: Sequence[Sequence[int]]
               ) -> list[np.ndarray]:
    """Per batch item, ``[L, n_letters]`` float64 log-probs of the letters read from the residual
    stream after every layer at that item's answer row."""
    import nnsight

    L = len(vlm.layers)
    head = output_head(vlm)
    norm = vlm.final_norm
    B = call.batch_size
    pos = torch.as_tensor(list(answer_pos), device=call.embeds.device)
    rows = torch.arange(B, device=call.embeds.device)
    saved: list[Any] = []
    with traced(vlm.decoder) as model, torch.no_grad():
        layers = _layer_envoys(model, vlm)
        kwargs = dict(call.kwargs)
        with model.trace(inputs_embeds=call.embeds, **kwargs):
            for layer in range(L):
                saved.append(nnsight.save(_hidden(layers[layer].output)[rows, pos]))
        hidden = torch.stack(list(saved), dim=1)  # [B, L, D]
        logp = torch.log_softmax(head(norm(hidden)).float(), dim=-1).double().cpu()
    return [logp[b][:, list(letter_ids[b])].numpy() for b in range(B)]


class KnockoutMethod(DecoderMethod):
    """Attention knockout of one modality's tokens per layer window (module docstring)."""

    name = "knockout"

    def __init__(self, vlm: Any, settings: MethodSettings = MethodSettings()):
        super().__init__(vlm, settings)
        self.modality = self.options.modality if self.options.modality != "auto" else _first_modality(
            getattr(getattr(vlm, "family", None), "modalities", ("image",)))

    def prepare(self, modalities: Sequence[str]) -> None:
        """``--knockout-modality auto``: the first non-text modality the run shows."""
        if self.options.modality == "auto" and modalities:
            self.modality = _first_modality(modalities)

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        o = self.options
        out = []
        for item in self.items(batch, targets, "mean"):
            delta = knockout(self.vlm, item.call, item.roles, item.answer_pos, item.token_id,
                             window=o.window, chunk=o.batch_size, key_role=ROLE_INDEX[self.modality])
            out.append({"intervention/knockout": delta.astype(np.float32)})
        return out

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        m = self.modality
        return {"intervention/knockout": {
            "window": int(self.options.window), "target": self.settings.target, "modality": m,
            "value": f"logp(target | answer row cut from {m} keys at layers l..l+window-1) - logp(target)",
            "attention_layers": list(self.vlm.sites.attention_layers),
            "layers_without_attention": "NaN: a window without an attention layer has nothing to cut",
        }}


def _first_modality(modalities: Sequence[str]) -> str:
    """The first of image, video, audio among ``modalities`` (image when none)."""
    return next((m for m in ("image", "video", "audio") if m in modalities), "image")


class LogitLensMethod(DecoderMethod):
    """Option-letter log-probs from every layer's residual stream (module docstring)."""

    name = "logit_lens"

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        if len(targets) != len(batch):
            raise ValueError(f"{len(targets)} targets for a batch of {len(batch)}")
        call = self.decoder_call(batch)
        lens = logit_lens(self.vlm, call, [t.answer_pos for t in targets], [t.letter_ids for t in targets])
        return [{"intervention/logit_lens": x.astype(np.float32)} for x in lens]

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        return {"intervention/logit_lens": {
            "rows": "residual stream after decoder layer l, through the final norm and the unembedding",
            "value": "log-softmax over the vocabulary at the option letters' ids",
        }}


__all__ = ["KnockoutMethod", "LogitLensMethod", "knockout", "logit_lens", "cut_mask", "traced"]
