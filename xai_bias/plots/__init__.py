"""Paper figures from traces: pure functions (trace / estimate in, matplotlib Figure out) and
``render_all`` (what ``python cli.py figures`` runs). Reads traces and estimates, never models.

    from xai_bias.plots import render_all
    result = render_all(["runs/biased.h5", "runs/balanced.h5"], out="figures")

Figures (see ``render`` for the file names): layer-wise contributions, Δ per layer, head map,
image overlays, knockout + logit lens, ablation (accuracy bars + agreement diagram), method
agreement; with several traces, the first two and the ablation overlay them. One style module
(``style``): 3.3 / 6.9 in widths, Okabe–Ito colours, 7 pt fonts, vector PDF + 200-dpi PNG,
byte-identical output for identical input.
"""

from __future__ import annotations

from .ablation import ablation, accuracy_rows, overlap
from .data import MissingData, Source
from .heads import head_map, head_shares
from .interventions import interventions
from .layers import delta_per_layer, layer_contributions, method_agreement
from .overlays import image_overlays
from .render import FIGURES, RenderResult, open_sources, render_all
from .style import DOUBLE, SINGLE, paper_style, save

__all__ = [
    "render_all", "RenderResult", "FIGURES", "open_sources", "Source", "MissingData",
    "layer_contributions", "delta_per_layer", "head_map", "head_shares", "image_overlays",
    "interventions", "ablation", "accuracy_rows", "overlap", "method_agreement",
    "paper_style", "save", "SINGLE", "DOUBLE",
]
