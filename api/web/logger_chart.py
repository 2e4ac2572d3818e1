"""A temperature-logger trace as a server-rendered SVG: the readings over time, the
product's transport range as a band, readings outside it as red points.

No script and no chart library: numbers only go into the markup (no text from the file
but formatted times and temperatures), so the SVG is safe to inline. A long file is
thinned to each bucket's lowest and highest reading, which keeps every excursion visible.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from api.web.i18n import N_
from lims.doses.logger import LoggerTrace
from lims.doses.spec import temperature_text

WIDTH, HEIGHT, PAD_X, PAD_Y = 640, 220, 56, 24
# The chart's accessible name; the portal translates it.
LOGGER_WORDS = N_("Temperature logger: {n} readings, {outside} outside {low} to {high}")
MAX_POINTS = 600  # beyond this, a bucket's minimum and maximum stand for it


def _thinned(readings: list[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal]]:
    if len(readings) <= MAX_POINTS:
        return readings
    size = -(-len(readings) // (MAX_POINTS // 2))
    kept: list[tuple[datetime, Decimal]] = []
    for start in range(0, len(readings), size):
        bucket = readings[start : start + size]
        low, high = min(bucket, key=lambda r: r[1]), max(bucket, key=lambda r: r[1])
        kept.extend(sorted({low, high}, key=lambda r: r[0]))
    return kept


def logger_svg(trace: LoggerTrace, *, describe: str) -> Markup:
    """The chart for ``trace``; ``describe`` is its accessible name (already worded)."""
    points = sorted(trace.readings, key=lambda r: r[0])
    if not points:
        return Markup("")
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    values = [float(t) for _, t in points]
    y_low = min(min(values), float(trace.low)) - 1
    y_high = max(max(values), float(trace.high)) + 1
    span_t = (t1 - t0) or 1.0

    def x(at: datetime) -> float:
        return PAD_X + (at.timestamp() - t0) / span_t * (WIDTH - 2 * PAD_X)

    def y(value: float) -> float:
        return PAD_Y + (y_high - value) / (y_high - y_low) * (HEIGHT - 2 * PAD_Y)

    line = " ".join(f"{x(at):.1f},{y(float(t)):.1f}" for at, t in _thinned(points))
    outside = [(at, t) for at, t in points if not trace.low <= t <= trace.high]
    dots = "".join(
        f'<circle cx="{x(at):.1f}" cy="{y(float(t)):.1f}" r="2.5" class="out"/>'
        for at, t in _thinned(outside)
    )
    band_top, band_bottom = y(float(trace.high)), y(float(trace.low))
    label = escape(describe)
    return Markup(
        f'<svg class="logger-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}" width="100%" '
        f'style="display:block;height:auto;max-width:min(100%,{WIDTH}px)">'
        f"<title>{label}</title>"
        "<style>.band{fill:#cce2d8}.trace{fill:none;stroke:#1d70b8;stroke-width:1.5}"
        ".out{fill:#d4351c}.axis{font:11px sans-serif;fill:#0b0c0c}</style>"
        f'<rect class="band" x="{PAD_X}" y="{band_top:.1f}" width="{WIDTH - 2 * PAD_X}" '
        f'height="{band_bottom - band_top:.1f}"/>'
        f'<polyline class="trace" points="{line}"/>{dots}'
        f'<text class="axis" x="4" y="{band_top + 4:.1f}">{_deg(trace.high)}</text>'
        f'<text class="axis" x="4" y="{band_bottom + 4:.1f}">{_deg(trace.low)}</text>'
        f'<text class="axis" x="{PAD_X}" y="{HEIGHT - 4}">{points[0][0]:%Y-%m-%d %H:%M %z}</text>'
        f'<text class="axis" x="{WIDTH - PAD_X}" y="{HEIGHT - 4}" text-anchor="end">'
        f"{points[-1][0]:%Y-%m-%d %H:%M %z}</text></svg>"
    )


def _deg(value: Decimal) -> str:
    return str(escape(temperature_text(value)))


def chart_for(trace: LoggerTrace | None, *, zone: ZoneInfo, words: str) -> Markup:
    """The chart of a dose's logger file with the readings' times in ``zone``; ``words``
    is a format with {n}, {outside}, {low} and {high} (translated by the caller)."""
    if trace is None or not trace.readings:
        return Markup("")
    local = LoggerTrace(
        [(at.astimezone(zone), t) for at, t in trace.readings], trace.low, trace.high, trace.sha256
    )
    return logger_svg(
        local,
        describe=words.format(
            n=len(trace.readings),
            outside=trace.outside,
            low=temperature_text(trace.low),
            high=temperature_text(trace.high),
        ),
    )
