"""Fig. 8 and 9: the answer row's attention over an audio clip in time (on its spectrogram) and over
a video frame by frame.

Fig. 8 (``audio_overlay``) reads ``/attention/maps_audio`` (``[L, width]`` per record, NaN-padded:
head-mean attention of the answer row on each audio token) and ``/attention/audio_grid``
(``[max_clips, 2]``: tokens, milliseconds per clip); the first clip of the record is shown. Its
tokens are evenly spaced over the clip (Whisper-style encoders: one token per 40 ms), so token
``k`` of ``n`` covers ``[k, k+1) * duration / n``. The clip itself is found through the record's
metadata (``audios``; relative paths against the trace's folder and the working directory) and
drawn as a log-power spectrogram (numpy STFT, 25 ms Hann window, 10 ms hop); without it the
curves are drawn alone, with a note. One panel per layer (an early, a middle and a late one):
the attention per token as a curve over the spectrogram, the title giving the layer's total
attention on the audio.

Fig. 9 (``video_frames``) reads ``/attention/maps_video`` and ``/attention/video_grid``
(``[max_clips, 3]``: temporal slots, tokens, frames per video): the first video's tokens are
split evenly over its slots in order (Qwen pairs two frames per slot). Top rows: for each chosen
layer, each slot's first frame (decoded again from the file in the record's ``videos`` metadata,
with the same uniform frame sampling as the run) with the slot's attention laid over it as a
heat map (tokens arranged in the grid of the frame's aspect ratio); bottom: the attention mass
per slot against the frame's time for those layers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from . import style as S
from ._common import condition_label, require
from .data import MissingData, Source, short_label
from .interventions import add_note
from .overlays import _map_row, _maps_2d, _n_layers, choose_layers


def _pick(source: Source, dataset: str, what: str, sample: str | None) -> int:
    require(source.trace.has(dataset), f"{what}: the trace has no /{dataset} (run attention with --save-maps "
                                       f"on a model that takes it)")
    ok = source.ok()
    cond = source.column("records/condition")
    sid = source.column("records/sample_id")
    cand = ok.copy()
    if sample is not None:
        require(bool((sid == str(sample)).any()), f"{what}: sample {sample!r} is not in the trace")
        cand &= sid == str(sample)
    order = np.r_[np.flatnonzero(cand & (cond == "complete")), np.flatnonzero(cand & (cond != "complete"))]
    for i in order:
        if np.isfinite(_map_row(source, dataset, int(i))).any():
            return int(i)
    raise MissingData(f"{what}: no record holds a map on {dataset.split('_')[-1]} tokens")


def find_clip(source: Source, i: int, key: str, given: Mapping[str, Any] | None = None) -> Path | None:
    """The file of record ``i``'s first clip (``key``: "audios" / "videos" in its metadata), or None."""
    sid = str(source.column("records/sample_id")[i])
    cands: list[Any] = [given[sid]] if given and sid in given else []
    meta = source.trace["records/meta"][i] or {}
    if isinstance(meta, Mapping) and meta.get(key):
        cands.append(meta[key])
    for c in cands:
        if isinstance(c, (list, tuple)):
            c = c[0] if c else None
        if not c:
            continue
        p = Path(os.fspath(c)).expanduser()
        for base in ([p] if p.is_absolute() else [Path(source.path).parent / p, Path.cwd() / p]):
            if base.exists():
                return base
    return None


def spectrogram(samples: np.ndarray, rate: int, n_fft: int = 400, hop: int = 160) -> tuple[np.ndarray, float]:
    """``[n_fft // 2 + 1, frames]`` log10 power (dB) of a Hann-window STFT, and the top frequency."""
    x = np.asarray(samples, np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2
    return 10 * np.log10(spec.T + 1e-10), rate / 2


def audio_overlay(source: Source, sample: str | None = None, audios: Mapping[str, Any] | None = None) -> Figure:
    """Fig. 8 (module docstring)."""
    name = "attention/maps_audio"
    i = _pick(source, name, "audio overlay", sample)
    att = _maps_2d(_map_row(source, name, i), _n_layers(source))
    require(att is not None, "audio overlay: the map of the chosen record has an unexpected length")
    grid = np.asarray(source.trace["attention/audio_grid"][i]).reshape(-1, 2) if source.trace.has(
        "attention/audio_grid") else np.zeros((0, 2))
    valid = int(np.isfinite(att).any(0).sum())
    n_tok = int(grid[0, 0]) if grid.size and grid[0, 0] > 0 else valid
    seconds = float(grid[0, 1]) / 1000 if grid.size and grid[0, 1] > 0 else None
    notes = []
    path = find_clip(source, i, "audios", audios)
    clip = None
    if path is not None:
        from ..media import decode_audio

        try:
            clip = decode_audio(path)
        except ValueError as exc:
            notes.append(f"audio overlay: {exc}")
    if clip is None:
        notes.append("audio overlay: the audio clip could not be located; drew the attention alone")
    if seconds is None:
        seconds = clip.duration if clip is not None else float(n_tok)
    sid = str(source.column("records/sample_id")[i])
    cond = str(source.column("records/condition")[i])
    layers = choose_layers(att.shape[0])
    edges = np.linspace(0, seconds, n_tok + 1)
    with S.paper_style():
        fig = S.new_figure(S.DOUBLE, 1.9 * len(layers) + 0.5)
        axes = fig.subplots(len(layers), 1, squeeze=False, sharex=True)[:, 0]
        for ax, layer in zip(axes, layers):
            vals = att[layer, :n_tok]
            total = float(np.nansum(vals))
            if clip is not None:
                db, top = spectrogram(clip.samples, clip.rate)
                ax.imshow(db, origin="lower", aspect="auto", extent=(0, clip.duration, 0, top), cmap="gray_r",
                          vmin=db.max() - 80, vmax=db.max(), interpolation="nearest")
                ax.set_ylabel("frequency (Hz)")
                share = ax.twinx()
            else:
                share = ax
            curve = vals / total if total > 0 else vals
            share.stairs(curve, edges, color="#E69F00", linewidth=1.6, baseline=None)
            share.set_ylabel("share of the layer's\naudio attention (line)")
            top_share = float(np.nanmax(curve)) if np.isfinite(curve).any() else 1.0
            share.set_ylim(0, 1.25 * top_share if top_share > 0 else 1.0)
            ax.set_title(f"layer {layer} · audio mass {100 * total:.1f}% · {n_tok} audio tokens")
        axes[-1].set_xlabel("time in the clip (s)")
        axes[-1].set_xlim(0, seconds)
        fig.suptitle(f"Answer-row attention over the audio · {short_label(source.label)} · sample {sid} · "
                     f"{condition_label(cond)}")
    for n in notes:
        add_note(fig, n)
    return fig


def _grid_for(n: int, aspect: float) -> tuple[int, int]:
    """(rows, cols) with rows * cols == n whose rows / cols is closest to ``aspect`` (h / w)."""
    best = (1, n)
    for r in range(1, n + 1):
        if n % r == 0 and abs(np.log(r / (n // r)) - np.log(aspect)) < abs(np.log(best[0] / best[1]) - np.log(aspect)):
            best = (r, n // r)
    return best


def video_frames(source: Source, sample: str | None = None, videos: Mapping[str, Any] | None = None) -> Figure:
    """Fig. 9 (module docstring)."""
    name = "attention/maps_video"
    i = _pick(source, name, "video frames", sample)
    att = _maps_2d(_map_row(source, name, i), _n_layers(source))
    require(att is not None, "video frames: the map of the chosen record has an unexpected length")
    grid = np.asarray(source.trace["attention/video_grid"][i]).reshape(-1, 3) if source.trace.has(
        "attention/video_grid") else np.zeros((0, 3))
    valid = int(np.isfinite(att).any(0).sum())
    slots = int(grid[0, 0]) if grid.size and grid[0, 0] > 0 else 1
    n_tok = int(grid[0, 1]) if grid.size and grid[0, 1] > 0 else valid
    n_frames = int(grid[0, 2]) if grid.size and grid[0, 2] > 0 else slots
    per = n_tok // slots
    notes = []
    path = find_clip(source, i, "videos", videos)
    clip = None
    if path is not None:
        from ..media import decode_video

        try:
            clip = decode_video(path, n_frames)
        except ValueError as exc:
            notes.append(f"video frames: {exc}")
    if clip is None:
        notes.append("video frames: the video could not be located; drew the attention grids alone")
    frames_per_slot = max(1, n_frames // slots) if n_frames >= slots else 1
    aspect = clip.frames.shape[1] / clip.frames.shape[2] if clip is not None else 1.0
    gr, gc = _grid_for(per, aspect) if per > 0 else (1, 1)
    layers = choose_layers(att.shape[0])
    sid = str(source.column("records/sample_id")[i])
    cond = str(source.column("records/condition")[i])
    with S.paper_style():
        fig = S.new_figure(S.DOUBLE, 1.25 * len(layers) + 1.9)
        gs = fig.add_gridspec(len(layers) + 1, slots, height_ratios=[1] * len(layers) + [1.3])
        im = None
        for r, layer in enumerate(layers):
            vals = att[layer, :n_tok]
            vmax = float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0
            for s in range(slots):
                ax = fig.add_subplot(gs[r, s])
                heat = vals[s * per : (s + 1) * per]
                heat = (heat / vmax if vmax > 0 else heat)[: gr * gc].reshape(gr, gc)
                if clip is not None:
                    f = clip.frames[min(s * frames_per_slot, len(clip) - 1)]
                    h, w = f.shape[:2]
                    ax.imshow(f.astype(float).mean(-1) / 255, extent=(0, w, h, 0), cmap="gray", vmin=0, vmax=1)
                    im = ax.imshow(heat, extent=(0, w, h, 0), cmap=S.OVERLAY_CMAP, vmin=0, vmax=1, alpha=0.6,
                                   interpolation="nearest")
                else:
                    im = ax.imshow(heat, cmap=S.OVERLAY_CMAP, vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    t = clip.times[min(s * frames_per_slot, len(clip) - 1)] if clip is not None else s
                    ax.set_title(f"slot {s + 1}\n{t:.2f} s" if clip is not None else f"slot {s + 1}")
                if s == 0:
                    ax.set_ylabel(f"layer {layer}")
        ax = fig.add_subplot(gs[-1, :])
        x = np.arange(1, slots + 1)
        top = 0.0
        for layer in layers:
            mass = [float(np.nansum(att[layer, s * per : (s + 1) * per])) for s in range(slots)]
            top = max(top, max(mass))
            ax.plot(x, mass, marker="o", label=f"layer {layer}")
        ax.set_xticks(x)
        ax.set_xlabel(f"temporal slot ({frames_per_slot} frame(s) each, in order)")
        ax.set_ylabel("attention mass")
        ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
        ax.legend(frameon=False, ncol=len(layers))
        if im is not None:
            cb = fig.colorbar(im, ax=fig.axes[:-1], shrink=0.8, aspect=25, pad=0.01)
            cb.set_label("relative to the layer's max (0–1)")
        fig.suptitle(f"Answer-row attention per video frame · {short_label(source.label)} · sample {sid} · "
                     f"{condition_label(cond)}")
    for n in notes:
        add_note(fig, n)
    return fig


__all__ = ["audio_overlay", "video_frames", "spectrogram", "find_clip"]
