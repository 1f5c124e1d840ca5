"""Layer 6, figures: one visual vocabulary for the whole book.

One colour per kernel or model in every chapter (the data, the NNGP, the NTK, the adaptive kernel, the
trained network, the reference code's variants), one line style per activation, figure sizes that put at
most three panels in a row at text width, and SVG output. Plot functions in :mod:`nckernels.plotting`
take their colours from :func:`color_of` and :func:`linestyle_of`; chapters call :func:`use_book_style`
once in their imports cell.

May import: nothing from the package (matplotlib only).
"""
from __future__ import annotations

import re
from typing import Iterable

__all__ = ["MODEL_COLORS", "ACTIVATION_STYLES", "TEXT_WIDTH", "color_of", "linestyle_of", "marker_of",
           "figure_size", "panel_grid", "label_panels", "use_book_style", "ordered_legend", "natural_key"]

#: The colour of each kernel or model, in every figure of the book (colour-blind safe, Okabe-Ito).
MODEL_COLORS = {
    "data": "#000000",
    "nngp": "#0072B2",
    "ntk": "#E69F00",
    "adaptive": "#009E73",
    "trained net": "#D55E00",
    "as coded": "#CC79A7",
    "other": "#56B4E9",
}
#: The line style of each activation (the colour says which kernel).
ACTIVATION_STYLES = {"erf": "-", "relu": "--", "gelu": "-.", "tanh": ":"}
_MARKERS = {"erf": "o", "relu": "s", "gelu": "^", "tanh": "D"}
STATUS_COLORS = ("#f19c97", "#a9d99b")  # failed (a light red), converged (a light green): the status maps' two cells
TEXT_WIDTH = 9.0  # inches: the width of the book's text column at the figure dpi


def _kind(name: str) -> str:
    low = str(name).lower()
    if "as coded" in low or "reference" in low or "balanced formula" in low:
        return "as coded"
    if "adaptive" in low or "eos" in low:
        return "adaptive"
    if "trained" in low or low.startswith("net"):
        return "trained net"
    if "ntk" in low:
        return "ntk"
    if "nngp" in low:
        return "nngp"
    if low.startswith("data"):
        return "data"
    return "other"


def color_of(name: str) -> str:
    """The book's colour for a kernel or model named like "NNGP erf", "NTK relu", "adaptive (eos)", "trained net"."""
    return MODEL_COLORS[_kind(name)]


def _activation_in(name: str) -> str | None:
    """The first activation of ACTIVATION_STYLES that ``name`` mentions as a word, or None."""
    low = str(name).lower()
    return next((act for act in ACTIVATION_STYLES if re.search(rf"\b{act}\b", low)), None)


def linestyle_of(name: str) -> str:
    """The line style of the activation a name mentions (solid for erf and when none is named)."""
    return ACTIVATION_STYLES.get(_activation_in(name), "-")


def marker_of(name: str) -> str:
    """The marker of the activation a name mentions (a circle when none is named)."""
    return _MARKERS.get(_activation_in(name), "o")


def figure_size(ncols: int = 1, nrows: int = 1, *, aspect: float = 0.75) -> tuple[float, float]:
    """(width, height) in inches for ``nrows x ncols`` panels at text width (at most three per row)."""
    if not isinstance(ncols, int) or not 1 <= ncols <= 3:
        raise ValueError(f"ncols must be 1, 2 or 3 (at most three panels per row at text width), got {ncols!r}")
    if not isinstance(nrows, int) or nrows < 1:
        raise ValueError(f"nrows must be a positive integer, got {nrows!r}")
    width = TEXT_WIDTH * {1: 0.6, 2: 0.85, 3: 1.0}[ncols]
    return width, width / ncols * aspect * nrows


def panel_grid(n: int, ncols: int = 3, *, sharex: bool = False, sharey: bool = False, **kwargs):
    """(figure, the ``n`` panels as a flat list) of a grid of at most ``ncols`` panels per row at text width.

    The grid's unused panels are hidden, and a panel with no visible panel below it keeps its x tick labels
    (with ``sharex``, matplotlib labels only the bottom row, which leaves a panel above a hidden one without
    them). ``kwargs`` go to ``matplotlib.pyplot.subplots``.
    """
    import matplotlib.pyplot as plt

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (the number of panels), got {n!r}")
    if not isinstance(ncols, int) or isinstance(ncols, bool) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    kwargs.setdefault("figsize", figure_size(ncols, nrows))
    fig, axes = plt.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False, **kwargs)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[:n]):
        if i + ncols >= n:  # nothing visible below it
            ax.xaxis.set_tick_params(which="both", labelbottom=True)
    return fig, flat[:n]


def label_panels(panels, ylabel: str | None = None, *, ncols: int | None = None, sharex: bool | None = None):
    """After drawing the panels of a grid (:func:`panel_grid`, or ``subplots`` flattened): ``ylabel`` on the
    first panel of each row, and, with a shared x axis, no x label on a panel that has a panel below it (its
    tick labels are hidden there, so the label would name an axis without ticks). ``ncols`` and ``sharex``
    (None: read from the panels' grid and axes)."""
    n = len(panels)
    if n == 0:
        return
    if ncols is None:
        ncols = panels[0].get_subplotspec().get_gridspec().ncols
    if sharex is None:
        sharex = len(panels[0].get_shared_x_axes().get_siblings(panels[0])) > 1
    ncols = min(ncols, n)
    for i, ax in enumerate(panels):
        if ylabel is not None and i % ncols == 0:
            ax.set_ylabel(ylabel)
        if sharex and i + ncols < n:
            ax.set_xlabel("")


def use_book_style(*, formats: Iterable[str] = ("svg",)) -> None:
    """Set matplotlib's parameters for the book (fonts at reading size, light grids) and the inline format.

    Call once per chapter; inside a Jupyter kernel the inline backend then renders ``formats`` (SVG).
    """
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 200, "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
        "legend.fontsize": 8, "legend.frameon": False, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "lines.markersize": 4,
        "figure.constrained_layout.use": True,
    })
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # outside IPython: nothing to configure
        return
    set_matplotlib_formats(*formats)


def natural_key(label) -> tuple:
    """Sort key that orders labels by the numbers they contain ("d0 = 2" before "d0 = 16"), then by text."""
    text = str(label)
    numbers = tuple(float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text))
    return (numbers, text) if numbers else ((float("inf"),), text)


def ordered_legend(ax, order: Iterable | None = None, **kwargs):
    """A legend whose entries follow ``order`` (labels), or the natural order of the numbers in the labels."""
    handles, labels = ax.get_legend_handles_labels()
    pairs = dict(zip(labels, handles))
    if order is None:
        keys = sorted(pairs, key=natural_key)
    else:
        order = [str(o) for o in order]
        keys = [k for k in order if k in pairs] + [k for k in pairs if k not in order]
    return ax.legend([pairs[k] for k in keys], keys, **kwargs)


def status_colormap():
    """The two-colour map of the convergence and status maps: 0 = failed (red), 1 = converged (green)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(list(STATUS_COLORS), name="nckernels-status")
