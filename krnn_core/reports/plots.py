"""PNG charts of the signal reports, drawn without pyplot's global state so that they are thread-safe."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import pandas as pd

from krnn_core.reports.evaluation import ROLLING_WINDOWS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of that size in inches, its layout constrained."""
    # imported here: every process that reads the config imports this module, few of them draw (0.25 s)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes at 100 dpi."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, for markdown and HTML images that need no file beside them."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def ic_series_plot(ic_daily: pd.DataFrame) -> bytes:
    """Daily IC as bars with its rolling means and the rolling Rank IC as lines."""
    figure = new_figure(10, 4.5)
    axes = figure.subplots()
    axes.bar(ic_daily.index, ic_daily["ic"], color="lightsteelblue", label="daily IC")
    for window in ROLLING_WINDOWS:
        for column, title, style in (("ic", "IC", "-"), ("rank_ic", "Rank IC", "--")):
            name = f"{column}_mean_{window}"
            if name in ic_daily and ic_daily[name].notna().any():
                axes.plot(ic_daily.index, ic_daily[name], style, label=f"{window}-day mean {title}")
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_title(f"IC, {ic_daily.index[0]:%Y-%m-%d} to {ic_daily.index[-1]:%Y-%m-%d}")
    axes.set_ylabel("correlation of score and next-day label")
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    return to_png(figure)


def quantile_returns_plot(quantile_daily: pd.DataFrame) -> bytes:
    """Mean daily return per score quantile (bars, basis points) and the cumulative long-short return."""
    figure = new_figure(10, 4.5)
    bars, line = figure.subplots(1, 2, width_ratios=[1, 2])
    means = quantile_daily.drop(columns="long_short").mean() * 1e4
    bars.bar(means.index, means.to_numpy(), color=["tab:red" if v < 0 else "tab:green" for v in means])
    bars.axhline(0.0, color="grey", linewidth=0.8)
    bars.set_title("Mean daily return by score quantile")
    bars.set_ylabel("basis points")
    line.plot(quantile_daily.index, quantile_daily["long_short"].cumsum().to_numpy(), color="tab:purple")
    line.axhline(0.0, color="grey", linewidth=0.8)
    line.set_title("Cumulative long-short return (top minus bottom quantile, summed)")
    line.grid(alpha=0.3)
    figure.autofmt_xdate()
    return to_png(figure)


def ic_decay_plot(decay: pd.DataFrame) -> bytes:
    """Mean IC and Rank IC against the holding horizon in trading days."""
    figure = new_figure(7, 4)
    axes = figure.subplots()
    width = 0.4
    axes.bar(decay.index - width / 2, decay["ic"], width, label="IC")
    axes.bar(decay.index + width / 2, decay["rank_ic"], width, label="Rank IC")
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_xticks(decay.index)
    axes.set_xlabel("horizon h (return from close t+1 to close t+1+h, trading days)")
    axes.set_title("IC decay")
    axes.legend()
    axes.grid(alpha=0.3, axis="y")
    return to_png(figure)
