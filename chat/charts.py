"""The geometry of a stacked bar chart over days, for an SVG a template draws.

Each day has two values, a lower part and an upper part stacked on it (input and output tokens,
thumbs up and thumbs down): the admin's charts share the drawing, each with its own labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Bar[T]:
    """One day's column: ``lower`` at the bottom, ``upper`` stacked on top."""

    day: date
    data: T  # what the column stands for
    lower: int
    upper: int
    x: float
    width: float
    lower_y: float
    lower_height: float
    upper_y: float
    upper_height: float


@dataclass(frozen=True, slots=True)
class Chart[T]:
    width: int
    height: int
    peak: int  # the tallest column's value, the chart's full height
    bars: list[Bar[T]]


def stacked_chart[T](
    days: list[tuple[date, T, int, int]], *, width: int = 720, height: int = 160
) -> Chart[T]:
    """``days`` as (day, data, lower, upper), oldest first."""
    peak = max((lower + upper for _, _, lower, upper in days), default=0)
    scale = height / peak if peak else 0.0
    slot = width / max(len(days), 1)
    bars = []
    for index, (day, data, lower, upper) in enumerate(days):
        lower_height = lower * scale
        upper_height = upper * scale
        bars.append(
            Bar(
                day=day,
                data=data,
                lower=lower,
                upper=upper,
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                lower_y=round(height - lower_height, 2),
                lower_height=round(lower_height, 2),
                upper_y=round(height - lower_height - upper_height, 2),
                upper_height=round(upper_height, 2),
            )
        )
    return Chart(width=width, height=height, peak=peak, bars=bars)
