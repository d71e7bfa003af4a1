"""Attention mass on each token role, captured while the model runs its normal sdpa path.

How it works
------------
``capture_attention`` registers a fresh attention function name (unique per use) in
``transformers.AttentionInterface`` **and** ``AttentionMaskInterface`` (there it maps to the mask
function of the implementation it wraps — ``sdpa_mask`` for sdpa — else the padding mask would be
dropped silently), and switches only the *text decoder's* config to that name (the vision tower
keeps its own implementation). The function calls the stock attention function (``sdpa`` by
default) with the very same arguments, so the model's output and logits are bit-identical; in
addition, for the decoder's layers only, it computes the softmax rows of the selected query
positions alone:

    p = softmax(q_rows · kᵀ · scaling [tanh soft-capped if the layer passes ``softcap``] + mask_rows)

in float32 (q after RoPE / mrope and q/k-norm — what the function receives), with the layer's own
mask rows (causal, left padding, sliding window, bidirectional image blocks — whatever the model
built), or the causal rule sdpa applies when the model passed no mask. Grouped-query attention is
handled by reshaping the query heads onto the key/value heads (head ``h`` reads kv head
``h // n_rep``, as ``repeat_kv``). The rows are reduced at once to the mass on each role
(``p @ onehot(role)``); no ``[H, T, T]`` matrix is ever built. Everything (implementation names of
the configs, registry entries) is restored on exit, also when an exception leaves the context.

Quantities (per layer ``l``, head ``h``; roles in ``xai_bias.types.ROLES`` order)
---------------------------------------------------------------------------------
- mass ``[L, H, n_roles]``: ``sum_{k: role(k)=r} p_lh(row, k)`` for the query row. Padding keys
  (role -1) carry no mass (they are masked). The roles of one row sum to 1.
- maps ``[L, n_image_tokens]``: ``mean_h p_lh(answer_row, k)`` for the vision placeholder tokens
  ``k`` in sequence order (all images concatenated): tokens of role ``image`` or with the model's
  image token id (PaliGemma's prompt starts with an image token, whose role is ``sink``), so the
  map matches the image grid.
- flow ``[L, n_roles, n_roles]``: ``F[l, a, b] = mean_{i: role(i)=a} mean_h sum_{k: role(k)=b}
  p_lh(i, k)`` over every query row ``i`` of role ``a`` (padding rows excluded), computed chunk-wise
  (``flow_chunk`` rows at a time) inside the attention function. Rows of a role absent from the
  prompt are NaN.

Query-row rule (``dataset_attrs``)
----------------------------------
- ``direct`` mode: the last prompt position (``Target.answer_pos``; the row whose next-token
  distribution scores the option letters).
- ``cot`` mode: the position whose row emits the parsed answer letter (``Target.answer_pos``,
  from one forward pass over prompt + generation); ``attention/mass_generated`` is the mean of the
  mass over the rows of all generated tokens (tokens of role ``generated``).

Trace datasets written by the ``attention`` method
--------------------------------------------------
``attention/mass``            [L, H, n_roles] float32
``attention/mass_generated``  [L, H, n_roles] float32   (cot mode only)
``attention/flow``            [L, n_roles, n_roles] float32   (``settings.attention_flow``)
``attention/maps``            [L, MAP_WIDTH] float32 (``settings.save_maps``): the first
                              ``n_image_tokens`` entries of each layer row are the map, the rest
                              is NaN padding. The trace keeps one fixed row shape per dataset, and
                              the number of image tokens varies per record, hence the padding
                              (NaN compresses to almost nothing). ``MAP_WIDTH`` is
                              ``settings.extra["map_width"]`` (default 8192, stored as the
                              dataset attribute ``width``); a record with more image tokens keeps
                              the first ``width`` and a warning is issued.
``attention/map_grid``        [MAX_IMAGES, 2] int32: (rows, cols) of vision tokens per image, in
                              order, zero rows after the last image (``settings.extra
                              ["map_max_images"]``, default 16). Image ``i`` owns the next
                              ``rows_i * cols_i`` entries of a map row, row-major; the map's
                              valid length is ``sum(rows * cols)``.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..types import N_ROLES, ROLE_INDEX, ROLES
from .base import Method, MethodSettings, Target

__all__ = [
    "MAP_MAX_IMAGES",
    "MAP_WIDTH",
    "AttentionCapture",
    "AttentionMethod",
    "capture_attention",
    "cot_attention",
    "image_positions",
    "text_attention_configs",
]

_GENERATED = ROLE_INDEX["generated"]
_IMAGE = ROLE_INDEX["image"]
_counter = itertools.count()
#: upper bound on the float32 scores of one chunk of query rows (bytes)
_CHUNK_BYTES = 256 * 2**20


# --------------------------------------------------------------------------------------------
# model plumbing


def _hf_model(vlm: Any) -> Any:
    """The Hugging Face model of a VLM wrapper (``vlm.model``) or the model itself."""
    import torch

    if isinstance(vlm, torch.nn.Module):
        return vlm
    model = getattr(vlm, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a VLM or a transformers model, got {type(vlm).__name__}")
    return model


def _decoder_layers(vlm: Any) -> Sequence[Any]:
    layers = getattr(vlm, "layers", None)
    if layers is not None and not callable(layers):
        return layers
    model = _hf_model(vlm)
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    return decoder.layers


def _attention_module(layer: Any) -> Any:
    attn = getattr(layer, "self_attn", None)
    if attn is not None:
        return attn
    for name, mod in layer.named_modules():
        if name and type(mod).__name__.endswith("Attention"):
            return mod
    raise TypeError(f"no attention module found in decoder layer {type(layer).__name__}")


def text_attention_configs(vlm: Any) -> list[Any]:
    """The config objects that decide the text decoder's attention implementation (by identity):
    the decoder's config, each decoder attention module's config and the model's text config."""
    model = _hf_model(vlm)
    cands = []
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is not None:
        cands.append(decoder.config)
    for layer in _decoder_layers(vlm):
        cfg = getattr(_attention_module(layer), "config", None)
        if cfg is not None:
            cands.append(cfg)
    if hasattr(model.config, "get_text_config"):
        cands.append(model.config.get_text_config())
    out, seen = [], set()
    for c in cands:
        if id(c) not in seen:
            seen.add(id(c))
            out.append(c)
    return out


def _wrapped_functions(impl: str | None, attn_module: Any):
    """(attention function, mask function) of the implementation ``impl`` that the capture wraps."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    impl = impl or "sdpa"
    mask_fn = ALL_MASK_ATTENTION_FUNCTIONS._global_mapping.get(impl)
    if impl == "eager":
        attn_fn = getattr(sys.modules[type(attn_module).__module__], "eager_attention_forward", None)
        if attn_fn is None:
            raise TypeError(f"cannot find the eager attention function of {type(attn_module).__name__}")
    else:
        attn_fn = ALL_ATTENTION_FUNCTIONS.get(impl)
        if attn_fn is None:
            raise KeyError(f"attention implementation {impl!r} is not registered in transformers")
    if mask_fn is None:
        mask_fn = ALL_MASK_ATTENTION_FUNCTIONS._global_mapping["sdpa"]
    return attn_fn, mask_fn


# --------------------------------------------------------------------------------------------
# capture


@dataclass
class AttentionCapture:
    """What a ``capture_attention`` context measured (filled on exit; numpy, float32).

    row_mass: ``[B, L, H, n_rows, n_roles]`` mass of every selected query row.
    row_positions: per item, the ``n_rows`` selected positions (padded coordinates); items with
      fewer rows than ``n_rows`` repeat their last row (``row_valid`` marks the real ones).
    mass: ``[B, L, H, n_roles]`` mean over each item's valid rows.
    maps: ``[B, L, T]`` head-mean attention of each item's *first* selected row on every key
      position (only with ``maps=True``; select image positions with the role matrix).
    flow: ``[B, L, n_roles, n_roles]`` role-to-role flow (only with ``flow=True``).
    n_calls: ``[L]`` how many times each decoder layer was observed (1 after one forward pass).
    observe_cpu_seconds: process CPU time spent computing the rows (the capture's own cost; on
      CUDA the kernels run asynchronously, so this is launch time only).
    """

    row_positions: np.ndarray  # [B, n_rows] int64
    row_valid: np.ndarray  # [B, n_rows] bool
    row_mass: np.ndarray | None = None  # [B, L, H, n_rows, n_roles]
    maps: np.ndarray | None = None  # [B, L, T]
    flow: np.ndarray | None = None  # [B, L, n_roles, n_roles]
    n_calls: np.ndarray | None = None  # [L]
    impl_name: str = ""
    observe_cpu_seconds: float = 0.0

    @property
    def mass(self) -> np.ndarray:
        """``[B, L, H, n_roles]``: mean mass over each item's valid selected rows."""
        if self.row_mass is None:
            raise RuntimeError("the capture context has not run a forward pass yet")
        w = self.row_valid.astype(np.float64)
        w = w / np.maximum(w.sum(1, keepdims=True), 1)
        return np.einsum("blhnr,bn->blhr", self.row_mass.astype(np.float64), w).astype(np.float32)

    def mass_at(self, item: int, position: int) -> np.ndarray | None:
        """``[L, H, n_roles]`` of the row at ``position`` of item ``item`` (None if not captured)."""
        hits = np.flatnonzero((self.row_positions[item] == position) & self.row_valid[item])
        if hits.size == 0 or self.row_mass is None:
            return None
        return self.row_mass[item, :, :, hits[0], :]


def _as_rows(query_rows: Any, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-item row lists -> ([B, n] positions, [B, n] valid)."""
    if isinstance(query_rows, (int, np.integer)):
        lists = [[int(query_rows)]] * batch_size
    else:
        arr = query_rows
        if hasattr(arr, "detach"):
            arr = arr.detach().cpu().numpy()
        lists = []
        for r in arr:
            if isinstance(r, (int, np.integer)):
                lists.append([int(r)])
            else:
                lists.append([int(x) for x in np.asarray(r).reshape(-1)])
    if len(lists) != batch_size:
        raise ValueError(f"query_rows has {len(lists)} items, the batch {batch_size}")
    n = max(1, max(len(x) for x in lists))
    pos = np.zeros((batch_size, n), np.int64)
    valid = np.zeros((batch_size, n), bool)
    for b, rows in enumerate(lists):
        if not rows:
            continue
        pos[b, : len(rows)] = rows
        pos[b, len(rows):] = rows[-1]
        valid[b, : len(rows)] = True
    return pos, valid


class _Observer:
    """State shared with the registered attention function during one capture."""

    def __init__(self, layer_of: dict[int, int], n_layers: int, rows: np.ndarray, valid: np.ndarray,
                 key_roles: np.ndarray, maps: bool, flow: bool, flow_chunk: int):
        self.layer_of = layer_of
        self.n_layers = n_layers
        self.rows_np = rows
        self.valid_np = valid
        self.key_roles = np.asarray(key_roles)
        self.want_maps = maps
        self.want_flow = flow
        self.flow_chunk = int(flow_chunk)
        self.row_mass: list[Any] = [None] * n_layers
        self.maps: list[Any] = [None] * n_layers
        self.flow: list[Any] = [None] * n_layers
        self.calls = np.zeros(n_layers, np.int64)
        self.cpu_seconds = 0.0
        self._dev_cache: dict[Any, tuple] = {}

    def _tensors(self, device):
        import torch

        got = self._dev_cache.get(device)
        if got is None:
            roles = torch.as_tensor(self.key_roles.astype(np.int64), device=device)  # [B, T]
            onehot = torch.zeros(*roles.shape, N_ROLES, dtype=torch.float32, device=device)
            keep = roles >= 0
            onehot[keep] = torch.nn.functional.one_hot(roles[keep], N_ROLES).float()
            rows = torch.as_tensor(self.rows_np, device=device)
            got = (roles, onehot, rows)
            self._dev_cache[device] = got
        return got

    # the core: softmax rows for selected query positions -----------------------------------
    def _probs(self, module, query, key, mask, rows, scaling, causal, softcap, sliding_window, kv_stop=None):
        """Float32 softmax rows ``[B, H, n, kv_stop]`` for query positions ``rows`` ``[B, n]`` over
        the keys ``[:kv_stop]`` (all keys by default; a caller may cut the keys that the rows
        cannot see). Masked keys get ``finfo.min`` as in eager attention, so they carry exactly
        0 and a fully masked row (a padding query) stays finite."""
        import torch

        B, Hq, q_len, d = query.shape
        Hkv, kv_len = key.shape[1], key.shape[2]
        kv = kv_len if kv_stop is None else int(kv_stop)
        n_rep = Hq // Hkv
        n = rows.shape[1]
        q = query.gather(2, rows[:, None, :, None].expand(B, Hq, n, d)).float()
        k = key[:, :, :kv].float()
        # query heads grouped onto their kv head: [B, Hkv, rep * n, d] @ [B, Hkv, d, kv] (no key copy)
        s = torch.matmul(q.reshape(B, Hkv, n_rep * n, d), k.transpose(-1, -2))  # [B, Hkv, rep*n, kv]
        s = s.view(B, Hq, n, kv).mul_(scaling)
        if softcap is not None:
            s = torch.tanh(s / softcap) * softcap
        lowest = torch.finfo(torch.float32).min
        if mask is not None and mask.dim() == 4:
            m = mask[..., :kv]
            m = m.expand(B, m.shape[1], m.shape[2], kv)
            if m.shape[2] == 1:
                mr = m.expand(B, m.shape[1], n, kv)
            else:
                mr = m.gather(2, rows[:, None, :, None].expand(B, m.shape[1], n, kv))
            if mr.dtype == torch.bool:
                s = s.masked_fill_(~mr, lowest) if mr.shape[1] == Hq or mr.shape[1] == 1 else \
                    s.masked_fill(~mr, lowest)
            else:
                s = s.add_(mr.float()).clamp_(min=lowest)
        else:
            kidx = torch.arange(kv, device=s.device)
            allowed = None
            # queries sit at the end of the keys (no cache: q_len == kv_len)
            qpos = rows + (kv_len - q_len)
            if causal:
                allowed = kidx[None, None, None, :] <= qpos[:, None, :, None]
            if mask is not None and mask.dim() == 2:  # flash-style 2-D padding mask
                pad = mask[:, mask.shape[-1] - kv_len:][:, None, None, :kv].bool()  # last kv_len keys
                allowed = pad if allowed is None else allowed & pad
                if sliding_window:
                    allowed = allowed & (kidx[None, None, None, :] > qpos[:, None, :, None] - sliding_window)
            if allowed is not None:
                s = s.masked_fill_(~allowed, lowest)
        return torch.softmax(s, dim=-1)

    def observe(self, module, query, key, mask, kwargs) -> None:
        import torch

        layer = self.layer_of[id(module)]
        B, Hq, q_len, d = query.shape
        kv_len = key.shape[2]
        if self.key_roles.shape != (B, kv_len):
            raise ValueError(
                f"capture_attention: key roles have shape {self.key_roles.shape} but layer {layer} "
                f"attends over [B={B}, T={kv_len}] keys (capture needs one full forward pass, no cache)")
        roles, onehot, rows = self._tensors(query.device)
        scaling = kwargs.get("scaling")
        if scaling is None:
            scaling = d ** -0.5
        is_causal = kwargs.get("is_causal")
        if is_causal is None:
            is_causal = getattr(module, "is_causal", True)
        causal = bool(is_causal) and q_len > 1
        softcap = kwargs.get("softcap")
        window = kwargs.get("sliding_window")
        args = (scaling, causal, softcap, window)
        chunk = self._chunk(B, Hq, kv_len)
        with torch.no_grad():
            parts = []
            for start in range(0, rows.shape[1], chunk):
                p = self._probs(module, query, key, mask, rows[:, start: start + chunk], *args)  # [B,H,c,kv]
                parts.append(torch.matmul(p, onehot[:, None]))  # [B, H, c, R]
                if start == 0 and self.want_maps:
                    self.maps[layer] = p[:, :, 0, :].mean(1)  # [B, kv]
                del p
            self.row_mass[layer] = parts[0] if len(parts) == 1 else torch.cat(parts, 2)
            if self.want_flow:
                self.flow[layer] = self._flow(module, query, key, mask, roles, onehot, q_len, args)
        self.calls[layer] += 1

    def _chunk(self, B: int, H: int, kv_len: int) -> int:
        """Query rows per chunk: ``flow_chunk``, fewer when the float32 scores of a chunk
        ``[B, H, rows, kv]`` would exceed ``_CHUNK_BYTES``."""
        return max(1, min(self.flow_chunk, _CHUNK_BYTES // (4 * B * H * kv_len)))

    def _flow(self, module, query, key, mask, roles, onehot, q_len, args):
        import torch

        B, H = query.shape[:2]
        total = torch.zeros(B, N_ROLES, N_ROLES, dtype=torch.float64, device=query.device)
        qroles_off = roles.shape[1] - q_len
        kv_len = key.shape[2]
        chunk = self._chunk(B, H, kv_len)
        # without a mask, a causal row sees no key after itself: cut those keys off the chunk
        cut = mask is None and args[1]
        for start in range(0, q_len, chunk):
            stop = min(q_len, start + chunk)
            rows = torch.arange(start, stop, device=query.device).expand(B, -1)
            kv_stop = stop + (kv_len - q_len) if cut else kv_len
            p = self._probs(module, query, key, mask, rows, *args, kv_stop=kv_stop)  # [B, H, c, kv_stop]
            # head mean first (linear), then one [c, kv] @ [kv, R] product per item
            per_row = torch.matmul(p.mean(1), onehot[:, :kv_stop])  # [B, c, R]
            del p
            q_onehot = onehot[:, qroles_off + start: qroles_off + stop]  # [B, c, R] (0 for padding)
            total += torch.matmul(q_onehot.transpose(1, 2).double(), per_row.double())
        counts = onehot[:, qroles_off:].sum(1).double()  # [B, R]
        return (total / counts[:, :, None]).float()  # NaN rows for absent query roles

    def result(self, rows: np.ndarray, valid: np.ndarray, name: str) -> AttentionCapture:
        import torch

        def stack(items, shape_fn):
            if all(x is None for x in items):
                return None
            ref = next(x for x in items if x is not None)
            filled = [x if x is not None else torch.full_like(ref, float("nan")) for x in items]
            return shape_fn(torch.stack(filled, 0).float().cpu().numpy())

        cap = AttentionCapture(row_positions=rows, row_valid=valid, n_calls=self.calls.copy(), impl_name=name)
        # [L, B, H, n, R] -> [B, L, H, n, R]
        cap.row_mass = stack(self.row_mass, lambda a: np.ascontiguousarray(a.transpose(1, 0, 2, 3, 4)))
        if self.want_maps:
            cap.maps = stack(self.maps, lambda a: np.ascontiguousarray(a.transpose(1, 0, 2)))
        if self.want_flow:
            cap.flow = stack(self.flow, lambda a: np.ascontiguousarray(a.transpose(1, 0, 2, 3)))
        return cap


@contextlib.contextmanager
def capture_attention(
    vlm: Any,
    query_rows: Any,
    key_roles: Any,
    *,
    maps: bool = False,
    flow: bool = False,
    flow_chunk: int = 256,
) -> Iterator[AttentionCapture]:
    """Capture the attention of selected query rows on each token role during forward passes.

    vlm: an ``xai_bias.models.VLM`` or a transformers model (its text decoder is instrumented).
    query_rows: per batch item, a position or a list of positions in padded coordinates
      (an int applies to every item).
    key_roles: ``[B, T]`` role index of every position (``Batch.role_matrix()``; -1 = padding).
    maps / flow: also capture the head-mean answer-row map / the role-to-role flow.

    Yields an ``AttentionCapture`` that is filled when the context exits (after the forward
    pass run inside it). The model is restored on exit and on error.
    """
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    key_roles = np.asarray(key_roles)
    if key_roles.ndim != 2:
        raise ValueError(f"key_roles must be [B, T], got shape {key_roles.shape}")
    rows, valid = _as_rows(query_rows, key_roles.shape[0])
    T = key_roles.shape[1]
    if (rows < 0).any() or (rows >= T).any():
        raise ValueError(f"query rows {rows.tolist()} outside the sequence of length {T}")

    layers = list(_decoder_layers(vlm))
    attn_modules = [_attention_module(layer) for layer in layers]
    layer_of = {id(m): i for i, m in enumerate(attn_modules)}
    configs = text_attention_configs(vlm)
    saved = [(c, c._attn_implementation_internal) for c in configs]
    impls = {getattr(m.config, "_attn_implementation", None) for m in attn_modules}
    if len(impls) != 1:
        raise RuntimeError(f"decoder layers use several attention implementations: {sorted(map(str, impls))}")
    wrapped, mask_fn = _wrapped_functions(impls.pop(), attn_modules[0])
    obs = _Observer(layer_of, len(layers), rows, valid, key_roles, maps, flow, flow_chunk)

    def attention(module, query, key, value, attention_mask, *args, **kwargs):
        out = wrapped(module, query, key, value, attention_mask, *args, **kwargs)
        if id(module) in layer_of:
            t0 = time.process_time()
            obs.observe(module, query, key, attention_mask, kwargs)
            obs.cpu_seconds += time.process_time() - t0
        return out

    name = f"xai_bias_capture_{next(_counter)}_{id(obs):x}"
    cap = AttentionCapture(row_positions=rows, row_valid=valid, impl_name=name)
    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, mask_fn)
    try:
        for c, _ in saved:
            c._attn_implementation_internal = name
        yield cap
        done = obs.result(rows, valid, name)
        cap.row_mass, cap.maps, cap.flow, cap.n_calls = done.row_mass, done.maps, done.flow, done.n_calls
        cap.observe_cpu_seconds = obs.cpu_seconds
    finally:
        for c, impl in saved:
            c._attn_implementation_internal = impl
        AttentionInterface._global_mapping.pop(name, None)
        AttentionMaskInterface._global_mapping.pop(name, None)


# --------------------------------------------------------------------------------------------
# the "attention" method


def _generated_positions(roles: np.ndarray) -> np.ndarray:
    return np.flatnonzero(roles == _GENERATED)


def _capture_rows(role_matrix: np.ndarray) -> list[list[int]]:
    """Rows captured during the scoring forward pass, per item: the last prompt position first
    (the direct-mode answer row, and the row that emits the first generated token), then the rows
    of all generated tokens (cot mode)."""
    rows = []
    T = role_matrix.shape[1]
    for r in role_matrix:
        gen = _generated_positions(r)
        if gen.size == 0:
            rows.append([T - 1])
        else:
            rows.append([int(gen[0]) - 1] + [int(g) for g in gen])
    return rows


MAP_WIDTH = 8192
MAP_MAX_IMAGES = 16


def image_positions(vlm: Any, batch: Any, item: int, roles: np.ndarray | None = None) -> np.ndarray:
    """Positions (padded coordinates) of item ``item``'s vision placeholder tokens: role ``image``
    or the model's image token id (PaliGemma's first image token is the ``sink``), padding excluded."""
    if roles is None:
        roles = batch.role_matrix()[item]
    mask = roles == _IMAGE
    spec = getattr(vlm, "spec", None)
    ids = getattr(batch, "inputs", {}).get("input_ids")
    if spec is not None and ids is not None and getattr(spec, "image_token_id", None) is not None:
        mask = mask | ((ids[item].detach().cpu().numpy() == spec.image_token_id) & (roles >= 0))
    return np.flatnonzero(mask)


def _image_map(maps_row: np.ndarray, img: np.ndarray, width: int | None = None) -> np.ndarray:
    """``[L, T]`` head-mean rows -> ``[L, n_image_tokens]`` float32 at positions ``img``, or
    NaN-padded to ``[L, width]`` when ``width`` is given."""
    m = np.asarray(maps_row[:, img], dtype=np.float32)
    if width is None:
        return m
    if img.size > width:
        import warnings

        warnings.warn(f"attention/maps: {img.size} image tokens, only the first {width} are kept "
                      f"(raise settings.extra['map_width'])", stacklevel=3)
        m = m[:, :width]
    out = np.full((m.shape[0], width), np.nan, np.float32)
    out[:, : m.shape[1]] = m
    return out


def _map_grid(batch: Any, item: int, max_images: int | None = None) -> np.ndarray:
    """``[n_images, 2]`` int32 (rows, cols) per image; zero-padded to ``[max_images, 2]``."""
    grids = getattr(batch, "image_grids", ()) or ()
    grid = np.asarray(grids[item] if item < len(grids) else (), dtype=np.int32).reshape(-1, 2)
    if max_images is None:
        return grid
    out = np.zeros((max_images, 2), np.int32)
    out[: min(len(grid), max_images)] = grid[:max_images]
    return out


def _run_capture(vlm: Any, batch: Any, rows: Sequence[Sequence[int]], *, maps: bool, flow: bool) -> AttentionCapture:
    """One extra forward pass over ``batch`` with capture on ``rows``."""
    from ..models import forward

    with capture_attention(vlm, rows, batch.role_matrix(), maps=maps, flow=flow) as cap:
        forward(vlm, batch)
    return cap


def cot_attention(vlm: Any, batch: Any, answer_rows: Sequence[int], *, maps: bool = False,
                  flow: bool = False, width: int | None = MAP_WIDTH,
                  max_images: int | None = MAP_MAX_IMAGES) -> list[dict[str, np.ndarray]]:
    """Chain-of-thought measurement in one forward pass over prompt + generation.

    batch: the prompt+generation batch (generated tokens carry the ``generated`` role, e.g.
    ``models.extend_with_generation``); answer_rows: per item, the position whose row emits the
    parsed answer letter. Returns per item ``attention/mass`` ``[L, H, n_roles]`` of that row and
    ``attention/mass_generated`` ``[L, H, n_roles]``, the mean over the rows of all generated
    tokens (NaN when nothing was generated); with ``maps`` / ``flow`` also those datasets (maps
    padded to ``width`` / ``max_images`` as in the trace; None: unpadded ``[L, n_image_tokens]``
    and ``[n_images, 2]``).
    """
    roles = batch.role_matrix()
    rows = [[int(a)] + [int(g) for g in _generated_positions(r) if int(g) != int(a)]
            for a, r in zip(answer_rows, roles)]
    cap = _run_capture(vlm, batch, rows, maps=maps, flow=flow)
    out = []
    for b, r in enumerate(roles):
        gen = _generated_positions(r)
        row = {"attention/mass": cap.mass_at(b, int(answer_rows[b]))}
        row["attention/mass_generated"] = _mean_rows(cap, b, gen)
        if maps:
            row["attention/maps"] = _image_map(cap.maps[b], image_positions(vlm, batch, b, r), width)
            row["attention/map_grid"] = _map_grid(batch, b, max_images)
        if flow:
            row["attention/flow"] = cap.flow[b]
        out.append(row)
    return out


def _mean_rows(cap: AttentionCapture, item: int, positions: np.ndarray) -> np.ndarray:
    """``[L, H, n_roles]`` mean mass over the captured rows at ``positions`` (NaN if none)."""
    sel = np.isin(cap.row_positions[item], positions) & cap.row_valid[item]
    # a position may be listed once only in the rows we build, so no double counting
    idx = np.flatnonzero(sel)
    L, H = cap.row_mass.shape[1:3]
    if idx.size == 0:
        return np.full((L, H, N_ROLES), np.nan, np.float32)
    return cap.row_mass[item][:, :, idx, :].astype(np.float64).mean(2).astype(np.float32)


class AttentionMethod(Method):
    """Attention of the answer query row on each token role, per layer and head.

    During the scoring forward pass (``capture``) the rows are computed alongside sdpa (see the
    module docstring); ``measure`` reads them and, only when a row it needs was not captured (or
    no capture ran), runs one extra forward pass with capture.
    """

    name = "attention"

    def __init__(self, vlm: Any, settings: MethodSettings = MethodSettings()):
        super().__init__(vlm, settings)
        self._last: tuple[Any, AttentionCapture] | None = None
        self._map_width = int(self.options.map_width)
        self._map_images = int(self.options.map_max_images)

    def capture(self, batch: Any):
        return self._capture(batch)

    @contextlib.contextmanager
    def _capture(self, batch: Any):
        roles = batch.role_matrix()
        cot = bool((roles == _GENERATED).any())
        self._last = None
        with capture_attention(self.vlm, _capture_rows(roles), roles,
                               maps=self.options.save_maps and not cot,
                               flow=self.options.flow) as cap:
            yield cap
        self._last = (batch, cap)

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        roles = batch.role_matrix()
        if len(targets) != roles.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {roles.shape[0]}")
        cap = self._last[1] if self._last is not None and self._last[0] is batch else None
        self._last = None
        want_maps, want_flow = self.options.save_maps, self.options.flow
        answer = [int(t.answer_pos) for t in targets]
        # what the capture did not provide is measured in one extra pass
        need_rows = cap is None or any(cap.mass_at(b, a) is None for b, a in enumerate(answer))
        need_maps = want_maps and (cap is None or cap.maps is None
                                   or any(int(cap.row_positions[b, 0]) != a for b, a in enumerate(answer)))
        need_flow = want_flow and (cap is None or cap.flow is None)
        gens = [_generated_positions(r) for r in roles]
        extra = None
        if need_rows or need_maps or need_flow:
            # answer row first (maps are taken from the first row); without a capture, the
            # generated rows too
            rows = [[a] + ([int(g) for g in gen if int(g) != a] if cap is None else [])
                    for a, gen in zip(answer, gens)]
            extra = _run_capture(self.vlm, batch, rows, maps=need_maps, flow=need_flow)
        rows_src = cap if (cap is not None and not need_rows) else extra
        gen_src = cap if cap is not None else extra
        cot = any(g.size for g in gens)
        out = []
        for b, r in enumerate(roles):
            row = {"attention/mass": np.asarray(rows_src.mass_at(b, answer[b]), np.float32)}
            if cot:  # every item of a cot batch gets the row (NaN when it generated nothing)
                row["attention/mass_generated"] = _mean_rows(gen_src, b, gens[b])
            if want_maps:
                mp = (extra if need_maps else cap).maps[b]
                row["attention/maps"] = _image_map(mp, image_positions(self.vlm, batch, b, r),
                                                   self._map_width)
                row["attention/map_grid"] = _map_grid(batch, b, self._map_images)
            if want_flow:
                row["attention/flow"] = np.asarray((extra if need_flow else cap).flow[b], np.float32)
            out.append(row)
        return out

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        common = {"roles": list(ROLES), "compute_dtype": "float32",
                  "implementation": "sdpa + selected softmax rows (capture_attention)"}
        rule = ("direct: the last prompt position (Target.answer_pos); cot: the position whose row "
                "emits the parsed answer letter, from one forward pass over prompt + generation")
        norm = ("softmax probabilities of the query row summed over the keys of each role "
                "(the roles of one head sum to 1; padding keys carry none)")
        attrs = {
            "attention/mass": {**common, "shape": "[L, H, n_roles]", "query_row": rule, "normalisation": norm},
            "attention/mass_generated": {**common, "shape": "[L, H, n_roles]",
                                         "query_row": "mean over the rows of all generated tokens (cot mode)",
                                         "normalisation": norm},
        }
        if self.options.save_maps:
            attrs["attention/maps"] = {
                **common, "shape": "[L, width]", "width": self._map_width, "padding": "NaN",
                "query_row": rule, "normalisation": "head-mean softmax probability on each image token",
                "layout": "image tokens in sequence order, then NaN; image i owns the next "
                          "rows_i*cols_i entries (attention/map_grid), row-major"}
            attrs["attention/map_grid"] = {"shape": "[max_images, 2]: (rows, cols) per image, zero rows "
                                                    "after the last image", "max_images": self._map_images}
        if self.options.flow:
            attrs["attention/flow"] = {
                **common, "shape": "[L, n_roles(query), n_roles(key)]",
                "query_row": "every non-padding position", "normalisation":
                "mean over the query rows of each role of the head-mean mass on each key role; "
                "NaN rows for roles absent from the prompt"}
        return attrs
