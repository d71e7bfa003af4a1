"""Fig. 4: image overlays — for one sample, the answer row's attention (and IG per patch where the
trace holds it) over the image patches at an early, a middle and a late layer, drawn on the
image itself.

Reads ``/attention/maps`` (``[L, width]`` per record, NaN-padded after the record's image tokens;
head-mean attention of the answer row on each image token; flat variable-length rows of
``L * n_image_tokens`` are read too) and ``/attention/map_grid`` (``[max_images, 2]``: rows, cols
of vision tokens per image, zero rows after the last; image i owns the next rows_i * cols_i
entries) and, where present, ``/attention/map_tiles`` (``models.layout.Tile`` rows: a tiled
image — Idefics3 / SmolVLM tiles, InternVL patches, OneVision's anyres grid — is drawn tile by
tile in place, its tiled high-resolution view; newline tokens are not drawn). The first image of
the sample is shown. Each panel is normalised to its layer's maximum; the title gives the
layer's total attention on the image.

The image file is found through the record's metadata (``image``, ``images``, ``image_path``,
``image_paths``; relative paths are tried against the trace's folder and the working directory)
or the ``images`` argument; when it cannot be found, the grid heat map is drawn alone, with a
note.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import style as S
from ._common import condition_label, require
from .data import MissingData, Source, short_label
from .interventions import add_note

MAP_DATASETS = ("attention/maps",)
IG_MAP_DATASETS = ("attribution/ig_maps", "attribution/ig_map")
GRID_DATASETS = ("attention/map_grid",)
TILE_DATASETS = ("attention/map_tiles",)
META_IMAGE_KEYS = ("image", "images", "image_path", "image_paths", "image_file", "image_files")


def _n_layers(source: Source) -> int | None:
    n = source.trace.attrs.get("n_layers")
    if isinstance(n, int) and n > 0:
        return n
    if source.trace.has("attention/mass"):
        return int(source.trace.shape("attention/mass")[1])
    return None


def _first(source: Source, names: Sequence[str]) -> str | None:
    return next((n for n in names if source.trace.has(n)), None)


def _maps_2d(row: Any, n_layers: int | None) -> np.ndarray | None:
    a = np.asarray(row, dtype=np.float64)
    if a.size == 0 or not np.isfinite(a).any():
        return None
    if a.ndim >= 2:
        return a.reshape(a.shape[0], -1)
    if n_layers and a.size % n_layers == 0:
        return a.reshape(n_layers, -1)
    if n_layers and a.size % (n_layers + 1) == 0:  # IG-style rows: embeddings + layers
        return a.reshape(n_layers + 1, -1)
    return None


def _map_row(source: Source, name: str, i: int) -> np.ndarray:
    """Row ``i`` of a map dataset (read alone: map datasets are wide)."""
    return np.asarray(source.trace.rows(name, i, i + 1)[0], dtype=np.float64)


def pick_record(source: Source, sample: str | None = None) -> int:
    """The record shown: ``sample``'s record with maps (``complete`` first), else the first record
    with maps (``complete`` first)."""
    name = _first(source, MAP_DATASETS)
    require(name is not None, "image overlays: the trace has no /attention/maps (run attention with save_maps)")
    ok = source.ok()
    cond = source.column("records/condition")
    sid = source.column("records/sample_id")
    cand = ok.copy()
    if sample is not None:
        require(bool((sid == str(sample)).any()), f"image overlays: sample {sample!r} is not in the trace")
        cand &= sid == str(sample)
    order = np.r_[np.flatnonzero(cand & (cond == "complete")), np.flatnonzero(cand & (cond != "complete"))]
    for i in order:
        if np.isfinite(_map_row(source, name, int(i))).any():
            return int(i)
    if sample is not None:
        raise MissingData(f"image overlays: sample {sample!r} has no attention maps")
    raise MissingData("image overlays: no record holds an attention map")


def _grid(source: Source, i: int, n_tokens: int) -> tuple[int, int]:
    name = _first(source, GRID_DATASETS)
    if name is not None:
        g = np.asarray(source.trace[name][i]).reshape(-1)  # [n_images, 2] flat: image 0 first
        if g.size >= 2 and g[0] > 0 and g[1] > 0:
            return int(g[0]), int(g[1])
    side = int(round(np.sqrt(n_tokens)))
    if side * side == n_tokens:
        return side, side
    return 1, n_tokens


Patch = tuple[tuple[float, float, float, float], np.ndarray]  # (y0, y1, x0, x1) fractions, map indices


def _tiles(source: Source, i: int, n_tokens: int) -> tuple[list[Patch], str]:
    """The patches drawn for record ``i``'s first image: [((y0, y1, x0, x1) as fractions of the image,
    map indices [rows, cols])] and a note on the view shown. From ``attention/map_tiles`` when the
    record has tiles (the tiled high-resolution view when there is one, each tile in place), else
    one patch: the ``map_grid`` grid over the whole image."""
    name = _first(source, TILE_DATASETS)
    if name is not None:
        t = np.asarray(source.trace[name][i]).reshape(-1, 8)
        t = t[(t[:, 0] == 0) & (t[:, 4] > 0) & (t[:, 5] > 0)]
        if len(t):
            view = 1 if (t[:, 1] == 1).any() else 0
            t = t[t[:, 1] == view]
            VR, VC = int((t[:, 2] + t[:, 4]).max()), int((t[:, 3] + t[:, 5]).max())
            out = []
            for _, _, r0, c0, rows, cols, off, stride in t.tolist():
                idx = off + np.arange(rows)[:, None] * stride + np.arange(cols)[None, :]
                if idx.max() < n_tokens:
                    out.append(((r0 / VR, (r0 + rows) / VR, c0 / VC, (c0 + cols) / VC), idx))
            if out:
                if view == 0:
                    return out, ""
                return out, f"{len(out)} tiles of the tiled view" if len(out) > 1 else "the high-resolution view"
    gr, gc = _grid(source, i, n_tokens)
    if gr * gc > n_tokens:
        gr, gc = 1, n_tokens
    return [((0.0, 1.0, 0.0, 1.0), np.arange(gr * gc).reshape(gr, gc))], ""


def find_image(source: Source, i: int, images: Mapping[str, Any] | None = None) -> Path | None:
    """The file of record ``i``'s (first) image, or None."""
    sid = str(source.column("records/sample_id")[i])
    cands: list[Any] = []
    if images and sid in images:
        cands.append(images[sid])
    meta = source.trace["records/meta"][i] or {}
    for key in META_IMAGE_KEYS:
        v = meta.get(key) if isinstance(meta, Mapping) else None
        if v:
            cands.append(v)
    for c in cands:
        if isinstance(c, (list, tuple)):
            c = c[0] if c else None
        if not c:
            continue
        p = Path(os.fspath(c)).expanduser()
        for base in ([p] if p.is_absolute() else [Path(source.path).parent / p, Path.cwd() / p]):
            if base.is_file():
                return base
    return None


def _load_image(path: Path) -> np.ndarray | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:
        return None


def _rect(ext: tuple[float, float, float, float]):
    """A thin outline of one tile (extent x0, x1, y1, y0)."""
    from matplotlib.patches import Rectangle

    x0, x1, y1, y0 = ext
    return Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linewidth=0.6, edgecolor="white")


def choose_layers(n: int) -> list[int]:
    """An early, a middle and a late layer of ``n`` (distinct where possible)."""
    picks = [int(round(q * (n - 1))) for q in (0.1, 0.5, 0.9)]
    out: list[int] = []
    for p in picks:
        if p not in out:
            out.append(p)
    return out


def image_overlays(source: Source, sample: str | None = None,
                   images: Mapping[str, Any] | None = None) -> Figure:
    """Fig. 4: attention (and IG per patch, where present) of the answer row over the image at
    an early, a middle and a late layer."""
    i = pick_record(source, sample)
    L = _n_layers(source)
    rows: list[tuple[str, np.ndarray, int]] = []  # (label, [L', n_tokens], layer offset)
    att = _maps_2d(_map_row(source, _first(source, MAP_DATASETS), i), L)
    require(att is not None, "image overlays: the attention map of the chosen record has an unexpected length")
    rows.append(("attention", att, 0))
    notes = []
    ig_name = _first(source, IG_MAP_DATASETS)
    if ig_name is not None:
        ig = _maps_2d(_map_row(source, ig_name, i), L)
        if ig is not None and ig.shape[1] == att.shape[1]:
            rows.append(("IG", np.abs(ig), ig.shape[0] - att.shape[0]))
    sid = str(source.column("records/sample_id")[i])
    cond = str(source.column("records/condition")[i])
    valid = np.isfinite(att).any(0)
    n_img_tokens = int(np.flatnonzero(valid)[-1] + 1) if valid.any() else att.shape[1]
    patches, view_note = _tiles(source, i, n_img_tokens)
    g0 = _grid(source, i, n_img_tokens)
    first_n = min(g0[0] * g0[1], n_img_tokens)  # the first image's tokens (its share is the title's)
    path = find_image(source, i, images)
    img = _load_image(path) if path is not None else None
    if img is None:
        notes.append(f"image overlays: the image of sample {sid!r} could not be located "
                     "(no image path in the record's metadata); drew the attention grid alone")
    layers = choose_layers(att.shape[0])
    with S.paper_style():
        ncol = len(layers)
        nrow = len(rows)
        fig = S.new_figure(S.DOUBLE if ncol > 1 else S.SINGLE, 2.05 * nrow + 0.55)
        axes = fig.subplots(nrow, ncol, squeeze=False, sharex=True, sharey=True)
        im = None
        for r, (label, M, off) in enumerate(rows):
            for c, layer in enumerate(layers):
                ax = axes[r, c]
                li = layer + off
                total = float(np.nansum(M[li, :first_n]))
                drawn = np.concatenate([M[li, idx.ravel()] for _, idx in patches])
                vmax = float(np.nanmax(drawn)) if np.isfinite(drawn).any() else 1.0
                vmax = vmax if vmax > 0 else 1.0
                if img is not None:
                    h, w = img.shape[:2]
                    grey = img.astype(float) @ np.array([0.299, 0.587, 0.114]) / 255.0
                    ax.imshow(grey, extent=(0, w, h, 0), cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
                    ax.set_xlabel("x (pixels)")
                    if c == 0:
                        ax.set_ylabel(f"{label}\ny (pixels)")
                else:
                    h, w = (float(patches[0][1].shape[0]), float(patches[0][1].shape[1])) if len(patches) == 1 \
                        else (1.0, 1.0)
                    ax.set_xlabel("patch column (fraction)" if len(patches) > 1 else "patch column (index)")
                    if c == 0:
                        ax.set_ylabel(f"{label}\npatch row")
                for (y0, y1, x0, x1), idx in patches:
                    heat = M[li, idx] / vmax
                    ext = (x0 * w, x1 * w, y1 * h, y0 * h)
                    im = ax.imshow(heat, extent=ext, cmap=S.OVERLAY_CMAP, vmin=0, vmax=1,
                                   alpha=0.65 if img is not None else 1.0, interpolation="nearest")
                    if len(patches) > 1:
                        ax.add_patch(_rect(ext))
                ax.set_xlim(0, w)
                ax.set_ylim(h, 0)
                if img is None and len(patches) == 1:
                    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
                    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
                what = "image mass" if label == "attention" else "|IG| on image"
                ax.set_title(f"layer {layer} · {what} {100 * total:.1f}%" if label == "attention"
                             else f"layer {layer} · {what}")
                ax.tick_params(length=1.5)
        cb = fig.colorbar(im, ax=list(axes.flat), shrink=0.9, aspect=30, pad=0.02)
        cb.set_label("relative to the layer's max (0–1)")
        fig.suptitle(f"Answer-row attention on the image · {short_label(source.label)} · sample {sid} · "
                     f"{condition_label(cond)}" + (f" · {view_note}" if view_note else ""))
    for n in notes:
        add_note(fig, n)
    return fig
