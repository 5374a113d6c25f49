"""Small server-rendered SVG charts: bars (grouped or stacked) and lines, no JavaScript.

Why hand-built: the admin must work offline and without scripts, and every bar and point must
carry its value in a ``<title>`` (the browser's own tooltip, read by screen readers). pygal, the
well-kept pure-Python choice, puts values in ``<desc>`` elements for its JavaScript tooltips,
loaded from a CDN by default; what is left without them is less than this module does.

Every chart is an ``<svg role="img">`` named by its ``<title>`` and described by a ``<desc>``,
with both axes labelled and a legend when it has more than one series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 52
AXIS = "#666"
GRID = "#ddd"
_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None: no data (nothing drawn)
    colour: str


def plain_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def _frame(title: str, description: str, body: list[str], *, width: int, height: int) -> str:
    ident = f"tc-chart-{next(_ids)}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tc-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-family="sans-serif" font-size="11">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>'
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="currentColor">'
        f"{escape(title)}</text>" + "".join(body) + "</svg>"
    )


def _axes(
    *,
    width: int,
    height: int,
    top_value: float,
    x_label: str,
    y_label: str,
    value_format: Callable[[float], str],
) -> list[str]:
    plot_bottom, plot_right = height - BOTTOM, width - RIGHT
    parts = []
    for step in range(5):
        value = top_value * step / 4
        y = plot_bottom - (plot_bottom - TOP) * step / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{plot_right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">'
            f"{escape(value_format(value))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{plot_bottom}" stroke="{AXIS}"/>'
        f'<line x1="{LEFT}" x2="{plot_right}" y1="{plot_bottom}" y2="{plot_bottom}" '
        f'stroke="{AXIS}"/>'
        f'<text x="{(LEFT + plot_right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{AXIS}" class="tc-x-label">{escape(x_label)}</text>'
        f'<text transform="translate(12 {(TOP + plot_bottom) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{AXIS}" class="tc-y-label">{escape(y_label)}</text>'
    )
    return parts


def _x_labels(labels: Sequence[str], centres: Sequence[float], height: int, every: int) -> str:
    y = height - BOTTOM + 14
    return "".join(
        f'<text x="{x:.1f}" y="{y}" text-anchor="middle" fill="{AXIS}">{escape(label)}</text>'
        for index, (label, x) in enumerate(zip(labels, centres, strict=True))
        if index % every == 0
    )


def _text_width(text: str) -> float:
    """About how wide ``text`` is at 11 px: CJK characters are square, Latin ones narrower."""
    return sum(11.0 if ord(character) >= 0x2E80 else 6.5 for character in text)


def _legend(series: Sequence[Series], width: int) -> str:
    if len(series) < 2:
        return ""
    parts: list[str] = []
    x = float(width - RIGHT)
    for item in reversed(series):
        x -= 14 + _text_width(item.name) + 14
        parts.append(
            f'<rect x="{x:.1f}" y="7" width="10" height="10" fill="{item.colour}"/>'
            f'<text x="{x + 14:.1f}" y="16" fill="currentColor">{escape(item.name)}</text>'
        )
    return "".join(parts)


def _every(labels: Sequence[str], width: int) -> int:
    """Label every n-th slot so that labels do not overlap."""
    widest = max(_text_width(label) for label in labels) + 12
    fits = max(1, int((width - LEFT - RIGHT) // widest))
    return max(1, math.ceil(len(labels) / fits))


def _empty(title: str, no_data: str, width: int) -> SafeString:
    body = [
        f'<text x="{width / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{AXIS}">'
        f"{escape(no_data)}</text>"
    ]
    return mark_safe(_frame(title, no_data, body, width=width, height=HEIGHT // 2 + 20))  # noqa: S308


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    stacked: bool = False,
    value_format: Callable[[float], str] = plain_number,
    no_data: str = "No data",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Bars per label, one per series side by side, or stacked; each with a ``<title>``
    tooltip "label: series value"."""
    if not labels or all(v is None for s in series for v in s.values):
        return _empty(title, no_data, width)
    totals = [
        sum(s.values[i] or 0 for s in series) if stacked else max(s.values[i] or 0 for s in series)
        for i in range(len(labels))
    ]
    top_value = nice_ceiling(max(totals))
    plot_height = height - BOTTOM - TOP
    slot = (width - LEFT - RIGHT) / len(labels)
    bar_width = slot * 0.8 / (1 if stacked else len(series))
    body = _axes(
        width=width,
        height=height,
        top_value=top_value,
        x_label=x_label,
        y_label=y_label,
        value_format=value_format,
    )
    centres = []
    for index, label in enumerate(labels):
        x0 = LEFT + slot * index + slot * 0.1
        centres.append(LEFT + slot * (index + 0.5))
        base = 0.0
        for position, item in enumerate(series):
            value = item.values[index]
            if value is None:
                continue
            bar_height = plot_height * value / top_value
            x = x0 if stacked else x0 + bar_width * position
            y = height - BOTTOM - base - bar_height
            tip = f"{label}: {item.name} {value_format(value)}"
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_width - 1, 1):.1f}" '
                f'height="{bar_height:.1f}" fill="{item.colour}"><title>{escape(tip)}</title>'
                f"</rect>"
            )
            if stacked:
                base += bar_height
    body.append(_x_labels(labels, centres, height, _every(labels, width)))
    body.append(_legend(series, width))
    description = "; ".join(
        f"{item.name}: "
        + ", ".join(
            f"{label} {value_format(value)}"
            for label, value in zip(labels, item.values, strict=True)
            if value is not None
        )
        for item in series
    )
    return mark_safe(_frame(title, description, body, width=width, height=height))  # noqa: S308


def line_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    value_format: Callable[[float], str] = plain_number,
    no_data: str = "No data",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """One line per series over the labels (gaps where a value is None); each point is a
    small circle with a ``<title>`` tooltip."""
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values:
        return _empty(title, no_data, width)
    top_value = nice_ceiling(max(values))
    plot_height = height - BOTTOM - TOP
    step = (width - LEFT - RIGHT) / max(len(labels), 1)
    centres = [LEFT + step * (index + 0.5) for index in range(len(labels))]
    body = _axes(
        width=width,
        height=height,
        top_value=top_value,
        x_label=x_label,
        y_label=y_label,
        value_format=value_format,
    )
    radius = 2.5 if len(labels) <= 120 else 1.2
    for item in series:
        runs: list[list[str]] = [[]]
        for label, x, value in zip(labels, centres, item.values, strict=True):
            if value is None:
                runs.append([])
                continue
            y = height - BOTTOM - plot_height * value / top_value
            runs[-1].append(f"{x:.1f},{y:.1f}")
            tip = f"{label}: {item.name} {value_format(value)}"
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{item.colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        body.extend(
            f'<polyline points="{" ".join(run)}" fill="none" stroke="{item.colour}" '
            f'stroke-width="1.5"/>'
            for run in runs
            if len(run) > 1
        )
    body.append(_x_labels(labels, centres, height, _every(labels, width)))
    body.append(_legend(series, width))
    latest = "; ".join(
        f"{item.name}: {value_format(last)}"
        for item in series
        for last in [next((v for v in reversed(item.values) if v is not None), None)]
        if last is not None
    )
    return mark_safe(_frame(title, latest, body, width=width, height=height))  # noqa: S308
