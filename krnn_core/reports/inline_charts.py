"""Charts small enough to show inline in the Dagster UI: an SVG in a markdown image under 1,000 characters.

Dagster's UI renders a markdown metadata value in place only below 1,000 characters; a longer one, such as
any PNG, hides behind "[Show Markdown]". So each chart draws one series with integer coordinates, a line
thinned until the markdown fits, at a size the asset page's metadata column shows whole from a 1400-pixel
window. The full-size charts of the HTML report are in krnn_core.reports.plots.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from itertools import pairwise

import pandas as pd

MARKDOWN_LIMIT = 1000
LEFT, TOP, WIDTH, HEIGHT = 42, 20, 270, 90  # the plot area, with room for labels left, above and below
IMAGE_WIDTH, IMAGE_HEIGHT = LEFT + WIDTH + 48, TOP + HEIGHT + 18
MAX_CAPTIONS = 6  # bars captioned one by one; more get the first and last caption and the index's name
COLOR = "steelblue"  # named: a "#" would end the data URI


def svg_markdown(title: str, body: str) -> str:
    """A markdown image of an SVG whose body is `body`, with the title above the plot area."""
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{IMAGE_WIDTH}' height='{IMAGE_HEIGHT}' "
        f"font-family='sans-serif' font-size='11'><text x='{LEFT}' y='12'>{escape(title)}</text>{body}</svg>"
    )
    # a <...> link destination may hold spaces, and "<" or ">" escaped by a backslash: the shortest encoding
    uri = "data:image/svg+xml," + svg.replace("%", "%25").replace("<", "\\<").replace(">", "\\>")
    return f"![chart](<{uri}>)"


def _fitted(title: str, body: str) -> str:
    """The chart's markdown, or an error when it would hide behind Dagster's "[Show Markdown]"."""
    markdown = svg_markdown(title, body)
    if len(markdown) >= MARKDOWN_LIMIT:
        raise ValueError(f"the chart {title!r} ({len(markdown)} characters) does not fit in {MARKDOWN_LIMIT}")
    return markdown


def _scale(values: pd.Series) -> Callable[[float], int]:
    """Pixel row of a value in a plot area spanning the values and zero."""
    low, high = min(values.min(), 0.0), max(values.max(), 0.0)
    span = (high - low) or 1.0
    return lambda value: round(TOP + (high - value) / span * HEIGHT)


def _axis(values: pd.Series, row: Callable[[float], int], label: Callable[[float], str]) -> str:
    """The zero line, and the lowest and highest value (or zero) labelled left of the plot area."""
    ticks = {row(value): label(value) for value in (min(values.min(), 0.0), max(values.max(), 0.0))}
    texts = "".join(f"<text x='{LEFT - 4}' y='{y + 4}'>{text}</text>" for y, text in ticks.items())
    return f"<path d='M{LEFT} {row(0.0)}h{WIDTH}' stroke='gray'/><g text-anchor='end'>{texts}</g>"


def _numbers(values: list[int]) -> str:
    """Integers for an SVG path, separated by a space only where no minus sign separates them."""
    return "".join(f"{'' if i == 0 or v < 0 else ' '}{v}" for i, v in enumerate(values))


def _path(values: pd.Series, row: Callable[[float], int]) -> str:
    """The values as a relative SVG path across the plot area; one value as a dot."""
    points = [(LEFT + round(i * WIDTH / max(len(values) - 1, 1)), row(value)) for i, value in enumerate(values)]
    if len(points) == 1:  # a path of one point has no length to draw
        return f"<circle cx='{points[0][0]}' cy='{points[0][1]}' r='2' fill='{COLOR}'/>"
    steps = [delta for (x0, y0), (x1, y1) in pairwise(points) for delta in (x1 - x0, y1 - y0)]
    return f"<path d='M{points[0][0]} {points[0][1]}l{_numbers(steps)}' fill='none' stroke='{COLOR}'/>"


def line_chart(title: str, values: pd.Series, label: Callable[[float], str]) -> str:
    """Markdown of a daily series, every k-th day kept (always the last) with the smallest k that fits."""
    values = values.dropna()
    row = _scale(values)
    below = TOP + HEIGHT + 15
    fixed = _axis(values, row, label) + (
        f"<text x='{LEFT}' y='{below}'>{values.index[0]:%Y-%m-%d}</text>"
        f"<text x='{LEFT + WIDTH}' y='{below}' text-anchor='end'>{values.index[-1]:%Y-%m-%d}</text>"
        f"<text x='{LEFT + WIDTH + 4}' y='{row(values.iloc[-1]) + 4}' fill='{COLOR}'>{label(values.iloc[-1])}</text>"
    )
    for step in range(1, len(values) + 1):  # the last step keeps the last day alone
        path = _path(values.iloc[::-1].iloc[::step].iloc[::-1], row)
        if len(svg_markdown(title, fixed + path)) < MARKDOWN_LIMIT:
            break
    return _fitted(title, fixed + path)


def bar_chart(title: str, values: pd.Series, label: Callable[[float], str]) -> str:
    """Markdown of one bar per value, captioned by the index: every bar, or the first and last of many."""
    row = _scale(values)
    group = WIDTH // len(values)
    width = max(group * 2 // 3, 1)
    # a bar is a vertical stroke as wide as the bar: the shortest path that draws it
    middles = [LEFT + i * group + group // 2 for i in range(len(values))]
    strokes = "".join(f"M{x} {row(0.0)}V{row(value)}" for x, value in zip(middles, values, strict=True))
    shown = range(len(values)) if len(values) <= MAX_CAPTIONS else (0, len(values) - 1)
    captions = "".join(f"<tspan x='{middles[i]}'>{escape(str(values.index[i]))}</tspan>" for i in shown)
    if len(values) > MAX_CAPTIONS:
        captions += f"<tspan x='{LEFT + WIDTH // 2}'>{escape(str(values.index.name))}</tspan>"
    body = _axis(values, row, label) + f"<path d='{strokes}' stroke='{COLOR}' stroke-width='{width}'/>"
    body += f"<text y='{TOP + HEIGHT + 15}' text-anchor='middle'>{captions}</text>"
    return _fitted(title, body)
