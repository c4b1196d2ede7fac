"""The feature-importance bar chart, ``feature_importance_<type>.png``, drawn cheaply.

MLflow draws it with pyplot: ``barh``, tick labels, a title and ``tight_layout``. That costs
0.1–0.3 s a plot, paid after every autologged training (LightGBM logs two), and most of it goes
into the Axes' tick machinery and the extra draw ``tight_layout`` makes. This module draws the
same chart — MLflow's figure size, bars sorted by importance with the most important on top,
feature names on the left, an importance axis with round ticks, the title ``Feature Importance
(<type>)``, one bar per class and a legend for per-class importances — directly on a matplotlib
Figure (Agg canvas, no pyplot, no GUI backend) with plain artists in figure coordinates, in about
half the time. matplotlib is imported only when a plot is made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["plot_importance"]

# matplotlib's defaults (points): tick length and pad, x-label pad, title pad, spine width.
_TICK, _TICK_PAD, _LABEL_PAD, _TITLE_PAD, _LINE = 3.5, 3.5, 4.0, 6.0, 0.8
_EDGE = 0.15  # inches of white around everything, as tight_layout leaves
_MARGIN = 0.05  # matplotlib's data margin on each non-zero side


def plot_importance(
    features: Sequence[Any], values: Sequence[Any], importance_type: str, path: str
) -> None:
    """Save the importance bar chart of ``features`` (one value, or one value per class, each)
    as a PNG at ``path``: 6.4 x 4.8 inches, 0.1 inch taller per feature past ten and per class
    past one, as MLflow's."""
    import numpy as np
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    matrix = np.asarray(values, dtype=float)
    per_class = matrix.ndim > 1
    if not per_class:
        matrix = matrix.reshape(-1, 1)
    order = np.argsort(np.abs(matrix).sum(axis=1), kind="stable")
    names = [str(name) for name in np.asarray(list(features), dtype=object)[order]]
    matrix = matrix[order]
    num_features, num_classes = matrix.shape

    width, height = 6.4, 4.8
    height += 0.1 * num_features if num_features > 10 else 0.0
    height += 0.1 * num_classes if num_classes > 1 else 0.0
    fig = Figure(figsize=(width, height))
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    dpi = fig.dpi
    tick_font = FontProperties(size=rcParams["ytick.labelsize"])
    title_font = FontProperties(size=rcParams["axes.titlesize"])

    def extent(text: str, font: Any) -> tuple[float, float]:
        """(width, height) of ``text`` in inches."""
        w, h, _ = renderer.get_text_width_height_descent(text, font, ismath=False)
        return w / dpi, h / dpi

    label_w = max((extent(n, tick_font)[0] for n in sorted(names, key=len)[-5:]), default=0.0)
    line_h = extent("Ag", tick_font)[1]
    ticks_in = (_TICK + _TICK_PAD) / 72
    left = min(0.6 * width, _EDGE + label_w + ticks_in)
    bottom = _EDGE + 2 * line_h + ticks_in + _LABEL_PAD / 72
    top = _EDGE + extent("Ag", title_font)[1] + _TITLE_PAD / 72
    right = _EDGE + 0.2
    x0, x1 = left / width, 1 - right / width
    y0, y1 = bottom / height, 1 - top / height

    # Data limits as matplotlib's autoscaling sets them: 5% margins, none beyond zero.
    lo, hi = min(0.0, float(matrix.min(initial=0.0))), max(0.0, float(matrix.max(initial=0.0)))
    if hi == lo:
        hi = lo + 1.0
    span = hi - lo
    xlo, xhi = (lo - _MARGIN * span if lo < 0 else lo), (hi + _MARGIN * span if hi > 0 else hi)
    offsets = np.linspace(-0.5, 0.5, num_classes) / 2 if num_classes > 1 else np.zeros(1)
    bar_h = 0.5 / max(num_classes - 1, 1)
    ylo = -0.5 * bar_h + offsets[0]
    yhi = num_features - 1 + offsets[-1] + 0.5 * bar_h
    ylo, yhi = ylo - _MARGIN * (yhi - ylo), yhi + _MARGIN * (yhi - ylo)

    def fx(v: Any) -> Any:
        return x0 + (x1 - x0) * (np.asarray(v) - xlo) / (xhi - xlo)

    def fy(v: Any) -> Any:
        return y0 + (y1 - y0) * (np.asarray(v) - ylo) / (yhi - ylo)

    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    ylocs = np.arange(num_features)
    zero = fx(0.0)
    for cls in range(num_classes):
        bottoms = fy(ylocs + offsets[cls] - bar_h / 2)
        tops = fy(ylocs + offsets[cls] + bar_h / 2)
        ends = fx(matrix[:, cls])
        bars = [
            [(zero, b), (e, b), (e, t), (zero, t)]
            for b, t, e in zip(bottoms, tops, ends, strict=True)
        ]
        fig.add_artist(
            PolyCollection(
                bars, facecolors=colors[cls % len(colors)], linewidths=0, transform=fig.transFigure
            )
        )

    tick_w, tick_h = _TICK / 72 / width, _TICK / 72 / height
    axis_w = (x1 - x0) * width
    nbins = max(1, math.floor(axis_w * 72 / (tick_font.get_size_in_points() * 3)))
    while True:
        xticks = [
            t
            for t in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(xlo, xhi)
            if xlo - 1e-9 * span <= t <= xhi + 1e-9 * span
        ]
        labels, scale = _tick_labels(xticks, rcParams["axes.unicode_minus"])
        needed = sum(extent(label, tick_font)[0] + 0.1 for label in labels)
        if needed <= axis_w or nbins == 1:
            break
        nbins -= 1
    segments = [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]
    segments += [[(x, y0), (x, y0 - tick_h)] for x in fx(xticks)]
    segments += [[(x0, y), (x0 - tick_w, y)] for y in fy(ylocs)]
    fig.add_artist(
        LineCollection(segments, colors="black", linewidths=_LINE, transform=fig.transFigure)
    )

    pad_x, pad_y = ticks_in / width, ticks_in / height
    for name, y in zip(names, fy(ylocs), strict=True):
        fig.text(x0 - pad_x, y, name, ha="right", va="center", parse_math=False)
    for label, x in zip(labels, fx(xticks), strict=True):
        fig.text(x, y0 - pad_y, label, ha="center", va="top", parse_math=False)
    label_y = y0 - pad_y - line_h / height - _LABEL_PAD / 72 / height
    if scale:  # matplotlib's offset text: the common power of ten, under the axis' right end
        fig.text(x1, label_y, scale, ha="right", va="top", parse_math=False)
    fig.text((x0 + x1) / 2, label_y, "Importance", ha="center", va="top")
    fig.text(
        (x0 + x1) / 2,
        y1 + _TITLE_PAD / 72 / height,
        f"Feature Importance ({importance_type})",
        ha="center",
        va="baseline",
        fontproperties=title_font,
        parse_math=False,
    )
    if per_class:
        handles = [
            Patch(color=colors[c % len(colors)], label=f"Class {c}") for c in range(num_classes)
        ]
        fig.legend(handles=handles, loc="lower right", bbox_to_anchor=(x1, y0, 0, 0))
    # zlib level 1: a third of the encoding time of the default 6, a few KB more per file.
    fig.savefig(path, pil_kwargs={"compress_level": 1})


def _tick_labels(ticks: Sequence[float], unicode_minus: bool) -> tuple[list[str], str]:
    """Tick labels with as many decimals as the finest tick needs (``0.0 2.5 5.0``), as
    matplotlib's default formatter writes them, and the power of ten they are scaled by (``1e6``,
    or ``""``) when the values reach a million."""
    if not ticks:
        return [], ""
    scale, factor = "", 1.0
    biggest = max(abs(t) for t in ticks)
    if biggest >= 1e6:
        exponent = math.floor(math.log10(biggest))
        scale, factor = f"1e{exponent}", 10.0**exponent
    scaled = [t / factor for t in ticks]
    decimals = 0
    for t in scaled:
        text = f"{t:.6f}".rstrip("0")
        decimals = max(decimals, len(text.split(".")[1]) if "." in text else 0)
    labels = [f"{t:.{decimals}f}" for t in scaled]
    if unicode_minus:
        labels = [label.replace("-", "\u2212") for label in labels]
    return labels, scale
