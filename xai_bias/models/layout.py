"""Where each image token sits in its image: tiles of vision tokens, for the attention maps.

A processor may show one image as several views (Idefics3 / SmolVLM: tiles of the image split
into a grid plus a downscaled global image; InternVL and Aya Vision: tiles plus a thumbnail;
Ovis2: a global view, then the tiles;
LLaVA-OneVision / LLaVA-NeXT: a base image, then the high-resolution anyres grid with a newline
token after each row). A :class:`Tile` says which run of map entries belongs to which rectangle
of which view:

    token (i, j) of the tile (row i < rows, column j < cols) is map entry ``offset + i * stride + j``

where the map is every image placeholder token of the prompt in sequence order (all images
concatenated, as ``attention/maps`` stores it). ``view`` 0 is the view that covers the whole image
at once (the only view of an untiled image, the global / thumbnail / base image of a tiled one),
view 1 the tiled high-resolution view; ``row0``, ``col0`` place the tile in its view's token grid
(the view spans ``max(row0 + rows)`` × ``max(col0 + cols)`` tokens over the whole image). Map
entries that no tile covers are not vision patches (LLaVA-OneVision's newline tokens).

A family names its layout (``Family.image_layout``); ``image_tiles`` dispatches on it.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple, Sequence

TILE_FIELDS = ("image", "view", "row0", "col0", "rows", "cols", "offset", "stride")


class Tile(NamedTuple):
    """One rectangle of vision tokens (module docstring)."""

    image: int
    view: int
    row0: int
    col0: int
    rows: int
    cols: int
    offset: int
    stride: int

    @property
    def size(self) -> int:
        return self.rows * self.cols


def _grid(vlm: Any, k: int, n: int, offset: int, grid: tuple[int, int], **_: Any) -> list[Tile]:
    """One view, row-major (``image_grids``' rows × cols)."""
    rows, cols = grid
    return [Tile(k, 0, 0, 0, rows, cols, offset, cols)]


_ROW_COL = re.compile(r"<row_(\d+)_col_(\d+)>")


def _idefics(vlm: Any, k: int, n: int, offset: int, replacement: str, **_: Any) -> list[Tile]:
    """Idefics3 / SmolVLM: ``<row_i_col_j>`` + side² tokens per tile, then ``<global-img>`` + side²."""
    seq = int(vlm.processor.image_seq_len)
    side = math.isqrt(seq)
    tiles = [Tile(k, 1, (int(i) - 1) * side, (int(j) - 1) * side, side, side, offset + t * seq, side)
             for t, (i, j) in enumerate(_ROW_COL.findall(replacement))]
    tiles.append(Tile(k, 0, 0, 0, side, side, offset + len(tiles) * seq, side))
    return tiles


def _crop_tiles(vlm: Any, k: int, n: int, offset: int, size: tuple[int, int], seq: int) -> list[Tile]:
    """InternVL / Aya Vision (GotOcr2 cropping): the tiles of the best canvas row-major, then the
    thumbnail (when there is more than one tile); ``seq`` tokens (side²) per tile."""
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

    side = math.isqrt(seq)
    n_tiles = n // seq
    if n_tiles <= 1:
        return [Tile(k, 0, 0, 0, side, side, offset, side)]
    ip = vlm.processor.image_processor
    tile_size = (ip.size["height"], ip.size["width"])
    cols, rows = get_optimal_tiled_canvas(size, tile_size, ip.min_patches, ip.max_patches)
    if rows * cols + 1 != n_tiles:
        raise RuntimeError(f"image {k}: {n_tiles} tiles in the prompt, the canvas has {rows}x{cols} + thumbnail")
    tiles = [Tile(k, 1, r * side, c * side, side, side, offset + (r * cols + c) * seq, side)
             for r in range(rows) for c in range(cols)]
    tiles.append(Tile(k, 0, 0, 0, side, side, offset + rows * cols * seq, side))
    return tiles


def _internvl(vlm: Any, k: int, n: int, offset: int, size: tuple[int, int], **_: Any) -> list[Tile]:
    return _crop_tiles(vlm, k, n, offset, size, int(vlm.processor.image_seq_length))


def _aya(vlm: Any, k: int, n: int, offset: int, size: tuple[int, int], **_: Any) -> list[Tile]:
    proc = vlm.processor
    return _crop_tiles(vlm, k, n, offset, size, (proc.img_size // proc.patch_size) ** 2)


def _anyres(vlm: Any, k: int, n: int, offset: int, size: tuple[int, int], patch_hw: tuple[int, int],
            **_: Any) -> list[Tile]:
    """LLaVA-OneVision / LLaVA-NeXT: the base image (side², view 0), then the unpadded anyres grid,
    rows × cols with a newline token after each row (view 1, stride cols + 1)."""
    from transformers.image_processing_utils import select_best_resolution

    proc = vlm.processor
    height, width = patch_hw
    best_h, best_w = select_best_resolution(list(size), proc.image_processor.image_grid_pinpoints)
    scale_h, scale_w = best_h // height, best_w // width
    if hasattr(proc, "num_image_tokens"):  # OneVision: the base image has num_image_tokens (no CLS)
        ph = pw = math.isqrt(proc.num_image_tokens)
    else:  # NeXT: patches of the crop; its CLS is dropped with the "default" feature strategy
        ph, pw = height // proc.patch_size, width // proc.patch_size
    unpadded, rows = proc._get_unpadded_features(size[0], size[1], ph, pw, scale_h, scale_w)
    cols = unpadded // rows
    if ph * pw + rows * (cols + 1) != n:
        raise RuntimeError(f"image {k}: {n} tokens, the anyres layout gives {ph}x{pw} + {rows}x({cols}+1)")
    return [Tile(k, 0, 0, 0, ph, pw, offset, pw), Tile(k, 1, 0, 0, rows, cols, offset + ph * pw, cols + 1)]


def _ovis(vlm: Any, k: int, n: int, offset: int, replacement: str, **_: Any) -> list[Tile]:
    """Ovis2: the global view (side² tokens), then, for a large image, rows × cols tiles
    (``<IMG_COL>`` between the tiles of a row, ``<IMG_ROW>`` between rows)."""
    seq = int(vlm.processor.image_seq_length)
    side = math.isqrt(seq)
    tiles = [Tile(k, 0, 0, 0, side, side, offset, side)]
    n_tiles = n // seq - 1
    if n_tiles > 0:
        rows = replacement.count("<IMG_ROW>") + 1
        cols = n_tiles // rows
        if rows * cols != n_tiles:
            raise RuntimeError(f"image {k}: {n_tiles} tiles do not form {rows} rows")
        tiles += [Tile(k, 1, r * side, c * side, side, side, offset + (1 + r * cols + c) * seq, side)
                  for r in range(rows) for c in range(cols)]
    return tiles


LAYOUTS = {"grid": _grid, "idefics": _idefics, "internvl": _internvl, "aya": _aya, "anyres": _anyres, "ovis": _ovis}


def image_tiles(vlm: Any, counts: Sequence[int], grids: Sequence[tuple[int, int]], replacements: Sequence[str],
                sizes: Sequence[tuple[int, int]], inputs: Any) -> tuple[Tile, ...]:
    """Tiles of every image of a prompt (``counts``: placeholder tokens per image; ``sizes``:
    (height, width) of each image as given to the processor)."""
    layout = LAYOUTS[vlm.family.image_layout]
    pixels = inputs.get("pixel_values") if hasattr(inputs, "get") else None
    patch_hw = tuple(pixels.shape[-2:]) if pixels is not None and pixels.ndim >= 4 else None
    out: list[Tile] = []
    offset = 0
    for k, n in enumerate(counts):
        tiles = layout(vlm, k, n, offset, grid=grids[k], replacement=replacements[k], size=sizes[k],
                       patch_hw=patch_hw)
        if sum(t.size for t in tiles) > n or any(t.offset + (t.rows - 1) * t.stride + t.cols > offset + n
                                                 for t in tiles):
            raise RuntimeError(f"image {k}: the {vlm.family.image_layout} layout does not fit its {n} tokens")
        out += tiles
        offset += n
    return tuple(out)
