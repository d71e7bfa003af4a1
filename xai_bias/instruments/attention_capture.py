"""The attention capture engine: softmax rows of selected query positions, computed alongside
the model's own attention.

``capture_attention`` observes the text decoder's attention (``models.observe_attention``:
the decoder runs under one registered attention function that calls the implementation it had
— sdpa by default — with the very same arguments, so outputs and logits are bit-identical; the
vision tower keeps its own implementation). For every decoder layer, the observer computes the
softmax rows of the selected query positions alone:

    p = softmax(q_rows · kᵀ · scaling [tanh soft-capped if the layer passes ``softcap``] + mask_rows)

in float32 (q after RoPE / mrope and q/k-norm — what the attention function receives), with the
layer's own mask rows (causal, left padding, sliding window, bidirectional image blocks —
whatever the model built), or the causal rule sdpa applies when the model passed no mask.
Grouped-query attention is handled by reshaping the query heads onto the key/value heads (head
``h`` reads kv head ``h // n_rep``, as ``repeat_kv``). The rows are reduced at once to the mass on
each role (``p @ onehot(role)``); no ``[H, T, T]`` matrix is ever built. Role-to-role flow is
computed chunk-wise over every query row. Everything is restored on exit, also on error.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..models.attention_hook import observe_attention
from ..types import N_ROLES

__all__ = ["AttentionCapture", "capture_attention"]

#: upper bound on the float32 scores of one chunk of query rows (bytes)
_CHUNK_BYTES = 256 * 2**20


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

    def __init__(self, n_layers: int, rows: np.ndarray, valid: np.ndarray, key_roles: np.ndarray,
                 maps: bool, flow: bool, flow_chunk: int):
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

    def observe(self, layer: int, module, query, key, mask, kwargs) -> None:
        """The observer ``models.observe_attention`` calls for decoder layer ``layer``."""
        import torch

        t0 = time.process_time()
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
        self.cpu_seconds += time.process_time() - t0

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
    from ..models.sites import sites_of

    key_roles = np.asarray(key_roles)
    if key_roles.ndim != 2:
        raise ValueError(f"key_roles must be [B, T], got shape {key_roles.shape}")
    rows, valid = _as_rows(query_rows, key_roles.shape[0])
    T = key_roles.shape[1]
    if (rows < 0).any() or (rows >= T).any():
        raise ValueError(f"query rows {rows.tolist()} outside the sequence of length {T}")
    obs = _Observer(sites_of(vlm).n_layers, rows, valid, key_roles, maps, flow, flow_chunk)
    cap = AttentionCapture(row_positions=rows, row_valid=valid)
    with observe_attention(vlm, obs.observe) as base:
        cap.impl_name = f"{base} + selected softmax rows"
        yield cap
    done = obs.result(rows, valid, cap.impl_name)
    cap.row_mass, cap.maps, cap.flow, cap.n_calls = done.row_mass, done.maps, done.flow, done.n_calls
    cap.observe_cpu_seconds = obs.cpu_seconds
