"""``render_all``: every figure of one or more traces, written as PDF / PNG, skipping (with a note)
the figures whose data the traces lack.

Output names (``out/<name>.<fmt>``):

==================  ===============================================================  ==========
name                figure                                                           traces
==================  ===============================================================  ==========
fig1_layers         image and text shares per layer, one panel per method            overlaid
fig2_delta          C(image)/C(text) per layer (log), Δ = 1 and suppression marked   overlaid
fig3_heads          layer × head image share of attention, per condition             per trace
fig4_overlays       answer-row attention (and IG) over the image, 3 layers           per trace
fig5_interventions  knockout Δ log-prob per layer; logit lens with / without image   per trace
fig6_ablation       accuracy per condition (bars), agreement of predictions (Venn)   overlaid
fig7_agreement      per-layer image shares of the methods against each other         per trace
fig8_audio          answer-row attention over an audio clip in time (spectrogram)    per trace
fig9_video          answer-row attention per video frame (temporal slot)             per trace
==================  ===============================================================  ==========

With several traces, the per-trace figures get the model's name as a suffix
(``fig3_heads-<model>``); the overlaid ones carry every trace, labelled by model id.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import style as S
from .ablation import ablation
from .data import MissingData, Source, short_label, unique_labels
from .heads import head_map
from .interventions import interventions
from .layers import delta_per_layer, layer_contributions, method_agreement
from .clips import audio_overlay, video_frames
from .overlays import image_overlays

FIGURES: tuple[str, ...] = ("fig1_layers", "fig2_delta", "fig3_heads", "fig4_overlays", "fig5_interventions",
                            "fig6_ablation", "fig7_agreement", "fig8_audio", "fig9_video")
FORMATS = ("pdf", "png", "svg")


@dataclass(frozen=True)
class RenderResult:
    """Files written (in order) and notes (figures skipped, with why)."""

    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", short_label(label)).strip("-") or "trace"


def open_sources(paths: Sequence[str | os.PathLike], n_bootstrap: int = 1000, seed: int = 0,
                 estimator: Callable[..., Any] | None = None) -> list[Source]:
    """Open each trace and estimate it (``xai_bias.estimate.estimate``, or ``estimator`` with the
    same signature). An estimate that fails is an error naming the trace: figures are never
    drawn from numbers computed another way."""
    from ..store import open_trace

    if estimator is None:
        from ..estimate import estimate as estimator
    traces = [open_trace(p) for p in paths]
    labels = unique_labels([str(t.attrs.get("model_id") or "") for t in traces], [Path(p) for p in paths])
    sources = []
    try:
        for p, t, lab in zip(paths, traces, labels):
            sources.append(Source(Path(p), lab, t, estimator(t, n_bootstrap=n_bootstrap, seed=seed)))
    except BaseException:
        for t in traces:
            t.close()
        raise
    return sources


def render_all(paths: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
               formats: Sequence[str] = ("pdf", "png"), sample: str | None = None, n_bootstrap: int = 1000,
               only: Sequence[str] | None = None, images: Mapping[str, Any] | None = None,
               estimator: Callable[..., Any] | None = None, seed: int = 0) -> RenderResult:
    """Render every figure of the trace(s) at ``paths`` into ``out``.

    formats: any of pdf, png, svg. sample: sample id of the image overlays (default: the first
    record with attention maps). n_bootstrap / seed: resamples and seed of the 95 % intervals
    (passed to the estimator, the one source of every statistic drawn). only: a subset
    of ``FIGURES``. images: sample id -> image file, for overlays whose trace does not name the
    image. A figure whose data is absent is skipped with a note; it never raises for that.
    """
    from ..errors import UsageError

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise UsageError("figures: give at least one trace")
    formats = tuple(f.lower().lstrip(".") for f in formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"figures: unknown format(s) {bad}; choose from {', '.join(FORMATS)}")
    if only is not None:
        unknown = [n for n in only if n not in FIGURES]
        if unknown:
            raise UsageError(f"figures: unknown figure(s) {unknown}; choose from {', '.join(FIGURES)}")
    want = set(only or FIGURES)
    out = Path(out)
    sources = open_sources(paths, n_bootstrap, seed, estimator)
    notes: list[str] = []
    written: list[Path] = []
    multi = len(sources) > 1

    def emit(name: str, build: Callable[[], Any]) -> None:
        try:
            with S.paper_style(), S.study(sources[0].modalities()):
                fig = build()
        except MissingData as e:
            notes.append(f"skipped {name}: {e}")
            return
        written.extend(S.save(fig, out / name, formats))
        for n in getattr(fig, "_xai_bias_notes", []):
            notes.append(f"{name}: {n}")

    try:
        if "fig1_layers" in want:
            emit("fig1_layers", lambda: layer_contributions(sources))
        if "fig2_delta" in want:
            emit("fig2_delta", lambda: delta_per_layer(sources))
        for src in sources:
            suffix = f"-{_slug(src.label)}" if multi else ""
            if "fig3_heads" in want:
                emit(f"fig3_heads{suffix}", lambda s=src: head_map(s))
            if "fig4_overlays" in want:
                emit(f"fig4_overlays{suffix}", lambda s=src: image_overlays(s, sample=sample, images=images))
            if "fig5_interventions" in want:
                emit(f"fig5_interventions{suffix}", lambda s=src: interventions(s))
        if "fig6_ablation" in want:
            emit("fig6_ablation", lambda: ablation(sources))
        for src in sources:
            suffix = f"-{_slug(src.label)}" if multi else ""
            if "fig7_agreement" in want:
                emit(f"fig7_agreement{suffix}", lambda s=src: method_agreement(s))
            # the clip figures only for traces that hold clip maps (no note for image-only traces)
            if "fig8_audio" in want and src.trace.has("attention/maps_audio"):
                emit(f"fig8_audio{suffix}", lambda s=src: audio_overlay(s, sample=sample))
            if "fig9_video" in want and src.trace.has("attention/maps_video"):
                emit(f"fig9_video{suffix}", lambda s=src: video_frames(s, sample=sample))
    finally:
        for s in sources:
            close = getattr(s.trace, "close", None)
            if callable(close):
                close()
    return RenderResult(written, notes)
