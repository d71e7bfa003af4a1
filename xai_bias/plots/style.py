"""The one style module of xai_bias figures: sizes, palette, fonts, deterministic saving.

- Widths: ``SINGLE`` = 3.3 in (one column), ``DOUBLE`` = 6.9 in (two columns / full page width).
- Palette: Okabe & Ito (2008), safe for the common colour-vision deficiencies; sequential maps
  are ``viridis`` (head maps) and ``inferno`` (image overlays), both perceptually uniform and
  readable in grey scale.
- Fonts: DejaVu Sans (bundled with matplotlib, so output does not depend on the machine), 7 pt
  text, 8 pt titles, never below 6.5 pt at print size.
- Output: vector PDF and 200-dpi PNG, byte-identical for identical input (no creation date, no
  software string, fixed SVG hash salt).
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg", force=False)  # headless; a no-op if a backend is already in use
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..errors import write_error  # noqa: E402

#: Figure widths in inches.
SINGLE = 3.3
DOUBLE = 6.9
#: PNG resolution.
DPI = 200

#: Okabe–Ito palette.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#999999",
}
_CYCLE = ["blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow"]
CYCLE: tuple[str, ...] = tuple(OKABE_ITO[c] for c in _CYCLE)

#: Colour per modality (image / text / other).
MODALITY_COLORS = {"image": OKABE_ITO["blue"], "text": OKABE_ITO["vermillion"], "other": OKABE_ITO["grey"],
                   "video": OKABE_ITO["green"], "audio": OKABE_ITO["purple"]}
#: Line styles that tell traces (models) apart when they are overlaid.
MODEL_LINESTYLES = ("-", "--", ":", "-.")
MODEL_MARKERS = ("o", "s", "^", "D")
HATCHES = ("", "//", "..", "xx")


def method_label(method: str) -> str:
    """The method's registered label (``MethodSpec.label``); the name itself when unregistered."""
    from ..instruments.base import load_methods

    methods = load_methods()
    return methods.get(method).label if method in methods else method


def method_short_label(method: str) -> str:
    from ..instruments.base import load_methods

    methods = load_methods()
    return methods.get(method).short_label if method in methods else method


def method_color(method: str, i: int = 0) -> str:
    """The method's registered colour, else the i-th colour of the palette."""
    from ..instruments.base import load_methods

    methods = load_methods()
    color = methods.get(method).color if method in methods else None
    return color or color_cycle(i)


#: the non-text modalities of the study being drawn (``study``), for labels such as the
#: complete input's ("image + text", "audio + text")
_STUDY: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("xai_bias_study", default=("image",))


@contextlib.contextmanager
def study(modalities: Sequence[str]) -> Iterator[None]:
    """Within the block, labels name these modalities (``render_all`` sets the trace's)."""
    token = _STUDY.set(tuple(modalities) or ("image",))
    try:
        yield
    finally:
        _STUDY.reset(token)


def condition_label(condition: str) -> str:
    """The condition's registered label (``Condition.label``; the complete input named after the
    study's modalities); the name when unregistered."""
    from ..conditions import condition_label as label

    return label(condition, _STUDY.get())


def condition_bar_label(condition: str) -> str:
    """The label wrapped for a bar axis ("text + white image" -> "text +\nwhite\nimage")."""
    import textwrap

    return "\n".join(textwrap.wrap(condition_label(condition), 7, break_long_words=False))


def condition_color(condition: str, i: int = 0) -> str:
    """The condition's registered colour, else the i-th colour of the palette."""
    from ..conditions import CONDITION_REGISTRY

    color = CONDITION_REGISTRY.get(condition).color if condition in CONDITION_REGISTRY else None
    return color or color_cycle(i)


SEQUENTIAL_CMAP = "viridis"
OVERLAY_CMAP = "inferno"

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 7.0,
    "axes.titlesize": 8.0,
    "axes.labelsize": 7.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 7.0,
    "legend.title_fontsize": 7.0,
    "figure.titlesize": 8.0,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "axes.prop_cycle": matplotlib.cycler(color=list(CYCLE)),
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "savefig.bbox": "standard",
    "pdf.fonttype": 42,  # TrueType: text stays selectable / editable in the PDF
    "ps.fonttype": 42,
    "svg.hashsalt": "xai_bias",
    "svg.fonttype": "none",
    "image.cmap": SEQUENTIAL_CMAP,
    "path.simplify": False,
    "hatch.linewidth": 0.4,
}

#: Per-format savefig metadata that removes every time- or machine-dependent field.
METADATA = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": "xai_bias"},
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": "xai_bias"},
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Context in which figures are built and saved with the paper style."""
    with plt.rc_context(RC):
        yield


def new_figure(width: float = SINGLE, height: float | None = None) -> Figure:
    """A Figure of the given width (inches); not registered with pyplot (no global state)."""
    if height is None:
        height = width * 0.62
    with paper_style():
        fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    fig.get_layout_engine().set(w_pad=2 / 72, h_pad=2 / 72, wspace=0.04, hspace=0.04)
    return fig


def color_cycle(i: int) -> str:
    return CYCLE[i % len(CYCLE)]


def model_color(i: int) -> str:
    """Colour of the i-th model (trace) in comparison figures."""
    return (OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"], OKABE_ITO["orange"],
            OKABE_ITO["purple"], OKABE_ITO["sky"])[i % 6]


def panel_label(ax, letter: str) -> None:
    """Prefix the axes' title with the panel letter "(a)" (call after ``set_title``)."""
    ax.set_title(f"({letter}) {ax.get_title()}".rstrip())


def save(fig: Figure, stem: Path, formats: Sequence[str] = ("pdf", "png")) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format; byte-identical output for identical input.

    The layout is solved once (at the first format) and reused for the others.
    """
    written: list[Path] = []
    stem = Path(stem)
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(stem.parent, e, "create the figures folder") from None
    engine = fig.get_layout_engine()
    try:
        with paper_style():
            for k, fmt in enumerate(formats):
                fmt = fmt.lower().lstrip(".")
                path = stem.with_name(f"{stem.name}.{fmt}")
                kwargs = {"format": fmt, "metadata": METADATA.get(fmt)}
                if fmt in ("png", "jpg", "jpeg", "tif", "tiff"):
                    kwargs["dpi"] = DPI
                try:
                    fig.savefig(path, **kwargs)
                except OSError as e:  # disk full, no permission: no half-written figure stays
                    path.unlink(missing_ok=True)
                    raise write_error(path, e, "write the figure") from None
                written.append(path)
                if k == 0 and len(formats) > 1 and engine is not None:
                    fig.set_layout_engine("none")  # keep the solved positions
    finally:
        if engine is not None and fig.get_layout_engine() is not engine:
            fig.set_layout_engine(engine)
    return written
