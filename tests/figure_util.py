"""Reading what a figure shows from its artists (the report tests): the data of its lines
and bars, its texts, scales and legends, so that a test checks numbers, not a picture."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import pytest
import seaborn as sns
from matplotlib.axes import Axes


@contextmanager
def another_theme() -> Iterator[None]:
    """A theme unlike the report's (seaborn "ticks" at "talk" size), restored afterwards: a
    figure that did not set its own whitegrid / paper theme is told apart."""
    with mpl.rc_context():
        sns.set_theme(style="ticks", context="talk")
        yield


def assert_report_theme() -> None:
    """seaborn's whitegrid style (grid on, white axes) at the paper context (font 0.8 x 12)."""
    assert mpl.rcParams["axes.grid"] is True and mpl.rcParams["axes.facecolor"] == "white"
    assert mpl.rcParams["font.size"] == pytest.approx(9.6)


def lines(ax: Axes) -> list[tuple[list[float], list[float]]]:
    """(x, y) of each line that has data (seaborn's legend proxies have none), in drawing order."""
    return [(list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata())))
            for ln in ax.lines if len(ln.get_xdata())]


def by_hue(ax: Axes) -> dict[str, tuple[list[float], list[float]]]:
    """A seaborn hue plot's lines by legend entry (matched on colour): {entry: (x, y)}; the
    entries of the axis's legend, or of its figure's one legend when the axis has none."""
    legend = ax.get_legend() or ax.figure.legends[0]
    colours = {tuple(mpl.colors.to_rgba(h.get_color())): t.get_text()
               for h, t in zip(legend.legend_handles, legend.get_texts(), strict=True)}
    out: dict[str, tuple[list[float], list[float]]] = {}
    for ln in ax.lines:
        if len(ln.get_xdata()):
            name = colours[tuple(mpl.colors.to_rgba(ln.get_color()))]
            assert name not in out, f"two lines for {name}"
            out[name] = (list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata())))
    return out


def markers(ax: Any) -> dict[str, Any]:
    """Each legend entry's marker and line style (seaborn's style= mapping), of an axis's
    legend or a figure's one legend (``fig.legends[0]``)."""
    legend = ax if hasattr(ax, "legend_handles") else ax.get_legend()
    return {t.get_text(): (h.get_marker(), h.get_linestyle())
            for h, t in zip(legend.legend_handles, legend.get_texts(), strict=True)}


def line_markers(ax: Axes) -> dict[str, Any]:
    """Each drawn line's label, marker and line style (the panels of a figure whose one
    legend names every policy)."""
    return {ln.get_label(): (ln.get_marker(), ln.get_linestyle()) for ln in ax.get_lines()}


def legend(ax: Axes) -> dict[str, Any]:
    lg = ax.get_legend()
    texts = lg.get_texts()
    return {"texts": [t.get_text() for t in texts], "fontsize": texts[0].get_fontsize(), "ncols": lg._ncols,
            "loc": lg._loc}


def bars(ax: Axes) -> list[tuple[float, float, float]]:
    """(left x, bottom, height) of each drawn bar, in drawing order."""
    return [(p.get_x(), p.get_y(), p.get_height()) for p in ax.patches if p.get_width()]


def texts(ax: Axes) -> dict[str, Any]:
    return {"title": ax.get_title(), "title_size": ax.title.get_fontsize(), "xlabel": ax.get_xlabel(),
            "ylabel": ax.get_ylabel(), "xscale": ax.get_xscale(), "yscale": ax.get_yscale()}
