"""Charts small enough to show inline in the Dagster UI: an SVG in a markdown image under 1,000 characters.

Dagster's UI renders a markdown metadata value in place only below 1,000 characters; a longer one, such as
any PNG, hides behind "[Show Markdown]". So these charts draw a few elements with integer coordinates and
thin a line's points until the markdown fits. The full-size charts of the HTML report are in krnn_core.plots.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from itertools import pairwise

import pandas as pd

MARKDOWN_LIMIT = 1000
LEFT, TOP, WIDTH, HEIGHT = 54, 26, 480, 110  # the plot area inside a (LEFT + WIDTH + 60) x (TOP + HEIGHT + 20) image
LINE_GAP = 12  # pixels between two lines of text
MAX_CAPTIONS = 6  # groups captioned one by one; more get their first and last caption
COLORS = ("steelblue", "darkorange", "seagreen")  # named: a "#" would end the data URI


def svg_markdown(title: str, body: str) -> str:
    """A markdown image of an SVG whose body is `body`, with the title above the plot area."""
    width, height = LEFT + WIDTH + 60, TOP + HEIGHT + 20
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' "
        f"font-size='11'><text x='{LEFT}' y='12'>{escape(title)}</text>{body}</svg>"
    )
    # a <...> link destination may hold spaces, and "<" or ">" escaped by a backslash: the shortest encoding
    uri = "data:image/svg+xml," + svg.replace("%", "%25").replace("<", "\\<").replace(">", "\\>")
    return f"![chart](<{uri}>)"


def _numbers(values: list[int]) -> str:
    """Integers for an SVG path, separated by a space only where no minus sign separates them."""
    return "".join(f"{'' if i == 0 or v < 0 else ' '}{v}" for i, v in enumerate(values))


def _scale(low: float, high: float) -> Callable[[float], int]:
    """Pixel row of a value in a plot area spanning [low, high] (zero always inside)."""
    low, high = min(low, 0.0), max(high, 0.0)
    span = (high - low) or 1.0
    return lambda value: round(TOP + (high - value) / span * HEIGHT)


def _axis(row: Callable[[float], int], low: float, high: float, label: Callable[[float], str]) -> str:
    """The zero line and the labels of the lowest and highest value at the left of the plot area."""
    zero = f"<path d='M{LEFT} {row(0.0)}h{WIDTH}' stroke='gray'/>"
    ticks = {row(value): label(value) for value in (min(low, 0.0), max(high, 0.0))}
    texts = "".join(f"<text x='{LEFT - 4}' y='{y + 4}'>{text}</text>" for y, text in ticks.items())
    return zero + f"<g text-anchor='end'>{texts}</g>"


def _legend(names: list[str], title: str) -> str:
    """Series names in their colours along the title line, after the title."""
    spans = "".join(f"<tspan fill='{COLORS[i]}'> {escape(name)}</tspan>" for i, name in enumerate(names))
    return f"<text x='{LEFT + 7 * len(title)}' y='12'>{spans}</text>"


def _line(points: pd.Series, row: Callable[[float], int], color: str) -> str:
    """One series (NaN: no point) as a relative SVG path across the plot area."""
    xs = [LEFT + round(i * WIDTH / max(len(points) - 1, 1)) for i in range(len(points))]
    kept = [(x, row(value)) for x, value in zip(xs, points, strict=True) if pd.notna(value)]
    steps = [delta for (x0, y0), (x1, y1) in pairwise(kept) for delta in (x1 - x0, y1 - y0)]
    return f"<path d='M{kept[0][0]} {kept[0][1]}l{_numbers(steps)}' fill='none' stroke='{color}'/>"


def _end_labels(last: pd.Series, row: Callable[[float], int], label: Callable[[float], str]) -> str:
    """Each line's last value right of the plot area in its colour, pushed apart where they would overlap."""
    texts, below = [], -LINE_GAP
    for value, color in sorted(zip(last, COLORS[: len(last)], strict=True), key=lambda pair: -pair[0]):
        below = max(row(value) + 4, below + LINE_GAP)
        texts.append(f"<text x='{LEFT + WIDTH + 4}' y='{below}' fill='{color}'>{label(value)}</text>")
    return "".join(texts)


def line_chart(title: str, lines: dict[str, pd.Series], label: Callable[[float], str]) -> str:
    """Markdown of the lines over their shared dates, thinned until it fits; the last values labelled."""
    frame = pd.DataFrame(lines).dropna(how="all")
    low, high = float(frame.min().min()), float(frame.max().max())
    row = _scale(low, high)
    dates = f"<text x='{LEFT}' y='{TOP + HEIGHT + 16}'>{frame.index[0]:%Y-%m-%d}</text>" + (
        f"<text x='{LEFT + WIDTH}' y='{TOP + HEIGHT + 16}' text-anchor='end'>{frame.index[-1]:%Y-%m-%d}</text>"
    )
    fixed = _axis(row, low, high, label) + dates + _end_labels(frame.ffill().iloc[-1], row, label)
    fixed += _legend(list(lines), title)
    for step in range(1, len(frame)):
        kept = frame.iloc[::-1].iloc[::step].iloc[::-1]  # every step-th day, always the last one
        paths = "".join(_line(kept[name], row, COLORS[i]) for i, name in enumerate(lines))
        if len(svg_markdown(title, fixed + paths)) < MARKDOWN_LIMIT:
            break
    return _fitted(title, fixed + paths)


def bar_chart(title: str, bars: pd.DataFrame, label: Callable[[float], str]) -> str:
    """Markdown of grouped bars: a group per row of `bars` captioned by its index, a colour per column."""
    low, high = float(bars.min().min()), float(bars.max().max())
    row = _scale(low, high)
    group = WIDTH // len(bars)
    width = max(group * 2 // (3 * len(bars.columns)), 1)
    body = _axis(row, low, high, label)
    for column, (_, values) in enumerate(bars.items()):
        # a bar is a vertical stroke as wide as the bar: the shortest path that draws it
        x0 = LEFT + group // 6 + column * width + width // 2
        strokes = "".join(f"M{x0 + i * group} {row(0.0)}V{row(value)}" for i, value in enumerate(values))
        body += f"<path d='{strokes}' stroke='{COLORS[column]}' stroke-width='{width}'/>"
    captioned = range(len(bars)) if len(bars) <= MAX_CAPTIONS else (0, len(bars) - 1)
    captions = "".join(
        f"<tspan x='{LEFT + i * group + group // 2}'>{escape(str(bars.index[i]))}</tspan>" for i in captioned
    )
    if len(bars) > MAX_CAPTIONS:  # the first and last group, and the index's name between them
        captions += f"<tspan x='{LEFT + WIDTH // 2}'>{escape(bars.index.name)}</tspan>"
    body += f"<text y='{TOP + HEIGHT + 16}' text-anchor='middle'>{captions}</text>"
    legend = _legend(list(bars.columns), title) if len(bars.columns) > 1 else ""
    return _fitted(title, body + legend)


def _fitted(title: str, body: str) -> str:
    """The chart's markdown, or an error when it would hide behind Dagster's "[Show Markdown]"."""
    markdown = svg_markdown(title, body)
    if len(markdown) >= MARKDOWN_LIMIT:
        raise ValueError(f"the chart {title!r} ({len(markdown)} characters) does not fit in {MARKDOWN_LIMIT}")
    return markdown
