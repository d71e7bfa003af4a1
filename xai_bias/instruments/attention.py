"""The ``attention`` method: attention mass on each token role, captured while the model runs its
normal sdpa path.

How it works
------------
During the scoring forward pass, ``capture_attention`` (``attention_capture.py``) computes the
softmax rows of the selected query positions alongside the decoder's own attention (sdpa by
default; outputs bit-identical), for the decoder's layers only, and reduces them at once to the
mass on each role. ``measure`` reads them and, only when a row it needs was not captured (or no
capture ran), runs one extra forward pass with capture.

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
``attention/flow``            [L, n_roles, n_roles] float32   (``--attention-flow``)
``attention/maps``            [L, MAP_WIDTH] float32 (``--save-maps``): the first
                              ``n_image_tokens`` entries of each layer row are the map, the rest
                              is NaN padding. The trace keeps one fixed row shape per dataset, and
                              the number of image tokens varies per record, hence the padding
                              (NaN compresses to almost nothing). ``MAP_WIDTH`` is
                              ``--attention-map-width`` (default 8192, stored as the
                              dataset attribute ``width``); a record with more image tokens keeps
                              the first ``width`` and a warning is issued.
``attention/map_grid``        [MAX_IMAGES, 2] int32: (rows, cols) of vision tokens per image, in
                              order, zero rows after the last image (``--attention-map-max-images``,
                              default 16). Image ``i`` owns the next
                              ``rows_i * cols_i`` entries of a map row, row-major; the map's
                              valid length is ``sum(rows * cols)`` (1 x n for an image whose tokens are
                              not one grid: tiles, newline tokens; see map_tiles).
``attention/map_tiles``       [8 * MAX_IMAGES, 8] int32, -1 padded: one row per tile,
                              (image, view, row0, col0, rows, cols, offset, stride) as
                              ``models.layout.Tile``: token (i, j) of the tile is map entry
                              ``offset + i * stride + j``; view 0 covers the whole image, view 1 is the
                              tiled high-resolution view (Idefics3 / SmolVLM tiles, InternVL / Aya
                              patches, OneVision / NeXT anyres grid, whose newline tokens no tile
                              covers). With a truncated map, grid and tiles keep only what the map holds.
``attention/maps_video``      [L, MAP_WIDTH] float32 (``--save-maps``, families that take video):
                              the same on the tokens of role ``video``, in sequence order
``attention/video_grid``      [MAX_IMAGES, 3] int32: (temporal slots, tokens, frames) per video;
                              video ``i`` owns the next ``tokens_i`` entries, split evenly over its
                              slots in order (Qwen pairs 2 frames per slot)
``attention/maps_audio``      [L, MAP_WIDTH] float32 (``--save-maps``, families that take audio):
                              the same on the tokens of role ``audio``
``attention/audio_grid``      [MAX_IMAGES, 2] int32: (tokens, milliseconds) per audio clip; its
                              tokens are evenly spaced over the clip's duration
``attention/maps`` is written for families that take images.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import numpy as np

from ..models.batching import image_positions
from ..types import N_ROLES, ROLE_INDEX, ROLES
from .attention_capture import AttentionCapture, capture_attention
from .base import Method, MethodSettings, Target

__all__ = [
    "MAP_MAX_IMAGES",
    "MAP_WIDTH",
    "AttentionCapture",
    "AttentionMethod",
    "capture_attention",
    "image_positions",
]

_GENERATED = ROLE_INDEX["generated"]


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
MAP_TILES_PER_IMAGE = 8  # attention/map_tiles holds 8 * map_max_images tile rows


def _image_map(maps_row: np.ndarray, img: np.ndarray, width: int) -> np.ndarray:
    """``[L, T]`` head-mean rows -> ``[L, width]`` float32: the rows at positions ``img``,
    NaN-padded (truncated with a warning when there are more image tokens than ``width``)."""
    m = np.asarray(maps_row[:, img], dtype=np.float32)
    if img.size > width:
        import warnings

        warnings.warn(f"attention/maps: {img.size} image tokens, only the first {width} are kept "
                      f"(raise --attention-map-width)", stacklevel=3)
        m = m[:, :width]
    out = np.full((m.shape[0], width), np.nan, np.float32)
    out[:, : m.shape[1]] = m
    return out


def _map_grid(batch: Any, item: int, max_images: int, width: int = MAP_WIDTH) -> np.ndarray:
    """``[max_images, 2]`` int32 (rows, cols) per image, zero rows after the last image; an image
    cut by a truncated map (``width``) keeps the whole rows the map holds (a 1 x n strip: the
    entries it holds; none: a zero row)."""
    grids = getattr(batch, "image_grids", ()) or ()
    grid = np.asarray(grids[item] if item < len(grids) else (), dtype=np.int32).reshape(-1, 2).copy()
    offset = 0
    for g in grid:
        n = int(g[0] * g[1])
        if offset + n > width:
            if g[0] == 1:  # a strip (1 x n): the entries the map holds
                g[1] = max(0, width - offset)
            else:
                g[0] = max(0, (width - offset) // max(int(g[1]), 1))
            if g[0] == 0 or g[1] == 0:
                g[:] = 0
        offset += n
    out = np.zeros((max_images, 2), np.int32)
    out[: min(len(grid), max_images)] = grid[:max_images]
    return out


def _clip_grid(batch: Any, item: int, kind: str, max_clips: int) -> np.ndarray:
    """``[max_clips, 3]`` (slots, tokens, frames) per video / ``[max_clips, 2]`` (tokens, ms) per
    audio clip of item ``item`` (zero rows after the last)."""
    media = batch.media[item] if item < len(getattr(batch, "media", ())) else None
    roles = batch.role_matrix()[item]
    n_tokens = int((roles == ROLE_INDEX[kind]).sum())
    if kind == "video":
        slots = list(getattr(media, "video_slots", ()) or ())
        frames = list(getattr(media, "video_frames", ()) or ())
        rows = [(s, 0, f) for s, f in zip(slots, frames)]
    else:
        seconds = list(getattr(media, "audio_seconds", ()) or ())
        rows = [(0, int(round(s * 1000))) for s in seconds]
    out = np.zeros((max_clips, 3 if kind == "video" else 2), np.int32)
    if rows:
        tokens = _runs(roles == ROLE_INDEX[kind])
        if len(tokens) != len(rows):  # one run of placeholders per clip, else (SmolVLM's per-frame
            # blocks) the clips in order of their share of the frames / the duration
            weight = np.asarray([r[2] if kind == "video" else r[1] for r in rows], np.float64)
            tokens = np.floor(weight / weight.sum() * n_tokens).astype(int) if weight.sum() else \
                np.full(len(rows), n_tokens // len(rows))
            tokens[-1] += n_tokens - tokens.sum()
        for i, (r, t) in enumerate(zip(rows[:max_clips], tokens)):
            out[i] = (r[0], t, r[2]) if kind == "video" else (t, r[1])
    return out


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in ``mask``, in order."""
    m = np.r_[False, np.asarray(mask, bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(m))
    return edges[1::2] - edges[0::2]


def _map_tiles(batch: Any, item: int, max_tiles: int, width: int = MAP_WIDTH) -> np.ndarray:
    """``[max_tiles, 8]`` int32 ``models.layout.Tile`` rows (image, view, row0, col0, rows, cols,
    offset, stride), -1 rows after the last tile. A tile cut by a truncated map (``width``) keeps
    its whole rows inside the map; a tile with none is dropped (so every tile lies in the map)."""
    tiles = getattr(batch, "image_tiles", ()) or ()
    out = np.full((max_tiles, 8), -1, np.int32)
    kept = []
    for t in (tiles[item] if item < len(tiles) else ()):
        # row i of the tile ends at map entry offset + i*stride + cols - 1: keep the rows that fit
        fits = (width - t.offset - t.cols) // t.stride + 1 if width >= t.offset + t.cols else 0
        rows = min(t.rows, fits)
        if rows > 0:
            kept.append(t._replace(rows=rows))
    if len(kept) > max_tiles:
        import warnings

        warnings.warn(f"attention/map_tiles: {len(kept)} tiles, only the first {max_tiles} are kept", stacklevel=3)
    for r, t in enumerate(kept[:max_tiles]):
        out[r] = tuple(t)
    return out


def _run_capture(vlm: Any, batch: Any, rows: Sequence[Sequence[int]], *, maps: bool, flow: bool) -> AttentionCapture:
    """One extra forward pass over ``batch`` with capture on ``rows``."""
    from ..models import forward

    with capture_attention(vlm, rows, batch.role_matrix(), maps=maps, flow=flow) as cap:
        forward(vlm, batch)
    return cap


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
        self._clip_kinds = tuple(k for k in ("video", "audio") if vlm.family.takes(k))
        self._map_tiles = MAP_TILES_PER_IMAGE * self._map_images

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
                if self.vlm.family.takes("image"):
                    row["attention/maps"] = _image_map(mp, image_positions(self.vlm, batch, b, r),
                                                       self._map_width)
                    row["attention/map_grid"] = _map_grid(batch, b, self._map_images, self._map_width)
                    row["attention/map_tiles"] = _map_tiles(batch, b, self._map_tiles, self._map_width)
                for kind in self._clip_kinds:
                    row[f"attention/maps_{kind}"] = _image_map(mp, np.flatnonzero(r == ROLE_INDEX[kind]),
                                                               self._map_width)
                    row[f"attention/{kind}_grid"] = _clip_grid(batch, b, kind, self._map_images)
            if want_flow:
                row["attention/flow"] = np.asarray((extra if need_flow else cap).flow[b], np.float32)
            out.append(row)
        return out

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        common = {"roles": list(ROLES), "compute_dtype": "float32",
                  "implementation": "sdpa + selected softmax rows (capture_attention)",
                  # hybrid decoders: the rows of layers without attention are NaN
                  "attention_layers": list(self.vlm.sites.attention_layers)}
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
                                                    "after the last image; an image cut by the map width keeps "
                                                    "the whole rows the map holds", "max_images": self._map_images}
            for kind in self._clip_kinds:
                attrs[f"attention/maps_{kind}"] = {
                    **common, "shape": "[L, width]", "width": self._map_width, "padding": "NaN",
                    "query_row": rule, "normalisation": f"head-mean softmax probability on each {kind} token",
                    "layout": f"{kind} tokens in sequence order, then NaN (attention/{kind}_grid)"}
            grids = {"video": "[max_clips, 3]: (temporal slots, tokens, frames) per video; its tokens are "
                              "split evenly over its slots, in order",
                     "audio": "[max_clips, 2]: (tokens, milliseconds) per audio clip; its tokens are evenly "
                              "spaced over the clip"}
            for kind in self._clip_kinds:
                attrs[f"attention/{kind}_grid"] = {"shape": grids[kind], "max_clips": self._map_images}
            attrs["attention/map_tiles"] = {
                "shape": "[max_tiles, 8]", "fields": ["image", "view", "row0", "col0", "rows", "cols", "offset",
                                                      "stride"], "max_tiles": self._map_tiles, "padding": -1,
                "layout": "token (i, j) of a tile is map entry offset + i*stride + j; view 0 covers the whole "
                          "image (untiled image, global / thumbnail / base view), view 1 the tiled "
                          "high-resolution view, row0/col0 in that view's token grid; map entries no tile "
                          "covers are not patches (newline tokens); tiles are cut to the map width"}
        if self.options.flow:
            attrs["attention/flow"] = {
                **common, "shape": "[L, n_roles(query), n_roles(key)]",
                "query_row": "every non-padding position", "normalisation":
                "mean over the query rows of each role of the head-mean mass on each key role; "
                "NaN rows for roles absent from the prompt"}
        return attrs
