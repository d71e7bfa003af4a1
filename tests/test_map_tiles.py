"""Map tiles (``attention/map_tiles``, ``models/layout.py``): every tile of a tiled image, where it
sits, checked against what the prompt and the model say; truncated maps keep grid and tiles
consistent; the overlay draws every tile in place."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from xai_bias.instruments import METHODS, load_methods
from xai_bias.instruments.base import MethodSettings, Target
from xai_bias.models import collate, encode, forward, image_positions, tiny_vlm
from xai_bias.models.layout import TILE_FIELDS, Tile
from xai_bias.types import PromptView

load_methods()
TILED = ("smolvlm", "idefics3", "internvl", "aya_vision", "ovis2", "llava_onevision", "llava_next")


@functools.lru_cache(maxsize=None)
def vlm_of(arch):
    return tiny_vlm(arch)


def wide_view() -> PromptView:
    return PromptView("What is <image 1> here?", ("a", "b"), ("A", "B"), "Answer.",
                      (Image.new("RGB", (150, 70), (200, 30, 30)),))


def _indices(t: Tile) -> np.ndarray:
    return (t.offset + np.arange(t.rows)[:, None] * t.stride + np.arange(t.cols)[None, :]).ravel()


@pytest.mark.parametrize("arch", TILED)
def test_tiles_cover_the_image_tokens_once(arch):
    vlm = vlm_of(arch)
    enc = encode(vlm, wide_view())
    n = int(sum(r * c for r, c in enc.image_grids))
    tiles = enc.image_tiles
    views = {t.view for t in tiles}
    assert views == {0, 1}, "the wide image is tiled: a whole-image view and a tiled view"
    covered = np.concatenate([_indices(t) for t in tiles])
    assert len(set(covered.tolist())) == covered.size, "tiles do not overlap"
    assert covered.min() >= 0 and covered.max() < n
    tiled = [t for t in tiles if t.view == 1]
    extent = (max(t.row0 + t.rows for t in tiled), max(t.col0 + t.cols for t in tiled))
    if arch == "ovis2":
        # Ovis2's image processor (transformers 5.24) unpacks its covering grid (rows, cols) as
        # (cols, rows): a wide image is cut into a tall grid of tiles; the tiles follow its grid
        rows, cols = vlm.processor.image_processor(images=[wide_view().images[0]], return_tensors="pt")["grids"][0]
        side = int(np.sqrt(vlm.processor.image_seq_length))
        assert extent == (int(rows) * side, int(cols) * side)
    else:
        assert extent[1] > extent[0], "the tiled view of a wide image is wider than high"
    if arch in ("llava_onevision", "llava_next"):
        # the uncovered entries are the newline tokens: one after each row of the anyres grid
        grid = tiled[0]
        newline = grid.offset + np.arange(grid.rows) * grid.stride + grid.cols
        assert sorted(set(range(n)) - set(covered.tolist())) == newline.tolist()
    else:
        assert covered.size == n


@pytest.mark.parametrize("arch", ["smolvlm", "idefics3"])
def test_idefics_tiles_follow_the_row_col_markers(arch):
    """Each tile starts right after its ``<row_i_col_j>`` marker in the prompt; the global view
    right after ``<global-img>``."""
    vlm = vlm_of(arch)
    enc = encode(vlm, wide_view())
    batch = collate(vlm, [enc])
    pos = image_positions(vlm, batch, 0)
    ids = batch.inputs["input_ids"][0].tolist()
    side = int(np.sqrt(vlm.processor.image_seq_len))
    for t in enc.image_tiles:
        before = vlm.tokenizer.convert_ids_to_tokens(ids[pos[t.offset] - 1])
        want = "<global-img>" if t.view == 0 else f"<row_{t.row0 // side + 1}_col_{t.col0 // side + 1}>"
        assert before == want


def test_onevision_uncovered_entries_are_the_newline_embedding():
    """Where no tile lies, the decoder input is the model's image_newline vector (not a patch)."""
    from xai_bias.models import decoder_call

    vlm = vlm_of("llava_onevision")
    enc = encode(vlm, wide_view())
    batch = collate(vlm, [enc])
    with torch.no_grad():
        embeds = decoder_call(vlm, batch).embeds[0]
    pos = image_positions(vlm, batch, 0)
    grid = [t for t in enc.image_tiles if t.view == 1][0]
    newline = pos[grid.offset + np.arange(grid.rows) * grid.stride + grid.cols]
    nl = vlm.model.model.image_newline
    for p in newline:
        torch.testing.assert_close(embeds[p], nl, rtol=0, atol=1e-6)
    patch = pos[_indices(grid)]
    assert all(not torch.allclose(embeds[p], nl) for p in patch)


def _attention_rows(vlm, batch, **settings):
    method = METHODS.get("attention").build(vlm, MethodSettings.build(attention={"save_maps": True, **settings}))
    with method.capture(batch):
        forward(vlm, batch)
    targets = [Target(answer_pos=batch.answer_pos, token_id=0, letter_ids=())] * len(batch)
    return method, method.measure(batch, targets)


def test_map_tiles_rows_and_truncation():
    vlm = vlm_of("smolvlm")
    enc = encode(vlm, wide_view())
    batch = collate(vlm, [enc])
    method, rows = _attention_rows(vlm, batch)
    tiles = rows[0]["attention/map_tiles"]
    assert tiles.shape == (8 * 16, len(TILE_FIELDS)) and tiles.dtype == np.int32
    kept = tiles[tiles[:, 4] > 0]
    assert [Tile(*map(int, r)) for r in kept] == list(enc.image_tiles)
    assert (tiles[len(kept):] == -1).all()
    assert method.dataset_attrs()["attention/map_tiles"]["fields"] == list(TILE_FIELDS)
    # a map cut in the middle of the second tile's second row: grid and tiles hold only what it has
    width = enc.image_tiles[1].offset + enc.image_tiles[1].stride + 1
    with pytest.warns(UserWarning, match="--attention-map-width"):
        _, cut = _attention_rows(vlm, batch, map_width=width)
    maps, grid, tiles = cut[0]["attention/maps"], cut[0]["attention/map_grid"], cut[0]["attention/map_tiles"]
    assert maps.shape[1] == width and np.isfinite(maps).all()
    kept = [Tile(*map(int, r)) for r in tiles if r[4] > 0]
    assert [t.rows for t in kept] == [enc.image_tiles[0].rows, 1]
    assert all(_indices(t).max() < width for t in kept)
    assert tuple(grid[0]) == (1, width)  # SmolVLM's tiles are no single grid: a 1 x n strip, cut to the map


def test_overlay_draws_every_tile_in_place(tmp_path):
    """The figure's panels hold one heat image per tile of the tiled view, placed at the tile's
    rectangle of the image."""
    import json

    from matplotlib.image import AxesImage

    from xai_bias.plots import open_sources
    from xai_bias.plots.overlays import image_overlays
    from xai_bias.run import RunConfig, run_study
    from xai_bias.samples import load_samples

    img = tmp_path / "wide.png"
    wide_view().images[0].save(img)
    (tmp_path / "s.jsonl").write_text(json.dumps({"id": "w", "question": "<image 1> What is it?",
                                                  "options": ["a", "b"], "answer": "A", "image_1": "wide.png"}) + "\n")
    out = tmp_path / "t.h5"
    run_study(vlm_of("llava_onevision"), load_samples(tmp_path / "s.jsonl"),
              RunConfig(out=out, methods=("attention",), progress=False,
                        settings=MethodSettings.build(attention={"save_maps": True})))
    fig = image_overlays(open_sources([out], n_bootstrap=0)[0])
    ax = fig.axes[0]
    heats = [im for im in ax.get_images() if im.get_array().ndim == 2 and im.get_cmap().name != "gray"]
    enc = encode(vlm_of("llava_onevision"), wide_view())
    tiled = [t for t in enc.image_tiles if t.view == 1]
    assert len(heats) == len(tiled)
    assert heats[0].get_array().shape == (tiled[0].rows, tiled[0].cols)
    x0, x1, y1, y0 = heats[0].get_extent()
    assert (x0, x1, y0, y1) == (0, 150, 0, 70)  # the anyres grid spans the whole image
    assert isinstance(heats[0], AxesImage)
